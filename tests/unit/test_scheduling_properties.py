"""Property-based tests: every plan is feasible (issue 2)."""

from __future__ import annotations

from typing import Any

from hyperpod_autoscaler.domain.catalog import Catalog
from hyperpod_autoscaler.domain.k8s import ZONE_LABEL
from hyperpod_autoscaler.domain.objects import parse_objects
from hyperpod_autoscaler.domain.plan import PlanOptions
from hyperpod_autoscaler.domain.quantity import parse_quantity
from hyperpod_autoscaler.domain.resources import Resources
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .engine_fixtures import GROUPS, node, nodeclass, nodepool, plan, pod

CATALOG = Catalog.builtin()
TAINT = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}

pod_shape = st.fixed_dictionaries(
    {
        "cpu": st.sampled_from(["100m", "250m", "500m", "1", "1500m", "3", "7"]),
        "memory": st.sampled_from(["100Mi", "512Mi", "1Gi", "4Gi", "12Gi"]),
        "gpu": st.sampled_from([0, 0, 0, 1, 2]),
        "zone": st.sampled_from([None, None, "us-west-2a", "us-west-2b", "us-west-2c"]),
        "tolerates": st.booleans(),
        "app": st.sampled_from(["a", "b", "c"]),
    }
)

pool_shape = st.fixed_dictionaries(
    {
        "types": st.lists(
            st.sampled_from(sorted({t for t, _ in GROUPS.values()})), min_size=1, max_size=4, unique=True
        ),
        "tainted": st.booleans(),
        "cpu_limit": st.sampled_from([None, "8", "40", "200"]),
        "weight": st.sampled_from([None, 10, 50]),
    }
)


def build(pods: list[dict[str, Any]], pools: list[dict[str, Any]], with_node: bool) -> list[dict[str, Any]]:
    objs: list[dict[str, Any]] = [nodeclass()]
    for i, p in enumerate(pools):
        limits = {"cpu": p["cpu_limit"]} if p["cpu_limit"] else None
        objs.append(
            nodepool(
                f"pool-{i}",
                requirements=[{"key": "node.kubernetes.io/instance-type", "operator": "In", "values": p["types"]}],
                taints=[TAINT] if p["tainted"] else None,
                limits=limits,
                weight=p["weight"],
            )
        )
    if with_node:
        objs.append(node("existing-1", cpu="4", memory="16Gi"))
    for i, s in enumerate(pods):
        spec: dict[str, Any] = {}
        if s["zone"]:
            spec["nodeSelector"] = {ZONE_LABEL: s["zone"]}
        if s["tolerates"]:
            spec["tolerations"] = [{"key": "dedicated", "operator": "Exists"}]
        objs.append(
            pod(f"{s['app']}-{i}", cpu=s["cpu"], memory=s["memory"], gpu=s["gpu"], labels={"app": s["app"]}, **spec)
        )
    return objs


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pods=st.lists(pod_shape, min_size=1, max_size=25),
    pools=st.lists(pool_shape, min_size=1, max_size=3),
    with_node=st.booleans(),
)
def test_every_plan_is_feasible(pods: list[dict[str, Any]], pools: list[dict[str, Any]], with_node: bool) -> None:
    objs = build(pods, pools, with_node)
    p = plan(objs, options=PlanOptions(time_budget_seconds=0.05))
    parsed = parse_objects(objs)
    by_key = {x.key: x for x in parsed.pods}
    pools_by_name = {np.name: np for np in parsed.nodepools}
    spec_by_name = {f"pool-{i}": spec for i, spec in enumerate(pools)}

    placed: list[str] = [k for c in p.node_claims for k in c.pods] + [k for ks in p.existing_nodes.values() for k in ks]
    assert len(placed) == len(set(placed)), "a pod is placed at most once"
    assert set(placed).isdisjoint(p.unschedulable), "a placed pod is not also unschedulable"
    assert set(placed) | set(p.unschedulable) == set(by_key), "every pending pod is placed or explained"

    usage: dict[str, Resources] = {}
    nodes_per_pool: dict[str, int] = {}
    for c in p.node_claims:
        itype = CATALOG[c.instance_type]
        assert (itype.name, c.zone) in {(t, z) for t, z in GROUPS.values()}
        assert GROUPS[c.instance_group] == (c.instance_type, c.zone), "a claim is launched in its group's type and zone"
        total = Resources()
        for k in c.pods:
            pod_obj = by_key[k]
            total = total + pod_obj.requests
            sel = pod_obj.spec.node_selector or {}
            if ZONE_LABEL in sel:
                assert sel[ZONE_LABEL] == c.zone, "nodeSelector respected"
            spec = spec_by_name[c.nodepool]
            assert c.instance_type in spec["types"], "NodePool requirement respected"
            if spec["tainted"]:
                assert pod_obj.spec.tolerations, "a pod lands on a tainted pool only with a toleration"
        assert total.fits(itype.allocatable), f"claim {c.instance_type} overfilled: {total} > {itype.allocatable}"
        usage[c.nodepool] = usage.get(c.nodepool, Resources()) + Resources.parse({"cpu": str(itype.vcpu)})
        nodes_per_pool[c.nodepool] = nodes_per_pool.get(c.nodepool, 0) + 1
    for name, used in usage.items():
        limit = spec_by_name[name]["cpu_limit"]
        if limit:
            assert used.get("cpu", 0) <= parse_quantity(limit) * 1000, f"{name} exceeds its cpu limit"
        assert name in pools_by_name


@settings(max_examples=20, deadline=None)
@given(pods=st.lists(pod_shape, min_size=1, max_size=20), pools=st.lists(pool_shape, min_size=1, max_size=2))
def test_plans_are_deterministic(pods: list[dict[str, Any]], pools: list[dict[str, Any]]) -> None:
    objs = build(pods, pools, with_node=False)
    opts = PlanOptions(time_budget_seconds=0.05)
    assert plan(objs, options=opts).to_contract() == plan(objs, options=opts).to_contract()
