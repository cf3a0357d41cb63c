"""Table-driven tests of the packing engine's scheduling semantics (issue 2, item 3)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hyperpod_autoscaler.domain.catalog import Catalog
from hyperpod_autoscaler.domain.hyperpod import ClusterView
from hyperpod_autoscaler.domain.objects import load_yaml_documents, parse_objects
from hyperpod_autoscaler.domain.plan import InflightClaim, PlanInput, PlanOptions
from hyperpod_autoscaler.domain.scheduling import schedule

from .engine_fixtures import groups_of, node, nodeclass, nodepool, plan, pod

ROOT = Path(__file__).resolve().parents[2]
IT = "node.kubernetes.io/instance-type"
ZONE = "topology.kubernetes.io/zone"


def req(key: str, op: str, *values: str) -> dict[str, Any]:
    r: dict[str, Any] = {"key": key, "operator": op}
    if values:
        r["values"] = list(values)
    return r


# --- the seed objects ----------------------------------------------------------------------------------------------------


def test_seed_pods_land_on_auto_g6_az1() -> None:
    docs: list[Any] = []
    for name in ("nodeclass.yaml", "nodepool.yaml", "pods.yaml"):
        docs += load_yaml_documents((ROOT / "examples" / "seed" / name).read_text())
    objs = parse_objects(docs)
    view = ClusterView.from_describe_cluster(json.loads((ROOT / "examples" / "cluster.json").read_text()))
    p = schedule(
        PlanInput(
            objs.pending_pods, objs.nodes, objs.bound_pods, objs.nodepools, objs.nodeclasses, view, Catalog.builtin()
        )
    )
    assert p.unschedulable == {}
    assert {c.instance_group for c in p.node_claims} == {"auto-g6-az1"}
    assert all((c.instance_type, c.zone) == ("ml.g6.xlarge", "us-west-2a") for c in p.node_claims)
    assert sum(len(c.pods) for c in p.node_claims) == 6


# --- NodePool requirements (the requirement algebra) ----------------------------------------------------------------------

REQUIREMENT_CASES = [
    ("In on instance type", [req(IT, "In", "ml.m5.2xlarge")], {}, "cpu-m5-"),
    ("NotIn removes the cheap CPU types", [req(IT, "NotIn", "ml.c5.xlarge", "ml.m5.2xlarge")], {}, "auto-g6"),
    ("zone In picks the group in that zone", [req(ZONE, "In", "us-west-2c")], {}, "cpu-c5-az3"),
    ("zone NotIn", [req(ZONE, "NotIn", "us-west-2a", "us-west-2c")], {}, "az2"),
    ("Exists on a well-known label", [req(IT, "Exists")], {}, "cpu-c5-az3"),
    ("Gt on a custom integer label", [req("example.com/tier", "Gt", "2")], {"example.com/tier": "3"}, "cpu-c5-az3"),
    (
        "Lt on a custom integer label is unsatisfied",
        [req("example.com/tier", "Lt", "2")],
        {"example.com/tier": "3"},
        None,
    ),
    ("Gte accepts equal", [req("example.com/tier", "Gte", "3")], {"example.com/tier": "3"}, "cpu-c5-az3"),
    ("Lte rejects greater", [req("example.com/tier", "Lte", "2")], {"example.com/tier": "3"}, None),
    ("DoesNotExist on a template label fails", [req("team", "DoesNotExist")], {"team": "a"}, None),
]


@pytest.mark.parametrize(
    ("name", "requirements", "labels", "expected"), REQUIREMENT_CASES, ids=[c[0] for c in REQUIREMENT_CASES]
)
def test_nodepool_requirements(
    name: str, requirements: list[dict[str, Any]], labels: dict[str, str], expected: str | None
) -> None:
    p = plan([nodeclass(), nodepool(requirements=requirements, labels=labels), pod("web-1", cpu="500m")])
    got = groups_of(p).get("default/web-1")
    if expected is None:
        assert got is None and "default/web-1" in p.unschedulable
    else:
        assert got is not None and expected in got, (got, p.unschedulable)


POD_SELECTION_CASES = [
    ("nodeSelector on zone", {"nodeSelector": {ZONE: "us-west-2b"}}, "az2"),
    ("nodeSelector on instance type", {"nodeSelector": {IT: "ml.g5.12xlarge"}}, "g5-12x-az1"),
    (
        "required node affinity OR-terms: the first term is unsatisfiable, the second picks us-west-2b",
        {
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {"matchExpressions": [req(IT, "In", "ml.p99.nothing")]},
                            {"matchExpressions": [req(ZONE, "In", "us-west-2b")]},
                        ]
                    }
                }
            }
        },
        "az2",
    ),
    (
        "a preferred term is honoured when it can be",
        {
            "affinity": {
                "nodeAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {"weight": 50, "preference": {"matchExpressions": [req(ZONE, "In", "us-west-2b")]}}
                    ]
                }
            }
        },
        "az2",
    ),
    (
        "a preferred term that nothing satisfies is relaxed",
        {
            "affinity": {
                "nodeAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {"weight": 50, "preference": {"matchExpressions": [req(IT, "In", "ml.p99.nothing")]}}
                    ]
                }
            }
        },
        "cpu-c5-az3",
    ),
    ("arm64 is never offered by HyperPod", {"nodeSelector": {"kubernetes.io/arch": "arm64"}}, None),
    (
        "a pod asking karpenter.sh/nodepool DoesNotExist gets no new node",
        {
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [{"matchExpressions": [req("karpenter.sh/nodepool", "DoesNotExist")]}]
                    }
                }
            }
        },
        None,
    ),
]


@pytest.mark.parametrize(("name", "spec", "expected"), POD_SELECTION_CASES, ids=[c[0] for c in POD_SELECTION_CASES])
def test_pod_node_selection(name: str, spec: dict[str, Any], expected: str | None) -> None:
    p = plan([nodeclass(), nodepool(), pod("web-1", cpu="500m", **spec)])
    got = groups_of(p).get("default/web-1")
    if expected is None:
        assert got is None
        assert p.node_claims == []
    else:
        assert got is not None and expected in got, (got, p.unschedulable)


# --- taints and tolerations -----------------------------------------------------------------------------------------------

GPU_TAINT = {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}
TOLERATION_CASES = [
    ("no toleration: NoSchedule taint blocks", [], False),
    (
        "Equal with the value",
        [{"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}],
        True,
    ),
    ("Equal with another value", [{"key": "nvidia.com/gpu", "operator": "Equal", "value": "false"}], False),
    ("Exists on the key, any effect", [{"key": "nvidia.com/gpu", "operator": "Exists"}], True),
    ("Exists with an empty key tolerates everything", [{"operator": "Exists"}], True),
    (
        "a toleration of another effect does not help",
        [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoExecute"}],
        False,
    ),
]


@pytest.mark.parametrize(("name", "tolerations", "fits"), TOLERATION_CASES, ids=[c[0] for c in TOLERATION_CASES])
def test_nodepool_taints_and_pod_tolerations(name: str, tolerations: list[dict[str, Any]], fits: bool) -> None:
    p = plan([nodeclass(), nodepool(taints=[GPU_TAINT]), pod("web-1", tolerations=tolerations)])
    assert ("default/web-1" in groups_of(p)) is fits


def test_prefer_no_schedule_taint_does_not_block() -> None:
    p = plan([nodeclass(), nodepool(taints=[{"key": "x", "effect": "PreferNoSchedule"}]), pod("web-1")])
    assert "default/web-1" in groups_of(p)


def test_existing_node_taints_and_cordon() -> None:
    objs = [
        nodeclass(),
        nodepool(),
        node("tainted", taints=[{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]),
        node("cordoned", unschedulable=True),
        node("unhealthy", labels={"sagemaker.amazonaws.com/node-health-status": "Unschedulable"}),
        pod("web-1"),
    ]
    p = plan(objs)
    assert groups_of(p)["default/web-1"] not in {"tainted", "cordoned", "unhealthy"}
    assert len(p.node_claims) == 1
    # A NotReady node is capacity on its way (Karpenter counts uninitialized nodes the same way); HyperPod's health
    # label, not readiness, says when a node will not come back.
    p = plan([nodeclass(), nodepool(), node("notready", ready=False), pod("web-1")])
    assert p.existing_nodes == {"notready": ["default/web-1"]}


# --- requests ------------------------------------------------------------------------------------------------------------


def test_effective_request_is_max_of_init_and_sum_plus_overhead() -> None:
    big_init = pod(
        "web-1",
        cpu="500m",
        initContainers=[{"name": "init", "resources": {"requests": {"cpu": "7", "memory": "1Gi"}}}],
    )
    # 7 CPU of init > 0.5 CPU of containers: needs an 8-vCPU type; the 4-vCPU c5.xlarge cannot take it.
    p = plan([nodeclass(), nodepool(requirements=[req(ZONE, "In", "us-west-2a", "us-west-2c")]), big_init])
    assert groups_of(p)["default/web-1"] == "cpu-m5-az1"
    with_overhead = pod("web-2", cpu="3", overhead={"cpu": "1"})
    p = plan([nodeclass(), nodepool(requirements=[req(IT, "In", "ml.c5.xlarge")]), with_overhead])
    assert "default/web-2" in p.unschedulable, "3 CPU + 1 CPU overhead does not fit a 4-vCPU node's allocatable"


def test_gpu_requests_go_to_gpu_groups_and_pack_by_gpu() -> None:
    pods = [pod(f"train-{i}", cpu="2", memory="8Gi", gpu=1) for i in range(4)]
    p = plan([nodeclass(), nodepool(), *pods])
    assert p.unschedulable == {}
    for c in p.node_claims:
        assert c.instance_group in {"auto-g6-az1", "auto-g6-4xaz2", "g5-12x-az1"}
    # four 1-GPU pods: 4 x g6.xlarge ($0.805 each, but 4 CPU) vs one g5.12xlarge with 4 GPUs: the cheaper total wins
    catalog = Catalog.builtin()
    cost = sum(catalog[c.instance_type].price for c in p.node_claims)
    alternatives = [
        4 * catalog["ml.g6.xlarge"].price,
        catalog["ml.g5.12xlarge"].price,
        4 * catalog["ml.g6.4xlarge"].price,
    ]
    assert cost <= min(alternatives) + 1e-9


# --- topology -----------------------------------------------------------------------------------------------------------


def spread(key: str, max_skew: int = 1, when: str = "DoNotSchedule", app: str = "web") -> dict[str, Any]:
    return {
        "topologySpreadConstraints": [
            {
                "maxSkew": max_skew,
                "topologyKey": key,
                "whenUnsatisfiable": when,
                "labelSelector": {"matchLabels": {"app": app}},
            }
        ]
    }


def zones_of(p: Any) -> list[str]:
    return sorted(c.zone for c in p.node_claims for _ in c.pods)


def test_zone_spread_do_not_schedule_balances_zones() -> None:
    pods = [pod(f"web-{i}", cpu="500m", labels={"app": "web"}, **spread(ZONE)) for i in range(6)]
    p = plan([nodeclass(), nodepool(requirements=[req(IT, "In", "ml.m5.2xlarge", "ml.c5.xlarge")]), *pods])
    assert p.unschedulable == {}
    counts = {z: zones_of(p).count(z) for z in set(zones_of(p))}
    assert len(counts) == 3 and max(counts.values()) - min(counts.values()) <= 1


def test_zone_spread_counts_existing_pods() -> None:
    existing = [pod(f"web-old-{i}", cpu="500m", labels={"app": "web"}, node="n1") for i in range(2)]
    pods = [pod(f"web-{i}", cpu="500m", labels={"app": "web"}, **spread(ZONE)) for i in range(2)]
    p = plan(
        [
            nodeclass(),
            nodepool(requirements=[req(IT, "In", "ml.m5.2xlarge", "ml.c5.xlarge")]),
            node("n1"),
            *existing,
            *pods,
        ]
    )
    # us-west-2a already has 2: the new pods go to the other zones
    placed = groups_of(p)
    assert all(placed[f"default/web-{i}"] in {"cpu-m5-az2", "cpu-c5-az3"} for i in range(2)), placed


def test_hostname_spread_puts_one_per_node() -> None:
    pods = [pod(f"web-{i}", cpu="100m", labels={"app": "web"}, **spread("kubernetes.io/hostname")) for i in range(3)]
    p = plan([nodeclass(), nodepool(requirements=[req(IT, "In", "ml.c5.xlarge")]), *pods])
    assert len(p.node_claims) == 3 and all(len(c.pods) == 1 for c in p.node_claims)


def test_schedule_anyway_spread_never_blocks() -> None:
    pods = [pod(f"web-{i}", cpu="500m", labels={"app": "web"}, **spread(ZONE, when="ScheduleAnyway")) for i in range(4)]
    p = plan([nodeclass(), nodepool(requirements=[req(ZONE, "In", "us-west-2c")]), *pods])
    assert p.unschedulable == {}


def anti(key: str, app: str = "db") -> dict[str, Any]:
    return {
        "affinity": {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"topologyKey": key, "labelSelector": {"matchLabels": {"app": app}}}
                ]
            }
        }
    }


def test_hostname_anti_affinity_one_pod_per_node() -> None:
    pods = [pod(f"db-{i}", cpu="100m", labels={"app": "db"}, **anti("kubernetes.io/hostname")) for i in range(3)]
    p = plan([nodeclass(), nodepool(requirements=[req(IT, "In", "ml.c5.xlarge")]), *pods])
    assert len(p.node_claims) == 3


def test_zone_anti_affinity_at_most_one_per_zone() -> None:
    pods = [pod(f"db-{i}", cpu="100m", labels={"app": "db"}, **anti(ZONE)) for i in range(4)]
    p = plan([nodeclass(), nodepool(requirements=[req(IT, "In", "ml.m5.2xlarge", "ml.c5.xlarge")]), *pods])
    assert len(p.unschedulable) == 1, "three zones: the fourth pod cannot go anywhere"
    assert len(set(zones_of(p))) == 3


def test_zone_pod_affinity_follows_the_existing_pod() -> None:
    existing = pod("cache-0", labels={"app": "cache"}, node="n2")
    affine = pod(
        "web-1",
        **{
            "affinity": {
                "podAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [
                        {"topologyKey": ZONE, "labelSelector": {"matchLabels": {"app": "cache"}}}
                    ]
                }
            }
        },
    )
    full = node("n2", group="cpu-m5-az2", cpu="1", memory="1Gi")
    p = plan([nodeclass(), nodepool(requirements=[req(IT, "In", "ml.m5.2xlarge")]), full, existing, affine])
    assert groups_of(p)["default/web-1"] == "cpu-m5-az2"


# --- NodePools: weight, limits, classes ----------------------------------------------------------------------------------


def test_higher_weight_nodepool_is_tried_first() -> None:
    objs = [
        nodeclass(),
        nodepool("cheap", requirements=[req(IT, "In", "ml.c5.xlarge")]),
        nodepool("preferred", requirements=[req(IT, "In", "ml.m5.2xlarge")], weight=50),
        pod("web-1"),
    ]
    p = plan(objs)
    [claim] = p.node_claims
    assert claim.nodepool == "preferred"


def test_limits_are_never_exceeded() -> None:
    pods = [pod(f"web-{i}", cpu="3") for i in range(5)]
    objs = [nodeclass(), nodepool(requirements=[req(IT, "In", "ml.c5.xlarge")], limits={"cpu": "8"}), *pods]
    p = plan(objs)
    assert len(p.node_claims) == 2, "two 4-vCPU nodes reach the 8-CPU limit"
    assert len(p.unschedulable) == 3


def test_nodes_limit() -> None:
    pods = [pod(f"web-{i}", cpu="3") for i in range(3)]
    p = plan([nodeclass(), nodepool(requirements=[req(IT, "In", "ml.c5.xlarge")], limits={"nodes": "1"}), *pods])
    assert len(p.node_claims) == 1


def test_nodepool_with_another_class_kind_or_missing_class_is_not_used() -> None:
    p = plan(
        [
            nodeclass(),
            nodepool("ec2", kind="EC2NodeClass", group="karpenter.k8s.aws", nodeclass_name="default"),
            nodepool("missing", nodeclass_name="nope"),
            pod("web-1"),
        ]
    )
    assert p.node_claims == []
    assert set(p.nodepool_errors) == {"ec2", "missing"}
    assert "default/web-1" in p.unschedulable


# --- existing and in-flight capacity, daemonsets, skipped pods -----------------------------------------------------------


def test_existing_node_capacity_is_used_before_new_nodes() -> None:
    p = plan([nodeclass(), nodepool(), node("n1"), pod("web-1")])
    assert p.node_claims == [] and p.existing_nodes == {"n1": ["default/web-1"]}


def test_bound_pods_use_capacity_on_their_node() -> None:
    p = plan([nodeclass(), nodepool(), node("n1", cpu="2"), pod("old-1", cpu="1500m", node="n1"), pod("web-1")])
    assert len(p.node_claims) == 1


def test_inflight_capacity_is_used_before_new_nodes() -> None:
    claim = InflightClaim("c1", "default", "cpu-m5-az1", "ml.m5.2xlarge", "us-west-2a", 1, ())
    p = plan([nodeclass(), nodepool(), pod("web-1")], inflight=[claim])
    assert p.node_claims == []


def test_unavailable_group_is_not_launched_into() -> None:
    p = plan(
        [nodeclass(), nodepool(requirements=[req(IT, "In", "ml.c5.xlarge", "ml.m5.2xlarge")]), pod("web-1")],
        unavailable={"cpu-c5-az3": "InsufficientCapacity"},
    )
    assert {c.instance_group for c in p.node_claims} <= {"cpu-m5-az1", "cpu-m5-az2"}


def test_daemonset_overhead_on_new_nodes_it_runs_on() -> None:
    ds = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "agent", "namespace": "kube-system"},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {"containers": [{"name": "a", "resources": {"requests": {"cpu": "1"}}}]},
            },
        },
    }
    only_c5 = nodepool(requirements=[req(IT, "In", "ml.c5.xlarge")])
    without = plan([nodeclass(), only_c5, pod("web-1", cpu="3")])
    with_ds = plan([nodeclass(), only_c5, ds, pod("web-1", cpu="3")])
    assert len(without.node_claims) == 1
    assert "default/web-1" in with_ds.unschedulable, "3 CPU + the DaemonSet's 1 CPU exceed a c5.xlarge"


def test_daemonset_owned_and_terminal_pods_are_skipped() -> None:
    ds_pod = pod("agent-x")
    ds_pod["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "a", "uid": "d"}]
    done = pod("job-1")
    done["status"]["phase"] = "Succeeded"
    p = plan([nodeclass(), nodepool(), ds_pod, done])
    assert p.node_claims == [] and p.unschedulable == {}


def test_deterministic() -> None:
    pods = [pod(f"web-{i}", cpu=["250m", "1", "2"][i % 3], gpu=i % 2) for i in range(30)]
    objs = [nodeclass(), nodepool(), *pods]
    a = plan(objs, options=PlanOptions(time_budget_seconds=0.1)).to_contract()
    b = plan(objs, options=PlanOptions(time_budget_seconds=0.1)).to_contract()
    assert a == b


def test_identical_replicas_are_cheap_to_place() -> None:
    import time

    pods = [pod(f"web-{i}", cpu="250m", labels={"app": "web"}) for i in range(2000)]
    objs = [nodeclass(), nodepool(), *pods]
    started = time.perf_counter()
    p = plan(objs, options=PlanOptions(time_budget_seconds=0.0, improve=False))
    assert time.perf_counter() - started < 5.0
    assert sum(len(c.pods) for c in p.node_claims) == 2000


def test_improvement_merges_small_gpu_nodes_and_cpu_nodes_into_one_cheaper_big_node(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without the new-node lookahead, eight 1-GPU pods that need 12 CPUs each go to g6.4xlarge nodes one by one
    (8 x $1.654) and fourteen-CPU pods to m5.4xlarge nodes (6 x $0.922): $18.76. One g6.48xlarge ($16.69) holds all of
    them: the merge move finds it (and the lookahead picks it up front)."""
    from hyperpod_autoscaler.domain.scheduling import packer as packer_module

    monkeypatch.setattr(packer_module, "LOOKAHEAD_CLASSES", 0)
    gpu_pods = [pod(f"train-{i}", cpu="12", memory="40Gi", gpu=1) for i in range(8)]
    cpu_pods = [pod(f"batch-{i}", cpu="14", memory="20Gi") for i in range(6)]
    only = nodepool(requirements=[req(IT, "In", "ml.g6.4xlarge", "ml.m5.4xlarge", "ml.g6.48xlarge")])
    objs = [nodeclass(groups=["auto-g6-4xaz2", "cpu-m5-az2", "g6-48x-az2"]), only, *gpu_pods, *cpu_pods]
    without = plan(objs, options=PlanOptions(improve=False))
    with_improve = plan(objs, options=PlanOptions(time_budget_seconds=1.0))
    assert with_improve.unschedulable == {}
    assert with_improve.hourly_cost < without.hourly_cost
    assert with_improve.hourly_cost <= Catalog.builtin()["ml.g6.48xlarge"].price + 1e-6
    monkeypatch.undo()
    lookahead = plan(objs, options=PlanOptions(improve=False))
    assert lookahead.unschedulable == {}
    assert lookahead.hourly_cost <= Catalog.builtin()["ml.g6.48xlarge"].price + 1e-6
