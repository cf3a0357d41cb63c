"""Cases from Karpenter's consolidation_test.go (Consolidation)."""

from __future__ import annotations

from typing import Any

from hyperpod_autoscaler.domain.disruption import DisruptionSettings

from tests.unit.disruption_fixtures import (
    NOW,
    annotated,
    node,
    not_ready,
    pdb,
    pending,
    pool,
    running,
    started,
)
from tests.unit.engine_fixtures import nodeclass

from .model import CONSOLIDATION, Case, Expect, c5, m5, world

WHEN_EMPTY = {"consolidationPolicy": "WhenEmpty"}


def _loaded(n: int, budget: str) -> list[dict]:
    """``n`` c5.xlarge with one 1-CPU pod each: any of them can go, its pod fits on the others."""
    nodes = [c5(f"n{i}") for i in range(n)]
    pods = [running(f"web-{i}", f"n{i}") for i in range(n)]
    return world(*nodes, *pods, disruption={"budgets": [{"nodes": budget}]})


def _loaded_pools(budget: str) -> list[dict]:
    pools = [pool(p, disruption={"budgets": [{"nodes": budget}]}) for p in ("a", "b")]
    nodes = [c5(f"{p}{i}", nodepool=p) for p in "ab" for i in range(4)]
    pods = [running(f"web-{p}{i}", f"{p}{i}") for p in "ab" for i in range(4)]
    return world(*nodes, *pods, pools=pools)


def _pair(*pods: dict, **pool_kw: Any) -> list[dict]:
    """Nodes a and b (c5.xlarge), ``pods`` plus one pod on b: a's pods fit on b, and b's on a."""
    return world(c5("a"), c5("b"), running("other-0", "b"), *pods, **pool_kw)


CASES = [
    Case(
        "consolidation-disabled-when-empty",
        (
            CONSOLIDATION,
            "Consolidation/Events: should fire an event for ConsolidationDisabled when the NodePool has "
            "consolidation set to WhenEmpty",
        ),
        world(m5("a"), running("web-0", "a"), disruption=WHEN_EMPTY),
        Expect(kept=("a",), count=0),
    ),
    Case(
        "consolidation-disabled-never",
        (
            CONSOLIDATION,
            "Consolidation/Events: should fire an event for ConsolidationDisabled when the NodePool has "
            "consolidateAfter set to 'Never'",
        ),
        world(m5("a"), running("web-0", "a"), disruption={"consolidateAfter": "Never"}),
        Expect(kept=("a",), count=0),
    ),
    Case(
        "consolidation-budget-multi-node-three",
        (
            CONSOLIDATION,
            "Consolidation/Budgets: should only allow 3 nodes to be deleted in multi node consolidation delete",
        ),
        _loaded(10, "30%"),
        Expect(count=3),
    ),
    Case(
        "consolidation-budget-single-node-one",
        (
            CONSOLIDATION,
            "Consolidation/Budgets: should only allow 3 nodes to be deleted in single node consolidation "
            "delete (budget of 1)",
        ),
        _loaded(3, "1"),
        Expect(count=1),
    ),
    Case(
        "consolidation-budget-ten-percent",
        (
            CONSOLIDATION,
            "Consolidation/Budgets: should only allow 3 nodes to be deleted in multi node consolidation "
            "delete (10% of 4 rounds up to 1)",
        ),
        _loaded(4, "10%"),
        Expect(count=1),
    ),
    Case(
        "consolidation-budget-two-per-pool",
        (CONSOLIDATION, "Consolidation/Budgets: should allow 2 nodes from each nodePool to be deleted"),
        _loaded_pools("2"),
        Expect(count_by_pool={"a": 2, "b": 2}),
    ),
    Case(
        "consolidation-budget-none-per-pool",
        (CONSOLIDATION, "Consolidation/Budgets: should allow no nodes from each nodePool to be deleted"),
        _loaded_pools("0"),
        Expect(count=0),
    ),
    Case(
        "consolidation-replace-more-expensive",
        (
            CONSOLIDATION,
            "Consolidation/Replace: won't replace on-demand node if on-demand replacement is more expensive",
        ),
        world(c5("a"), running("web-0", "a", cpu="3")),
        Expect(kept=("a",), count=0),
    ),
    Case(
        "consolidation-replace-cheaper",
        (CONSOLIDATION, "Consolidation/Replace: can replace node"),
        world(m5("a"), running("web-0", "a", cpu="2")),
        Expect(disrupted={"a": "Underutilized"}, replaced=True),
    ),
    Case(
        "consolidation-delete",
        (CONSOLIDATION, "Consolidation/Delete: can delete nodes"),
        _pair(running("web-0", "a")),
        Expect(count=1, replaced=False),
    ),
    Case(
        "consolidation-pod-churn",
        (CONSOLIDATION, "Consolidation/Delete: does not delete nodes with pod churn, deletes nodes without pod churn"),
        # two empty nodes; a pod has just been bound to a (the churn): b goes as empty, a stays
        world(c5("a"), c5("b"), running("web-0", "a"), disruption={"consolidateAfter": "1m"}),
        Expect(disrupted={"b": "Empty"}, kept=("a",)),
        run={"last_change": {"a": NOW - 10, "b": NOW - 120}},
    ),
    Case(
        "consolidation-non-karpenter-capacity",
        (CONSOLIDATION, "Consolidation/Delete: can delete nodes, when non-Karpenter capacity can fit pods"),
        # cpu-m5-az2 is in no HyperpodNodeClass: the node is capacity no NodePool manages
        [*world(c5("a"), running("web-0", "a")), node("unmanaged", "g5-12x-az1", cpu="8")],
        Expect(disrupted={"a": "Underutilized"}, kept=("unmanaged",)),
    ),
    Case(
        "consolidation-considers-pdb",
        (CONSOLIDATION, "Consolidation/Delete: can delete nodes, considers PDB"),
        world(
            c5("a"),
            c5("b"),
            c5("c"),
            running("web-0", "a", labels={"app": "web"}),
            running("web-1", "b", labels={"app": "web"}),
            running("db-0", "c", labels={"app": "db"}),
            pdb("web", "web", max_unavailable=0),
        ),
        Expect(disrupted={"c": "Underutilized"}, kept=("a", "b")),
    ),
    Case(
        "consolidation-do-not-disrupt-node",
        (
            CONSOLIDATION,
            "Consolidation/Delete: can delete nodes, considers karpenter.sh/do-not-disrupt set to true on nodes",
        ),
        world(annotated(c5("a"), "true"), c5("b"), running("web-0", "a"), running("web-1", "b")),
        Expect(disrupted={"b": "Underutilized"}, kept=("a",)),
    ),
    Case(
        "consolidation-do-not-disrupt-pod",
        (
            CONSOLIDATION,
            "Consolidation/Delete: can delete nodes, considers karpenter.sh/do-not-disrupt set to true on pods",
        ),
        world(c5("a"), c5("b"), annotated(running("web-0", "a"), "true"), running("web-1", "b")),
        Expect(disrupted={"b": "Underutilized"}, kept=("a",)),
    ),
    Case(
        "consolidation-do-not-disrupt-duration-active",
        (
            CONSOLIDATION,
            "Consolidation/Delete: does not consolidate nodes with pods that have a duration-based "
            "do-not-disrupt annotation that is still active",
        ),
        # created two days ago, started 10 minutes ago: the hour counts from the start
        _pair(annotated(started(running("web-0", "a"), 600), "1h"), disruption={"budgets": [{"nodes": "1"}]}),
        Expect(kept=("a",)),
    ),
    Case(
        "consolidation-do-not-disrupt-duration-expired",
        (
            CONSOLIDATION,
            "Consolidation/Delete: can consolidate nodes after duration-based do-not-disrupt annotation expires",
        ),
        world(
            c5("a"),
            c5("b"),
            annotated(started(running("web-0", "a"), 2 * 3600), "1h"),
            annotated(running("web-1", "b"), "true"),
        ),
        Expect(disrupted={"a": "Underutilized"}, kept=("b",)),
    ),
    Case(
        "consolidation-do-not-disrupt-invalid",
        (
            CONSOLIDATION,
            "Consolidation/Delete: can delete nodes, considers invalid do-not-disrupt annotation format as "
            "not blocking",
        ),
        world(
            c5("a"),
            c5("b"),
            annotated(running("web-0", "a"), "invalid"),
            annotated(running("web-1", "b"), "true"),
        ),
        Expect(disrupted={"a": "Underutilized"}, kept=("b",)),
    ),
    Case(
        "consolidation-pod-without-owner",
        (CONSOLIDATION, "Consolidation/Delete: can delete nodes, evicts pods without an ownerRef"),
        world(
            c5("a"),
            c5("b"),
            {**running("bare-0", "a"), "metadata": {"name": "bare-0", "namespace": "default", "labels": {}}},
            annotated(running("web-1", "b"), "true"),
        ),
        Expect(disrupted={"a": "Underutilized"}, kept=("b",)),
        deliberate_difference="a pod without a controller would not come back after eviction: we keep its node "
        "(consolidation only; expiry still drains it)",
        ours=Expect(kept=("a", "b"), count=0),
    ),
    Case(
        "consolidation-uninitialized-destination",
        (
            CONSOLIDATION,
            "Consolidation/Delete: won't delete node if it would require pods to schedule on an uninitialized node",
        ),
        world(c5("a"), running("web-0", "a"), not_ready(c5("b"))),
        Expect(kept=("a",), count=0),
    ),
    Case(
        "consolidation-destination-in-consolidate-after",
        (
            CONSOLIDATION,
            "Consolidation/Delete: should not consolidate pods onto a destination node that is under its "
            "consolidateAfter window",
        ),
        world(c5("a"), c5("b"), running("web-0", "a"), running("web-1", "b"), disruption={"consolidateAfter": "1m"}),
        Expect(kept=("a", "b"), count=0),
        run={"last_change": {"a": NOW - 120, "b": NOW - 10}},
    ),
    Case(
        "consolidation-destination-after-window",
        (
            CONSOLIDATION,
            "Consolidation/Delete: should not consolidate pods onto a destination node that is under its "
            "consolidateAfter window (once the window has expired)",
        ),
        world(c5("a"), c5("b"), running("web-0", "a"), running("web-1", "b"), disruption={"consolidateAfter": "1m"}),
        Expect(count=1),
        run={"last_change": {"a": NOW - 120, "b": NOW - 120}},
    ),
    Case(
        "consolidation-destination-never",
        (
            CONSOLIDATION,
            "Consolidation/Delete: should consolidate pods onto a destination node with consolidateAfter set to Never",
        ),
        world(
            c5("a"),
            running("web-0", "a"),
            c5("dest", nodepool="keep"),
            pools=[pool(), pool("keep", disruption={"consolidateAfter": "Never"})],
        ),
        Expect(disrupted={"a": "Underutilized"}, kept=("dest",)),
        run={"last_change": {"dest": NOW - 1}},
    ),
    Case(
        "consolidation-replace-during-consolidate-after-of-others",
        (
            CONSOLIDATION,
            "Consolidation/Delete: should replace a node with a cheaper one even when consolidateAfter has not expired",
        ),
        world(m5("a"), running("web-0", "a", cpu="2"), disruption={"consolidateAfter": "1m"}),
        Expect(disrupted={"a": "Underutilized"}, replaced=True),
        run={"last_change": {"a": NOW - 120}},
    ),
    Case(
        "consolidation-permanently-pending-pod",
        (CONSOLIDATION, "Consolidation/Delete: can delete nodes with a permanently pending pod"),
        _pair(running("web-0", "a"), pending("huge-0", cpu="500")),
        Expect(count=1),
    ),
    Case(
        "consolidation-no-pod-goes-pending",
        (CONSOLIDATION, "Consolidation/Delete: won't delete nodes if it would make a non-pending pod go pending"),
        world(c5("a"), c5("b"), running("web-0", "a", cpu="3"), running("web-1", "b", cpu="3")),
        Expect(kept=("a", "b"), count=0),
    ),
    Case(
        "consolidation-invalid-nodepool",
        (CONSOLIDATION, "Consolidation/Delete: can delete nodes while an invalid node pool exists"),
        world(
            c5("a"),
            running("web-0", "a"),
            c5("b"),
            running("web-1", "b"),
            pools=[pool(), pool("broken", nodeclass_name="missing")],
        ),
        Expect(count=1),
    ),
    Case(
        "consolidation-merge-three-into-one",
        (CONSOLIDATION, "Consolidation/Multi-NodeClaim: can merge 3 nodes into 1"),
        world(
            m5("a"),
            m5("b", "cpu-m5-az2"),
            m5("c"),
            *(running(f"web-{i}", n) for i, n in enumerate("abc")),
            disruption={"budgets": [{"nodes": "100%"}]},
        ),
        Expect(disrupted={"a": "Underutilized", "b": "Underutilized", "c": "Underutilized"}, replaced=True),
    ),
    Case(
        "consolidation-anti-affinity",
        (
            CONSOLIDATION,
            "Consolidation/Topology Consideration: won't delete node if it would violate pod anti-affinity",
        ),
        world(
            c5("a"),
            c5("b"),
            *(
                running(
                    f"web-{n}",
                    n,
                    labels={"app": "web"},
                    affinity={
                        "podAntiAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": [
                                {
                                    "labelSelector": {"matchLabels": {"app": "web"}},
                                    "topologyKey": "kubernetes.io/hostname",
                                }
                            ]
                        }
                    },
                )
                for n in "ab"
            ),
        ),
        Expect(kept=("a", "b"), count=0),
    ),
    Case(
        "consolidation-launched-for-deleting-node",
        (
            CONSOLIDATION,
            "Consolidation/Parallelization: should not consolidate a node that is launched for pods on a deleting node",
        ),
        world(c5("old"), c5("new"), running("web-0", "old"), running("web-1", "new")),
        Expect(kept=("old", "new"), count=0),
        run={"busy": {"old"}, "protected": {"new"}},
    ),
    Case(
        "consolidation-replace-small-saving",
        (CONSOLIDATION, "Consolidation/Replace: can replace node (a replacement saving less than our minimum)"),
        [
            nodeclass(groups=["auto-g6-az1", "auto-g6-4xaz2"]),
            pool(),
            node("big", "auto-g6-4xaz2", cpu="15", memory="60Gi", gpu=1, nodepool="default"),
            running("infer-0", "big", cpu="2", gpu=1),
        ],
        Expect(disrupted={"big": "Underutilized"}, replaced=True),
        # g6.4xlarge 1.654/h -> g6.xlarge 1.006/h saves 39%: a minimum of 50% refuses it
        run={"settings": DisruptionSettings(min_savings_fraction=0.5, simulation_budget_seconds=0.05)},
        deliberate_difference="a replacement must save min_savings_fraction of the price (default 20%); upstream "
        "replaces for any saving, which churns GPU nodes (boot, image pulls, a drain) for a few percent",
        ours=Expect(kept=("big",), count=0),
    ),
]
