"""Which nodes to remove, and why the others stay: Karpenter's disruption rules over HyperPod instance groups, pure.

Order of methods (as Karpenter): **Expired** (forceful: ignores budgets and do-not-disrupt; the drain still honours PDBs
and the terminationGracePeriod), **Drifted** (the instance group left the NodePool's HyperpodNodeClass, or the node no
longer satisfies the NodePool's requirements), **Empty** (no pods but DaemonSet ones, for consolidateAfter), then
**Underutilized** consolidation under ``WhenEmptyOrUnderutilized``: first several nodes at once (the largest prefix of
the cheapest-to-move candidates whose pods fit on the remaining nodes, plus at most one cheaper new node), then single
nodes. Every move is checked by the same packing simulation that scale-up uses (``domain.scheduling.schedule``).

Guards: disruption budgets per NodePool (count or percent rounded up, UTC cron windows, reasons; the most restrictive
active budget wins; nodes NotReady or already being disrupted count against it, nodes not yet initialized are left out);
``karpenter.sh/do-not-disrupt`` on a node or any of its active pods; PDBs (every pod of a move must be evictable
together; a pod under two PDBs is not); pods without a controller (not moved except on expiry); nodes HyperPod is
repairing; an instance group's MinCount; pending pods that fit now keep their room; a replacement is never the same
instance type and must save at least ``min_savings_fraction`` of the removed nodes' price (no flapping on small
differences). No churn: an empty node a move fills is paid like a replacement, by the nodes whose pods it takes (in a
multi-node move too, not by the saving of the others); pods never move onto a node within its consolidateAfter window or
not Ready, and a move's destinations are reserved for the rest of the pass.

Shape (Karpenter's disruption controller): ``_Pass`` screens every managed node into candidates per reason, then one
method per reason computes decisions over the one shared simulation state; why a node stays is a message and a
``KeptCode``. ``tests/conformance/disruption`` checks the rules against Karpenter's own tests (docs/disruption.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from .catalog import Catalog
from .cron import window_active
from .duration import parse_duration
from .gangs import Reservation, consumed_request, reservations
from .hyperpod import ClusterView
from .k8s import DO_NOT_DISRUPT, NODEPOOL_LABEL, Node, Pod, PodDisruptionBudget
from .karpenter import NodePool
from .objects import ClusterObjects
from .plan import InflightClaim, NodeClaim, PlanInput, PlanOptions
from .requirements import Requirement

INITIALIZED_LABEL = "karpenter.sh/initialized"
PASS_CLAIM = "disruption-pass-"
"""Claim id prefix of the replacements decided earlier in the same pass, as in-flight capacity in its simulations."""
"""Set by provision once the node is Ready (as Karpenter labels an initialized node)."""

Reason = Literal["Expired", "Drifted", "Empty", "Underutilized"]
VOLUNTARY: tuple[Reason, ...] = ("Drifted", "Empty", "Underutilized")

KeptCode = Literal[
    "Busy",
    "Protected",
    "Repairing",
    "NotReady",
    "DoNotDisrupt",
    "NoController",
    "DriftWaiting",
    "ConsolidationDisabled",
    "ConsolidateAfter",
    "EmptyWaiting",
    "NoCheaperFit",
    "Budget",
    "MinCount",
    "PodDisruptionBudget",
    "DoesNotFit",
    "FillsEmptyNode",
    "SameInstanceType",
    "SmallSaving",
    "DestinationSettling",
    "Destination",
    "PendingPodRoom",
    "OneDriftAtATime",
]
"""Why a node stays, as a code (for status, events and metrics); ``DisruptionPlan.kept`` has the message."""

DEFAULT_MIN_SAVINGS_FRACTION = 0.2
"""A replacement must cost at most 80% of what it replaces. Karpenter replaces for any saving, which churns GPU nodes (a
replacement costs a boot, image pulls and a drain) for a few percent."""


@dataclass(frozen=True)
class DisruptionSettings:
    min_savings_fraction: float = DEFAULT_MIN_SAVINGS_FRACTION
    max_multi_candidates: int = 50
    """Multi-node consolidation considers at most this many candidates at once (Karpenter: 100)."""
    simulation_budget_seconds: float = 0.2
    """Improvement time each packing simulation may use (a feasible answer comes first regardless)."""


@dataclass
class DisruptionInput:
    objects: ClusterObjects
    cluster: ClusterView
    catalog: Catalog
    now: float
    last_pod_change: dict[str, float] = field(default_factory=dict)
    """Per node: when its set of pods last changed (consolidateAfter counts from there). Missing: the node's creation."""
    busy: set[str] = field(default_factory=set)
    """Nodes already in a disruption (a running deprovision execution, a pending replacement): never in a second one."""
    protected: set[str] = field(default_factory=set)
    """Nodes that must not be disrupted now (e.g. a replacement that just came up for a decision not yet executed)."""
    unavailable_groups: dict[str, str] = field(default_factory=dict)
    """Instance groups in launch backoff (group -> why): no replacement is planned into them."""
    inflight: list[InflightClaim] = field(default_factory=list)
    """The provision claims launching now (reconcile's and earlier replacements), holding the pods they are for: the
    simulations count them, so an expired node's pod rides the claim already launching for it."""


@dataclass
class Decision:
    reason: Reason
    nodepool: str
    nodes: list[str]
    replacement: NodeClaim | None
    savings_per_hour: float
    pods: int
    message: str
    destinations: list[str] = field(default_factory=list)
    """Existing nodes the moved pods go to: reserved for the rest of the pass (no later decision removes them)."""
    replacement_count: int = 1
    """How many nodes of the replacement's instance group are launched (several only for drift)."""

    @property
    def key(self) -> str:
        return f"{self.reason}:{','.join(sorted(self.nodes))}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "nodePool": self.nodepool,
            "nodes": list(self.nodes),
            "replacement": self.replacement.to_contract() | {"count": self.replacement_count}
            if self.replacement
            else None,
            "savingsPerHour": round(self.savings_per_hour, 4),
            "pods": self.pods,
            "message": self.message,
        }


@dataclass
class DisruptionPlan:
    decisions: list[Decision] = field(default_factory=list)
    kept: dict[str, str] = field(default_factory=dict)
    """Node -> why it stays."""
    kept_codes: dict[str, KeptCode] = field(default_factory=dict)
    """Node -> why it stays, as a code."""
    allowed: dict[str, dict[str, int]] = field(default_factory=dict)
    """NodePool -> reason -> disruptions its budgets allow now."""
    eligible: dict[str, int] = field(default_factory=dict)
    """Reason -> candidate nodes."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "decisions": [d.to_dict() for d in self.decisions],
            "kept": dict(sorted(self.kept.items())),
            "allowedDisruptions": self.allowed,
            "eligible": self.eligible,
        }


# --- what a node is ------------------------------------------------------------------------------------------------------


def _protects(value: str | None, age: float | None) -> bool:
    """``karpenter.sh/do-not-disrupt``: "true" protects; a duration protects for that long (``age`` counts from the pod's
    start); any other value (an invalid one included) does not protect."""
    if value is None:
        return False
    text = value.strip().lower()
    if text == "true":
        return True
    try:
        seconds = parse_duration(value)
    except ValueError:
        return False
    if seconds is None:
        return True
    return age is None or age < seconds


def _is_terminating(p: Pod) -> bool:
    return p.metadata.deletion_timestamp is not None


def _is_active(p: Pod) -> bool:
    """Neither finished nor being deleted: its do-not-disrupt annotation counts (DaemonSet and mirror pods too)."""
    return not p.is_terminal and not _is_terminating(p)


def _is_mirror(p: Pod) -> bool:
    return p.owner_kind == "Node"


def _is_reschedulable(p: Pod) -> bool:
    """A pod that disrupting its node moves (Karpenter's pod.IsReschedulable): active or a terminating StatefulSet pod
    (it comes back under the same name), not a DaemonSet's or a mirror pod."""
    if p.is_terminal or p.is_daemonset_pod or _is_mirror(p):
        return False
    return not _is_terminating(p) or p.owner_kind == "StatefulSet"


def _is_evictable(p: Pod) -> bool:
    """A pod the Eviction API is asked about (PDBs apply): active and not a mirror pod (those cannot be evicted)."""
    return _is_active(p) and not _is_mirror(p)


def _started(p: Pod) -> float | None:
    ts = p.status.start_time or p.metadata.creation_timestamp
    return ts.timestamp() if ts is not None else None


def _initialized(node: Node) -> bool:
    """False for a node provision has labelled with its NodePool on registration but not yet marked initialized (it has
    not been Ready): Karpenter's uninitialized NodeClaim."""
    if node.is_ready or NODEPOOL_LABEL not in node.labels:
        return True
    return node.labels.get(INITIALIZED_LABEL) == "true"


def last_pod_change_from_pods(objects: ClusterObjects) -> dict[str, float]:
    """Per node, when its newest pod arrived (PodScheduled's transition, else its start, else its creation): what the
    deployed function learns from its activity records, for a one-off run over a snapshot (the ``disruption`` command).
    A pod that left is not seen, so a node that just lost pods looks settled since its remaining pods arrived."""
    out: dict[str, float] = {}
    for p in objects.bound_pods:
        scheduled = next((c.last_transition_time for c in p.status.conditions if c.type == "PodScheduled"), None)
        ts = scheduled or p.status.start_time or p.metadata.creation_timestamp
        if ts is not None and p.spec.node_name:
            out[p.spec.node_name] = max(out.get(p.spec.node_name, 0.0), ts.timestamp())
    return out


def _created(obj: Node | Pod) -> float | None:
    ts = obj.metadata.creation_timestamp
    return ts.timestamp() if ts is not None else None


def nodepool_of(node: Node, pools: list[NodePool], group_pools: dict[str, NodePool]) -> NodePool | None:
    """The NodePool named by the node's ``karpenter.sh/nodepool`` label (None if no such NodePool exists); a node without
    the label belongs to the one NodePool whose HyperpodNodeClass lists its instance group, if exactly one does."""
    name = node.labels.get(NODEPOOL_LABEL)
    if name:
        return next((p for p in pools if p.name == name), None)
    group = node.instance_group
    return group_pools.get(group) if group else None


def pools_by_group(objects: ClusterObjects) -> dict[str, list[NodePool]]:
    """Instance group -> the NodePools whose HyperpodNodeClass lists it, in the order of ``objects.nodepools``."""
    classes = {nc.metadata.name: nc for nc in objects.nodeclasses}
    users: dict[str, list[NodePool]] = {}
    for pool in objects.nodepools:
        nc = classes.get(pool.spec.template.spec.node_class_ref.name)
        for g in nc.spec.instance_groups if nc is not None else []:
            users.setdefault(g, []).append(pool)
    return users


ADOPT_AFTER_SECONDS = 120.0
"""How long a HyperPod node of a NodePool's group may stay without the ``karpenter.sh/nodepool`` label before the
disruption pass writes it: longer than provision takes to label a node it launched (its next check after registration)."""


def adoptions(objects: ClusterObjects, now: float, after: float = ADOPT_AFTER_SECONDS) -> dict[str, str]:
    """Node -> the NodePool whose label the disruption pass writes on it: HyperPod nodes of a group some NodePool's
    HyperpodNodeClass lists, unlabelled for longer than ``after`` seconds.

    HyperPod brings such nodes up on its own: an instance it replaced after a failure (a new instance id, hence a new
    Node, without the labels the old one carried), or a group's nodes from before the NodePool existed. Unlabelled, a
    node of a group several NodePools share belongs to none of them and is never consolidated: it would bill for good.
    It goes to the first NodePool in Karpenter's order (weight, then name) whose requirements its labels satisfy, else
    the first in that order; the provision that launched a node, if one is still running, labels it again with its own."""
    users = pools_by_group(objects)
    out: dict[str, str] = {}
    for node in objects.nodes:
        group = node.instance_group
        created = _created(node)
        if NODEPOOL_LABEL in node.labels or node.hyperpod_instance_id is None or not group or group not in users:
            continue
        if created is None or now - created < after:
            continue
        ordered = sorted(users[group], key=lambda p: (-p.weight, p.name))
        fitting = [p for p in ordered if _unmet_requirement(node, p) is None]
        out[node.name] = (fitting or ordered)[0].name
    return out


def _unmet_requirement(node: Node, pool: NodePool) -> Requirement | None:
    """The first requirement of the pool's template that the node's labels fail; a label the node never had is not
    counted (HyperPod does not set every well-known label)."""
    for req in pool.spec.template.spec.requirements:
        r = Requirement.from_node_selector_requirement(req)
        if req.key in node.labels and not r.matches(node.labels):
            return r
    return None


def _group_pools(objects: ClusterObjects) -> dict[str, NodePool]:
    """Instance group -> the NodePool whose HyperpodNodeClass lists it, for groups that only one NodePool uses (a node of
    a shared group without its label could be any of them: it is judged against none)."""
    return {g: pools[0] for g, pools in pools_by_group(objects).items() if len(pools) == 1}


def drift_reason(node: Node, pool: NodePool, objects: ClusterObjects) -> str | None:
    """Why ``node`` no longer matches ``pool`` (its node class's groups, requirements, template labels and taints), or
    None. Only a node labelled with the NodePool is judged: an unlabelled one may have come up for another NodePool."""
    if node.labels.get(NODEPOOL_LABEL) != pool.name:
        return None
    classes = {nc.metadata.name: nc for nc in objects.nodeclasses}
    nc = classes.get(pool.spec.template.spec.node_class_ref.name)
    group = node.instance_group
    if nc is not None and group and group not in nc.spec.instance_groups:
        return f"instance group {group} is no longer in HyperpodNodeClass {nc.metadata.name}"
    unmet = _unmet_requirement(node, pool)
    if unmet is not None:
        return f"{unmet.key}={node.labels[unmet.key]} no longer satisfies the NodePool's requirement {unmet}"
    for key, value in pool.spec.template.metadata.labels.items():
        if node.labels.get(key) not in (None, value):
            return f"label {key}={node.labels.get(key)} differs from the NodePool template's {value}"
    for taint in pool.spec.template.spec.taints:
        if taint not in node.spec.taints:
            return f"the NodePool template's taint {taint.key}={taint.value or ''}:{taint.effect} is not on the node"
    return None


# --- budgets -------------------------------------------------------------------------------------------------------------


def allowed_disruptions(pool: NodePool, total: int, disrupting: int, reason: Reason, now: float) -> int:
    """The most restrictive active budget for ``reason``, minus the nodes already disrupting or NotReady."""
    limit: int | None = None
    for b in pool.spec.disruption.budgets:
        if b.reasons is not None and reason not in b.reasons:
            continue
        if b.schedule is not None:
            duration = parse_duration(b.duration) or 0.0
            if not window_active(b.schedule, duration, now):
                continue
        text = b.nodes.strip()
        n = math.ceil(int(text[:-1]) * total / 100) if text.endswith("%") else int(text)
        limit = n if limit is None else min(limit, n)
    if limit is None:
        limit = total
    return max(0, limit - disrupting)


# --- the simulation ------------------------------------------------------------------------------------------------------


@dataclass
class _Sim:
    inp: DisruptionInput
    settings: DisruptionSettings
    waiting: list[Pod] = field(default_factory=list)
    """Pending pods that fit on the existing nodes now: a move must leave room for them (the others do not matter)."""
    committed: list[InflightClaim] = field(default_factory=list)
    """The replacements of the decisions this pass has made so far (``launched``)."""
    booked: list[Reservation] = field(default_factory=list)
    """The room Provisioned requests hold on existing nodes: no moved pod may take it."""

    def __post_init__(self) -> None:
        objs = self.inp.objects
        self.booked = reservations(objs.pods, objs.provisioning_requests, objs.pod_templates)
        holders = {r.key for r in self.booked}
        # a pending pod of a booked request is already counted by its booking
        pending = [p for p in objs.pending_pods if f"{p.namespace}/{consumed_request(p)}" not in holders]
        if pending:
            plan = self._schedule(list(pending), set(), max_new_nodes=0)
            self.waiting = [p for p in pending if p.key not in plan.unschedulable]

    def fits_without(
        self, removed: set[str], max_new_nodes: int = 1
    ) -> tuple[bool, list[NodeClaim], dict[str, str], dict[str, list[str]], dict[str, str]]:
        """Whether the pods of ``removed`` nodes (and the pending pods that fit now) fit on the other Ready nodes and
        the claims launching (``DisruptionInput.inflight`` and the replacements decided earlier in this pass), plus at
        most ``max_new_nodes`` new ones. Returns (feasible, new claims, unschedulable pods, existing node -> the moved
        pods' keys it takes, the keys placed on a claim still launching -> its ``inflight:<claim id>``)."""
        moved = [
            p.model_copy(update={"spec": p.spec.model_copy(update={"node_name": None})})
            for p in self.inp.objects.bound_pods
            if p.spec.node_name in removed and _is_reschedulable(p)
        ]
        if not moved and not self.waiting:
            return True, [], {}, {}, {}
        plan = self._schedule(moved + self.waiting, removed, max_new_nodes)
        ok = not plan.unschedulable and len(plan.node_claims) <= max_new_nodes
        onto = {n: list(keys) for n, keys in plan.existing_nodes.items() if keys and not n.startswith("inflight:")}
        riding = {k: n for n, keys in plan.existing_nodes.items() if n.startswith("inflight:") for k in keys}
        return ok, plan.node_claims, plan.unschedulable, onto, riding

    def launched(self, decision: Decision) -> None:
        """Count a committed decision's replacement as capacity for the rest of the pass, holding the pods it is for:
        a later decision that re-simulates those pods (its removed nodes include the earlier ones) must not launch a
        second node for them."""
        claim = decision.replacement
        if claim is None:
            return
        self.committed.append(
            InflightClaim(
                claim_id=f"{PASS_CLAIM}{len(self.committed)}",
                nodepool=claim.nodepool,
                instance_group=claim.instance_group,
                instance_type=claim.instance_type,
                zone=claim.zone,
                count=decision.replacement_count,
                pods=tuple(claim.pods),
            )
        )

    def _schedule(self, pods: list[Pod], removed: set[str], max_new_nodes: int) -> Any:
        from .scheduling import schedule

        objs, busy = self.inp.objects, self.inp.busy
        # a node not Ready yet is no destination (upstream: pods never move onto an uninitialized node)
        nodes = [
            n if n.is_ready else n.model_copy(update={"spec": n.spec.model_copy(update={"unschedulable": True})})
            for n in objs.nodes
            if n.name not in removed and n.name not in busy
        ]
        stay = [p for p in objs.bound_pods if p.spec.node_name not in removed and p.spec.node_name not in busy]
        return schedule(
            PlanInput(
                pods=pods,
                nodes=nodes,
                bound_pods=stay,
                nodepools=objs.nodepools,
                nodeclasses=objs.nodeclasses,
                cluster=self.inp.cluster,
                catalog=self.inp.catalog,
                daemonsets=objs.daemonsets,
                inflight=[*self.inp.inflight, *self.committed],
                unavailable_groups=self.inp.unavailable_groups,
                reservations=self.booked,
            ),
            PlanOptions(max_new_nodes=max_new_nodes, time_budget_seconds=self.settings.simulation_budget_seconds),
        )


def _unpaid_revival(
    nodes: list[Node],
    revived: list[Node],
    onto: dict[str, list[str]],
    taken: set[str],
    pods_by_node: dict[str, list[Pod]],
    price: Callable[[Node], float],
    min_savings_fraction: float,
) -> str | None:
    """Why the idle nodes a move fills are not paid for by the nodes whose pods they take, or None.

    The removed nodes (this move's and those already taken in the pass) and the idle nodes are linked when a pod of the
    one goes to the other; in every connected group holding an idle node and a node of this move, the idle nodes must
    cost at most ``1 - min_savings_fraction`` of this move's nodes in it. Which of several similar pods lands where is the
    packer's choice, so the check is on such groups, not on single pods."""
    origin: dict[str, str] = {}
    for name in {n.name for n in nodes} | taken:
        for p in pods_by_node.get(name, []):
            if not p.is_daemonset_pod:
                origin[p.key] = name
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for r in revived:
        find(r.name)
        for key in onto.get(r.name, []):
            if key in origin:
                parent[find(origin[key])] = find(r.name)
    mine = {n.name: n for n in nodes}
    groups: dict[str, tuple[list[Node], list[Node]]] = {}
    for r in revived:
        groups.setdefault(find(r.name), ([], []))[1].append(r)
    for name, n in mine.items():
        root = find(name)
        if root in groups:
            groups[root][0].append(n)
    for own, filled in groups.values():
        if not own:
            continue  # filled only by pods of nodes taken earlier in the pass: charged to the move as a whole above
        paid = sum(price(n) for n in own)
        cost = sum(price(r) for r in filled)
        if cost > paid * (1 - min_savings_fraction):
            return (
                f"the pods of {', '.join(n.name for n in own)} would keep the empty node(s) "
                f"{', '.join(r.name for r in filled)} "
                f"({cost:.2f}/h): not {int(min_savings_fraction * 100)}% cheaper than {paid:.2f}/h"
            )
    return None


def _blocker(node: Node, pods: list[Pod], age: float | None, now: float) -> str | None:
    """Why ``node`` cannot be disrupted at all (do-not-disrupt on it or on an active pod, DaemonSet and mirror pods
    included; a reschedulable pod without a controller), or None."""
    if _protects(node.metadata.annotations.get(DO_NOT_DISRUPT), age):
        return f"node is annotated {DO_NOT_DISRUPT}"
    for p in pods:
        started = _started(p)
        if _is_active(p) and _protects(p.do_not_disrupt, None if started is None else now - started):
            return f"pod {p.key} is annotated {DO_NOT_DISRUPT}"
    for p in pods:
        if _is_reschedulable(p) and not p.metadata.owner_references:
            return f"pod {p.key} has no controller (it would not come back)"
    return None


def _one_group(claims: list[NodeClaim]) -> tuple[NodeClaim | None, int]:
    """The new nodes of a move as one claim of ``count`` nodes (all their pods), if they are all of one NodePool and
    instance group; (None, count) if not."""
    if not claims:
        return None, 0
    first = claims[0]
    if any((c.nodepool, c.instance_group) != (first.nodepool, first.instance_group) for c in claims):
        return None, len(claims)
    pods = [k for c in claims for k in c.pods]
    return NodeClaim(first.nodepool, first.instance_group, first.instance_type, first.zone, pods, first.price), len(
        claims
    )


def _count(n: int) -> str:
    return "one" if n == 1 else str(n)


def _pdb_blocker(pods: Iterable[Pod], pdbs: list[PodDisruptionBudget], all_pods: list[Pod]) -> str | None:
    """A PDB that would refuse evicting all of ``pods`` together (or a pod under two PDBs, which the Eviction API refuses
    outright), or None."""
    pods = [p for p in pods if _is_evictable(p)]
    for p in pods:
        covering = [pdb.key for pdb in pdbs if pdb.selects(p)]
        if len(covering) > 1:
            return f"pod {p.key} is covered by several PDBs ({', '.join(covering)}): the Eviction API refuses it"
    for pdb in pdbs:
        selected = [p for p in pods if pdb.selects(p)]
        if not selected:
            continue
        allowed = pdb.allowed_disruptions(all_pods)
        if len(selected) > allowed:
            return f"PDB {pdb.key} allows {allowed} disruption(s), the move needs {len(selected)}"
    return None


# --- the pass ----------------------------------------------------------------------------------------------------------


@dataclass
class _Pass:
    """One disruption pass: the candidates per reason and the simulation state the methods share (Karpenter's
    disruption controller: one method per reason, each computing commands over the same cluster state). Nodes taken by
    a decision, the destinations of its pods (reserved: no later decision removes them), the pods being evicted (the PDBs
    see them all), budgets and MinCount room left."""

    inp: DisruptionInput
    settings: DisruptionSettings
    out: DisruptionPlan = field(default_factory=DisruptionPlan)
    managed: dict[str, tuple[Node, NodePool]] = field(default_factory=dict)
    pods_by_node: dict[str, list[Pod]] = field(default_factory=dict)
    remaining: dict[tuple[str, str], int] = field(default_factory=dict)
    group_room: dict[str, int] = field(default_factory=dict)
    taken: set[str] = field(default_factory=set)
    reserved: set[str] = field(default_factory=set)
    evicting: list[Pod] = field(default_factory=list)
    drifts: dict[str, str] = field(default_factory=dict)
    settling: set[str] = field(default_factory=set)
    """Nodes within their consolidateAfter window: no move puts pods on them (upstream: not a valid destination)."""
    candidates: dict[Reason, list[tuple[Node, NodePool]]] = field(
        default_factory=lambda: {"Expired": [], "Drifted": [], "Empty": [], "Underutilized": []}
    )

    def __post_init__(self) -> None:
        objs = self.inp.objects
        group_pools = _group_pools(objs)
        for node in objs.nodes:
            pool = nodepool_of(node, objs.nodepools, group_pools)
            if pool is not None:
                self.managed[node.name] = (node, pool)
        for p in objs.bound_pods:
            self.pods_by_node.setdefault(str(p.spec.node_name), []).append(p)
        self.all_pods = [p for p in objs.pods if not p.is_terminal]
        self.sim = _Sim(self.inp, self.settings)
        self._budgets()
        observed: dict[str, int] = {}
        for node, _pool in self.managed.values():
            if node.instance_group:
                observed[node.instance_group] = observed.get(node.instance_group, 0) + 1
        for g in self.inp.cluster.instance_groups:
            self.group_room[g.name] = max(0, max(g.current_count, observed.get(g.name, 0)) - g.min_count)

    def _budgets(self) -> None:
        """Disruptions each NodePool's budgets allow now, per reason (uninitialized nodes out of the count)."""
        totals: dict[str, int] = {}
        disrupting: dict[str, int] = {}
        for name, (node, pool) in self.managed.items():
            if not _initialized(node):
                continue  # a node still coming up is not in the budget's denominator (nor disrupting)
            totals[pool.name] = totals.get(pool.name, 0) + 1
            if not node.is_ready or node.is_deleting or name in self.inp.busy:
                disrupting[pool.name] = disrupting.get(pool.name, 0) + 1
        for pname, pool in {p.name: p for _, p in self.managed.values()}.items():
            self.out.allowed[pname] = {}
            for r in VOLUNTARY:
                n = allowed_disruptions(pool, totals.get(pname, 0), disrupting.get(pname, 0), r, self.inp.now)
                self.out.allowed[pname][r] = self.remaining[(pname, r)] = n

    # --- bookkeeping ---------------------------------------------------------------------------------------------------

    def keep(self, nodes: Iterable[Node | str], code: KeptCode, message: str) -> None:
        for n in nodes:
            name = n if isinstance(n, str) else n.name
            self.out.kept[name] = message
            self.out.kept_codes[name] = code

    def commit(self, decision: Decision, nodes: list[Node]) -> None:
        self.out.decisions.append(decision)
        self.sim.launched(decision)
        self.reserved.update(decision.destinations)
        for n in nodes:
            self.taken.add(n.name)
            self.evicting.extend(p for p in self.pods_by_node.get(n.name, []) if _is_evictable(p))
            if n.instance_group in self.group_room:
                self.group_room[n.instance_group] -= 1
            self.out.kept.pop(n.name, None)
            self.out.kept_codes.pop(n.name, None)
        if decision.reason in VOLUNTARY:
            self.remaining[(decision.nodepool, decision.reason)] -= len(nodes)

    def skip(self, node: Node) -> bool:
        """Whether ``node`` is out of this pass already: disrupted, or the destination of a move decided before."""
        if node.name in self.reserved and node.name not in self.taken:
            self.keep([node], "Destination", "the pods of a disruption decided in this pass go to it")
        return node.name in self.taken or node.name in self.reserved

    def room_in_groups(self, nodes: list[Node]) -> str | None:
        need: dict[str, int] = {}
        for n in nodes:
            if n.instance_group:
                need[n.instance_group] = need.get(n.instance_group, 0) + 1
        for g, k in need.items():
            if g in self.group_room and self.group_room[g] < k:
                return f"instance group {g} would go below its MinCount"
        return None

    def reschedulable(self, n: Node) -> list[Pod]:
        return [p for p in self.pods_by_node.get(n.name, []) if _is_reschedulable(p)]

    def price(self, n: Node) -> float:
        t = n.instance_type
        try:
            return self.inp.catalog[t].price if t else 0.0
        except KeyError:
            return 0.0

    # --- candidates ----------------------------------------------------------------------------------------------------

    def screen(self) -> None:
        """Each managed node: the reason it is a candidate for, or why it stays."""
        for name, (node, pool) in sorted(self.managed.items()):
            state = self._state(node)
            if state is not None:
                self.keep([name], *state)
                continue
            created = _created(node)
            age = None if created is None else self.inp.now - created
            expire = pool.spec.template.spec.expire_after_seconds
            if expire is not None and age is not None and age >= expire:
                self.candidates["Expired"].append((node, pool))
                continue
            blocker = _blocker(node, self.pods_by_node.get(name, []), age, self.inp.now)
            if blocker:
                self.keep([name], "NoController" if "no controller" in blocker else "DoNotDisrupt", blocker)
                continue
            drift = drift_reason(node, pool, self.inp.objects)
            if drift:
                self.drifts[name] = drift
                self.candidates["Drifted"].append((node, pool))
                self.keep([name], "DriftWaiting", f"drifted ({drift}), waiting for the budget or a fit")
                continue
            self._screen_consolidation(node, pool, created)
        self.out.eligible = {r: len(v) for r, v in self.candidates.items()}

    def _state(self, node: Node) -> tuple[KeptCode, str] | None:
        if node.name in self.inp.busy or node.is_deleting:
            return "Busy", "already being disrupted"
        if node.name in self.inp.protected:
            return "Protected", "a replacement for a pending decision, or capacity a ProvisioningRequest has booked"
        if node.hyperpod_unhealthy:
            return "Repairing", f"HyperPod is repairing it ({node.hyperpod_unhealthy})"
        if not node.is_ready:
            return "NotReady", "NotReady (counts against the budget; left to HyperPod's health checks)"
        return None

    def _screen_consolidation(self, node: Node, pool: NodePool, created: float | None) -> None:
        disruption = pool.spec.disruption
        after = disruption.consolidate_after_seconds
        if after is None:
            self.keep([node], "ConsolidationDisabled", "consolidateAfter: Never")
            return
        since = self.inp.last_pod_change.get(node.name, created if created is not None else self.inp.now)
        if self.inp.now - since < after:
            self.settling.add(node.name)
            waited = int(self.inp.now - since)
            self.keep(
                [node],
                "ConsolidateAfter",
                f"consolidateAfter {disruption.consolidate_after}: pods changed {waited}s ago",
            )
        elif not self.reschedulable(node):
            self.candidates["Empty"].append((node, pool))
            self.keep([node], "EmptyWaiting", "empty, waiting for the budget")
        elif disruption.consolidation_policy == "WhenEmpty":
            self.keep([node], "ConsolidationDisabled", "consolidationPolicy WhenEmpty and the node has pods")
        else:
            self.candidates["Underutilized"].append((node, pool))
            self.keep([node], "NoCheaperFit", "no cheaper fit for its pods")

    # --- one move ------------------------------------------------------------------------------------------------------

    def settle(
        self, nodes: list[Node], reason: Reason, pool: NodePool, check_destinations: bool = True
    ) -> Decision | None:
        """The move for ``nodes`` if it is safe, else None (and why recorded per node)."""
        moved = [p for n in nodes for p in self.reschedulable(n)]
        evicted = [p for n in nodes for p in self.pods_by_node.get(n.name, [])]
        # PDBs see this move together with the moves already decided in this pass
        why = (
            _pdb_blocker(evicted + self.evicting, self.inp.objects.pdbs, self.all_pods) if reason != "Expired" else None
        )
        if why:
            self.keep(nodes, "PodDisruptionBudget", why)
            return None
        why = self.room_in_groups(nodes)
        if why:
            self.keep(nodes, "MinCount", why)
            return None
        # drift launches what the pods need: several nodes of one instance group (one provision of that count)
        max_new = max(1, len(moved)) if reason == "Drifted" else 1
        ok, claims, unschedulable, onto, riding = self.sim.fits_without(self.taken | {n.name for n in nodes}, max_new)
        on_claims = [riding[p.key] for p in moved if p.key in riding]
        if reason != "Expired" and on_claims:
            # upstream: a pod the simulation puts on an uninitialized NodeClaim is unschedulable (disruption/helpers.go)
            ours = all(c.startswith(f"inflight:{PASS_CLAIM}") for c in on_claims)
            why = "a node another decision of this pass launches" if ours else "a node still launching"
            self.keep(nodes, "DoesNotFit", f"its pods would go to {why}")
            return None
        replacement, count = _one_group(claims)
        if claims and replacement is None:
            self.keep(
                nodes, "DoesNotFit", "its pods need new nodes in several instance groups (a decision launches in one)"
            )
            return None
        if not ok and reason != "Expired":
            msg = (
                f"its pods would not fit elsewhere ({next(iter(unschedulable.values()))})"
                if unschedulable
                else "its pods need more than one new node"
            )
            self.keep(nodes, "DoesNotFit", msg)
            return None
        revived_price = self._revival_price(nodes, reason, replacement, onto)
        if revived_price is None or not self._replacement_pays(nodes, reason, replacement):
            return None
        if reason == "Underutilized" and check_destinations:
            for x in sorted(onto):
                if x in self.settling:
                    self.keep(
                        nodes,
                        "DestinationSettling",
                        f"its pods would go to {x}, which is within its consolidateAfter window",
                    )
                    return None
        launched = replacement.price * count if replacement else 0.0
        saving = sum(self.price(n) for n in nodes) - launched - revived_price
        what = "delete" if replacement is None else f"replace with {_count(count)} {replacement.instance_type}"
        message = f"{reason}: {what} ({len(moved)} pod(s) move; saves {saving:.2f}/h)"
        names = [n.name for n in nodes]
        return Decision(reason, pool.name, names, replacement, saving, len(moved), message, sorted(onto), count or 1)

    def _revival_price(
        self, nodes: list[Node], reason: Reason, replacement: NodeClaim | None, onto: dict[str, list[str]]
    ) -> float | None:
        """What the empty nodes the move fills cost (Underutilized only), or None if that is not paid for.

        An empty node the pods would go to is one Empty consolidation removes once its consolidateAfter passes: filling
        it keeps it, so it is paid like a replacement (else a pod moves onto a dearer idle node, which is replaced soon).
        In a multi-node move, node by node too: the saving of the nodes whose pods go to busy nodes must not pay for a node
        whose pods only move onto an idle node dearer than it (two g6.2xlarge deleted, one pod onto a busy node and the
        other onto an idle g6.4xlarge; five minutes later that g6.4xlarge, carrying just the moved pod, is replaced by a
        g6.2xlarge: the disruption undone)."""
        fraction = self.settings.min_savings_fraction
        revived = [
            self.managed[x][0]
            for x in sorted(onto)
            if x in self.managed
            and self.managed[x][1].spec.disruption.consolidate_after_seconds is not None  # else no Empty consolidation
            and not self.reschedulable(self.managed[x][0])
        ]
        revived_price = sum(self.price(n) for n in revived) if reason == "Underutilized" else 0.0
        removed_price = sum(self.price(n) for n in nodes)
        if revived_price and (replacement.price if replacement else 0.0) + revived_price > removed_price * (
            1 - fraction
        ):
            self.keep(
                nodes,
                "FillsEmptyNode",
                f"its pods would keep the empty node(s) {', '.join(r.name for r in revived)} ({revived_price:.2f}/h): "
                f"not {int(fraction * 100)}% cheaper than {removed_price:.2f}/h",
            )
            return None
        if revived_price and len(nodes) > 1:
            why = _unpaid_revival(nodes, revived, onto, self.taken, self.pods_by_node, self.price, fraction)
            if why:
                self.keep(nodes, "FillsEmptyNode", why)
                return None
        return revived_price

    def _replacement_pays(self, nodes: list[Node], reason: Reason, replacement: NodeClaim | None) -> bool:
        """Whether a consolidation's replacement is worth it: never a type the pass removes (keeping that node and
        deleting the others saves as much and moves fewer pods: Karpenter's filterOutSameInstanceType; across the pass,
        such a replacement is one move split over two decisions), and saving at least ``min_savings_fraction``."""
        if replacement is None or reason != "Underutilized":
            return True
        removed_types = {n.instance_type for n in nodes} | {
            self.managed[x][0].instance_type for x in self.taken if x in self.managed
        }
        if replacement.instance_type in removed_types:
            self.keep(
                nodes,
                "SameInstanceType",
                f"a replacement would be the same instance type ({replacement.instance_type})",
            )
            return False
        removed_price = sum(self.price(n) for n in nodes)
        fraction = self.settings.min_savings_fraction
        if replacement.price > removed_price * (1 - fraction):
            self.keep(
                nodes,
                "SmallSaving",
                f"a replacement ({replacement.instance_type}, {replacement.price:.2f}/h) would not save "
                f"{int(fraction * 100)}% of {removed_price:.2f}/h",
            )
            return False
        return True

    # --- the methods, in Karpenter's order -----------------------------------------------------------------------------

    def expiration(self) -> None:
        """Forceful: one node per decision, budgets and do-not-disrupt do not apply (the drain honours PDBs)."""
        for node, pool in self.candidates["Expired"]:
            d = self.settle([node], "Expired", pool)
            if d:
                d.message = f"Expired: node older than expireAfter {pool.spec.template.spec.expire_after}; " + d.message
                self.commit(d, [node])

    def drift(self) -> None:
        """Budget-limited, one node per decision (its replacement, if any, comes up first); empty nodes first, then one
        node with pods per pass (as upstream: the next waits for this one's pods to settle)."""
        moved_one = False
        for node, pool in sorted(self.candidates["Drifted"], key=lambda c: (bool(self.reschedulable(c[0])), c[0].name)):
            if self.skip(node):
                continue
            if self.remaining[(pool.name, "Drifted")] <= 0:
                self.keep(
                    [node], "Budget", f"drifted; NodePool {pool.name}'s budget allows no more Drifted disruptions now"
                )
                continue
            if moved_one and self.reschedulable(node):
                self.keep([node], "OneDriftAtATime", "drifted; one drifted node with pods is replaced at a time")
                continue
            d = self.settle([node], "Drifted", pool)
            if d:
                d.message = f"Drifted ({self.drifts[node.name]}): {d.message.split(': ', 1)[1]}"
                moved_one = moved_one or bool(self.reschedulable(node))
                self.commit(d, [node])

    def emptiness(self) -> None:
        """All empty candidates of a NodePool at once, within its budget and the groups' MinCount, leaving the room that
        pending pods need."""
        for pname, nodes in self._by_pool("Empty").items():
            room = self.remaining[(pname, "Empty")]
            chosen: list[Node] = []
            for n in sorted(nodes, key=lambda n: (-self.price(n), n.name)):
                if len(chosen) >= room:
                    self.keep([n], "Budget", f"empty; NodePool {pname}'s budget allows no more Empty disruptions now")
                elif self.room_in_groups([*chosen, n]):
                    self.keep([n], "MinCount", f"empty; instance group {n.instance_group} is at its MinCount")
                elif (
                    self.sim.waiting
                    and not self.sim.fits_without(self.taken | {c.name for c in [*chosen, n]}, max_new_nodes=0)[0]
                ):
                    self.keep([n], "PendingPodRoom", "empty; a pending pod needs its room")
                else:
                    chosen.append(n)
            if chosen:
                saving = sum(self.price(n) for n in chosen)
                message = f"Empty: {len(chosen)} node(s) without pods; saves {saving:.2f}/h"
                self.commit(Decision("Empty", pname, [n.name for n in chosen], None, saving, 0, message), chosen)

    def consolidation(self) -> None:
        """Underutilized nodes per NodePool, cheapest to disrupt first (fewest pods, then the biggest saving): several at
        once, then single nodes, within the budget."""
        for pname, nodes in self._by_pool("Underutilized").items():
            pool = self.managed[nodes[0].name][1]
            ordered = sorted(nodes, key=lambda n: (len(self.reschedulable(n)), -self.price(n), n.name))
            ordered = ordered[: self.settings.max_multi_candidates]
            if self.remaining[(pname, "Underutilized")] <= 0:
                self.keep(ordered, "Budget", f"NodePool {pname}'s budget allows no Underutilized disruptions now")
                continue
            self.multi_node(pool, ordered)
            self.single_node(pool, ordered)

    def multi_node(self, pool: NodePool, ordered: list[Node]) -> None:
        """Binary search the largest feasible prefix (>= 2 nodes) of ``ordered``. Where the pods land is checked once
        the prefix is chosen: a smaller prefix may put pods on the very nodes a larger one removes, so that check does
        not shrink monotonically with the prefix. A failed prefix says nothing about single nodes."""
        lo, hi = 2, min(len(ordered), self.remaining[(pool.name, "Underutilized")])
        best: Decision | None = None
        best_nodes: list[Node] = []
        kept = (dict(self.out.kept), dict(self.out.kept_codes))
        while lo <= hi:
            mid = (lo + hi) // 2
            d = self.settle(ordered[:mid], "Underutilized", pool, check_destinations=False)
            if d is not None:
                best, best_nodes = d, ordered[:mid]
                lo = mid + 1
            else:
                hi = mid - 1
        if best is not None:
            best = self.settle(best_nodes, "Underutilized", pool)
        self.out.kept, self.out.kept_codes = kept
        if best is not None:
            best.message = f"Underutilized (multi-node): {best.message.split(': ', 1)[1]}"
            self.commit(best, best_nodes)

    def single_node(self, pool: NodePool, ordered: list[Node]) -> None:
        for n in ordered:
            if self.skip(n):
                continue
            if self.remaining[(pool.name, "Underutilized")] <= 0:
                self.keep([n], "Budget", f"NodePool {pool.name}'s budget allows no more Underutilized disruptions now")
                continue
            d = self.settle([n], "Underutilized", pool)
            if d:
                self.commit(d, [n])

    def _by_pool(self, reason: Reason) -> dict[str, list[Node]]:
        out: dict[str, list[Node]] = {}
        for node, pool in self.candidates[reason]:
            if not self.skip(node):
                out.setdefault(pool.name, []).append(node)
        return out


# --- the plan ------------------------------------------------------------------------------------------------------------


def plan_disruptions(inp: DisruptionInput, settings: DisruptionSettings | None = None) -> DisruptionPlan:
    """Screen every managed node, then run the methods in Karpenter's order over one shared simulation state: expiration,
    drift, emptiness, consolidation (multi-node, then single-node)."""
    p = _Pass(inp, settings or DisruptionSettings())
    p.screen()
    p.expiration()
    p.drift()
    p.emptiness()
    p.consolidation()
    return p.out
