"""Cases from Karpenter's drift tests (disruption/drift_test.go; nodeclaim/disruption/drift_test.go)."""

from __future__ import annotations

from typing import Any

from tests.unit.disruption_fixtures import annotated, node, pool, running, started

from .model import DRIFT, NODECLAIM_DRIFT, Case, Expect, c5, m5, world

ONLY_C5 = [{"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["ml.c5.xlarge"]}]
ONLY_M5 = [{"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["ml.m5.2xlarge"]}]


def drifted(*objects: dict[str, Any], budget: str = "100%", **pool_kw: Any) -> list[dict[str, Any]]:
    """The m5.2xlarge nodes among ``objects`` have drifted: the NodePool now asks for ml.c5.xlarge only."""
    return world(*objects, requirements=ONLY_C5, disruption={"budgets": [{"nodes": budget}]} | pool_kw)


CASES = [
    Case(
        "drift-continue-past-unreschedulable",
        (DRIFT, "Drift/Drift: should continue to the next drifted node if the first cannot reschedule all pods"),
        drifted(m5("a", cpu="64"), running("huge-0", "a", cpu="60"), m5("b"), running("web-0", "b")),
        Expect(disrupted={"b": "Drifted"}, kept=("a",)),
    ),
    Case(
        "drift-do-not-disrupt-node",
        (DRIFT, "Drift/Drift: should ignore nodes with the karpenter.sh/do-not-disrupt annotation set to true"),
        drifted(annotated(m5("a"), "true")),
        Expect(kept=("a",), count=0),
    ),
    Case(
        "drift-do-not-disrupt-false",
        (
            DRIFT,
            "Drift/Drift: should delete drifted nodes with the karpenter.sh/do-not-disrupt annotation set to false",
        ),
        drifted(annotated(m5("a"), "false")),
        Expect(disrupted={"a": "Drifted"}),
    ),
    Case(
        "drift-do-not-disrupt-pod",
        (
            DRIFT,
            "Drift/Drift: should not create replacements for drifted nodes that have pods with the "
            "karpenter.sh/do-not-disrupt annotation set to true",
        ),
        drifted(m5("a"), annotated(running("web-0", "a"), "true")),
        Expect(kept=("a",), count=0),
    ),
    Case(
        "drift-do-not-disrupt-duration-active",
        (
            DRIFT,
            "Drift/Drift: should not drift nodes with pods that have a duration-based do-not-disrupt annotation "
            "that is still active",
        ),
        drifted(m5("a"), annotated(started(running("web-0", "a"), 600), "1h")),
        Expect(kept=("a",), count=0),
    ),
    Case(
        "drift-do-not-disrupt-invalid",
        (DRIFT, "Drift/Drift: should drift nodes with pods that have an invalid do-not-disrupt annotation format"),
        drifted(m5("a"), annotated(running("web-0", "a"), "not-a-duration")),
        Expect(disrupted={"a": "Drifted"}),
    ),
    Case(
        "drift-do-not-disrupt-longest-duration",
        (
            DRIFT,
            "Drift/Drift: should not drift nodes until the longest duration-based do-not-disrupt grace period "
            "expires across multiple pods",
        ),
        drifted(
            m5("a"),
            annotated(started(running("web-0", "a"), 2 * 3600), "1h"),
            annotated(started(running("web-1", "a"), 2 * 3600), "3h"),
        ),
        Expect(kept=("a",), count=0),
    ),
    Case(
        "drift-replace",
        (DRIFT, "Drift/Drift: should replace drifted nodes"),
        drifted(m5("a"), running("web-0", "a")),
        Expect(disrupted={"a": "Drifted"}, replaced=True),
    ),
    Case(
        "drift-delete",
        (DRIFT, "Drift/Drift: should delete drifted nodes"),
        drifted(m5("a"), running("web-0", "a"), c5("b")),
        Expect(disrupted={"a": "Drifted"}, kept=("b",), replaced=False),
    ),
    Case(
        "drift-empty-consolidation-disabled",
        (DRIFT, "Drift/Drift: should delete drifted nodes when they are empty and consolidation is disabled"),
        drifted(m5("a"), consolidateAfter="Never"),
        Expect(disrupted={"a": "Drifted"}),
    ),
    Case(
        "drift-empty-first",
        (DRIFT, "Drift/Drift: should drift empty nodes before non-empty nodes"),
        drifted(m5("a"), running("web-0", "a"), m5("z"), budget="1"),
        Expect(disrupted={"z": "Drifted"}, kept=("a",)),
    ),
    Case(
        "drift-one-non-empty-at-a-time",
        (DRIFT, "Drift/Drift: should drift one non-empty node at a time, starting with the earliest drift"),
        drifted(m5("a"), running("web-0", "a"), m5("b"), running("web-1", "b")),
        Expect(count=1),
    ),
    Case(
        "drift-replace-with-several",
        (DRIFT, "Drift/Drift: can replace drifted nodes with multiple nodes"),
        drifted(m5("a"), *(running(f"web-{i}", "a", cpu="2") for i in range(3))),
        Expect(disrupted={"a": "Drifted"}, replaced=True),
    ),
    Case(
        "drift-budget-three",
        (DRIFT, "Drift/Budgets: should only consider 3 nodes allowed to be disrupted because of budgets"),
        drifted(*(m5(f"n{i}") for i in range(10)), budget="30%"),
        Expect(count=3),
    ),
    Case(
        "drift-budget-commands-in-progress",
        (DRIFT, "Drift/Budgets: should disrupt 3 nodes, taking into account commands in progress"),
        drifted(*(m5(f"n{i}") for i in range(5)), budget="3"),
        Expect(count=2, kept=("n0",)),
        run={"busy": {"n0"}},
    ),
    Case(
        "drift-budget-per-pool",
        (DRIFT, "Drift/Budgets: should respect budgets for multiple nodepools"),
        world(
            *(m5(f"{p}{i}", nodepool=p) for p in "ab" for i in range(4)),
            pools=[pool(p, requirements=ONLY_C5, disruption={"budgets": [{"nodes": "1"}]}) for p in "ab"],
        ),
        Expect(count_by_pool={"a": 1, "b": 1}),
    ),
    Case(
        "drift-requirement",
        (
            NODECLAIM_DRIFT,
            "Drift/NodeRequirement Drift: should return drifted only on NodeClaims that are drifted from "
            "an updated nodePool",
        ),
        world(
            m5("a"),
            c5("b"),
            c5("c"),
            running("web-0", "a"),
            running("web-1", "b"),
            running("web-2", "c"),
            requirements=ONLY_C5,
            disruption={"consolidateAfter": "Never"},
        ),
        Expect(disrupted={"a": "Drifted"}, kept=("b", "c")),
    ),
    Case(
        "drift-static-taint",
        (NODECLAIM_DRIFT, "Drift/NodePool Static Drift: should return drifted if the taints changed"),
        world(
            m5("a"),
            running("web-0", "a", tolerations=[{"key": "team", "operator": "Exists"}]),
            taints=[{"key": "team", "value": "ml", "effect": "NoSchedule"}],
            disruption={"consolidateAfter": "Never"},
        ),
        Expect(disrupted={"a": "Drifted"}),
    ),
    Case(
        "drift-static-label",
        (NODECLAIM_DRIFT, "Drift/NodePool Static Drift: should return drifted if the labels changed"),
        world(
            node("a", nodepool="default", labels={"team": "old"}),
            running("web-0", "a"),
            labels={"team": "new"},
            disruption={"consolidateAfter": "Never"},
        ),
        Expect(disrupted={"a": "Drifted"}),
    ),
    Case(
        "drift-no-nodepool",
        (NODECLAIM_DRIFT, "Drift: should not detect drift if the nodePool does not exist"),
        world(m5("a", nodepool="gone"), running("web-0", "a"), requirements=ONLY_C5),
        Expect(kept=("a",), count=0),
    ),
    Case(
        "drift-unlabelled-fresh-node",
        (
            NODECLAIM_DRIFT,
            "Drift: should not detect drift if the nodePool does not exist (a node not yet labelled "
            "with its NodePool is judged against none)",
        ),
        # two NodePools on one node class; the fresh node came up for "gpu-free" (m5 only) but has no label yet
        world(
            node("fresh", "cpu-m5-az1", age=60),
            running("web-0", "fresh", cpu="2"),
            pools=[
                pool("default", weight=10, requirements=ONLY_C5),
                pool("wide", requirements=ONLY_M5),
            ],
        ),
        Expect(kept=("fresh",), count=0),
    ),
]
