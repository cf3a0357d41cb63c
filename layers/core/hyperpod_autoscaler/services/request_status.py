"""ProvisioningRequest status written after each reconcile pass: conditions through the status subresource (the
meanings are ``domain.gang_status``'s) and an event on each transition.

Two moments: ``end_bookings`` right after the snapshot (a Provisioned request's booking ends when its pods are all
scheduled or its window passes; its capacity is revoked when a node that holds it is lost, whether or not anything is
pending), and ``after_plan`` once the plan is made (Accepted,
Provisioned, Failed of the requests that want capacity). A write that fails for one request is counted and logged and
never stops the others: the next pass writes it again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from ..domain import gang_status as gs
from ..domain.gangs import (
    BOOKED_NODES,
    PROVISIONING_REQUEST,
    Gang,
    ProvisioningRequest,
    finished,
    pod_count,
    scheduled_per_request,
)
from ..domain.objects import ClusterObjects
from ..domain.plan import Plan
from ..ports import metrics as m
from ..ports.cluster import ClusterPort, ObjectRef
from ..ports.metrics import MetricsPort
from .events import send_event

log = logging.getLogger(__name__)

API_VERSION = "autoscaling.x-k8s.io/v1"
WARNING_REASONS = {gs.CAPACITY_IS_NOT_FOUND, gs.FAILED_TO_CREATE_PODS, gs.BOOKED_NODE_LOST}


@dataclass
class StatusDeps:
    cluster: ClusterPort
    metrics: MetricsPort
    clock: Callable[[], float]
    booking_seconds: float = gs.DEFAULT_BOOKING_SECONDS


def end_bookings(deps: StatusDeps, snapshot: ClusterObjects) -> int:
    """``BookingExpired=True`` on the Provisioned requests whose booking is over, ``CapacityRevoked=True`` on those
    whose booked capacity is lost; how many were written."""
    now = datetime.fromtimestamp(deps.clock(), UTC)
    nodes = {n.name: n for n in snapshot.nodes}
    scheduled = scheduled_per_request(snapshot.pods)
    written = 0
    for pr in snapshot.provisioning_requests:
        over = gs.booking_over(pr, now, scheduled.get(pr.key, 0), pod_count(pr), deps.booking_seconds)
        if over is None:
            over = gs.revoked(pr, nodes)
        if over is not None:
            written += _write(deps, pr, [over])
    return written


def after_plan(deps: StatusDeps, snapshot: ClusterObjects, gangs: list[Gang], plan: Plan) -> int:
    """Accepted / Provisioned / Failed of each request the plan decided (or refused); how many were written."""
    by_key = {g.key: g for g in gangs if g.source == PROVISIONING_REQUEST}
    decisions = {f"{d.namespace}/{d.name}": d for d in plan.gangs if d.source == PROVISIONING_REQUEST}
    ready = {n.name for n in snapshot.nodes if n.is_ready}
    written = 0
    for pr in snapshot.provisioning_requests:
        gang = by_key.get(pr.key)
        if gang is None or finished(pr):
            continue
        decision = decisions.get(pr.key)
        nodes = _ready_nodes_of(plan, gang, ready)
        wanted = gs.after_decision(pr, decision, gang.error, not gang.retryable, nodes is not None)
        provisioned = any(c.type == gs.PROVISIONED and c.status == "True" for c in wanted)
        details = {BOOKED_NODES: ",".join(nodes or [])} if provisioned else None
        written += _write(deps, pr, wanted, details)
    return written


def _ready_nodes_of(plan: Plan, gang: Gang, ready: set[str]) -> list[str] | None:
    """The nodes the plan puts the gang's pods on, when every pod is on an existing Ready node (not on an in-flight
    claim or a new node): they hold the booked capacity. None when some pod is not."""
    where = {k: node for node, keys in plan.existing_nodes.items() for k in keys}
    if not gang.pods or any(where.get(p.key) not in ready for p in gang.pods):
        return None
    return sorted({where[p.key] for p in gang.pods})


def _write(
    deps: StatusDeps, pr: ProvisioningRequest, wanted: list[gs.Condition], details: dict[str, str] | None = None
) -> int:
    writes = gs.changed(pr, wanted)
    if not writes:
        return 0
    events = gs.transitions(pr, writes)
    try:
        conditions = [c.to_dict() for c in writes]
        deps.cluster.set_provisioning_request_status(pr.namespace, pr.metadata.name, conditions, details)
    except Exception as exc:  # the next pass writes it again; the other requests are written now
        log.warning("could not write the status of ProvisioningRequest %s: %s", pr.key, exc)
        deps.metrics.count(m.CLOUDPROVIDER_ERRORS, 1, Error="ProvisioningRequestStatus")
        return 0
    ref = ObjectRef(PROVISIONING_REQUEST, pr.metadata.name, pr.namespace, pr.metadata.uid, api_version=API_VERSION)
    for c in events:
        kind = "Warning" if c.reason in WARNING_REASONS else "Normal"
        send_event(deps.cluster, deps.metrics, ref, c.reason, f"{c.type}={c.status}: {c.message}", kind)
    return 1
