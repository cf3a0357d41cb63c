"""Builders for the disruption tests: a cluster of dicts -> DisruptionInput."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from hyperpod_autoscaler.domain.catalog import Catalog
from hyperpod_autoscaler.domain.disruption import DisruptionInput, DisruptionPlan, DisruptionSettings, plan_disruptions
from hyperpod_autoscaler.domain.hyperpod import ClusterView
from hyperpod_autoscaler.domain.objects import parse_objects

from .engine_fixtures import GROUPS, nodeclass, nodepool, pod
from .engine_fixtures import node as node_

NOW = 1_800_000_000.0
HOUR = 3600.0
M5 = [{"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["ml.m5.2xlarge"]}]
CPU_GROUPS = ["cpu-m5-az1", "cpu-m5-az2", "cpu-c5-az3"]
NODEPOOL_LABEL = "karpenter.sh/nodepool"


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def aged(obj: dict[str, Any], seconds: float) -> dict[str, Any]:
    obj["metadata"]["creationTimestamp"] = iso(NOW - seconds)
    return obj


def ready(pod: dict[str, Any]) -> dict[str, Any]:
    pod["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    return pod


def view(counts: dict[str, int] | None = None, min_counts: dict[str, int] | None = None) -> ClusterView:
    counts = counts or {}
    min_counts = min_counts or {}
    return ClusterView.from_describe_cluster(
        {
            "ClusterName": "c",
            "ClusterStatus": "InService",
            "InstanceGroups": [
                {
                    "InstanceGroupName": g,
                    "InstanceType": t,
                    "CurrentCount": counts.get(g, 0),
                    "TargetCount": counts.get(g, 0),
                    "MinCount": min_counts.get(g, 0),
                    "Status": "InService",
                    "OverrideVpcConfig": {"Subnets": [f"subnet-{g}"]},
                }
                for g, (t, _z) in GROUPS.items()
            ],
        }
    )


def disrupt(
    objects: list[dict[str, Any]],
    *,
    now: float = NOW,
    last_change: dict[str, float] | None = None,
    busy: set[str] | None = None,
    protected: set[str] | None = None,
    min_counts: dict[str, int] | None = None,
    settings: DisruptionSettings | None = None,
    unavailable: dict[str, str] | None = None,
) -> DisruptionPlan:
    parsed = parse_objects(copy.deepcopy(objects))
    counts: dict[str, int] = {}
    for n in parsed.nodes:
        if n.instance_group:
            counts[n.instance_group] = counts.get(n.instance_group, 0) + 1
    return plan_disruptions(
        DisruptionInput(
            objects=parsed,
            cluster=view(counts, min_counts),
            catalog=Catalog.builtin(),
            now=now,
            last_pod_change={k: v for k, v in (last_change or {}).items()},
            busy=busy or set(),
            protected=protected or set(),
            unavailable_groups=unavailable or {},
        ),
        settings or DisruptionSettings(simulation_budget_seconds=0.05),
    )


# --- objects -------------------------------------------------------------------------------------------------------------


def pool(
    name: str = "default", disruption: dict[str, Any] | None = None, expire: str = "Never", **kw: Any
) -> dict[str, Any]:
    """A NodePool that consolidates at once (``consolidateAfter: 0s``), never expires, and has no budget."""
    p = nodepool(name, **kw)
    p["spec"]["template"]["spec"]["expireAfter"] = expire
    p["spec"]["disruption"] = {"consolidationPolicy": "WhenEmptyOrUnderutilized", "consolidateAfter": "0s"} | (
        disruption or {}
    )
    return p


def node(
    name: str, group: str = "cpu-m5-az1", age: float = 10 * HOUR, nodepool: str | None = None, **kw: Any
) -> dict[str, Any]:
    """A Ready node of ``group``, ``age`` seconds old; labelled with ``nodepool`` when given (as provision labels it)."""
    n = aged(node_(name, group, **kw), age)
    if nodepool is not None:
        n["metadata"]["labels"][NODEPOOL_LABEL] = nodepool
    return n


def running(name: str, on: str, cpu: str = "1", annotations: dict[str, str] | None = None, **kw: Any) -> dict[str, Any]:
    """A Ready pod of a ReplicaSet bound to node ``on``."""
    p = ready(pod(name, cpu=cpu, node=on, **kw))
    if annotations:
        p["metadata"]["annotations"] = annotations
    return p


def base(groups: list[str] | None = None, **pool_kw: Any) -> list[dict[str, Any]]:
    return [nodeclass(groups=groups or CPU_GROUPS), pool(**pool_kw)]


def reasons(plan: Any) -> list[tuple[str, list[str], str | None]]:
    return [(d.reason, sorted(d.nodes), d.replacement.instance_type if d.replacement else None) for d in plan.decisions]


def owned_by(p: dict[str, Any], kind: str) -> dict[str, Any]:
    """``p`` with its controller changed to ``kind`` (DaemonSet, StatefulSet, Node for a mirror pod)."""
    p["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": kind, "name": "owner", "uid": "o-1", "controller": True}
    ]
    return p


def terminating(p: dict[str, Any]) -> dict[str, Any]:
    p["metadata"]["deletionTimestamp"] = iso(NOW - 10)
    return p


def terminal(p: dict[str, Any]) -> dict[str, Any]:
    p["status"]["phase"] = "Succeeded"
    return p


def started(p: dict[str, Any], seconds: float) -> dict[str, Any]:
    """A pod created two days ago that started ``seconds`` ago (a duration do-not-disrupt counts from the start)."""
    aged(p, 48 * HOUR)
    p["status"]["startTime"] = iso(NOW - seconds)
    return p


def annotated(obj: dict[str, Any], value: str, key: str = "karpenter.sh/do-not-disrupt") -> dict[str, Any]:
    obj["metadata"].setdefault("annotations", {})[key] = value
    return obj


def pdb(name: str, app: str, min_available: int | str | None = None, max_unavailable: int | str | None = None) -> dict:
    spec: dict[str, Any] = {"selector": {"matchLabels": {"app": app}}}
    if min_available is not None:
        spec["minAvailable"] = min_available
    if max_unavailable is not None:
        spec["maxUnavailable"] = max_unavailable
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }


def pending(name: str, cpu: str = "1", **kw: Any) -> dict[str, Any]:
    """A pod the scheduler marked Unschedulable."""
    return pod(name, cpu=cpu, **kw)


def not_ready(n: dict[str, Any]) -> dict[str, Any]:
    n["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
    return n


def deleting(n: dict[str, Any]) -> dict[str, Any]:
    n["metadata"]["deletionTimestamp"] = iso(NOW - 10)
    return n
