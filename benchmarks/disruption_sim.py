"""A discrete-time cluster simulation over an Alibaba GPU trace window that drives the project's real core.

Every step (``step_seconds`` of simulated time):

1. pods whose deletion time falls in the step leave (their node's "last pod change" moves to now);
2. in-flight node claims whose provisioning delay has passed become Ready nodes; a replacement's old nodes are then
   drained (their pods go pending again: evictions);
3. pods whose creation time falls in the step arrive, pending;
4. pending pods are placed by ``domain.scheduling.schedule`` -- the function ``services.reconcile`` calls -- over the Ready
   nodes, the in-flight claims and new node claims (capped by the reconcile service's own ``decision_cap``); pods the
   plan puts on an existing node are bound there (the simulation plays kube-scheduler with the plan's assignment);
5. ``domain.disruption.plan_disruptions`` -- the function ``services.disruption`` calls -- decides which nodes go, with the
   NodePool's consolidationPolicy, consolidateAfter and budgets; a deletion drains the nodes at once (their pods go
   pending and step 4 runs again in the same step); a replacement is launched first and the old nodes are drained only
   when it is Ready (as the disruption service does), those nodes being ``busy`` meanwhile.

Nothing here decides placement or disruption: it only keeps the books (nodes, bindings, times) and measures.
"""

from __future__ import annotations

import bisect
import csv
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from hyperpod_autoscaler.domain.catalog import Catalog
from hyperpod_autoscaler.domain.disruption import (
    DEFAULT_MIN_SAVINGS_FRACTION,
    DisruptionInput,
    DisruptionSettings,
    plan_disruptions,
)
from hyperpod_autoscaler.domain.duration import parse_duration
from hyperpod_autoscaler.domain.hyperpod import ClusterView
from hyperpod_autoscaler.domain.k8s import (
    ARCH_LABEL,
    HOSTNAME_LABEL,
    HP_CLUSTER_LABEL,
    HP_COMPUTE_TYPE,
    HP_GROUP_LABEL,
    HP_HEALTH_LABEL,
    INSTANCE_TYPE_LABEL,
    OS_LABEL,
    ZONE_LABEL,
    Node,
    Pod,
)
from hyperpod_autoscaler.domain.karpenter import HyperpodNodeClass, NodePool
from hyperpod_autoscaler.domain.objects import ClusterObjects, parse_object
from hyperpod_autoscaler.domain.plan import InflightClaim, NodeClaim, PlanInput, PlanOptions
from hyperpod_autoscaler.domain.quantity import format_bytes, format_cpu
from hyperpod_autoscaler.domain.resources import CPU, GPU, MEMORY, PODS
from hyperpod_autoscaler.domain.scheduling import schedule
from hyperpod_autoscaler.services.reconcile import (
    ReconcileSettings,
    committed_nodes,
    decision_cap,
    managed_groups,
)

from .packing_workloads import ALIBABA, hyperpod_objects, trace_catalog_groups, trace_pod

DAY = 86_400
BASE_EPOCH = 1_800_000_000.0
"""Simulated t=0 as a Unix time (2027-01-15 08:00 UTC): node creation timestamps and ``now`` are BASE_EPOCH + t."""
DEFAULT_TRACE = ALIBABA / "openb_pod_list_default.csv"
CLUSTER = "bench"

Policy = Literal["WhenEmptyOrUnderutilized", "WhenEmpty", "Static"]


# --- the trace window ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TracePod:
    name: str
    start: int
    """Seconds from the window start (pods alive when the window opens start at 0)."""
    end: int
    """Seconds from the window start, clipped to the window (no deletion time: the window's end)."""
    row: dict[str, str]


@dataclass(frozen=True)
class Window:
    path: Path
    kind: str
    trace_start: int
    """The window's start in trace seconds."""
    seconds: int
    pods: list[TracePod]
    in_window: int
    """Pods that overlap the window before subsampling."""
    fraction: float

    def describe(self) -> str:
        return (
            f"{self.path.name}, {self.kind} {self.seconds / 3600:g} h window starting at trace second {self.trace_start}: "
            f"{self.in_window} pods overlap it, {len(self.pods)} simulated (fraction {self.fraction:g})"
        )


def load_window(
    path: Path = DEFAULT_TRACE,
    *,
    kind: Literal["busiest", "first"] = "busiest",
    seconds: int = DAY,
    fraction: float = 1.0,
) -> Window:
    """The trace's pods that overlap a window of ``seconds``: the one with the most pod creations ("busiest") or the one
    opening at the first creation ("first"). ``fraction`` keeps an evenly spread share of them (deterministic)."""
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    created = sorted(int(r["creation_time"]) for r in rows)
    if kind == "first":
        start = created[0]
    else:
        best, start = -1, created[0]
        for i, c in enumerate(created):
            n = bisect.bisect_left(created, c + seconds) - i
            if n > best:
                best, start = n, c
    inside: list[TracePod] = []
    for r in sorted(rows, key=lambda r: (int(r["creation_time"]), r["name"])):
        c = int(r["creation_time"])
        d = int(r["deletion_time"]) if r["deletion_time"] else None
        if c >= start + seconds or (d is not None and d <= start):
            continue
        s = max(0, c - start)
        e = seconds if d is None else min(seconds, d - start)
        if e > s:
            inside.append(TracePod(r["name"], s, e, r))
    kept = [p for i, p in enumerate(inside) if int((i + 1) * fraction) > int(i * fraction)]
    return Window(path, kind, start, seconds, kept, len(inside), fraction)


# --- configuration and results -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SimConfig:
    policy: Policy
    consolidate_after: str = "5m"
    budgets: tuple[dict[str, Any], ...] = ({"nodes": "10%"},)
    step_seconds: int = 60
    provision_delay_seconds: int = 0
    """0: a claimed node is Ready in the step it is claimed; else it is Ready this long after (and is paid from the claim)."""
    plan_budget_seconds: float = 0.05
    """The scale-up plan's improvement time (PlanOptions.time_budget_seconds)."""
    disruption_budget_seconds: float = 0.02
    """Each consolidation simulation's improvement time (DisruptionSettings.simulation_budget_seconds)."""
    min_savings_fraction: float = DEFAULT_MIN_SAVINGS_FRACTION
    max_nodes_per_decision: int = 20
    max_nodes_total: int = 2000
    static_groups: tuple[tuple[str, int], ...] = ()
    """For the Static policy: (instance group, nodes) held Ready for the whole window; no scale-up, no disruption."""


@dataclass
class SimResult:
    policy: str
    window_seconds: int
    pods: int
    node_hours: float = 0.0
    cost: float = 0.0
    nodes_created: int = 0
    node_removals: dict[str, int] = field(default_factory=dict)
    replacements: int = 0
    pod_evictions: int = 0
    pods_never_served: int = 0
    pods_pending_at_end: int = 0
    pending_pod_seconds: float = 0.0
    """Sum over steps of pending pods x step: how long pods waited for capacity (instant provisioning: ~0)."""
    recreations_within_consolidate_after: int = 0
    """Nodes launched in an instance group within consolidateAfter after a node of that group was disrupted, for any
    reason (mostly new pods arriving: demand, not the autoscaler)."""
    recreations_for_running_pods: int = 0
    """Of those, the ones launched for a pod that was already running somewhere when that node went (not new demand:
    later consolidation steps, e.g. a replacement decided once another node's consolidateAfter passed)."""
    flaps: int = 0
    """Of those, the ones launched for a pod that the disruption itself evicted: the disruption undone. Must be 0."""
    peak_nodes: int = 0
    peak_by_group: dict[str, int] = field(default_factory=dict)
    plan_calls: int = 0
    disruption_calls: int = 0
    unschedulable_reasons: dict[str, int] = field(default_factory=dict)
    never_served: list[str] = field(default_factory=list)
    """The keys of the pods never bound (left or still pending at the end)."""
    seconds: float = 0.0

    @property
    def removals(self) -> int:
        return sum(self.node_removals.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "pods": self.pods,
            "nodeHours": round(self.node_hours, 3),
            "cost": round(self.cost, 2),
            "nodesCreated": self.nodes_created,
            "nodeRemovals": self.removals,
            "nodeRemovalsByReason": dict(sorted(self.node_removals.items())),
            "replacements": self.replacements,
            "podEvictions": self.pod_evictions,
            "podsNeverServed": self.pods_never_served,
            "podsPendingAtEnd": self.pods_pending_at_end,
            "pendingPodMinutes": round(self.pending_pod_seconds / 60, 1),
            "recreationsWithinConsolidateAfter": self.recreations_within_consolidate_after,
            "recreationsForRunningPods": self.recreations_for_running_pods,
            "flaps": self.flaps,
            "peakNodes": self.peak_nodes,
            "peakByGroup": dict(sorted(self.peak_by_group.items())),
            "planCalls": self.plan_calls,
            "disruptionCalls": self.disruption_calls,
            "seconds": round(self.seconds, 2),
        }


# --- the cluster's books -------------------------------------------------------------------------------------------------


def _iso(t: float) -> str:
    return datetime.fromtimestamp(BASE_EPOCH + t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _quantities(resources: Any) -> dict[str, str]:
    out = {"cpu": format_cpu(resources.get(CPU, 0)), "memory": format_bytes(resources.get(MEMORY, 0))}
    out["pods"] = str(resources.get(PODS, 110))
    if resources.get(GPU, 0):
        out["nvidia.com/gpu"] = str(resources[GPU])
    return out


def node_object(name: str, group: str, instance_type: str, zone: str, catalog: Catalog, created: float) -> Node:
    """The Node HyperPod registers for an instance of ``group`` (its labels, the catalog's capacity and allocatable)."""
    itype = catalog[instance_type]
    doc = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "creationTimestamp": _iso(created),
            "labels": {
                HOSTNAME_LABEL: name,
                ARCH_LABEL: itype.arch,
                OS_LABEL: "linux",
                INSTANCE_TYPE_LABEL: instance_type,
                ZONE_LABEL: zone,
                HP_COMPUTE_TYPE: "hyperpod",
                HP_GROUP_LABEL: group,
                HP_CLUSTER_LABEL: CLUSTER,
                HP_HEALTH_LABEL: "Schedulable",
            },
        },
        "spec": {"providerID": f"aws:///{zone}/{name}"},
        "status": {
            "capacity": _quantities(itype.capacity),
            "allocatable": _quantities(itype.allocatable),
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
        },
    }
    return parse_object(doc)  # type: ignore[no-any-return]


@dataclass
class _Node:
    node: Node
    group: str
    price: float
    launched: float
    removed: float | None = None
    pods: set[str] = field(default_factory=set)
    since: float = 0.0
    """When its set of pods last changed (what services.disruption.track_activity records)."""


@dataclass
class _Inflight:
    claim: InflightClaim
    ready_at: float
    launched: float
    price: float
    replaces: tuple[str, ...] = ()


@dataclass
class _Removal:
    group: str
    at: float
    evicted: frozenset[str]
    running: frozenset[str]
    """Every pod bound anywhere when the node went (capacity asked for these again is not new demand)."""


def with_disruption(pool: NodePool, policy: str, consolidate_after: str, budgets: Iterable[dict[str, Any]]) -> NodePool:
    doc = pool.model_dump(by_alias=True, exclude_none=True)
    doc["spec"]["disruption"] = {
        "consolidationPolicy": policy,
        "consolidateAfter": consolidate_after,
        "budgets": [dict(b) for b in budgets],
    }
    return parse_object(doc)  # type: ignore[no-any-return]


class Simulation:
    def __init__(self, window: Window, cfg: SimConfig, catalog: Catalog | None = None) -> None:
        self.window = window
        self.cfg = cfg
        self.catalog = catalog or Catalog.builtin()
        self.groups = trace_catalog_groups(self.catalog)
        view, nodeclasses, nodepools = hyperpod_objects(self.groups)
        self.describe = {
            "ClusterName": view.name,
            "ClusterArn": view.arn,
            "NodeProvisioningMode": view.node_provisioning_mode,
            "InstanceGroups": [dict(g.raw) for g in view.instance_groups],
        }
        policy = "WhenEmpty" if cfg.policy == "Static" else cfg.policy
        self.nodeclasses: list[HyperpodNodeClass] = nodeclasses
        self.nodepools = [with_disruption(p, policy, cfg.consolidate_after, cfg.budgets) for p in nodepools]
        self.consolidate_after = parse_duration(cfg.consolidate_after) or 0.0
        self.managed = managed_groups(ClusterObjects(nodeclasses=self.nodeclasses))
        self.reconcile = ReconcileSettings(
            cluster_name=CLUSTER,
            max_nodes_per_decision=cfg.max_nodes_per_decision,
            max_nodes_total=cfg.max_nodes_total,
        )
        self.disruption = DisruptionSettings(
            min_savings_fraction=cfg.min_savings_fraction, simulation_budget_seconds=cfg.disruption_budget_seconds
        )
        self.pod_objects: dict[str, Pod] = {}
        for tp in window.pods:
            pod: Pod = parse_object(trace_pod(tp.row))
            self.pod_objects[pod.key] = pod
        self.pending: set[str] = set()
        self.bound: dict[str, tuple[str, Pod]] = {}
        """Pod key -> (node name, the pod as bound there)."""
        self.served: set[str] = set()
        self.nodes: dict[str, _Node] = {}
        self.inflight: dict[str, _Inflight] = {}
        self.busy: set[str] = set()
        self.removals: list[_Removal] = []
        self.serial = 0
        self.result = SimResult(cfg.policy, window.seconds, len(window.pods))

    # --- books ---------------------------------------------------------------------------------------------------

    def _live(self) -> list[_Node]:
        return [n for n in self.nodes.values() if n.removed is None]

    def _view(self) -> ClusterView:
        current: dict[str, int] = {}
        for n in self._live():
            current[n.group] = current.get(n.group, 0) + 1
        coming: dict[str, int] = {}
        for c in self.inflight.values():
            coming[c.claim.instance_group] = coming.get(c.claim.instance_group, 0) + c.claim.count
        groups = []
        for raw in self.describe["InstanceGroups"]:
            name = raw["InstanceGroupName"]
            cur = current.get(name, 0)
            groups.append({**raw, "CurrentCount": cur, "TargetCount": cur + coming.get(name, 0)})
        return ClusterView.from_describe_cluster({**self.describe, "InstanceGroups": groups})

    def _bound_pods(self) -> list[Pod]:
        return [p for _, p in self.bound.values()]

    def _bind(self, key: str, node_name: str, t: float) -> None:
        node = self.nodes[node_name]
        assert node.removed is None, f"{key} placed on removed node {node_name}"
        pod = self.pod_objects[key]
        bound = pod.model_copy(
            update={
                "spec": pod.spec.model_copy(update={"node_name": node_name}),
                "status": pod.status.model_copy(update={"phase": "Running", "conditions": []}),
            }
        )
        self.pending.discard(key)
        self.bound[key] = (node_name, bound)
        self.served.add(key)
        node.pods.add(key)
        node.since = t

    def _unbind(self, key: str, t: float) -> None:
        node_name, _ = self.bound.pop(key)
        node = self.nodes[node_name]
        node.pods.discard(key)
        node.since = t

    def _new_node(self, group: str, itype: str, zone: str, launched: float, t: float) -> _Node:
        self.serial += 1
        name = f"hyperpod-i-{self.serial:06d}"
        node = _Node(
            node_object(name, group, itype, zone, self.catalog, t),
            group,
            self.catalog[itype].price,
            launched,
            since=t,
        )
        self.nodes[name] = node
        return node

    def _launch(self, claim: NodeClaim, t: float, replaces: tuple[str, ...] = ()) -> _Node | None:
        """A node claim: a Ready node now (instant provisioning) or an in-flight claim. Returns the node if Ready."""
        self.result.nodes_created += 1
        pods = frozenset(claim.pods)
        recent = [
            r for r in self.removals if r.group == claim.instance_group and r.at <= t <= r.at + self.consolidate_after
        ]
        if recent:
            self.result.recreations_within_consolidate_after += 1
            if any(pods & r.running for r in recent):
                self.result.recreations_for_running_pods += 1
            if any(pods & r.evicted for r in recent):
                self.result.flaps += 1
        if self.cfg.provision_delay_seconds <= 0:
            node = self._new_node(claim.instance_group, claim.instance_type, claim.zone, t, t)
            if not replaces:
                for key in claim.pods:
                    if key in self.pending:
                        self._bind(key, node.node.name, t)
            return node
        self.serial += 1
        cid = f"sim-{self.serial:06d}"
        self.inflight[cid] = _Inflight(
            InflightClaim(
                cid,
                claim.nodepool,
                claim.instance_group,
                claim.instance_type,
                claim.zone,
                1,
                tuple(k for k in claim.pods if k in self.pending),
            ),
            t + self.cfg.provision_delay_seconds,
            t,
            self.catalog[claim.instance_type].price,
            replaces,
        )
        return None

    def _remove(self, name: str, t: float, reason: str) -> None:
        node = self.nodes[name]
        running = frozenset(self.bound)
        evicted = sorted(node.pods)
        for key in evicted:
            self._unbind(key, t)
            self.pending.add(key)
        node.removed = t
        self.busy.discard(name)
        self.result.pod_evictions += len(evicted)
        self.result.node_removals[reason] = self.result.node_removals.get(reason, 0) + 1
        self.removals.append(_Removal(node.group, t, frozenset(evicted), running))

    # --- the core ------------------------------------------------------------------------------------------------

    def _place(self, t: float) -> None:
        if not self.pending:
            return
        view = self._view()
        inflight = [c.claim for c in self.inflight.values()]
        cap = (
            0
            if self.cfg.policy == "Static"
            else decision_cap(self.reconcile, committed_nodes(view, self.managed, inflight))
        )
        plan = schedule(
            PlanInput(
                pods=[self.pod_objects[k] for k in sorted(self.pending)],
                nodes=[n.node for n in self._live()],
                bound_pods=self._bound_pods(),
                nodepools=self.nodepools,
                nodeclasses=self.nodeclasses,
                cluster=view,
                catalog=self.catalog,
                inflight=inflight,
            ),
            PlanOptions(allow_new_nodes=cap > 0, max_new_nodes=cap, time_budget_seconds=self.cfg.plan_budget_seconds),
        )
        self.result.plan_calls += 1
        for target, keys in plan.existing_nodes.items():
            if target.startswith("inflight:"):
                continue  # waits for its node
            for key in keys:
                self._bind(key, target, t)
        for claim in plan.node_claims:
            self._launch(claim, t)
        for reason in plan.unschedulable.values():
            short = reason.split(":")[0][:80]
            self.result.unschedulable_reasons[short] = self.result.unschedulable_reasons.get(short, 0) + 1

    def _land(self, t: float) -> None:
        for cid, c in sorted(self.inflight.items()):
            if c.ready_at > t:
                continue
            del self.inflight[cid]
            self._new_node(c.claim.instance_group, c.claim.instance_type, c.claim.zone, c.launched, t)
            for name in c.replaces:  # the replacement is Ready: the old nodes are drained now
                if self.nodes[name].removed is None:
                    self._remove(name, t, "Underutilized")

    def _disrupt(self, t: float) -> bool:
        live = self._live()
        objects = ClusterObjects(
            pods=[self.pod_objects[k] for k in sorted(self.pending)] + self._bound_pods(),
            nodes=[n.node for n in live],
            nodepools=self.nodepools,
            nodeclasses=self.nodeclasses,
        )
        plan = plan_disruptions(
            DisruptionInput(
                objects=objects,
                cluster=self._view(),
                catalog=self.catalog,
                now=BASE_EPOCH + t,
                last_pod_change={n.node.name: BASE_EPOCH + n.since for n in live},
                busy=set(self.busy),
            ),
            self.disruption,
        )
        self.result.disruption_calls += 1
        acted = False
        for d in plan.decisions:
            acted = True
            if d.replacement is None:
                for name in d.nodes:
                    self._remove(name, t, d.reason)
                continue
            self.result.replacements += 1
            launched = [self._launch(d.replacement, t, replaces=tuple(d.nodes)) for _ in range(d.replacement_count)]
            if launched[0] is None:
                self.busy.update(d.nodes)  # drained when the replacement is Ready
                continue
            for name in d.nodes:
                self._remove(name, t, d.reason)
        return acted

    # --- the loop ------------------------------------------------------------------------------------------------

    def lifetimes(self) -> dict[str, tuple[int, int]]:
        """Pod key -> (the step it arrives in, the step it leaves in): alive in steps a <= k < d."""
        step = self.cfg.step_seconds
        steps = -(-self.window.seconds // step)
        out: dict[str, tuple[int, int]] = {}
        for tp, key in zip(self.window.pods, self.pod_objects, strict=True):
            a = tp.start // step
            out[key] = (a, max(tp.end // step, a + 1) if tp.end < self.window.seconds else steps)
        return out

    def busiest_step(self) -> tuple[int, list[str]]:
        """The step whose live pods request the most GPUs (then CPU, then the most pods), and those pods."""
        lives = self.lifetimes()
        steps = max((d for _, d in lives.values()), default=0)
        asks = {key: self.pod_objects[key].requests for key in lives}
        best: tuple[tuple[int, int, int], int] | None = None
        for k in range(steps):
            alive = [key for key, (a, d) in lives.items() if a <= k < d]
            gpu = sum(asks[key].get(GPU, 0) for key in alive)
            cpu = sum(asks[key].get(CPU, 0) for key in alive)
            score = (gpu, cpu, len(alive))
            if best is None or score > best[0]:
                best = (score, k)
        if best is None:
            return 0, []
        k = best[1]
        return k, sorted(key for key, (a, d) in lives.items() if a <= k < d)

    def fresh_plan(self, keys: Iterable[str]) -> dict[str, int]:
        """Instance group -> nodes that ``schedule`` launches for ``keys`` on an empty cluster (no decision cap)."""
        pods = [self.pod_objects[k] for k in sorted(keys)]
        if not pods:
            return {}
        plan = schedule(
            PlanInput(
                pods=pods,
                nodes=[],
                bound_pods=[],
                nodepools=self.nodepools,
                nodeclasses=self.nodeclasses,
                cluster=self._view(),
                catalog=self.catalog,
            ),
            PlanOptions(max_new_nodes=len(pods), time_budget_seconds=self.cfg.plan_budget_seconds),
        )
        out: dict[str, int] = {}
        for claim in plan.node_claims:
            out[claim.instance_group] = out.get(claim.instance_group, 0) + 1
        return out

    def run(self) -> SimResult:
        started = time.perf_counter()
        step = self.cfg.step_seconds
        steps = -(-self.window.seconds // step)
        end = float(self.window.seconds)
        arrivals: dict[int, list[str]] = {}
        departures: dict[int, list[str]] = {}
        for key, (a, d) in self.lifetimes().items():
            arrivals.setdefault(a, []).append(key)
            departures.setdefault(d, []).append(key)
        gone: set[str] = set()
        for name, count in self.cfg.static_groups:
            itype, zone = self.groups[name]
            for _ in range(count):
                self._new_node(name, itype, zone, 0.0, 0.0)
        for k in range(steps):
            t = float(k * step)
            for key in departures.get(k, []):
                if key in self.bound:
                    self._unbind(key, t)
                self.pending.discard(key)
                gone.add(key)
                if key not in self.served:
                    self.result.never_served.append(key)
            self._land(t)
            self.pending.update(arrivals.get(k, []))
            self._place(t)
            if self.cfg.policy != "Static" and self._disrupt(t):
                self._place(t)
            self.result.pending_pod_seconds += len(self.pending) * step
            per_group: dict[str, int] = {}
            for n in self._live():
                per_group[n.group] = per_group.get(n.group, 0) + 1
            for c in self.inflight.values():
                per_group[c.claim.instance_group] = per_group.get(c.claim.instance_group, 0) + 1
            self.result.peak_nodes = max(self.result.peak_nodes, sum(per_group.values()))
            for g, count in per_group.items():
                self.result.peak_by_group[g] = max(self.result.peak_by_group.get(g, 0), count)
        self.result.pods_pending_at_end = len(self.pending)
        self.result.never_served += [k for k in self.pod_objects if k not in gone and k not in self.served]
        self.result.pods_never_served = len(self.result.never_served)
        for n in self.nodes.values():
            hours = ((n.removed if n.removed is not None else end) - n.launched) / 3600
            self.result.node_hours += hours
            self.result.cost += hours * n.price
        for c in self.inflight.values():
            hours = (end - c.launched) / 3600
            self.result.node_hours += hours
            self.result.cost += hours * c.price
        self.result.seconds = time.perf_counter() - started
        return self.result


def simulate(window: Window, cfg: SimConfig, catalog: Catalog | None = None) -> SimResult:
    return Simulation(window, cfg, catalog).run()


def static_sizing(*runs: SimResult) -> tuple[tuple[str, int], ...]:
    """Per instance group, the most nodes any of ``runs`` held (Ready or in flight) at one step."""
    out: dict[str, int] = {}
    for r in runs:
        for g, n in r.peak_by_group.items():
            out[g] = max(out.get(g, 0), n)
    return tuple(sorted(out.items()))


def _merge(*sizings: Iterable[tuple[str, int]] | dict[str, int]) -> tuple[tuple[str, int], ...]:
    out: dict[str, int] = {}
    for sizing in sizings:
        for g, n in sizing.items() if isinstance(sizing, dict) else sizing:
            out[g] = max(out.get(g, 0), n)
    return tuple(sorted((g, n) for g, n in out.items() if n > 0))


@dataclass
class Comparison:
    window: Window
    consolidation: SimResult
    when_empty: SimResult
    static: SimResult
    static_groups: tuple[tuple[str, int], ...]
    static_sized_from: str


MAX_STATIC_GROWTH = 10


def static_cluster(
    window: Window, base: SimConfig, runs: Iterable[SimResult], catalog: Catalog
) -> tuple[SimResult, tuple[tuple[str, int], ...], str]:
    """A static cluster that really serves the window's peak, and its run.

    1. Per instance group, the larger of: the most nodes either autoscaled run held at once (each group's peak, maybe
       at different times), and the nodes ``schedule`` launches for the pods alive at the busiest step (the most GPUs,
       then CPUs, requested at once) packed from scratch. The autoscaled runs' peaks alone are not enough: a static
       cluster sees the same arrivals but never re-packs, so its fragmentation differs and a pod can find no room.
    2. Run it; while pods are never served, grow it by the nodes ``schedule`` launches for those pods alone, and run it
       again (at most ``MAX_STATIC_GROWTH`` times; a pod no plan can place stops the growth)."""
    probe = Simulation(window, _with(base, policy="Static"), catalog)
    step, alive = probe.busiest_step()
    sizing = _merge(static_sizing(*runs), probe.fresh_plan(alive))
    parts = [
        "the per-group peak of both autoscaled runs and a fresh plan of the "
        f"{len(alive)} pods alive at the busiest step (t={step * base.step_seconds} s)"
    ]
    static = simulate(window, _with(base, policy="Static", static_groups=sizing), catalog)
    for _ in range(MAX_STATIC_GROWTH):
        if not static.never_served:
            break
        extra = probe.fresh_plan(static.never_served)
        if not extra:
            break
        grown = dict(sizing)
        for g, n in extra.items():
            grown[g] = grown.get(g, 0) + n
        parts.append(f"+ {dict(sorted(extra.items()))} for {len(static.never_served)} pod(s) it left unserved")
        sizing = _merge(grown)
        static = simulate(window, _with(base, policy="Static", static_groups=sizing), catalog)
    return static, sizing, " ".join(parts)


def compare(window: Window, base: SimConfig, catalog: Catalog | None = None) -> Comparison:
    """The three runs: WhenEmptyOrUnderutilized, WhenEmpty, and a static cluster sized to serve the peak
    (``static_cluster``)."""
    catalog = catalog or Catalog.builtin()
    cons = simulate(window, _with(base, policy="WhenEmptyOrUnderutilized"), catalog)
    empty = simulate(window, _with(base, policy="WhenEmpty"), catalog)
    static, sizing, source = static_cluster(window, base, (cons, empty), catalog)
    return Comparison(window, cons, empty, static, sizing, source)


def _with(cfg: SimConfig, **changes: Any) -> SimConfig:
    from dataclasses import replace

    return replace(cfg, **changes)
