"""The claim index (issue 14, speed of the feasible solve): it offers a class the open claims that may take it instead
of every claim, and it must never change a plan."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hyperpod_autoscaler.domain.plan import PlanOptions
from hyperpod_autoscaler.domain.scheduling.packer import ClaimIndex
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .engine_fixtures import plan
from .test_scheduling_properties import build, pod_shape, pool_shape


def test_candidates_are_the_claims_with_room_in_every_asked_resource_and_more_only_by_one_resource() -> None:
    index = ClaimIndex(3)
    index.update(0, (4000, 8, 0))
    index.update(1, (1500, 64, 1))
    index.update(2, (8000, 2, 1))
    # (1000 millicores, 4 units, no GPU): all three have CPU room, claims 0 and 1 memory room. The index filters on the
    # resource the fewest claims have room for (memory), so claim 2 is not offered.
    assert index.candidates((1000, 4, 0)) == [0, 1]
    # a GPU pod: the GPU is the rarest resource with room (claims 1 and 2), returned in claim order
    assert index.candidates((100, 1, 1)) == [1, 2]
    assert index.candidates((0, 0, 0)) == [0, 1, 2]
    assert index.candidates((9000, 1, 0)) == []
    # room in one resource is not room in all: the rarest resource decides, the engine's fit check does the rest
    assert index.candidates((3000, 32, 0)) == [1]
    assert index.candidates((1000, 60, 0)) == [1]
    assert index.candidates((5000, 3, 0)) == [2]


def test_an_update_replaces_the_claims_earlier_reach() -> None:
    index = ClaimIndex(2)
    index.update(5, (10, 10))
    index.update(7, (10, 10))
    index.update(5, (2, 10))
    assert index.candidates((5, 1)) == [7]
    index.update(5, (2, 10))  # unchanged: a no-op
    assert index.by_dim[0] == [(2, 5), (10, 7)]


def test_random_updates_never_hide_a_claim_with_room() -> None:
    rng = random.Random(7)
    index = ClaimIndex(3)
    reach: dict[int, tuple[int, ...]] = {}
    for _ in range(400):
        idx = rng.randrange(40)
        vec = tuple(rng.randrange(0, 10) for _ in range(3))
        index.update(idx, vec)
        reach[idx] = vec
        req = tuple(rng.randrange(0, 8) for _ in range(3))
        with_room = [i for i in sorted(reach) if all(r >= q for r, q in zip(reach[i], req, strict=True))]
        got = index.candidates(req)
        assert got == sorted(got)
        assert set(with_room) <= set(got)


def _full_scan(self: ClaimIndex, req: tuple[int, ...]) -> list[int]:
    return sorted(self.reach)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(pods=st.lists(pod_shape, min_size=1, max_size=30), pools=st.lists(pool_shape, min_size=1, max_size=3))
def test_the_index_gives_the_plan_a_scan_of_every_claim_gives(
    pods: list[dict[str, Any]], pools: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    objs: list[dict[str, Any]] = build(pods, pools, with_node=True)
    opts = PlanOptions(improve=False)
    indexed = plan(objs, options=opts).to_contract()
    with monkeypatch.context() as m:
        m.setattr(ClaimIndex, "candidates", _full_scan)
        scanned = plan(objs, options=opts).to_contract()
    assert indexed == scanned
