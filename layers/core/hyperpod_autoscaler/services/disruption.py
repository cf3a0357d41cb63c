"""The disruption function: which nodes go (``domain.disruption`` decides), and starting the workflows that remove them.

One pass:

1. a snapshot and the instance-group view; the per-node pod digests update "last pod change" (consolidateAfter);
2. nodes already in a disruption: inputs of running deprovision executions, and decisions waiting for a replacement;
3. pending replacements move on: a replacement that is Ready -> the old nodes' deprovision starts; one that failed ->
   the decision is dropped (nothing was tainted yet);
4. the decisions: each decision's attempt is recorded in the state table under a condition before anything starts, and
   its executions are named after the decision (reason and nodes) and the attempt (``services.naming``), so a second
   pass or a second invocation cannot start it twice, while the same decision taken again after its execution closed
   (a refused deprovision, a replacement that never came up) starts a new attempt instead of hitting the closed name. A
   deletion starts a deprovision execution; a replacement first starts a provision execution for the new node and is
   recorded, and the old nodes are drained only once it is Ready;
5. an Event on every node decided (``DisruptionTerminating``/``DisruptionLaunching``) and on every candidate kept
   (``DisruptionBlocked`` with the reason), metrics named after Karpenter's.

Before deciding, stranded nodes are repaired: a node carrying the deprovision workflow's ``karpenter.sh/disrupted``
taint with no running deprovision for it (its rollback failed, or its execution was stopped or timed out) is untainted
and uncordoned, so that it serves pods again and this pass can decide about it afresh. A cordon without the taint is an
operator's and is left alone.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..domain.catalog import Catalog
from ..domain.disruption import (
    INITIALIZED_LABEL,
    Decision,
    DisruptionInput,
    DisruptionPlan,
    DisruptionSettings,
    adoptions,
    plan_disruptions,
)
from ..domain.gang_status import booked_nodes
from ..domain.hyperpod import ClusterView
from ..domain.k8s import DISRUPTED_TAINT_KEY, NODEPOOL_LABEL
from ..domain.karpenter import NodePool
from ..domain.objects import ClusterObjects
from ..domain.plan import InflightClaim, NodeClaim, inflight_from_execution
from ..ports import metrics as m
from ..ports.cluster import ClusterPort, ObjectRef
from ..ports.hyperpod import HyperPodReader
from ..ports.metrics import MetricsPort
from ..ports.state import BackoffReader, DisruptionState
from ..ports.workflow import LIVE, WorkflowPort
from .conflict import hold_off
from .events import SentEvents, send_event
from .naming import attempt_name, new_token

log = logging.getLogger(__name__)

FAILED = ("FAILED", "TIMED_OUT", "ABORTED")
EVENT_REPEAT_SECONDS = 600.0
"""The same Event on the same object is not sent again within this window (warm invocations)."""


@dataclass(frozen=True)
class DisruptionConfig:
    cluster_name: str
    provision_state_machine_arn: str
    deprovision_state_machine_arn: str
    settings: DisruptionSettings = field(default_factory=DisruptionSettings)
    registration_timeout_seconds: int = 1200
    decision_grace_seconds: float = 120.0
    """A recorded attempt whose execution does not exist yet is still this decision's attempt for this long (a decider
    that died between the record and the start): it is started again under its name, not replaced."""


@dataclass
class DisruptionDeps:
    cluster: ClusterPort
    hyperpod: HyperPodReader
    workflows: WorkflowPort
    state: DisruptionState
    metrics: MetricsPort
    catalog: Catalog
    clock: Callable[[], float] = time.time
    events_sent: SentEvents = field(default_factory=SentEvents)
    backoffs: BackoffReader | None = None
    """The provision workflow's launch backoff: no replacement goes to a group that just failed to launch."""


def launching(deps: DisruptionDeps, cfg: DisruptionConfig, view: ClusterView) -> list[InflightClaim]:
    """The claims whose provision executions run (reconcile's, replacements, gangs), as the simulations count them."""
    claims = (inflight_from_execution(e.input, view) for e in deps.workflows.running(cfg.provision_state_machine_arn))
    return sorted((c for c in claims if c is not None and c.count > 0), key=lambda c: c.claim_id)


def decision_id(decision: Decision) -> str:
    return hashlib.sha256(decision.key.encode()).hexdigest()[:16]


def _digest(pods: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(pods)).encode()).hexdigest()[:16]


def track_activity(deps: DisruptionDeps, snapshot: ClusterObjects, now: float) -> dict[str, float]:
    """Node -> when its set of (non-DaemonSet) pods last changed. A node seen for the first time counts from now, unless
    it has no pods and is older than that (an empty node's emptiness starts no later than its creation)."""
    before, version = deps.state.activity_versioned()
    on: dict[str, list[str]] = {n.name: [] for n in snapshot.nodes}
    for p in snapshot.bound_pods:
        if not p.is_daemonset_pod and p.spec.node_name in on:
            on[str(p.spec.node_name)].append(p.metadata.uid or p.key)
    after: dict[str, dict[str, Any]] = {}
    for node in snapshot.nodes:
        digest = _digest(on[node.name])
        old = before.get(node.name)
        if old and old.get("digest") == digest:
            after[node.name] = old
        else:
            since = now
            if old is None and not on[node.name] and node.metadata.creation_timestamp is not None:
                since = min(now, node.metadata.creation_timestamp.timestamp())
            after[node.name] = {"digest": digest, "since": since}
    if after != before and not deps.state.save_activity(after, version):
        log.info("node activity written by a concurrent pass meanwhile: this pass's view is not saved")
    return {k: float(v["since"]) for k, v in after.items()}


def _advance_replacements(
    deps: DisruptionDeps, cfg: DisruptionConfig, dry_run: bool
) -> tuple[set[str], set[str], list[str]]:
    """(old nodes still waiting, new replacement nodes to protect, deprovision executions started)."""
    waiting: set[str] = set()
    protected: set[str] = set()
    started: list[str] = []
    for rid, rec in deps.state.replacements().items():
        if rec.get("phase") == "draining":
            # the old nodes are being drained onto the replacement: keep it out of consolidation until that is over
            drain = deps.workflows.describe(cfg.deprovision_state_machine_arn, rec["deprovisionName"])
            if drain is not None and drain.status in ("RUNNING", "PENDING_REDRIVE"):
                protected.update(rec.get("newNodes") or [])
                waiting.update(rec["nodes"])
            elif not dry_run:
                deps.state.delete_replacement(rid, rec.get("provisionName"))
            continue
        execution = deps.workflows.describe(cfg.provision_state_machine_arn, rec["provisionName"])
        status = execution.status if execution else "FAILED"
        output = (execution.output if execution else None) or {}
        if status in ("RUNNING", "PENDING_REDRIVE"):
            waiting.update(rec["nodes"])
            continue
        if status == "SUCCEEDED" and output.get("status") == "ready":
            new_nodes = list(output.get("nodes") or [])
            protected.update(new_nodes)
            waiting.update(rec["nodes"])
            if not dry_run:
                name = rec["deprovisionName"]
                deps.workflows.start(cfg.deprovision_state_machine_arn, name, rec["deprovision"])
                started.append(name)
                deps.state.start_draining(rid, {**rec, "phase": "draining", "newNodes": new_nodes})
            continue
        # the replacement never came up (capacity, timeout, failure): the old nodes stay, untouched
        log.warning("replacement %s for %s did not come up (%s): decision dropped", rid, rec["nodes"], status)
        deps.metrics.count(m.DISRUPTION_DECISIONS, 1, Reason=rec.get("reason", "?"), Decision="dropped")
        if not dry_run:
            deps.state.delete_replacement(rid, rec.get("provisionName"))
    return waiting, protected, started


def repair_stranded(deps: DisruptionDeps, snapshot: ClusterObjects, busy: set[str], now: float) -> list[str]:
    """Untaint and uncordon the nodes our taint strands (see the module docstring); the names repaired."""
    repaired: list[str] = []
    for node in snapshot.nodes:
        if node.name in busy or not any(t.key == DISRUPTED_TAINT_KEY for t in node.spec.taints):
            continue
        try:
            deps.cluster.remove_taint(node.name, DISRUPTED_TAINT_KEY)
            if node.spec.unschedulable:
                deps.cluster.uncordon(node.name)
        except Exception as exc:  # the next pass tries again; the others are still repaired
            log.warning("could not restore stranded node %s: %s", node.name, exc)
            continue
        repaired.append(node.name)
        log.warning("node %s was tainted %s with no deprovision running: restored", node.name, DISRUPTED_TAINT_KEY)
        _event(deps, node.name, "DisruptionRolledBack", "tainted with no deprovision running: restored", "Warning", now)
    return repaired


def adopt(deps: DisruptionDeps, snapshot: ClusterObjects, now: float) -> list[str]:
    """Label the NodePool-less HyperPod nodes of NodePool groups (``domain.disruption.adoptions``); the names labelled.
    A node left unlabelled in a group several NodePools share is never consolidated, so it would bill for good."""
    adopted: list[str] = []
    for name, pool in adoptions(snapshot, now).items():
        node = next(n for n in snapshot.nodes if n.name == name)
        labels = {NODEPOOL_LABEL: pool} | ({INITIALIZED_LABEL: "true"} if node.is_ready else {})
        try:
            deps.cluster.label_node(name, labels)
        except Exception as exc:  # the next pass tries again; the others are still adopted
            log.warning("could not label node %s with NodePool %s: %s", name, pool, exc)
            continue
        adopted.append(name)
        log.info("node %s had no %s label: adopted by NodePool %s", name, NODEPOOL_LABEL, pool)
        _event(
            deps,
            name,
            "NodeAdopted",
            f"labelled {NODEPOOL_LABEL}={pool}: HyperPod brought it up unlabelled",
            "Normal",
            now,
        )
    return adopted


def _attempt(
    deps: DisruptionDeps, cfg: DisruptionConfig, did: str, machine: str, bases: dict[str, str], now: float
) -> tuple[dict[str, str], bool]:
    """The execution names of the decision's current attempt (key -> name, one per entry of ``bases``) and whether this
    decider recorded it. A recorded attempt that still runs, or that was recorded moments ago and has not started yet,
    is reused; otherwise the next attempt is recorded under a condition, and a decider that loses the write takes the
    winner's names."""
    arn = {"provision": cfg.provision_state_machine_arn, "deprovision": cfg.deprovision_state_machine_arn}
    first = next(iter(bases))
    previous = deps.state.decision(did)
    for _ in range(3):
        if previous is not None:
            machine_arn = arn.get(str(previous.get("machine")), cfg.deprovision_state_machine_arn)
            execution = deps.workflows.describe(machine_arn, str(previous["name"]))
            fresh = now - float(previous.get("recordedAt") or 0) < cfg.decision_grace_seconds
            known = dict(previous.get("names") or {first: previous["name"]})
            live = (execution is not None and execution.status in LIVE) or (execution is None and fresh)
            if live and set(bases) <= set(known):
                return known, False
        attempt = int(previous.get("attempt") or 0) + 1 if previous else 1
        token = new_token()
        names = {key: attempt_name(base, attempt, token) for key, base in bases.items()}
        record = {"name": names[first], "machine": machine, "names": names, "attempt": attempt, "recordedAt": now}
        if deps.state.record_decision(did, record, str(previous["name"]) if previous else None):
            return names, True
        current = deps.state.decision(did)
        if current is not None and (previous is None or current.get("name") != previous.get("name")):
            won = dict(current.get("names") or {first: current["name"]})
            if set(bases) <= set(won):
                return won, False
        previous = current
    raise RuntimeError(f"disruption decision {did}: could not record an attempt (the record kept changing)")


def _event(deps: DisruptionDeps, node: str, reason: str, message: str, type_: str, now: float) -> None:
    if deps.events_sent.first_in_window((node, f"{reason}:{message}"), now, EVENT_REPEAT_SECONDS):
        send_event(deps.cluster, deps.metrics, ObjectRef("Node", node), reason, message, type_)


@dataclass
class DisruptionResult:
    plan: DisruptionPlan
    deprovisions: list[str] = field(default_factory=list)
    replacements: list[str] = field(default_factory=list)
    dry_run: bool = False
    seconds: float = 0.0
    restored: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    executions: dict[str, str] = field(default_factory=dict)
    """Decision key -> the execution this pass started for it (the provision first, for a replacement)."""
    conflict: str | None = None
    """Why this pass changed nothing: HyperPod's own autoscaler is enabled (``services.conflict``)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.plan.to_dict(),
            "deprovisionsStarted": self.deprovisions,
            "replacementsStarted": self.replacements,
            "restored": self.restored,
            "adopted": self.adopted,
            "dryRun": self.dry_run,
            "conflict": self.conflict,
            "seconds": round(self.seconds, 3),
        }


def _log_decisions(result: DisruptionResult, now: float) -> None:
    """One structured line per decision and one for the nodes kept (with why), at the cluster's time: what an operator
    reads in CloudWatch Logs (and the sandbox's functions.log) to learn why a node went or stayed."""
    for d in result.plan.decisions:
        log.info(
            {
                "decision": "disruption",
                "at": now,
                "reason": d.reason,
                "nodePool": d.nodepool,
                "nodes": d.nodes,
                "replacement": d.replacement.to_contract() | {"count": d.replacement_count} if d.replacement else None,
                "why": d.message,
                "execution": result.executions.get(d.key),
            }
        )
    if result.plan.kept or result.adopted or result.restored:
        log.info(
            {
                "decision": "disruption-kept",
                "at": now,
                "kept": {n: {"code": result.plan.kept_codes.get(n), "why": w} for n, w in result.plan.kept.items()},
                "adopted": result.adopted,
                "restored": result.restored,
            }
        )


def disrupt_once(deps: DisruptionDeps, cfg: DisruptionConfig, dry_run: bool = False) -> DisruptionResult:
    started = deps.clock()
    snapshot = deps.cluster.snapshot()
    view = deps.hyperpod.describe_cluster()
    now = deps.clock()
    conflict = hold_off(
        deps.cluster, deps.metrics, snapshot, view, deps.events_sent, now, EVENT_REPEAT_SECONDS, dry_run=dry_run
    )
    if conflict is not None:  # two autoscalers never fight: no node is tainted, drained or removed
        return DisruptionResult(DisruptionPlan(), dry_run=dry_run, conflict=conflict, seconds=deps.clock() - started)
    last = track_activity(deps, snapshot, now) if not dry_run else {}
    busy = _deprovisioning_nodes(deps, cfg)
    waiting, protected, deprovisions = _advance_replacements(deps, cfg, dry_run)
    busy |= waiting
    restored = [] if dry_run else repair_stranded(deps, snapshot, busy, now)
    adopted = [] if dry_run else adopt(deps, snapshot, now)
    if restored or adopted:
        snapshot = deps.cluster.snapshot()  # decide on the nodes as they are now
    plan = plan_disruptions(
        DisruptionInput(
            objects=snapshot,
            cluster=view,
            catalog=deps.catalog,
            now=now,
            last_pod_change=last,
            busy=busy,
            protected=protected | set(booked_nodes(snapshot.provisioning_requests, now)),
            unavailable_groups=deps.backoffs.unavailable_groups() if deps.backoffs is not None else {},
            inflight=launching(deps, cfg, view),
        ),
        cfg.settings,
    )
    result = DisruptionResult(plan, deprovisions, dry_run=dry_run, restored=restored, adopted=adopted)
    pools = {p.name: p for p in snapshot.nodepools}
    for d in plan.decisions:
        deps.metrics.count(
            m.DISRUPTION_DECISIONS, 1, Reason=d.reason, Decision="replace" if d.replacement else "delete"
        )
        if dry_run:
            continue
        grace = _termination_grace_period(pools.get(d.nodepool))
        if d.replacement is None:
            _start_deletion(deps, cfg, d, grace, now, result)
        else:
            _start_replacement(deps, cfg, d, d.replacement, grace, now, result)
    _log_decisions(result, now)
    _report_plan(deps, plan, now, dry_run)
    result.seconds = deps.clock() - started
    return result


def _deprovisioning_nodes(deps: DisruptionDeps, cfg: DisruptionConfig) -> set[str]:
    """The nodes running deprovision executions are removing (their inputs' ``nodes``)."""
    busy: set[str] = set()
    for execution in deps.workflows.running(cfg.deprovision_state_machine_arn):
        busy.update(n for n in execution.input.get("nodes") or [] if isinstance(n, str))
    return busy


def _termination_grace_period(pool: NodePool | None) -> int | None:
    """The NodePool's ``spec.template.spec.terminationGracePeriod`` in seconds (None when unset or no such pool)."""
    grace = pool.spec.template.spec.termination_grace_period_seconds if pool else None
    return int(grace) if grace is not None else None


def _deprovision_input(cfg: DisruptionConfig, d: Decision, grace: int | None) -> dict[str, Any]:
    deprovision: dict[str, Any] = {"cluster": cfg.cluster_name, "nodes": d.nodes, "reason": d.reason}
    if grace is not None:
        deprovision["terminationGracePeriodSeconds"] = grace
    return deprovision


def _deprovision_base(d: Decision) -> str:
    return f"{d.reason.lower()}-{decision_id(d)}"


def _start_deletion(
    deps: DisruptionDeps, cfg: DisruptionConfig, d: Decision, grace: int | None, now: float, result: DisruptionResult
) -> None:
    """A decision without a replacement: its attempt recorded, then the deprovision execution of its nodes started."""
    names, _ = _attempt(deps, cfg, decision_id(d), "deprovision", {"deprovision": _deprovision_base(d)}, now)
    deprovision_name = names["deprovision"]
    deps.workflows.start(cfg.deprovision_state_machine_arn, deprovision_name, _deprovision_input(cfg, d, grace))
    result.deprovisions.append(deprovision_name)
    result.executions[d.key] = deprovision_name
    for n in d.nodes:
        _event(deps, n, "DisruptionTerminating", d.message, "Normal", now)


def _start_replacement(
    deps: DisruptionDeps,
    cfg: DisruptionConfig,
    d: Decision,
    claim: NodeClaim,
    grace: int | None,
    now: float,
    result: DisruptionResult,
) -> None:
    """A decision with a replacement: its attempt and the deprovision to run once the new node is Ready are recorded,
    then the provision execution of the replacement starts (the old nodes are drained later, by
    ``_advance_replacements``)."""
    did = decision_id(d)
    names, _ = _attempt(
        deps, cfg, did, "provision", {"provision": f"replace-{did}", "deprovision": _deprovision_base(d)}, now
    )
    provision_name, deprovision_name = names["provision"], names["deprovision"]
    deps.state.put_replacement(
        did,
        {
            "nodes": d.nodes,
            "reason": d.reason,
            "provisionName": provision_name,
            "deprovisionName": deprovision_name,
            "deprovision": _deprovision_input(cfg, d, grace),
            "decidedAt": now,
        },
    )
    deps.workflows.start(
        cfg.provision_state_machine_arn,
        provision_name,
        {
            "cluster": cfg.cluster_name,
            "instanceGroup": claim.instance_group,
            "count": d.replacement_count,
            "claimId": provision_name,
            "pods": list(claim.pods),
            "nodePool": claim.nodepool,
            "instanceType": claim.instance_type,
            "zone": claim.zone,
            "registrationTimeoutSeconds": cfg.registration_timeout_seconds,
        },
    )
    result.replacements.append(provision_name)
    result.executions[d.key] = provision_name
    for n in d.nodes:
        _event(deps, n, "DisruptionLaunching", d.message, "Normal", now)


def _report_plan(deps: DisruptionDeps, plan: DisruptionPlan, now: float, dry_run: bool) -> None:
    """A ``DisruptionBlocked`` event on every candidate kept for a reason of its own (not while busy or protected; not in
    a dry run), and the allowed disruptions per NodePool and eligible nodes per reason as gauges."""
    if not dry_run:
        for node, why in plan.kept.items():
            if plan.kept_codes.get(node) in ("Busy", "Protected"):
                continue
            _event(deps, node, "DisruptionBlocked", why, "Normal", now)
    for pool_name, reasons in plan.allowed.items():
        for reason, allowed in reasons.items():
            deps.metrics.gauge(m.NODEPOOL_ALLOWED_DISRUPTIONS, allowed, NodePool=pool_name, Reason=reason)
    for reason, count in plan.eligible.items():
        deps.metrics.gauge(m.DISRUPTION_ELIGIBLE_NODES, count, Reason=reason)
