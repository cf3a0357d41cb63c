"""Capacity a Provisioned ProvisioningRequest has booked is not consolidated (issue 17): the disruption handler end to
end (moto's interpreter, the HyperPod and Kubernetes emulators on the simulated clock), as in test_disruption_handler.

Cluster Autoscaler books a Provisioned request's capacity against scale-down until BookingExpired
(kubernetes/autoscaler ``cluster-autoscaler/processors/provreq/processor.go``: ``bookCapacity`` and ``refresh``, the
booking lasting ``defaultReservationTime``, 10 minutes, from the Provisioned transition). The nodes that hold it are
those reconcile wrote in ``status.provisioningClassDetails.bookedNodes`` with ``Provisioned=True``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hpa_testkit.pytest_aws import Stack

from tests.integration.test_disruption_handler import setup, up
from tests.unit.test_gangs import request, template


def provisioned(stack: Stack, nodes: list[str], seconds_ago: float, **extra: dict[str, str]) -> dict[str, Any]:
    at = datetime.fromtimestamp(stack.clock.now() - seconds_ago, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = request("train", count=len(nodes))
    conditions = [{"type": "Provisioned", "status": "True", "reason": "CapacityIsProvisioned", "message": "up"}]
    conditions += [{"type": k, **v} for k, v in extra.items()]
    body["status"] = {
        "conditions": [{**c, "lastTransitionTime": at} for c in conditions],
        "provisioningClassDetails": {"bookedNodes": ",".join(nodes)},
    }
    return body


def disrupt(stack: Stack, pass_id: str) -> dict[str, Any]:
    out = stack.invoke("disruption", {"source": "manual", "reason": "t", "id": pass_id})
    assert out["held"], out
    return out["result"]


def test_booked_empty_nodes_are_kept_until_the_booking_window_passes(stack: Stack) -> None:
    setup(stack)
    nodes = up(stack, "auto-g6-az1", 2)
    stack.kube.apply(template("worker"))
    stack.kube.apply(provisioned(stack, nodes, seconds_ago=60))
    kept = disrupt(stack, "pass-1")
    assert kept["decisions"] == [], "two empty nodes, both booked: none is consolidated"
    assert all("ProvisioningRequest has booked" in kept["kept"][n] for n in nodes), kept["kept"]

    stack.kube.apply(provisioned(stack, nodes, seconds_ago=601))  # past the 10 minutes: the booking is over
    gone = disrupt(stack, "pass-2")
    assert [sorted(d["nodes"]) for d in gone["decisions"]] == [nodes] and gone["decisions"][0]["reason"] == "Empty"


def test_a_booking_expired_request_books_nothing(stack: Stack) -> None:
    setup(stack)
    nodes = up(stack, "auto-g6-az1", 1)
    stack.kube.apply(template("worker"))
    expired = {"status": "True", "reason": "CapacityBookingConsumed", "message": "all pods scheduled"}
    stack.kube.apply(provisioned(stack, nodes, seconds_ago=30, BookingExpired=expired))
    out = disrupt(stack, "pass-1")
    assert [d["nodes"] for d in out["decisions"]] == [nodes]
