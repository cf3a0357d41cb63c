"""1,000 randomized clusters: no disruption decision evicts a do-not-disrupt pod, exceeds a budget, plans an eviction a PDB
forbids, deletes a node whose pods do not fit elsewhere, or replaces nodes with a same-or-more-expensive node."""

from __future__ import annotations

import copy
import random
from typing import Any

from hyperpod_autoscaler.domain.catalog import Catalog
from hyperpod_autoscaler.domain.disruption import DisruptionInput, DisruptionSettings, plan_disruptions
from hyperpod_autoscaler.domain.objects import parse_objects
from hyperpod_autoscaler.domain.plan import PlanInput, PlanOptions
from hyperpod_autoscaler.domain.scheduling import schedule

from .disruption_fixtures import HOUR, NOW, aged, ready, view
from .engine_fixtures import node as node_
from .engine_fixtures import nodeclass, nodepool, pod

GROUPS = {
    "cpu-m5-az1": ("8", "32Gi", 0),
    "cpu-m5-az2": ("8", "32Gi", 0),
    "cpu-c5-az3": ("4", "8Gi", 0),
    "auto-g6-az1": ("4", "16Gi", 1),
    "auto-g6-4xaz2": ("16", "64Gi", 1),
}
CATALOG = Catalog.builtin()


def random_cluster(rng: random.Random) -> tuple[list[dict[str, Any]], dict[str, int]]:
    objs: list[dict[str, Any]] = [nodeclass(groups=list(GROUPS))]
    p = nodepool("default")
    p["spec"]["template"]["spec"]["expireAfter"] = "Never"
    budget = rng.choice(["0", "1", "2", "10%", "50%", "100%"])
    p["spec"]["disruption"] = {
        "consolidationPolicy": rng.choice(["WhenEmpty", "WhenEmptyOrUnderutilized", "WhenEmptyOrUnderutilized"]),
        "consolidateAfter": "0s",
        "budgets": [{"nodes": budget}],
    }
    objs.append(p)
    n_nodes = rng.randint(1, 6)
    names = []
    for i in range(n_nodes):
        g = rng.choice(list(GROUPS))
        cpu, mem, gpu = GROUPS[g]
        n = aged(node_(f"n{i}", g, cpu=cpu, memory=mem, gpu=gpu, ready=rng.random() > 0.1), 10 * HOUR)
        objs.append(n)
        names.append((f"n{i}", int(cpu), gpu))
    apps = ["web", "api", "batch"]
    for j in range(rng.randint(0, 10)):
        name, cpu, gpu = rng.choice(names)
        want_gpu = gpu and rng.random() < 0.5
        q = ready(pod(f"{rng.choice(apps)}-{j}", cpu=str(rng.choice([1, 2])), gpu=1 if want_gpu else 0, node=name))
        if rng.random() < 0.15:
            q["metadata"]["annotations"] = {"karpenter.sh/do-not-disrupt": "true"}
        objs.append(q)
    for app in apps:
        if rng.random() < 0.5:
            objs.append(
                {
                    "apiVersion": "policy/v1",
                    "kind": "PodDisruptionBudget",
                    "metadata": {"name": app, "namespace": "default"},
                    "spec": {"maxUnavailable": rng.choice([0, 1]), "selector": {"matchLabels": {"app": app}}},
                }
            )
    mins = {g: rng.choice([0, 0, 1]) for g in GROUPS}
    return objs, mins


def check(objs: list[dict[str, Any]], mins: dict[str, int]) -> None:
    parsed = parse_objects(copy.deepcopy(objs))
    counts: dict[str, int] = {}
    for n in parsed.nodes:
        counts[n.instance_group or ""] = counts.get(n.instance_group or "", 0) + 1
    cluster = view(counts, mins)
    plan = plan_disruptions(
        DisruptionInput(objects=parsed, cluster=cluster, catalog=CATALOG, now=NOW),
        DisruptionSettings(simulation_budget_seconds=0.0),
    )
    nodes = {n.name: n for n in parsed.nodes}
    on: dict[str, list[Any]] = {}
    for p in parsed.bound_pods:
        on.setdefault(p.spec.node_name or "", []).append(p)
    removed = {n for d in plan.decisions for n in d.nodes}
    per_reason: dict[str, int] = {}
    evicted = [p for n in removed for p in on.get(n, []) if not p.is_daemonset_pod]
    for d in plan.decisions:
        assert d.reason != "Expired"
        per_reason[d.reason] = per_reason.get(d.reason, 0) + len(d.nodes)
        for n in d.nodes:
            for p in on.get(n, []):
                assert p.do_not_disrupt is None, f"{d} evicts do-not-disrupt pod {p.key}"
        if d.replacement is not None:
            old = sum(CATALOG[nodes[n].instance_type or ""].price for n in d.nodes)
            assert d.replacement.price < old, d
            if len(d.nodes) == 1:
                assert d.replacement.instance_type != nodes[d.nodes[0]].instance_type, d
    for reason, count in per_reason.items():
        assert count <= plan.allowed["default"][reason], (reason, count, plan.allowed)
    for pdb in parsed.pdbs:
        assert len([p for p in evicted if pdb.selects(p)]) <= pdb.allowed_disruptions(parsed.pods), pdb.key
    for g, k in mins.items():
        assert counts.get(g, 0) - sum(1 for n in removed if nodes[n].instance_group == g) >= min(k, counts.get(g, 0))
    # every decision together: the moved pods fit on what is left plus the planned replacements
    if evicted:
        stay = [n for n in parsed.nodes if n.name not in removed]
        moved = [p.model_copy(update={"spec": p.spec.model_copy(update={"node_name": None})}) for p in evicted]
        result = schedule(
            PlanInput(
                pods=moved,
                nodes=stay,
                bound_pods=[p for p in parsed.bound_pods if p.spec.node_name not in removed],
                nodepools=parsed.nodepools,
                nodeclasses=parsed.nodeclasses,
                cluster=cluster,
                catalog=CATALOG,
            ),
            PlanOptions(time_budget_seconds=0.0),
        )
        assert not result.unschedulable, (plan.to_dict(), result.unschedulable)
        replacements = sum(1 for d in plan.decisions if d.replacement is not None)
        assert len(result.node_claims) <= replacements, (plan.to_dict(), [c.to_contract() for c in result.node_claims])


def test_1000_random_clusters() -> None:
    rng = random.Random(20261124)
    decided = 0
    for _ in range(1000):
        objs, mins = random_cluster(rng)
        check(objs, mins)
        decided += 1
    assert decided == 1000
