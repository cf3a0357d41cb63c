"""Karpenter's disruption tests, ported as data (``cases_*.py``), run through ``plan_disruptions``.

Each case names the upstream test it comes from; the expected decision is upstream's. A case that we decide otherwise on
purpose says why (``deliberate_difference``), gives what we decide instead (``ours``) and is explained in
docs/disruption.md."""

from __future__ import annotations

from pathlib import Path

import pytest
from hyperpod_autoscaler.domain.disruption import DisruptionPlan

from tests.unit.disruption_fixtures import disrupt

from . import cases_consolidation, cases_drift, cases_emptiness, cases_suite
from .model import Case, Expect

CASES: list[Case] = [
    *cases_consolidation.CASES,
    *cases_emptiness.CASES,
    *cases_drift.CASES,
    *cases_suite.CASES,
]
DOCS = Path(__file__).resolve().parents[3] / "docs" / "disruption.md"


def check(plan: DisruptionPlan, expect: Expect) -> None:
    taken = {n: d.reason for d in plan.decisions for n in d.nodes}
    for name, reason in expect.disrupted.items():
        assert taken.get(name) == reason, (
            f"{name}: expected {reason}, got {taken.get(name)} (kept: {plan.kept.get(name)})"
        )
    for name in expect.kept:
        assert name not in taken, f"{name} was disrupted ({taken[name]}), expected kept"
    if expect.count is not None:
        assert len(taken) == expect.count, f"{len(taken)} node(s) disrupted, expected {expect.count}: {plan.kept}"
    if expect.count_by_pool is not None:
        by_pool = {p: sum(len(d.nodes) for d in plan.decisions if d.nodepool == p) for p in expect.count_by_pool}
        assert by_pool == expect.count_by_pool
    if expect.allowed is not None:
        assert set(plan.allowed["default"].values()) == {expect.allowed}, plan.allowed
    if expect.replaced is not None:
        assert any(d.replacement for d in plan.decisions) == expect.replaced


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(case: Case) -> None:
    plan = disrupt(case.objects, **case.run)
    expect = case.ours if case.deliberate_difference else case.expect
    assert expect is not None
    check(plan, expect)


def test_the_suite_covers_upstream() -> None:
    assert len(CASES) >= 60
    assert len({c.name for c in CASES}) == len(CASES)
    assert all(c.upstream[0].startswith("pkg/") and c.upstream[1] for c in CASES)


@pytest.mark.parametrize("case", [c for c in CASES if c.deliberate_difference], ids=lambda c: c.name)
def test_deliberate_differences_are_documented(case: Case) -> None:
    assert case.ours is not None and case.ours != case.expect
    assert case.name in DOCS.read_text()
