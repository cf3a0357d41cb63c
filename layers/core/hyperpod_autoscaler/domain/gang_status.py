"""The conditions a ProvisioningRequest should carry after a decision, with Cluster Autoscaler's meanings.

Condition types from kubernetes/autoscaler ``cluster-autoscaler/apis/provisioningrequest/autoscaling.x-k8s.io/v1/
types.go``: ``Accepted`` (the request was read and will be acted on), ``Provisioned`` (all of the requested resources
were created and registered), ``Failed`` (impossible to obtain them; reason and message say why), ``BookingExpired``
(the request was Provisioned and its capacity reservation time is over). Reasons and messages from
``cluster-autoscaler/provisioningrequest/conditions/conditions.go`` (``Accepted``, ``CapacityIsFound``,
``CapacityIsNotFound``, ``CapacityIsProvisioned``, ``FailedToCreatePods``, ``CapacityReservationTimeExpired``) and
``cluster-autoscaler/processors/provreq/processor.go`` (the booking of a Provisioned request ends 10 minutes after it
became Provisioned, or as ``CapacityBookingConsumed`` once all its pods are scheduled).

Ours: an atomic request whose new nodes are not all Ready yet is ``Provisioned=False`` with the reason ``Provisioning``
(Cluster Autoscaler sets ``Provisioned=True`` as soon as its scale-up call succeeds; issue 17 asks for every node Ready
first, so a job is never admitted onto a part of its nodes), and it becomes ``Provisioned=True`` with
``CapacityIsProvisioned`` once they are. Pure: the service reads the request, the plan and the nodes, and writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .gangs import CHECK_CAPACITY, ProvisioningRequest, books_capacity, listed_nodes
from .k8s import HP_HEALTH_LABEL, HYPERPOD_UNSCHEDULABLE_HEALTH, Node
from .plan import GangDecision

ACCEPTED = "Accepted"
PROVISIONED = "Provisioned"
FAILED = "Failed"
BOOKING_EXPIRED = "BookingExpired"
CAPACITY_REVOKED = "CapacityRevoked"
ACCEPTED_MSG = "ProvisioningRequest is accepted by ClusterAutoscaler"
CAPACITY_IS_FOUND = "CapacityIsFound"
CAPACITY_IS_NOT_FOUND = "CapacityIsNotFound"
CAPACITY_IS_PROVISIONED = "CapacityIsProvisioned"
FAILED_TO_CREATE_PODS = "FailedToCreatePods"
RESERVATION_EXPIRED = "CapacityReservationTimeExpired"
BOOKING_CONSUMED = "CapacityBookingConsumed"
PROVISIONING = "Provisioning"
"""Ours: new nodes for every pod are launched or booting; not all are Ready yet."""
BOOKED_NODE_LOST = "BookedNodeLost"
"""Ours: a node that holds a Provisioned request's booked capacity is gone, or HyperPod is replacing or rebooting it."""
DEFAULT_BOOKING_SECONDS = 600.0
"""Cluster Autoscaler's ``defaultReservationTime`` (processor.go): 10 minutes."""


@dataclass(frozen=True)
class Condition:
    type: str
    status: str
    reason: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"type": self.type, "status": self.status, "reason": self.reason, "message": self.message[:32768]}


def current(pr: ProvisioningRequest) -> dict[str, Mapping[str, Any]]:
    """The request's conditions by type, as stored."""
    status = pr.status if isinstance(pr.status, Mapping) else {}
    raw = status.get("conditions")
    return {str(c.get("type")): c for c in (raw if isinstance(raw, list) else []) if isinstance(c, Mapping)}


def is_true(pr: ProvisioningRequest, kind: str) -> bool:
    return current(pr).get(kind, {}).get("status") == "True"


def booking_over(
    pr: ProvisioningRequest, now: datetime, bound_pods: int, pod_count: int, window: float
) -> Condition | None:
    """``BookingExpired=True`` for a Provisioned request whose booking ended: every one of its pods is scheduled, or the
    window since it became Provisioned has passed (processor.go's ``bookCapacity`` and ``refresh``); else None."""
    if not books_capacity(pr):
        return None
    if pod_count > 0 and bound_pods >= pod_count:
        return Condition(
            BOOKING_EXPIRED, "True", BOOKING_CONSUMED, "Capacity booking is consumed: all pods are scheduled"
        )
    since = _parse_time(current(pr)[PROVISIONED].get("lastTransitionTime"))
    if since is not None and (now - since).total_seconds() > window:
        return Condition(BOOKING_EXPIRED, "True", RESERVATION_EXPIRED, "Capacity reservation time is expired")
    return None


def revoked(pr: ProvisioningRequest, nodes: Mapping[str, Node]) -> Condition | None:
    """``CapacityRevoked=True`` for a request whose booking holds (Provisioned, not over) when a node that holds its
    capacity is gone or HyperPod marked it for replacement or reboot; else None.

    types.go: "requested resources are not longer valid". Kueue then deactivates the Workload (evicting what runs of it)
    and asks again (kueue ``keps/1136-provisioning-request-support``), which is the way out: the request's pods trigger no
    capacity of their own, so without it they would wait for capacity that is no longer there."""
    if not books_capacity(pr):
        return None
    lost = []
    for name in listed_nodes(pr):
        node = nodes.get(name)
        if node is None:
            lost.append(f"{name} (gone)")
        elif node.metadata.labels.get(HP_HEALTH_LABEL) in HYPERPOD_UNSCHEDULABLE_HEALTH:
            lost.append(f"{name} ({node.metadata.labels[HP_HEALTH_LABEL]})")
    if not lost:
        return None
    return Condition(
        CAPACITY_REVOKED, "True", BOOKED_NODE_LOST, f"the capacity booked for it is lost: {', '.join(sorted(lost))}"
    )


def after_decision(
    pr: ProvisioningRequest, decision: GangDecision | None, error: str | None, permanent: bool, nodes_ready: bool
) -> list[Condition]:
    """The conditions a request that wants capacity should carry after this pass's plan.

    ``error``: why its pods could not be made (``permanent``: its spec is at fault, and a request's spec is immutable);
    ``decision``: the plan's decision for it; ``nodes_ready``: every node the plan puts its pods on exists and is Ready
    (none is an in-flight claim or a new node)."""
    if error is not None:
        if permanent:
            return [Condition(FAILED, "True", FAILED_TO_CREATE_PODS, error)]
        return [_accepted(), Condition(PROVISIONED, "False", CAPACITY_IS_NOT_FOUND, error)]
    if decision is None:
        return []
    if decision.decision == "blocked":
        return [_accepted(), Condition(PROVISIONED, "False", CAPACITY_IS_NOT_FOUND, decision.reason)]
    check_only = decision.provisioning_class == CHECK_CAPACITY  # answered from existing and in-flight capacity
    if decision.decision == "fits" and (nodes_ready or check_only):
        if check_only or current(pr).get(PROVISIONED, {}).get("reason") != PROVISIONING:
            return [_accepted(), Condition(PROVISIONED, "True", CAPACITY_IS_FOUND, "Capacity is found in the cluster")]
        return [
            _accepted(),
            Condition(PROVISIONED, "True", CAPACITY_IS_PROVISIONED, "Capacity is found in the cluster"),
        ]
    why = f"waiting until every node for its {len(decision.pods)} pods is Ready: {decision.reason}"
    return [_accepted(), Condition(PROVISIONED, "False", PROVISIONING, why)]


def changed(pr: ProvisioningRequest, wanted: list[Condition]) -> list[Condition]:
    """The conditions of ``wanted`` that differ from the stored ones (status, reason or message): the ones to write."""
    have = current(pr)
    out = []
    for c in wanted:
        old = have.get(c.type, {})
        if (old.get("status"), old.get("reason"), old.get("message")) != (c.status, c.reason, c.message[:32768]):
            out.append(c)
    return out


def transitions(pr: ProvisioningRequest, writes: list[Condition]) -> list[Condition]:
    """The writes that change a condition's status or reason (each gets an event; a new message alone does not)."""
    have = current(pr)
    return [
        c
        for c in writes
        if (have.get(c.type, {}).get("status"), have.get(c.type, {}).get("reason")) != (c.status, c.reason)
    ]


def _accepted() -> Condition:
    return Condition(ACCEPTED, "True", ACCEPTED, ACCEPTED_MSG)


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def booked_nodes(
    requests: list[ProvisioningRequest], now: float, window: float = DEFAULT_BOOKING_SECONDS
) -> dict[str, str]:
    """Node -> the request whose booked capacity it holds: every node listed by a Provisioned request whose booking is
    not over (no BookingExpired, Failed or CapacityRevoked, and within ``window`` of becoming Provisioned). Cluster
    Autoscaler books such capacity against scale-down (``processor.go``, ``bookCapacity``); so does consolidation."""
    out: dict[str, str] = {}
    for pr in requests:
        if not books_capacity(pr):
            continue
        since = _parse_time(current(pr)[PROVISIONED].get("lastTransitionTime"))
        if since is None or now - since.timestamp() > window:
            continue
        for name in listed_nodes(pr):
            out.setdefault(name, pr.key)
    return out
