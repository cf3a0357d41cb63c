"""The node tier's decision: pending pods -> node claims -> provision workflows.

One pass (``reconcile_once``):

1. a consistent snapshot of the cluster (nodes read before pending pods, so an error leans toward under-provisioning; the
   next pass fixes it), and the HyperPod instance-group view;
2. capacity already asked for: the in-flight claims recorded in the state table plus the running provision executions
   (their inputs), merged by claim id — counted as capacity by the engine, so overlapping decisions never provision the
   same pods twice; and the instance groups in backoff after a capacity failure (not launched into now);
3. the packing engine, capped by the global caps: at most ``max_nodes_per_decision`` new nodes, and never more than
   ``max_nodes_total`` nodes in the managed instance groups counting those in flight. A plan cut by a cap emits
   ``DecisionCapHit`` (the cap alarm) and a Warning event on the NodePool;
4. one claim per (instance group, NodePool) batch, with a deterministic id (hash of cluster, group, NodePool and the sorted
   pod uids): its attempt is recorded in the state table (conditional write) BEFORE its provision execution is started
   under that attempt's name (``services.naming``: ``<group>-<claim id>-<attempt>-<token>``), so a crash between the two
   leaves a claim that the next pass finds and finishes, and two deciders that somehow overlap (an expired lease) agree
   on one record and one execution name: one execution. When an attempt's execution has closed (capacity give-back,
   failure, registration timeout) and the same pods are decided again, the next attempt gets a new name: Step Functions
   keeps closed names for 90 days, and a closed execution is never counted as capacity;
5. Kubernetes events (``Nominated`` on the pods of new claims, ``FailedProvisioning`` on pods no NodePool can take) and
   metrics named after Karpenter's.

``run_reconcile`` runs passes under the lease (``services.leased_loop``): while pods stay pending it re-checks every few
seconds within the invocation, and stops when there are none.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..domain.catalog import Catalog
from ..domain.gangs import GangSplit, split_gangs
from ..domain.hyperpod import ClusterView
from ..domain.k8s import Pod
from ..domain.objects import ClusterObjects
from ..domain.plan import GangRef, InflightClaim, NodeClaim, Plan, PlanInput, PlanOptions, inflight_from_execution
from ..domain.triggers import Trigger
from ..ports import metrics as m
from ..ports.claims import ClaimStore, RecordedClaim
from ..ports.cluster import ClusterPort, ObjectRef
from ..ports.hyperpod import HyperPodReader
from ..ports.lease import LeasePort
from ..ports.metrics import MetricsPort
from ..ports.state import BackoffReader
from ..ports.workflow import LIVE, Execution, WorkflowPort
from .conflict import hold_off
from .events import SentEvents, send_event
from .gang_claims import batches
from .invalid_objects import report_invalid_objects
from .leased_loop import LoopOutcome, LoopSettings, run_leased_loop
from .naming import attempt_name, new_token
from .request_status import StatusDeps, after_plan, end_bookings

log = logging.getLogger(__name__)

LEASE_NAME = "reconcile"
ANNOUNCED_PODS_GRACE_SECONDS = 30.0
EXECUTION_NAME_MAX = 80


Scheduler = Callable[[PlanInput, PlanOptions], Plan]


def default_scheduler(plan_input: PlanInput, options: PlanOptions) -> Plan:
    """The core's packing engine (imported on first use: the handler's import stays light)."""
    from ..domain.scheduling import schedule

    return schedule(plan_input, options)


@dataclass(frozen=True)
class ReconcileSettings:
    cluster_name: str
    """The HyperPod cluster's name (goes into claim ids and the provision input)."""
    provision_state_machine_arn: str = ""
    claim_grace_seconds: float = 120.0
    """A recorded claim whose execution is not running counts as in flight (and is started again, idempotently) for this
    long after it was recorded: it covers a decider that died between the record and the start. After that, only running
    executions count, so a finished claim never hides capacity that does not exist."""
    max_nodes_per_decision: int = 20
    max_nodes_total: int = 100
    registration_timeout_seconds: int = 1200
    plan_time_budget_seconds: float = 1.0
    """Time the engine may spend improving a feasible plan; a decision must stay well under a second at 1,000 pods."""
    max_events_per_pass: int = 500
    event_workers: int = 8
    event_repeat_seconds: float = 600.0
    """A FailedProvisioning event for the same pod and message is not re-sent within this window (warm invocations)."""
    atomic_pod_groups: bool = True
    """Kueue pod groups get their nodes all or nothing; False plans their pods one by one (``ATOMIC_POD_GROUPS``)."""

    def __post_init__(self) -> None:
        if not self.cluster_name:
            raise ValueError("ReconcileSettings.cluster_name is empty (set HYPERPOD_CLUSTER_NAME)")
        if self.max_nodes_per_decision < 1:
            raise ValueError(
                f"ReconcileSettings.max_nodes_per_decision must be >= 1, got {self.max_nodes_per_decision}"
            )
        if self.max_nodes_total < 1:
            raise ValueError(f"ReconcileSettings.max_nodes_total must be >= 1, got {self.max_nodes_total}")

    @property
    def claim_ttl_seconds(self) -> int:
        """A claim outlives its execution's registration timeout; the workflow removes it when it ends."""
        return self.registration_timeout_seconds + 900


@dataclass
class ReconcileDeps:
    cluster: ClusterPort
    hyperpod: HyperPodReader
    claims: ClaimStore
    backoffs: BackoffReader
    workflows: WorkflowPort
    metrics: MetricsPort
    catalog: Catalog
    scheduler: Scheduler = default_scheduler
    events_sent: SentEvents = field(default_factory=SentEvents)
    """(pod, reason, message) -> when: keeps repeated passes of a warm container from re-sending the same event."""
    clock: Callable[[], float] = time.time


@dataclass
class StartedClaim:
    claim_id: str
    execution_name: str
    instance_group: str
    nodepool: str
    instance_type: str
    zone: str
    count: int
    pods: list[str]
    recorded: bool
    """False when the claim was already recorded (a crash between record and start, or an overlapping decider)."""
    gang: GangRef | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            **({"gang": self.gang.to_dict()} if self.gang is not None else {}),
            "claimId": self.claim_id,
            "executionName": self.execution_name,
            "instanceGroup": self.instance_group,
            "nodePool": self.nodepool,
            "instanceType": self.instance_type,
            "zone": self.zone,
            "count": self.count,
            "pods": len(self.pods),
            "recorded": self.recorded,
        }


@dataclass
class PassResult:
    pending: int = 0
    gangs: int = 0
    """Gangs (ProvisioningRequests, pod groups) this pass planned."""
    unschedulable: int = 0
    inflight_nodes: int = 0
    planned_nodes: int = 0
    cap: int | None = None
    capped: bool = False
    claims: list[StartedClaim] = field(default_factory=list)
    backoffs: dict[str, str] = field(default_factory=dict)
    skipped_objects: int = 0
    dry_run: bool = False
    seconds: float = 0.0
    scheduling_seconds: float = 0.0
    first_start_seconds: float | None = None
    """Seconds from the pass's start to the first StartExecution call returning (the benchmark's 'scale call')."""
    conflict: str | None = None
    """Why this pass changed nothing: HyperPod's own autoscaler is enabled (``services.conflict``)."""

    @property
    def more(self) -> bool:
        """Keep re-checking while pods are pending (waiting for nodes, or not yet placed); not while another autoscaler
        owns the cluster (the next trigger looks again)."""
        return (self.pending > 0 or self.gangs > 0) and self.conflict is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "pending": self.pending,
            "gangs": self.gangs,
            "unschedulable": self.unschedulable,
            "inflightNodes": self.inflight_nodes,
            "plannedNodes": self.planned_nodes,
            "cap": self.cap,
            "capped": self.capped,
            "claims": [c.to_dict() for c in self.claims],
            "backoffs": dict(self.backoffs),
            "skippedObjects": self.skipped_objects,
            "dryRun": self.dry_run,
            "conflict": self.conflict,
            "seconds": round(self.seconds, 4),
        }


@dataclass
class ReconcileResult:
    trigger: str
    held: bool
    stopped: str
    passes: list[PassResult]

    def to_dict(self) -> dict[str, Any]:
        last = self.passes[-1].to_dict() if self.passes else None
        return {
            "trigger": self.trigger,
            "held": self.held,
            "stopped": self.stopped,
            "passes": len(self.passes),
            "executionsStarted": sorted({c.execution_name for p in self.passes for c in p.claims}),
            "last": last,
        }


# --- ids -----------------------------------------------------------------------------------------------------------------


def pod_identity(pod: Pod) -> str:
    """The uid when the API server gave one (a re-created pod with the same name is a different pod), else the key."""
    return pod.metadata.uid or pod.key


def claim_id(cluster: str, instance_group: str, nodepool: str, pod_ids: Iterable[str]) -> str:
    digest = hashlib.sha256()
    digest.update(f"{cluster}\n{instance_group}\n{nodepool}\n".encode())
    for pod in sorted(pod_ids):
        digest.update(pod.encode() + b"\n")
    return digest.hexdigest()[:20]


def execution_name(instance_group: str, claim: str, attempt: int | None = None, token: str = "") -> str:
    """``<group>-<claim id>-<attempt>-<token>`` (``services.naming``; without an attempt, the claim's base name): Step
    Functions names allow [A-Za-z0-9-_] and 80 characters, the group is cut to fit."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "-", instance_group)
    if attempt is None:
        return f"{safe[: EXECUTION_NAME_MAX - len(claim) - 1]}-{claim}"
    tail = attempt_name(claim, attempt, token)
    return f"{safe[: EXECUTION_NAME_MAX - len(tail) - 1]}-{tail}"


# --- caps ----------------------------------------------------------------------------------------------------------------


def managed_groups(objects: ClusterObjects) -> set[str]:
    """Instance groups some HyperpodNodeClass lists: the ones the autoscaler may scale."""
    return {g for nc in objects.nodeclasses for g in nc.spec.instance_groups}


def committed_nodes(view: ClusterView, groups: set[str], inflight: list[InflightClaim]) -> int:
    """Nodes the managed groups have or will have: per group max(target, current + in flight), so that a claim whose
    scale-up already raised TargetCount is not counted twice."""
    per_group: dict[str, int] = {}
    for claim in inflight:
        per_group[claim.instance_group] = per_group.get(claim.instance_group, 0) + claim.count
    total = 0
    for name in groups | set(per_group):
        group = view.group(name)
        current = group.current_count if group else 0
        target = group.target_count if group else 0
        total += max(target, current + per_group.get(name, 0))
    return total


def decision_cap(settings: ReconcileSettings, committed: int) -> int:
    return max(0, min(settings.max_nodes_per_decision, settings.max_nodes_total - committed))


# --- one pass ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Demand:
    """What asks for capacity in one pass: the pending pods, and the pods and requests split into gangs."""

    pending: list[Pod]
    split: GangSplit


@dataclass(frozen=True)
class Capacity:
    """Capacity already asked for and what a new decision may add: the claims in flight, the attempt each recorded claim
    continues from (None while its execution is live) and the cap on new nodes."""

    inflight: list[InflightClaim]
    attempts: dict[str, RecordedClaim | None]
    cap: int


def reconcile_once(deps: ReconcileDeps, settings: ReconcileSettings, dry_run: bool = False) -> PassResult:
    started = deps.clock()
    result = PassResult(dry_run=dry_run)
    snapshot = deps.cluster.snapshot()
    status = StatusDeps(deps.cluster, deps.metrics, deps.clock)
    demand = _read_demand(deps, settings, status, snapshot, result, started)
    if not demand.pending and not demand.split.gangs:
        deps.metrics.gauge(m.UNSCHEDULABLE_PODS, 0)
        result.seconds = deps.clock() - started
        return result

    view = deps.hyperpod.describe_cluster()
    result.conflict = hold_off(
        deps.cluster,
        deps.metrics,
        snapshot,
        view,
        deps.events_sent,
        started,
        settings.event_repeat_seconds,
        dry_run=dry_run,
    )
    if result.conflict is not None:  # two autoscalers never fight: this one leaves the cluster alone
        result.seconds = deps.clock() - started
        return result
    capacity = _capacity_in_flight(deps, settings, snapshot, view, result)
    plan = _plan(deps, settings, snapshot, demand.split, view, capacity, result)
    pods_by_key = {p.key: p for p in demand.pending}
    if not dry_run:
        _start_claims(deps, settings, plan, pods_by_key, capacity.attempts, started, result)
        after_plan(status, snapshot, demand.split.gangs, plan)
    else:
        _claims_to_start(settings, plan, pods_by_key, result)
    _events(deps, settings, snapshot, plan, result, pods_by_key)
    _metrics(deps, snapshot, plan, result)
    _log_decisions(plan, result, started)
    result.seconds = deps.clock() - started
    return result


DECISION_LIST_LIMIT = 20
"""At most this many pods (or reasons) named in one decision line; the line gives the full count beside them."""


def _log_decisions(plan: Plan, result: PassResult, now: float) -> None:
    """One structured line per claim started (what, for which pods, and why) and one for the pending pods no new node
    was started for (and why), at the cluster's time: the reconcile side of what the disruption lines are for the
    other (README: a Logs Insights query over ``message.decision``)."""
    price: dict[tuple[str, str], float] = {}
    for c in plan.node_claims:
        price[(c.instance_group, c.nodepool)] = c.price
    for claim in result.claims:
        each = price.get((claim.instance_group, claim.nodepool))
        cost = f" at ${each:.3f}/h each" if each is not None else ""
        log.info(
            {
                "decision": "provision",
                "at": now,
                "nodePool": claim.nodepool,
                "instanceGroup": claim.instance_group,
                "instanceType": claim.instance_type,
                "zone": claim.zone,
                "count": claim.count,
                "podCount": len(claim.pods),
                "pods": claim.pods[:DECISION_LIST_LIMIT],
                **({"gang": claim.gang.to_dict()} if claim.gang is not None else {}),
                "why": (
                    f"{len(claim.pods)} pending pod(s) fit no existing node and no node launching; "
                    f"{claim.count} x {claim.instance_type} in {claim.instance_group}{cost} is the cheapest placement "
                    "the plan found for them"
                ),
                "execution": claim.execution_name,
                "dryRun": result.dry_run,
            }
        )
    riding = sum(len(keys) for where, keys in plan.existing_nodes.items() if where.startswith("inflight:"))
    on_nodes = sum(len(keys) for where, keys in plan.existing_nodes.items() if not where.startswith("inflight:"))
    if not (plan.unschedulable or riding or on_nodes or result.capped or result.backoffs):
        return
    reasons: dict[str, list[str]] = {}
    for pod, why in plan.unschedulable.items():
        reasons.setdefault(why, []).append(pod)
    log.info(
        {
            "decision": "provision-kept",
            "at": now,
            "onExistingNodes": on_nodes,
            "onNodesLaunching": riding,
            "unschedulable": len(plan.unschedulable),
            "why": [
                {"reason": why, "podCount": len(pods), "pods": pods[:5]}
                for why, pods in sorted(reasons.items(), key=lambda kv: -len(kv[1]))[:DECISION_LIST_LIMIT]
            ],
            "groupsBackedOff": dict(result.backoffs),
            "capped": result.capped,
            "dryRun": result.dry_run,
        }
    )


def _read_demand(
    deps: ReconcileDeps,
    settings: ReconcileSettings,
    status: StatusDeps,
    snapshot: ClusterObjects,
    result: PassResult,
    started: float,
) -> Demand:
    """What asks for capacity: the pending pods and the gangs (a request, Kueue's admission check, asks before its pods
    exist: it is planned without pending pods). Objects the snapshot could not parse are reported; bookings whose pods
    have arrived end (not in a dry run)."""
    result.skipped_objects = len(snapshot.errors)
    report_invalid_objects(
        deps.cluster, deps.metrics, snapshot.errors, deps.events_sent, started, settings.event_repeat_seconds
    )
    pending = snapshot.pending_pods
    result.pending = len(pending)
    split = split_gangs(
        snapshot.pods, snapshot.provisioning_requests, snapshot.pod_templates, settings.atomic_pod_groups
    )
    result.gangs = len(split.gangs)
    if not result.dry_run:
        end_bookings(status, snapshot)
    deps.metrics.gauge_high_resolution(m.PENDING_PODS, len(pending))
    return Demand(pending, split)


def _capacity_in_flight(
    deps: ReconcileDeps, settings: ReconcileSettings, snapshot: ClusterObjects, view: ClusterView, result: PassResult
) -> Capacity:
    """Capacity already asked for (claims in flight; orphans are started again unless in a dry run), the groups backed
    off and the cap of this decision."""
    inflight, orphans, attempts = _inflight(deps, settings, view)
    result.inflight_nodes = sum(c.count for c in inflight)
    result.backoffs = deps.backoffs.unavailable_groups()
    if not result.dry_run:
        for orphan in orphans:
            _start(deps, settings, orphan.claim, orphan.execution_name)
    cap = decision_cap(settings, committed_nodes(view, managed_groups(snapshot), inflight))
    result.cap = cap
    return Capacity(inflight, attempts, cap)


def _plan(
    deps: ReconcileDeps,
    settings: ReconcileSettings,
    snapshot: ClusterObjects,
    split: GangSplit,
    view: ClusterView,
    capacity: Capacity,
    result: PassResult,
) -> Plan:
    """The packing engine over the individual pods and the gangs, with in-flight claims as capacity and new nodes up to
    the decision's cap."""
    cap = capacity.cap
    plan_input = PlanInput(
        pods=split.individual,
        nodes=snapshot.nodes,
        bound_pods=snapshot.bound_pods,
        nodepools=snapshot.nodepools,
        nodeclasses=snapshot.nodeclasses,
        cluster=view,
        catalog=deps.catalog,
        daemonsets=snapshot.daemonsets,
        inflight=capacity.inflight,
        unavailable_groups=dict(result.backoffs),
        gangs=split.gangs,
        consumed=split.consumed,
        reservations=split.reservations,
    )
    t0 = deps.clock()
    plan = deps.scheduler(
        plan_input,
        PlanOptions(
            allow_new_nodes=cap > 0,
            max_new_nodes=cap,
            time_budget_seconds=settings.plan_time_budget_seconds,
        ),
    )
    result.scheduling_seconds = deps.clock() - t0
    result.planned_nodes = len(plan.node_claims)
    result.unschedulable = len(plan.unschedulable)
    result.capped = _capped(plan, cap)
    return plan


def _start_claims(
    deps: ReconcileDeps,
    settings: ReconcileSettings,
    plan: Plan,
    pods_by_key: dict[str, Pod],
    attempts: dict[str, RecordedClaim | None],
    started: float,
    result: PassResult,
) -> None:
    """One claim per (instance group, NodePool, gang) batch of the plan: recorded, then its provision execution started."""
    for (group, nodepool, gang), claims in batches(plan).items():
        started_claim = _start_batch(deps, settings, group, nodepool, claims, pods_by_key, attempts, gang)
        if result.first_start_seconds is None:
            result.first_start_seconds = deps.clock() - started
        result.claims.append(started_claim)


def _claims_to_start(settings: ReconcileSettings, plan: Plan, pods_by_key: dict[str, Pod], result: PassResult) -> None:
    """The claims a dry run would start, under their base names, nothing recorded nor started."""
    for (group, nodepool, gang), claims in batches(plan).items():
        pods = [p for c in claims for p in c.pods]
        cid = claim_id(settings.cluster_name, group, nodepool, (_pod_id(pods_by_key, k) for k in pods))
        first = claims[0]
        result.claims.append(
            StartedClaim(
                cid,
                execution_name(group, cid),
                group,
                nodepool,
                first.instance_type,
                first.zone,
                len(claims),
                pods,
                False,
                gang,
            )
        )


def _inflight(
    deps: ReconcileDeps, settings: ReconcileSettings, view: ClusterView
) -> tuple[list[InflightClaim], list[RecordedClaim], dict[str, RecordedClaim | None]]:
    """Claims whose provision execution runs, plus recently recorded claims whose execution is not (yet) running and has
    not closed: the latter are returned as orphans too, to be started again (the start is idempotent on the name). And
    per recorded claim id, the attempt a new decision continues from: None when the recorded attempt is live (the
    decision reuses its name), else the ended attempt (the decision records the next one over it)."""
    arn = settings.provision_state_machine_arn
    running: dict[str, Execution] = {e.name: e for e in deps.workflows.running(arn)}
    now = deps.clock()
    merged: dict[str, InflightClaim] = {}
    orphans: list[RecordedClaim] = []
    attempts: dict[str, RecordedClaim | None] = {}
    for rec in deps.claims.recorded_claims():
        live = rec.execution_name in running
        if not live and rec.closed_at is None and now - rec.recorded_at < settings.claim_grace_seconds:
            # Not running yet (a decider died before the start, or listing lags) or already over: ask by name.
            execution = deps.workflows.describe(arn, rec.execution_name)
            live = execution is None or execution.status in LIVE
            if live:
                orphans.append(rec)
        if live:
            merged[rec.claim.claim_id] = rec.claim
        attempts[rec.claim.claim_id] = None if live else rec
    for execution in running.values():
        claim = inflight_from_execution(execution.input, view)
        if claim is not None and claim.claim_id not in merged:
            merged[claim.claim_id] = claim
    return sorted(merged.values(), key=lambda c: c.claim_id), orphans, attempts


def _capped(plan: Plan, cap: int) -> bool:
    """The engine cut the plan at the cap: it says so in its stats, or it used the whole cap and pods were left over for
    lack of new nodes."""
    stats = plan.stats or {}
    for key in ("capped", "cap_hit", "max_new_nodes_hit"):
        if key in stats:
            return bool(stats[key])
    return len(plan.node_claims) >= cap and bool(plan.unschedulable)


def _pod_id(pods_by_key: dict[str, Pod], key: str) -> str:
    pod = pods_by_key.get(key)
    return pod_identity(pod) if pod else key


def _start_batch(
    deps: ReconcileDeps,
    settings: ReconcileSettings,
    group: str,
    nodepool: str,
    claims: list[NodeClaim],
    pods_by_key: dict[str, Pod],
    attempts: dict[str, RecordedClaim | None] | None = None,
    gang: GangRef | None = None,
) -> StartedClaim:
    pods = sorted(p for c in claims for p in c.pods)
    cid = claim_id(settings.cluster_name, group, nodepool, (_pod_id(pods_by_key, k) for k in pods))
    first = claims[0]
    inflight = InflightClaim(
        claim_id=cid,
        nodepool=nodepool,
        instance_group=group,
        instance_type=first.instance_type,
        zone=first.zone,
        count=len(claims),
        pods=tuple(pods),
        gang=gang,
    )
    name, recorded = _record_attempt(deps, settings, inflight, (attempts or {}).get(cid, _UNSEEN))
    # Started whether or not we recorded it: an already-recorded attempt may be one whose recorder died before starting;
    # the same name makes StartExecution idempotent.
    _start(deps, settings, inflight, name)
    for claim in claims:
        deps.metrics.count(m.NODECLAIMS_CREATED, 1, NodePool=claim.nodepool, InstanceGroup=claim.instance_group)
    deps.metrics.count(m.PROVISION_EXECUTIONS_STARTED, 1)
    return StartedClaim(cid, name, group, nodepool, first.instance_type, first.zone, len(claims), pods, recorded, gang)


_UNSEEN = RecordedClaim(InflightClaim("", "", "", "", "", 0, ()), "", 0.0, 0)
"""Marks a claim id this pass found no record for (as opposed to None: a live recorded attempt)."""


def _record_attempt(
    deps: ReconcileDeps, settings: ReconcileSettings, claim: InflightClaim, previous: RecordedClaim | None
) -> tuple[str, bool]:
    """The execution name this decision starts, and whether this decider recorded it. A live recorded attempt is reused;
    otherwise the next attempt is recorded under a condition (over no record, or over exactly the attempt that ended), and
    a decider that loses the write takes the winner's name: concurrent deciders of one decision start one execution."""
    if previous is None:  # live: this pass counted it; start it again under its own name
        current = deps.claims.get(claim.claim_id)
        if current is not None:
            return current.execution_name, False
        previous = _UNSEEN
    for _ in range(3):
        attempt = previous.attempt + 1
        name = execution_name(claim.instance_group, claim.claim_id, attempt, new_token())
        replacing = previous.execution_name or None
        if deps.claims.record_claim(claim, name, settings.claim_ttl_seconds, attempt=attempt, replacing=replacing):
            return name, True
        current = deps.claims.get(claim.claim_id)
        if current is not None and current.execution_name != replacing:
            return current.execution_name, False  # another decider recorded this decision's attempt first
        previous = current or _UNSEEN  # the record vanished or expired meanwhile: try again over what is there now
    raise RuntimeError(f"claim {claim.claim_id}: could not record an attempt (the record kept changing)")


def provision_input(settings: ReconcileSettings, claim: InflightClaim, name: str = "") -> dict[str, Any]:
    """The provision state machine's input for a claim (``statemachines/provision.asl.json``). ``clientToken`` is the
    attempt's part of the execution name (``<claim id>-<attempt>-<token>``): HyperPod's BatchAddClusterNodes is
    idempotent on it, so a retried Scale step adds nothing twice while a later attempt launches new nodes."""
    at = name.rfind(claim.claim_id) if name else -1
    return {
        "cluster": settings.cluster_name,
        "instanceGroup": claim.instance_group,
        "count": claim.count,
        "claimId": claim.claim_id,
        "pods": list(claim.pods),
        "nodePool": claim.nodepool,
        "instanceType": claim.instance_type,
        "zone": claim.zone,
        "registrationTimeoutSeconds": settings.registration_timeout_seconds,
        "clientToken": name[at:] if at >= 0 else claim.claim_id,
        **({"gang": claim.gang.to_dict()} if claim.gang is not None else {}),
    }


def _start(deps: ReconcileDeps, settings: ReconcileSettings, claim: InflightClaim, name: str) -> None:
    deps.workflows.start(settings.provision_state_machine_arn, name, provision_input(settings, claim, name))


def _events(
    deps: ReconcileDeps,
    settings: ReconcileSettings,
    snapshot: ClusterObjects,
    plan: Plan,
    result: PassResult,
    pods_by_key: dict[str, Pod],
) -> None:
    """Nominated on the pods of this pass's new claims, FailedProvisioning on the pods nothing can take, a Warning on the
    NodePools when a cap cut the plan. Sent from a small thread pool (each is one API call) and bounded per pass."""
    now = deps.clock()
    todo: list[tuple[ObjectRef, str, str, str]] = []
    for claim in result.claims:
        # Karpenter names its NodeClaim here; ours is not a Kubernetes object, so name what exists: the instance group
        # and the provision execution that launches the node
        where = (
            f"a new node of instance group {claim.instance_group} ({claim.instance_type}, {claim.zone}), "
            f"launched by provision execution {claim.execution_name}"
        )
        for key in claim.pods:
            pod = pods_by_key.get(key)
            if pod is not None and not result.dry_run:
                todo.append((_pod_ref(pod), "Nominated", f"Pod should schedule on: {where}", "Normal"))
    for key, reason in sorted(plan.unschedulable.items()):
        pod = pods_by_key.get(key)
        if pod is None:
            continue
        message = f"Failed to provision a node for the pod: {reason}"
        if not deps.events_sent.first_in_window(
            (key, "FailedProvisioning", message), now, settings.event_repeat_seconds
        ):
            continue
        todo.append((_pod_ref(pod), "FailedProvisioning", message, "Warning"))
    if result.capped:
        text = (
            f"A decision wanted more nodes than the global caps allow (this decision may add {result.cap}; "
            f"MaxNodesPerDecision={settings.max_nodes_per_decision}, MaxNodesTotal={settings.max_nodes_total})"
        )
        for pool in snapshot.nodepools:
            todo.append(
                (ObjectRef("NodePool", pool.name, api_version="karpenter.sh/v1"), "CapReached", text, "Warning")
            )
    todo = todo[: settings.max_events_per_pass]
    if not todo:
        return
    with ThreadPoolExecutor(max_workers=max(1, settings.event_workers)) as pool_:
        list(pool_.map(lambda e: send_event(deps.cluster, deps.metrics, *e), todo))
    deps.events_sent.forget_older(now, settings.event_repeat_seconds)


def _pod_ref(pod: Pod) -> ObjectRef:
    return ObjectRef("Pod", pod.name, pod.namespace, pod.metadata.uid)


def _metrics(deps: ReconcileDeps, snapshot: ClusterObjects, plan: Plan, result: PassResult) -> None:
    deps.metrics.gauge(m.UNSCHEDULABLE_PODS, result.unschedulable)
    deps.metrics.gauge(m.INFLIGHT_NODECLAIMS, result.inflight_nodes + sum(c.count for c in result.claims))
    deps.metrics.seconds(m.SCHEDULING_DURATION, result.scheduling_seconds)
    if result.capped:
        deps.metrics.count(m.DECISION_CAP_HIT, 1)
    for pool in snapshot.nodepools:
        for resource, value in pool.limits.items():
            deps.metrics.gauge(m.NODEPOOL_LIMIT, value, NodePool=pool.name, Resource=resource)
    usage = (plan.stats or {}).get("nodepool_usage")
    if isinstance(usage, dict):
        for pool_name, resources in usage.items():
            if isinstance(resources, dict):
                for resource, value in resources.items():
                    deps.metrics.gauge(m.NODEPOOL_USAGE, float(value), NodePool=str(pool_name), Resource=str(resource))


# --- the invocation ------------------------------------------------------------------------------------------------------


def run_reconcile(
    deps: ReconcileDeps,
    settings: ReconcileSettings,
    lease: LeasePort,
    loop: LoopSettings,
    trigger: Trigger,
    holder: str,
    remaining_seconds: Callable[[], float] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> ReconcileResult:
    """Passes under the lease while pods stay pending (see the module docstring). An alarm going back to OK and a dry run
    get a single pass."""
    effective = loop if trigger.wants_recheck and not trigger.dry_run else loop.single_pass()
    # announced pods (the pod scaler just raised replicas) take a few seconds to be created and found unschedulable
    watch_until = deps.clock() + ANNOUNCED_PODS_GRACE_SECONDS if trigger.announces_pods else 0.0

    def one_pass() -> tuple[PassResult, bool]:
        outcome = reconcile_once(deps, settings, dry_run=trigger.dry_run)
        waiting = outcome.pending == 0 and not outcome.claims and deps.clock() < watch_until
        return outcome, outcome.more or waiting

    result: LoopOutcome[PassResult] = run_leased_loop(
        lease,
        LEASE_NAME,
        holder,
        one_pass,
        effective,
        remaining_seconds=remaining_seconds,
        clock=deps.clock,
        sleep=sleep,
    )
    if not result.held:
        deps.metrics.count(m.LEASE_CONTENDED, 1)
    deps.metrics.count(m.RECONCILE_PASSES, len(result.passes))
    return ReconcileResult(trigger.description, result.held, result.stopped, result.passes)
