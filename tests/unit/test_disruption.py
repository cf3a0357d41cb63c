"""Every disruption rule and guard, table-driven where the shape allows (Karpenter's semantics, our stricter guards)."""

from __future__ import annotations

from typing import Any

import pytest
from hyperpod_autoscaler.domain.catalog import Catalog
from hyperpod_autoscaler.domain.cron import Cron, window_active
from hyperpod_autoscaler.domain.disruption import DisruptionInput, DisruptionSettings, _Pass, plan_disruptions
from hyperpod_autoscaler.domain.objects import parse_objects

from .disruption_fixtures import HOUR, M5, NOW, aged, base, disrupt, node, pool, reasons, running, view
from .engine_fixtures import nodeclass

# --- empty ---------------------------------------------------------------------------------------------------------------


def test_empty_node_is_deleted_and_daemonset_pods_do_not_count() -> None:
    ds = running("ds-a", "a")
    ds["metadata"]["ownerReferences"][0]["kind"] = "DaemonSet"
    plan = disrupt([*base(), node("a"), ds])
    assert reasons(plan) == [("Empty", ["a"], None)]


def test_consolidate_after_counts_from_the_last_pod_change() -> None:
    objs = [*base(disruption={"consolidateAfter": "10m"}), node("a")]
    assert disrupt(objs, last_change={"a": NOW - 300}).decisions == []
    assert "consolidateAfter" in disrupt(objs, last_change={"a": NOW - 300}).kept["a"]
    assert reasons(disrupt(objs, last_change={"a": NOW - 601})) == [("Empty", ["a"], None)]


def test_consolidate_after_never() -> None:
    plan = disrupt([*base(disruption={"consolidateAfter": "Never"}), node("a")])
    assert plan.decisions == [] and plan.kept["a"] == "consolidateAfter: Never"


# --- budgets -------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("budgets", "expected"),
    [
        ([{"nodes": "1"}], 1),
        ([{"nodes": "50%"}], 2),  # ceil(50% of 3)
        ([{"nodes": "10%"}], 1),  # ceil(0.3)
        ([{"nodes": "0"}], 0),
        ([{"nodes": "3"}, {"nodes": "1"}], 1),  # the most restrictive wins
        ([{"nodes": "0", "reasons": ["Underutilized"]}], 3),  # a budget for another reason does not apply
        ([{"nodes": "0", "reasons": ["Empty"]}], 0),
    ],
)
def test_budgets_limit_empty_nodes(budgets: list[dict[str, Any]], expected: int) -> None:
    plan = disrupt([*base(disruption={"budgets": budgets}), node("a"), node("b"), node("c")])
    assert sum(len(d.nodes) for d in plan.decisions) == expected


def test_budget_cron_window() -> None:
    # 09:00-17:00 UTC on weekdays nothing may go; NOW is 2027-01-15 08:00 UTC, a Friday
    budgets = [{"nodes": "0", "schedule": "0 9 * * mon-fri", "duration": "8h"}]
    objs = [*base(disruption={"budgets": budgets}), node("a")]
    assert len(disrupt(objs).decisions) == 1, "before the window opens"
    assert disrupt(objs, now=NOW + 2 * HOUR).decisions == [], "inside the window"
    assert len(disrupt(objs, now=NOW + 10 * HOUR).decisions) == 1, "after it closed"


def test_not_ready_and_busy_nodes_count_against_the_budget() -> None:
    objs = [*base(disruption={"budgets": [{"nodes": "2"}]}), node("a"), node("b"), node("c", ready=False)]
    plan = disrupt(objs, busy={"b"})
    assert plan.allowed["default"]["Empty"] == 0
    assert plan.decisions == [] and plan.kept["b"] == "already being disrupted"


def test_cron_parser() -> None:
    c = Cron.parse("*/15 9-17 * * 1-5")
    assert 0 in c.minutes and 45 in c.minutes and 10 not in c.minutes and c.weekdays == frozenset({1, 2, 3, 4, 5})
    assert Cron.parse("@daily") == Cron.parse("0 0 * * *")
    assert window_active("@daily", 3600, NOW - 8 * HOUR + 30 * 60)
    with pytest.raises(ValueError):
        Cron.parse("61 * * * *")


# --- guards --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("objects", "why"),
    [
        (
            [node("a", labels={}), running("train-0", "a", annotations={"karpenter.sh/do-not-disrupt": "true"})],
            "do-not-disrupt",
        ),
        (
            [
                {**node("a")}
                | {"metadata": {**node("a")["metadata"], "annotations": {"karpenter.sh/do-not-disrupt": "true"}}}
            ],
            "node is annotated",
        ),
        (
            [node("a"), {**running("bare", "a"), "metadata": {"name": "bare", "namespace": "default", "labels": {}}}],
            "no controller",
        ),
        (
            [node("a", labels={"sagemaker.amazonaws.com/node-health-status": "UnschedulablePendingReplacement"})],
            "HyperPod is repairing",
        ),
    ],
)
def test_guards_keep_the_node(objects: list[dict[str, Any]], why: str) -> None:
    plan = disrupt([*base(), node("b"), *objects])
    assert "a" not in [n for d in plan.decisions for n in d.nodes]
    assert why in plan.kept["a"]


def test_do_not_disrupt_with_a_duration_expires() -> None:
    p = aged(running("warm", "a", annotations={"karpenter.sh/do-not-disrupt": "1h"}), 2 * HOUR)
    plan = disrupt([*base(), node("a"), node("b"), p])
    assert "a" in [n for d in plan.decisions for n in d.nodes]


def test_pdb_forbids_the_move() -> None:
    objs = [
        *base(),
        node("a"),
        node("b"),
        running("web-1", "a", labels={"app": "web"}),
        running("web-2", "b", labels={"app": "web"}),
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}},
        },
    ]
    plan = disrupt(objs)
    assert plan.decisions == []
    assert "PDB default/web allows 0" in plan.kept["a"]


def test_min_count_is_respected() -> None:
    plan = disrupt(
        [*base(disruption={"budgets": [{"nodes": "100%"}]}), node("a"), node("b")], min_counts={"cpu-m5-az1": 1}
    )
    assert sum(len(d.nodes) for d in plan.decisions) == 1
    assert any("MinCount" in why for why in plan.kept.values())


def test_when_empty_policy_keeps_nodes_with_pods() -> None:
    plan = disrupt([*base(disruption={"consolidationPolicy": "WhenEmpty"}), node("a"), node("b"), running("p", "a")])
    assert reasons(plan) == [("Empty", ["b"], None)]
    assert "WhenEmpty" in plan.kept["a"]


# --- consolidation -------------------------------------------------------------------------------------------------------


def test_underutilized_node_is_deleted_when_its_pods_fit_elsewhere() -> None:
    plan = disrupt([*base(requirements=M5), node("a"), node("b"), running("p1", "a"), running("p2", "b")])
    assert reasons(plan) in ([("Underutilized", ["a"], None)], [("Underutilized", ["b"], None)])


def test_multi_node_consolidation_replaces_several_nodes_with_one_cheaper() -> None:
    everything = {"budgets": [{"nodes": "100%"}]}
    objs = [
        *base(disruption=everything),
        node("a"),
        node("b", "cpu-m5-az2"),
        node("c"),
        *(running(f"p{i}", n) for i, n in enumerate("abc")),
    ]
    plan = disrupt(objs)
    # three m5.2xlarge (3 x 0.461/h) carrying 3 CPUs -> one c5.xlarge (0.204/h)
    assert reasons(plan) == [("Underutilized", ["a", "b", "c"], "ml.c5.xlarge")]
    assert plan.decisions[0].savings_per_hour == pytest.approx(3 * 0.461 - 0.204, abs=0.01)


def test_no_replacement_into_a_group_in_launch_backoff() -> None:
    everything = {"budgets": [{"nodes": "100%"}]}
    objs = [*base(disruption=everything), node("a"), node("b", "cpu-m5-az2"), node("c")]
    objs += [running(f"p{i}", n) for i, n in enumerate("abc")]
    plan = disrupt(objs, unavailable={"cpu-c5-az3": "InsufficientCapacity: 180s"})
    # the c5.xlarge group of the cheaper replacement just failed to launch: no decision may count on it
    assert all(d.replacement is None or d.replacement.instance_group != "cpu-c5-az3" for d in plan.decisions)
    assert disrupt(objs).decisions[0].replacement is not None, "without the backoff the c5 replacement is taken"


def test_never_replaced_by_the_same_instance_type() -> None:
    plan = disrupt([*base(requirements=M5), node("a"), running("p", "a", cpu="6")])
    assert plan.decisions == []
    assert "same instance type (ml.m5.2xlarge)" in plan.kept["a"]


def test_multi_node_never_replaced_by_the_type_of_a_node_it_removes() -> None:
    # Two g6.4xlarge with one GPU pod each, and one free GPU on a g6.48xlarge. Removing both and launching a new
    # g6.4xlarge for one of the pods saves exactly what deleting one of them does, at the price of a second eviction and
    # a launch (found by the 24-hour trace simulation: it churned like this every few minutes). Karpenter filters such
    # replacements out too (multi-node consolidation's filterOutSameInstanceType).
    gpu_groups = ["auto-g6-4xaz2", "g6-48x-az2"]
    objs = [
        nodeclass(groups=gpu_groups),
        pool(disruption={"budgets": [{"nodes": "100%"}]}),
        node("big", "g6-48x-az2", cpu="190", memory="700Gi", gpu=8),
        *(running(f"train-{i}", "big", gpu=1) for i in range(7)),
        node("a", "auto-g6-4xaz2", cpu="15", memory="60Gi", gpu=1),
        node("b", "auto-g6-4xaz2", cpu="15", memory="60Gi", gpu=1),
        running("infer-a", "a", gpu=1),
        running("infer-b", "b", gpu=1),
    ]
    plan = disrupt(objs)
    assert reasons(plan) in ([("Underutilized", ["a"], None)], [("Underutilized", ["b"], None)])


def test_a_pass_never_launches_the_type_of_a_node_it_removes() -> None:
    # Multi-node consolidation deletes the two g6.4xlarge (their pods take the two free GPUs of the g6.48xlarge); the
    # g5.12xlarge's single-node simulation then re-places those pods too and would replace it by a g6.4xlarge carrying one
    # of them: a g6.4xlarge removed and another launched in the same pass (the trace simulation counted these).
    objs = [
        nodeclass(groups=["auto-g6-4xaz2", "g6-48x-az2", "g5-12x-az1"]),
        pool(disruption={"budgets": [{"nodes": "100%"}]}),
        node("big", "g6-48x-az2", cpu="190", memory="700Gi", gpu=8),
        *(running(f"train-{i}", "big", gpu=1) for i in range(6)),
        node("a", "auto-g6-4xaz2", cpu="15", memory="60Gi", gpu=1),
        node("b", "auto-g6-4xaz2", cpu="15", memory="60Gi", gpu=1),
        node("c", "g5-12x-az1", cpu="47", memory="180Gi", gpu=4),
        running("infer-a", "a", cpu="12", gpu=1),
        running("infer-b", "b", cpu="12", gpu=1),
        running("infer-c", "c", cpu="12", gpu=1),
        running("side-c", "c", cpu="1"),
    ]
    plan = disrupt(objs)
    assert reasons(plan) == [("Underutilized", ["a", "b"], None)]
    assert "same instance type (ml.g6.4xlarge)" in plan.kept["c"]


def test_replacement_must_save_the_minimum_fraction() -> None:
    gpu_groups = ["auto-g6-az1", "auto-g6-4xaz2"]
    objs = [
        nodeclass(groups=gpu_groups),
        pool(),
        node("big", "auto-g6-4xaz2", cpu="15", memory="60Gi", gpu=1),
        running("infer", "big", cpu="2", gpu=1),
    ]
    plan = disrupt(objs)
    assert reasons(plan) == [("Underutilized", ["big"], "ml.g6.xlarge")]  # 1.654 -> 1.006: saves 39%
    strict = disrupt(objs, settings=DisruptionSettings(min_savings_fraction=0.5, simulation_budget_seconds=0.05))
    assert strict.decisions == [] and "would not save 50%" in strict.kept["big"]


def test_pods_that_fit_nowhere_keep_the_node() -> None:
    plan = disrupt(
        [*base(requirements=M5), node("a"), node("b"), running("p1", "a", cpu="7"), running("p2", "b", cpu="7")]
    )
    assert plan.decisions == []


# --- drift and expiry ----------------------------------------------------------------------------------------------------


def test_drift_when_the_group_leaves_the_node_class() -> None:
    objs = [
        nodeclass(groups=["cpu-m5-az2"]),
        pool(),
        node("a", "cpu-m5-az1", nodepool="default"),
        node("b", "cpu-m5-az2", nodepool="default"),
        running("p", "a"),
        running("q", "b", annotations={"karpenter.sh/do-not-disrupt": "true"}),
    ]
    plan = disrupt(objs)
    # a's group left the node class; its pod fits on b
    assert reasons(plan) == [("Drifted", ["a"], None)]
    assert "instance group cpu-m5-az1 is no longer in HyperpodNodeClass hp" in plan.decisions[0].message


def test_drift_when_requirements_change() -> None:
    objs = [
        *base(requirements=[{"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["ml.c5.xlarge"]}]),
        node("a", nodepool="default"),
        running("p", "a"),
    ]
    plan = disrupt(objs)
    assert reasons(plan) == [("Drifted", ["a"], "ml.c5.xlarge")]


def test_expiry_is_forceful() -> None:
    objs = [
        *base(expire="720h"),
        node("old", age=800 * HOUR),
        node("b"),
        running("train-0", "old", annotations={"karpenter.sh/do-not-disrupt": "true"}),
    ]
    plan = disrupt([*objs], now=NOW)
    assert ("Expired", ["old"], None) in reasons(plan) or any(
        d.reason == "Expired" and d.nodes == ["old"] for d in plan.decisions
    )
    assert plan.decisions[0].message.startswith("Expired")


def test_pods_are_not_moved_onto_a_dearer_empty_node() -> None:
    # The g5.12xlarge just lost its pods (its consolidateAfter has not passed). Deleting the g6.4xlarge by moving its pod
    # there "saves" 1.65/h but keeps a 7.09/h node that Empty consolidation would remove, and which single-node
    # consolidation then replaces by a g6.4xlarge again (the trace simulation saw this flap every few minutes).
    objs = [
        nodeclass(groups=["auto-g6-4xaz2", "g5-12x-az1"]),
        pool(disruption={"consolidateAfter": "10m", "budgets": [{"nodes": "100%"}]}),
        node("a", "auto-g6-4xaz2", cpu="15", memory="60Gi", gpu=1),
        node("idle", "g5-12x-az1", cpu="47", memory="180Gi", gpu=4),
        running("infer-a", "a", cpu="12", gpu=1),
    ]
    plan = disrupt(objs, last_change={"a": NOW - 3600, "idle": NOW - 60})
    assert plan.decisions == []
    assert "would keep the empty node(s) idle" in plan.kept["a"]
    later = disrupt(objs, last_change={"a": NOW - 3600, "idle": NOW - 601})
    assert ("Empty", ["idle"], None) in reasons(later)


def test_multi_node_move_never_pays_for_an_idle_node_with_another_nodes_saving() -> None:
    # Three g6.xlarge (1.006/h) with one GPU pod each; the g6.48xlarge has two free GPUs and a g6.4xlarge (1.654/h) just
    # lost its pods (its consolidateAfter has not passed). Deleting all three puts the third pod on the idle g6.4xlarge:
    # 3.02/h removed, 1.65/h kept, "45% saved" in total, but that pod moves from a 1.006/h node to a 1.654/h one, and once
    # consolidateAfter passes the g6.4xlarge carrying just it is replaced by a g6.xlarge again (the 24-hour trace
    # simulation's flaps). Deleting the two whose pods fit on the g6.48xlarge saves more and moves fewer pods.
    objs = [
        nodeclass(groups=["auto-g6-az1", "auto-g6-4xaz2", "g6-48x-az2"]),
        pool(disruption={"consolidateAfter": "10m", "budgets": [{"nodes": "100%"}]}),
        node("big", "g6-48x-az2", cpu="190", memory="700Gi", gpu=8),
        *(running(f"train-{i}", "big", gpu=1) for i in range(6)),
        node("idle", "auto-g6-4xaz2", cpu="15", memory="60Gi", gpu=1),
        *(node(n, "auto-g6-az1", cpu="3", memory="14Gi", gpu=1) for n in "abc"),
        *(running(f"infer-{n}", n, cpu="2", gpu=1) for n in "abc"),
    ]
    plan = disrupt(
        objs, last_change={"big": NOW - 3600, "idle": NOW - 60, "a": NOW - 3600, "b": NOW - 3600, "c": NOW - 3600}
    )
    assert reasons(plan) == [("Underutilized", ["a", "b"], None)]
    assert plan.decisions[0].savings_per_hour == pytest.approx(2 * 1.006, abs=0.01)
    assert "would keep the empty node(s) idle" in plan.kept["c"]


def test_pods_are_not_moved_onto_a_node_the_next_consolidation_removes() -> None:
    # A g6.4xlarge just came up for a CPU pod (its consolidateAfter has not passed), its GPU free. Deleting the g6.xlarge
    # by moving its GPU pod there looks like a 1.006/h saving, but the g6.4xlarge then carries a CPU pod that fits on the
    # m5 and a GPU pod that fits on a new g6.xlarge: once its consolidateAfter passes it is replaced by a g6.xlarge for
    # the very pod that was moved off one (the trace simulation's flap). The move waits; the g6.4xlarge goes instead.
    pinned = {"karpenter.sh/do-not-disrupt": "true"}
    objs = [
        nodeclass(groups=["auto-g6-az1", "auto-g6-4xaz2", "cpu-m5-az1"]),
        pool(disruption={"consolidateAfter": "10m", "budgets": [{"nodes": "100%"}]}),
        node("m5", "cpu-m5-az1", cpu="7", memory="30Gi"),
        running("db", "m5", cpu="1", annotations=pinned),
        node("young", "auto-g6-4xaz2", cpu="15", memory="60Gi", gpu=1),
        running("batch", "young", cpu="4"),
        node("a", "auto-g6-az1", cpu="3", memory="14Gi", gpu=1),
        running("infer", "a", cpu="2", gpu=1),
    ]
    settled = {"m5": NOW - 3600, "a": NOW - 3600}
    plan = disrupt(objs, last_change={**settled, "young": NOW - 60})
    assert plan.decisions == []
    assert "its pods would go to young, which is within its consolidateAfter window" in plan.kept["a"]
    later = disrupt(objs, last_change={**settled, "young": NOW - 601})
    assert reasons(later) == [("Underutilized", ["young"], None)]


def test_every_kept_node_has_a_code_with_its_message() -> None:
    objs = [
        *base(disruption={"budgets": [{"nodes": "1"}]}),
        node("a"),
        node("b"),
        node("c"),
        running("p", "c", annotations={"karpenter.sh/do-not-disrupt": "true"}),
    ]
    plan = disrupt(objs, busy={"b"})  # b takes the budget of 1
    assert plan.decisions == []
    assert plan.kept_codes == {"a": "Budget", "b": "Busy", "c": "DoNotDisrupt"}
    assert plan.kept.keys() == plan.kept_codes.keys()


def test_drift_replaces_one_node_with_several_of_one_group() -> None:
    # the NodePool now wants c5.xlarge (3.92 CPUs allocatable): the three 1.5-CPU pods of the drifted m5.2xlarge need two
    c5_only = [{"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["ml.c5.xlarge"]}]
    objs = [
        *base(requirements=c5_only),
        node("a", nodepool="default"),
        *(running(f"w-{i}", "a", cpu="1500m") for i in range(3)),
    ]
    (d,) = disrupt(objs).decisions
    assert (d.reason, d.nodes, d.replacement_count) == ("Drifted", ["a"], 2)
    assert d.replacement is not None and sorted(d.replacement.pods) == ["default/w-0", "default/w-1", "default/w-2"]
    assert d.to_dict()["replacement"]["count"] == 2
    assert d.savings_per_hour == pytest.approx(0.461 - 2 * 0.204, abs=0.01)


def test_two_expired_nodes_each_get_a_replacement_for_their_own_pod() -> None:
    """Whole-system soak (seed 2113): the second expiry of a pass re-simulated the first node's pod too (its removed
    nodes include the first), without the first decision's replacement, so its new node was claimed for the first
    node's pod, and its own pod was left out. Each 1-GPU pod fills an ml.g6.xlarge, so each expired node needs one
    new node, for the pod it runs."""
    objs = [
        nodeclass(groups=["auto-g6-az1"]),
        pool(expire="720h"),
        node("old-a", "auto-g6-az1", age=800 * HOUR, cpu="4", memory="16Gi", gpu=1),
        node("old-b", "auto-g6-az1", age=800 * HOUR, cpu="4", memory="16Gi", gpu=1),
        running("train-a", "old-a", gpu=1),
        running("train-b", "old-b", gpu=1),
    ]
    plan = disrupt(objs, now=NOW)
    claims = {tuple(d.nodes): d.replacement and d.replacement.pods for d in plan.decisions if d.reason == "Expired"}
    assert claims == {("old-a",): ["default/train-a"], ("old-b",): ["default/train-b"]}


def test_a_voluntary_move_onto_a_replacement_of_the_same_pass_waits_for_the_next_pass() -> None:
    """Two g5.12xlarge nodes that show one GPU each, a 1-GPU pod on each. The first move launches a new g5.12xlarge (4
    GPUs) for its pod, where the second node's pod would fit too. Moving that pod there would evict it before the node
    exists (a decision's deprovision waits for its own replacement only), so a voluntary move keeps the second node
    for a later pass; upstream computes one command at a time over a cluster state that has the first's replacement."""
    objs = parse_objects(
        [
            nodeclass(groups=["g5-12x-az1"]),
            pool(),
            node("a", "g5-12x-az1", nodepool="default", gpu=1),
            node("b", "g5-12x-az1", nodepool="default", gpu=1),
            running("p", "a", gpu=1),
            running("q", "b", gpu=1),
        ]
    )
    inp = DisruptionInput(objects=objs, cluster=view({"g5-12x-az1": 2}), catalog=Catalog.builtin(), now=NOW)
    run = _Pass(inp, DisruptionSettings(simulation_budget_seconds=0.05))
    [(a, default), (b, _)] = [run.managed["a"], run.managed["b"]]
    first = run.settle([a], "Drifted", default)
    assert first is not None and first.replacement is not None and first.replacement.pods == ["default/p"]
    run.commit(first, [a])
    assert run.settle([b], "Drifted", default) is None
    assert run.out.kept["b"] == "its pods would go to a node another decision of this pass launches"
    expired = run.settle([b], "Expired", default)  # forceful: it goes, its pod waits for that node
    assert expired is not None and expired.replacement is None


def _inflight_for(pod_keys: list[str], group: str = "auto-g6-az1") -> Any:
    from hyperpod_autoscaler.domain.plan import InflightClaim

    return InflightClaim(
        claim_id="c-1",
        nodepool="default",
        instance_group=group,
        instance_type="ml.g6.xlarge",
        zone="us-west-2a",
        count=len(pod_keys),
        pods=tuple(pod_keys),
    )


def test_an_expired_nodes_pod_rides_the_claim_already_launching_for_it() -> None:
    """Whole-system soak (seed 6131): a Job's two pods went pending, reconcile launched two nodes for them, then they
    were bound to two nodes that had just freed up. Those nodes expired while the claim's nodes were booting, and each
    expiry launched a replacement for its pod: four nodes booting for two pods. The claim launching for the pods is
    capacity the simulation counts: expiry is forceful, so the node goes and its pod waits for the claim's node, as
    Karpenter v1's provisioner counts in-flight NodeClaims for the pods an expired node's drain leaves pending."""
    objs = parse_objects(
        [
            nodeclass(groups=["auto-g6-az1"]),
            pool(expire="720h"),
            node("old", "auto-g6-az1", age=800 * HOUR, cpu="4", memory="16Gi", gpu=1),
            running("train-0", "old", gpu=1),
        ]
    )
    inp = DisruptionInput(
        objects=objs,
        cluster=view({"auto-g6-az1": 2}),
        catalog=Catalog.builtin(),
        now=NOW,
        inflight=[_inflight_for(["default/train-0"])],
    )
    plan = plan_disruptions(inp, DisruptionSettings(simulation_budget_seconds=0.05))
    [decision] = [d for d in plan.decisions if d.reason == "Expired"]
    assert decision.nodes == ["old"] and decision.replacement is None, decision.message


def test_a_voluntary_move_onto_a_claim_still_launching_waits() -> None:
    """Karpenter's SimulateScheduling (disruption/helpers.go) makes every pod the simulation schedules onto an
    uninitialized NodeClaim unschedulable ("would schedule against uninitialized nodeclaim"): a consolidation never
    evicts pods to a node that does not exist yet."""
    objs = parse_objects(
        [
            nodeclass(groups=["g5-12x-az1"]),
            pool(),
            node("a", "g5-12x-az1", nodepool="default", gpu=1),
            running("p", "a", gpu=1),
        ]
    )
    claim = _inflight_for([], group="g5-12x-az1")
    claim = type(claim)(**{**claim.__dict__, "instance_type": "ml.g5.12xlarge", "count": 1})
    inp = DisruptionInput(
        objects=objs, cluster=view({"g5-12x-az1": 2}), catalog=Catalog.builtin(), now=NOW, inflight=[claim]
    )
    run = _Pass(inp, DisruptionSettings(simulation_budget_seconds=0.05))
    a, default = run.managed["a"]
    assert run.settle([a], "Drifted", default) is None
    assert run.out.kept["a"] == "its pods would go to a node still launching"
