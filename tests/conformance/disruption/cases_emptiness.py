"""Cases from Karpenter's emptiness_test.go (Emptiness)."""

from __future__ import annotations

from tests.unit.disruption_fixtures import NOW, annotated, owned_by, pending, pool, running, terminating

from .model import EMPTINESS, Case, Expect, c5, m5, world

WHEN_EMPTY = {"consolidationPolicy": "WhenEmpty"}


def _ten_empty(budget: str) -> list[dict]:
    return world(*(c5(f"n{i}") for i in range(10)), disruption={"budgets": [{"nodes": budget}]})


def _two_pools(budget: str) -> list[dict]:
    pools = [pool(p, disruption={"budgets": [{"nodes": budget}]}) for p in ("a", "b")]
    return world(*(c5(f"{p}{i}", nodepool=p) for p in "ab" for i in range(5)), pools=pools)


CASES = [
    Case(
        "emptiness-delete-empty",
        (EMPTINESS, "Emptiness/Emptiness: can delete empty nodes"),
        world(c5("a"), disruption=WHEN_EMPTY),
        Expect(disrupted={"a": "Empty"}),
    ),
    Case(
        "emptiness-do-not-disrupt-node",
        (EMPTINESS, "Emptiness/Emptiness: should ignore nodes with the karpenter.sh/do-not-disrupt annotation"),
        world(annotated(c5("a"), "true"), disruption=WHEN_EMPTY),
        Expect(kept=("a",), count=0),
    ),
    Case(
        "emptiness-do-not-disrupt-false",
        (
            EMPTINESS,
            "Emptiness/Emptiness: should delete nodes with the karpenter.sh/do-not-disrupt annotation set to false",
        ),
        world(annotated(c5("a"), "false"), disruption=WHEN_EMPTY),
        Expect(disrupted={"a": "Empty"}),
    ),
    Case(
        "emptiness-ignore-nodes-with-pods",
        (EMPTINESS, "Emptiness/Emptiness: should ignore nodes that have pods"),
        world(c5("a"), running("web-0", "a"), disruption=WHEN_EMPTY),
        Expect(kept=("a",), count=0),
    ),
    Case(
        "emptiness-not-consolidatable-yet",
        (EMPTINESS, "Emptiness/Emptiness: should ignore nodes without the consolidatable status condition"),
        world(c5("a"), disruption=WHEN_EMPTY | {"consolidateAfter": "10m"}),
        Expect(kept=("a",), count=0),
        run={"last_change": {"a": NOW - 60}},
    ),
    Case(
        "emptiness-multiple",
        (EMPTINESS, "Emptiness: can delete multiple empty nodes"),
        world(c5("a"), c5("b"), disruption=WHEN_EMPTY),
        Expect(disrupted={"a": "Empty", "b": "Empty"}),
    ),
    Case(
        "emptiness-pending-pod-needs-the-node",
        (EMPTINESS, "Emptiness: considers pending pods when consolidating"),
        # the pending pod fits only on this node's free room: replacing it by a c5.xlarge would strand it
        world(m5("big"), running("small-0", "big"), pending("huge-0", cpu="6")),
        Expect(kept=("big",), count=0),
    ),
    Case(
        "emptiness-daemonset-pod-is-empty",
        (EMPTINESS, "Emptiness: will consider a node with a DaemonSet pod as empty"),
        world(c5("a"), owned_by(running("agent-0", "a"), "DaemonSet"), disruption=WHEN_EMPTY),
        Expect(disrupted={"a": "Empty"}),
    ),
    Case(
        "emptiness-terminating-deployment-pods-are-empty",
        (EMPTINESS, "Emptiness: will consider a node with terminating Deployment pods as empty"),
        world(c5("a"), *(terminating(running(f"web-{i}", "a")) for i in range(3)), disruption=WHEN_EMPTY),
        Expect(disrupted={"a": "Empty"}),
    ),
    Case(
        "emptiness-terminating-statefulset-pod-not-empty",
        (EMPTINESS, "Emptiness: will not consider a node with a terminating StatefulSet pod as empty"),
        world(c5("a"), terminating(owned_by(running("db-0", "a"), "StatefulSet")), disruption=WHEN_EMPTY),
        Expect(kept=("a",), count=0),
    ),
    Case(
        "emptiness-wait-for-consolidate-after",
        (EMPTINESS, "Emptiness: should wait for the node TTL for empty nodes before consolidating"),
        world(c5("a"), c5("b"), disruption={"consolidateAfter": "30s"}),
        Expect(disrupted={"b": "Empty"}, kept=("a",)),
        run={"last_change": {"a": NOW - 10, "b": NOW - 31}},
    ),
    Case(
        "emptiness-budget-all",
        (EMPTINESS, "Emptiness/Budgets: should allow all empty nodes to be disrupted"),
        _ten_empty("100%"),
        Expect(count=10),
    ),
    Case(
        "emptiness-budget-none",
        (EMPTINESS, "Emptiness/Budgets: should allow no empty nodes to be disrupted"),
        _ten_empty("0%"),
        Expect(count=0),
    ),
    Case(
        "emptiness-budget-three",
        (EMPTINESS, "Emptiness/Budgets: should only allow 3 empty nodes to be disrupted"),
        _ten_empty("30%"),
        Expect(count=3),
    ),
    Case(
        "emptiness-budget-two-per-pool",
        (EMPTINESS, "Emptiness/Budgets: should allow 2 nodes from each nodePool to be deleted"),
        _two_pools("2"),
        Expect(count_by_pool={"a": 2, "b": 2}),
    ),
    Case(
        "emptiness-budget-all-per-pool",
        (EMPTINESS, "Emptiness/Budgets: should allow all nodes from each nodePool to be deleted"),
        _two_pools("100%"),
        Expect(count_by_pool={"a": 5, "b": 5}),
    ),
]
