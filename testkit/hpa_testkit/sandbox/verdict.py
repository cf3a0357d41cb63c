"""The verdict of a sandbox run: did the autoscaler do a good job, in dollars, pod-minutes and seconds.

- ``cost`` ($): what the run's nodes cost (the sampled node counts times their hourly price, over the run);
- ``staticBaselineCost`` ($): the smallest static cluster that serves the peak demand, planned by the product's own engine
  for the pods present at the peak and priced for the whole run;
- ``karpenterStyleCost`` ($): the demand of every minute (the pods present, pending or running) packed as Karpenter does
  (``hpa_testkit.packing``, first-fit-decreasing, cheapest type per claim) over the managed instance groups' types, priced
  minute by minute (a packer with no boot delay and no consolidation lag: a floor a reactive autoscaler approaches);
- ``pendingPodMinutes``: the area under the pending-pods curve;
- ``timeToCapacityBeyondBootSeconds``: p50/p95/max of a pod's wait minus its new node's emulated boot delay.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hyperpod_autoscaler.domain.catalog import Catalog, InstanceType
from hyperpod_autoscaler.domain.hyperpod import ClusterView
from hyperpod_autoscaler.domain.k8s import INSTANCE_TYPE_LABEL, Pod
from hyperpod_autoscaler.domain.objects import ClusterObjects, parse_objects
from hyperpod_autoscaler.domain.plan import Plan, PlanInput, PlanOptions

from ..packing import karpenter_ffd
from .report import Sample

DEMAND_EVERY_SECONDS = 60.0


def pending_pod_minutes(samples: Sequence[Sample]) -> float:
    """Pending pods integrated over cluster time (a step function between samples), in pod-minutes."""
    return sum(a.pending_pods * (b.t - a.t) / 60 for a, b in itertools.pairwise(samples))


def priced_over_time(points: Sequence[tuple[float, float]], end: float) -> float:
    """$ of an hourly cost that holds from each point's time to the next (the last one to ``end``)."""
    total = 0.0
    for (t, hourly), nxt in zip(points, [*(p[0] for p in points[1:]), end], strict=True):
        total += hourly * max(0.0, nxt - t) / 3600
    return total


def as_pending(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A pod's demand: the pod as if it were still to be placed (no node, phase Pending)."""
    doc = copy.deepcopy(dict(raw))
    (doc.setdefault("spec", {})).pop("nodeName", None)
    doc["status"] = {"phase": "Pending"}
    return doc


def live_pods(pods: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [as_pending(p) for p in pods if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]


def managed_types(objects: ClusterObjects, view: ClusterView, catalog: Catalog) -> list[InstanceType]:
    """The instance types some NodePool may launch: its HyperpodNodeClass's groups' types, narrowed by its
    ``node.kubernetes.io/instance-type`` In/NotIn requirements (what either packer may use)."""
    classes = {nc.name: nc for nc in objects.nodeclasses}
    names: set[str] = set()
    for pool in objects.nodepools:
        template = pool.spec.template.spec
        nc = classes.get(template.node_class_ref.name)
        if nc is None:
            continue
        allowed = {g.instance_type for name in nc.spec.instance_groups if (g := view.group(name)) is not None}
        for req in template.requirements:
            if req.key == INSTANCE_TYPE_LABEL and req.operator == "In":
                allowed &= set(req.values or [])
            elif req.key == INSTANCE_TYPE_LABEL and req.operator == "NotIn":
                allowed -= set(req.values or [])
        names |= allowed
    return [catalog[n] for n in sorted(names) if n in catalog]


@dataclass
class DemandTracker:
    """Samples the demand every ``DEMAND_EVERY_SECONDS`` of cluster time: its Karpenter-style hourly cost, and the pods
    present when that cost peaked."""

    points: list[tuple[float, float]] = field(default_factory=list)
    peak_hourly: float = -1.0
    peak_pods: list[dict[str, Any]] = field(default_factory=list)
    peak_t: float = 0.0
    _cache: dict[tuple[tuple[str, ...], ...], float] = field(default_factory=dict)

    def observe(self, t: float, pods: Sequence[Mapping[str, Any]], types: list[InstanceType]) -> None:
        docs = live_pods(pods)
        parsed = parse_objects(docs, strict=False, ignore_unknown_kinds=True).pods
        key = tuple(sorted(tuple(f"{k}={v}" for k, v in sorted(p.requests.items())) for p in parsed))
        hourly = self._cache.get(key)
        if hourly is None:
            hourly = karpenter_ffd(parsed, types)[0]
            self._cache[key] = hourly
        self.points.append((t, hourly))
        if hourly > self.peak_hourly:
            self.peak_hourly, self.peak_pods, self.peak_t = hourly, docs, t


def engine_plan(pods: list[Pod], objects: ClusterObjects, view: ClusterView, catalog: Catalog) -> Plan:
    """The product's engine on ``pods`` against the cluster in ``objects`` (its nodes and their pods)."""
    from hyperpod_autoscaler.domain.scheduling import schedule

    return schedule(PlanInput.from_objects(objects, view, catalog, pods), PlanOptions(time_budget_seconds=2.0))


def static_baseline_hourly(
    peak_pods: list[dict[str, Any]], objects: ClusterObjects, view: ClusterView, catalog: Catalog
) -> tuple[float, int]:
    """The hourly cost and size of the static cluster the engine plans for the peak's pods on an empty cluster."""
    empty = ClusterObjects(nodepools=objects.nodepools, nodeclasses=objects.nodeclasses, daemonsets=objects.daemonsets)
    pods = parse_objects(peak_pods, strict=False, ignore_unknown_kinds=True).pods
    plan = engine_plan(pods, empty, view, catalog)
    return sum(catalog[c.instance_type].price for c in plan.node_claims), len(plan.node_claims)


def unserved_reasons(
    unserved: Sequence[str], objects: ClusterObjects, view: ClusterView, catalog: Catalog
) -> list[dict[str, str]]:
    """Each pod never served, with the reason ``plan`` gives for it on the cluster as it is at the end (a pod the engine
    can place was waiting for capacity on its way when the run ended)."""
    wanted = set(unserved)
    pods = [p for p in objects.pending_pods if p.key in wanted]
    plan = engine_plan(pods, objects, view, catalog) if pods else None
    out = []
    for key in sorted(wanted):
        if plan is not None and key in plan.unschedulable:
            reason = plan.unschedulable[key]
        elif plan is not None and any(p.key == key for p in pods):
            reason = "schedulable: capacity for it was on its way when the run ended"
        else:
            reason = "gone before it was served"
        out.append({"pod": key, "reason": reason})
    return out
