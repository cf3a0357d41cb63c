"""Karpenter's provisioning/scheduling tests, ported as data (``cases_*.py``), run through the ``plan`` contract.

Each case names the upstream test it comes from; the expected placement is upstream's. A case that we decide otherwise
on purpose says why (``deliberate_difference``), gives what we decide instead (``ours``) and is explained in
docs/engine.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hyperpod_autoscaler.domain.plan import Plan

from tests.unit.engine_fixtures import plan

from . import cases_constraints, cases_provisioning, cases_selection, cases_topology
from .model import HOSTNAME, ITYPE, NODEPOOL, ZONE, Case, Expect

CASES: list[Case] = [
    *cases_constraints.CASES,
    *cases_provisioning.CASES,
    *cases_selection.CASES,
    *cases_topology.CASES,
]
DOCS = Path(__file__).resolve().parents[3] / "docs" / "engine.md"
GROUP = "sagemaker.amazonaws.com/instance-group-name"


def _template_labels(objects: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    return {
        o["metadata"]["name"]: o["spec"]["template"].get("metadata", {}).get("labels", {})
        for o in objects
        if o["kind"] == "NodePool"
    }


def node_labels(p: Plan, objects: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Pod name -> the labels of the node it is placed on: an existing node's labels, or a new node's as the contract
    gives them (NodePool, instance group, type, zone) with its NodePool's template labels."""
    templates = _template_labels(objects)
    nodes = {o["metadata"]["name"]: o["metadata"]["labels"] for o in objects if o["kind"] == "Node"}
    out: dict[str, dict[str, str]] = {}
    for i, c in enumerate(p.node_claims):
        labels = {
            **templates.get(c.nodepool, {}),
            NODEPOOL: c.nodepool,
            GROUP: c.instance_group,
            ITYPE: c.instance_type,
            ZONE: c.zone,
            "<node>": f"new-{i}",
        }
        out.update({k.split("/", 1)[1]: labels for k in c.pods})
    for name, pods in p.existing_nodes.items():
        out.update({k.split("/", 1)[1]: {**nodes.get(name, {}), "<node>": name} for k in pods})
    return out


def _bound_domains(objects: list[dict[str, Any]], key: str) -> list[str | None]:
    """The ``key`` label of the node of each running pod of the spread group (labelled test=test), as ExpectSkew counts."""
    nodes = {o["metadata"]["name"]: o["metadata"]["labels"] for o in objects if o["kind"] == "Node"}
    return [
        nodes[o["spec"]["nodeName"]].get(key)
        for o in objects
        if o["kind"] == "Pod" and o["spec"].get("nodeName") and o["metadata"]["labels"].get("test") == "test"
    ]


def check(p: Plan, objects: list[dict[str, Any]], expect: Expect) -> None:
    placed = node_labels(p, objects)
    unschedulable = {k.split("/", 1)[1] for k in p.unschedulable}
    for name in expect.scheduled:
        assert name in placed, f"{name} not scheduled: {p.unschedulable.get('default/' + name)}"
        for key, value in expect.labels.items():
            assert key in placed[name], f"the plan does not tell {key} of {name}'s node"
            assert placed[name][key] == value, f"{name}: {key}={placed[name][key]}, expected {value}"
    for name in expect.unschedulable:
        assert name in unschedulable, f"{name} expected unschedulable, got {placed.get(name, 'dropped')}"
    if expect.new_nodes is not None:
        assert len(p.node_claims) == expect.new_nodes, p.to_contract()
    if expect.same_node:
        assert len({placed[n]["<node>"] for n in expect.same_node}) == 1, p.to_contract()
    if expect.apart:
        assert len({placed[n]["<node>"] for n in expect.apart}) == len(expect.apart), p.to_contract()
    if expect.skew is not None:
        key, counts = expect.skew
        domains = [placed[n].get(key if key != HOSTNAME else "<node>") for n in placed if n.startswith("s-")]
        domains += _bound_domains(objects, key)
        assert sorted(domains.count(d) for d in set(domains)) == sorted(counts), p.to_contract()
    for name, node in expect.on_node.items():
        assert placed[name]["<node>"] == node, f"{name} on {placed[name]['<node>']}, expected {node}"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(case: Case) -> None:
    expect = case.ours if case.deliberate_difference else case.expect
    assert expect is not None
    check(plan(case.objects), case.objects, expect)


def test_the_suite_covers_upstream() -> None:
    assert len(CASES) >= 60
    assert len({c.name for c in CASES}) == len(CASES)
    assert all(c.upstream[0].startswith("pkg/") and c.upstream[1] for c in CASES)
    assert all(c.expect.scheduled or c.expect.unschedulable for c in CASES)


@pytest.mark.parametrize("case", [c for c in CASES if c.deliberate_difference], ids=lambda c: c.name)
def test_deliberate_differences_are_documented(case: Case) -> None:
    assert case.ours is not None and case.ours != case.expect
    assert case.name in DOCS.read_text()
