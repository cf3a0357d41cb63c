"""ProvisioningRequest conditions and events written by reconcile, pass after pass (issue 17).

Expected conditions worked out by hand from Cluster Autoscaler's meanings: condition types from kubernetes/autoscaler
``cluster-autoscaler/apis/provisioningrequest/autoscaling.x-k8s.io/v1/types.go`` (Accepted: read and will be acted on;
Provisioned: all requested resources created and registered; Failed: impossible to obtain them; BookingExpired: was
Provisioned and the reservation is over), reasons from ``cluster-autoscaler/provisioningrequest/conditions/
conditions.go`` (Accepted, CapacityIsFound, CapacityIsNotFound, CapacityIsProvisioned, FailedToCreatePods,
CapacityReservationTimeExpired) and ``cluster-autoscaler/processors/provreq/processor.go`` (booking: 10 minutes from
Provisioned, or CapacityBookingConsumed once all the request's pods are scheduled). Ours: ``Provisioning`` while the
new nodes are not all Ready (Cluster Autoscaler says Provisioned=True once its scale-up call succeeds).

The cluster as in ``test_gang_reconcile``: NodePool ``gpunodepool`` takes ``ml.g6.xlarge`` (1 GPU) in us-west-2a only,
group ``auto-g6-az1``; each 1-GPU pod needs a node of its own.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hyperpod_autoscaler.domain.objects import ClusterObjects, parse_objects
from hyperpod_autoscaler.ports.cluster import ObjectRef
from hyperpod_autoscaler.services.reconcile import reconcile_once

from .engine_fixtures import node, pod
from .test_gang_reconcile import executions, objects
from .test_gangs import request, template
from .test_reconcile_service import SETTINGS, Clock, FakeCluster, make_deps
from .test_reconcile_service import table as table  # the moto DynamoDB fixture

CHECK = "check-capacity.autoscaling.x-k8s.io"


class StatusCluster(FakeCluster):
    """The fake cluster with the status subresource of ProvisioningRequests: conditions merged by type, the transition
    time moved only when the status changes (metav1.Condition's rule), on the test's clock."""

    def __init__(self, objs: ClusterObjects, clock: Clock) -> None:
        super().__init__(objs)
        self.clock = clock
        self.writes: list[tuple[str, list[dict[str, Any]]]] = []
        self.fail_for: set[str] = set()

    def set_provisioning_request_status(
        self, namespace: str, name: str, conditions: list[dict[str, Any]], details: dict[str, str] | None = None
    ) -> None:
        if name in self.fail_for:
            raise RuntimeError("API server unavailable")
        self.writes.append((f"{namespace}/{name}", conditions))
        (pr,) = [r for r in self.objects.provisioning_requests if r.key == f"{namespace}/{name}"]
        status = dict(pr.status or {})
        have = {c["type"]: c for c in status.get("conditions") or []}
        stamp = datetime.fromtimestamp(self.clock(), UTC).isoformat()
        for c in conditions:
            old = have.get(c["type"])
            keep = old is not None and old["status"] == c["status"]
            have[c["type"]] = {**c, "lastTransitionTime": old["lastTransitionTime"] if keep else stamp}
        pr.status = {**status, "conditions": list(have.values())}
        if details:
            pr.status["provisioningClassDetails"] = {**status.get("provisioningClassDetails", {}), **details}


def conditions(deps: Any, name: str = "train") -> dict[str, tuple[str, str]]:
    (pr,) = [r for r in deps.cluster.objects.provisioning_requests if r.metadata.name == name]
    return {c["type"]: (c["status"], c["reason"]) for c in (pr.status or {}).get("conditions", [])}


def message(deps: Any, kind: str, name: str = "train") -> str:
    (pr,) = [r for r in deps.cluster.objects.provisioning_requests if r.metadata.name == name]
    return next(c["message"] for c in pr.status["conditions"] if c["type"] == kind)


def request_events(deps: Any) -> list[tuple[str, str, str]]:
    out = []
    for ref, reason, _msg, kind in deps.cluster.events:
        if isinstance(ref, ObjectRef) and ref.kind == "ProvisioningRequest":
            out.append((ref.name, reason, kind))
    return out


def status_deps(table: Any, clock: Clock, objs: ClusterObjects) -> Any:
    deps = make_deps(table, clock, objs)
    deps.cluster = StatusCluster(objs, clock)
    return deps


def ready_g6(*names: str) -> list[Any]:
    docs = [
        node(n, group="auto-g6-az1", cpu="4", memory="16Gi", gpu=1, labels={"karpenter.sh/nodepool": "gpunodepool"})
        for n in names
    ]
    return parse_objects(docs).nodes


def test_an_atomic_request_is_accepted_provisioning_then_provisioned_once_every_node_is_ready(table: Any) -> None:
    clock = Clock()
    deps = status_deps(table, clock, objects(template("worker"), request("train", count=2)))
    reconcile_once(deps, SETTINGS)
    assert conditions(deps) == {"Accepted": ("True", "Accepted"), "Provisioned": ("False", "Provisioning")}
    assert request_events(deps) == [("train", "Accepted", "Normal"), ("train", "Provisioning", "Normal")]

    clock.t += 60  # one node is up, the other still boots: not Provisioned yet
    deps.cluster.objects.nodes.extend(ready_g6("hp-node-1"))
    reconcile_once(deps, SETTINGS)
    assert conditions(deps)["Provisioned"] == ("False", "Provisioning")

    clock.t += 60  # both Ready and the execution has finished
    deps.cluster.objects.nodes.extend(ready_g6("hp-node-2"))
    for e in list(deps.workflows.executions):
        deps.workflows.finish(e)
    clock.t += SETTINGS.claim_grace_seconds
    reconcile_once(deps, SETTINGS)
    assert conditions(deps)["Provisioned"] == ("True", "CapacityIsProvisioned")
    (pr,) = deps.cluster.objects.provisioning_requests
    assert pr.status["provisioningClassDetails"] == {"bookedNodes": "hp-node-1,hp-node-2"}, "the nodes that hold it"
    assert request_events(deps)[-1] == ("train", "CapacityIsProvisioned", "Normal")
    assert len(executions(deps)) == 1, "the Ready nodes hold the request: nothing more is launched"

    clock.t += 30  # Provisioned: not planned again, nothing written again
    writes = len(deps.cluster.writes)
    reconcile_once(deps, SETTINGS)
    assert len(deps.cluster.writes) == writes and len(executions(deps)) == 1


def test_the_booking_expires_ten_minutes_after_provisioned(table: Any) -> None:
    clock = Clock()
    deps = status_deps(table, clock, objects(template("worker"), request("train", count=1)))
    deps.cluster.objects.nodes.extend(ready_g6("hp-node-1"))  # room for the pod already: CapacityIsFound
    reconcile_once(deps, SETTINGS)
    assert conditions(deps)["Provisioned"] == ("True", "CapacityIsFound") and executions(deps) == []
    clock.t += 600  # exactly the window: still booked (processor.go: expired when transition + 10 min is before now)
    reconcile_once(deps, SETTINGS)
    assert "BookingExpired" not in conditions(deps)
    clock.t += 1
    reconcile_once(deps, SETTINGS)
    assert conditions(deps)["BookingExpired"] == ("True", "CapacityReservationTimeExpired")
    assert request_events(deps)[-1] == ("train", "CapacityReservationTimeExpired", "Normal")


def test_the_booking_ends_when_the_consuming_pods_are_all_bound(table: Any) -> None:
    clock = Clock()
    deps = status_deps(table, clock, objects(template("worker"), request("train", count=2)))
    deps.cluster.objects.nodes.extend(ready_g6("hp-node-1", "hp-node-2"))
    reconcile_once(deps, SETTINGS)
    assert conditions(deps)["Provisioned"] == ("True", "CapacityIsFound")
    consumer = {"autoscaling.x-k8s.io/consume-provisioning-request": "train"}
    one = pod("job-0", gpu=1, node="hp-node-1")
    one["metadata"]["annotations"] = consumer
    deps.cluster.objects.pods.extend(parse_objects([one]).pods)
    clock.t += 10
    reconcile_once(deps, SETTINGS)
    assert "BookingExpired" not in conditions(deps), "one of two pods bound: the booking holds"
    two = pod("job-1", gpu=1, node="hp-node-2")
    two["metadata"]["annotations"] = consumer
    deps.cluster.objects.pods.extend(parse_objects([two]).pods)
    clock.t += 10
    reconcile_once(deps, SETTINGS)
    assert conditions(deps)["BookingExpired"] == ("True", "CapacityBookingConsumed")


def test_a_blocked_request_is_not_provisioned_with_the_reason_and_a_warning(table: Any) -> None:
    deps = status_deps(table, Clock(), objects(template("worker"), request("train", count=3), gpu_limit="2"))
    reconcile_once(deps, SETTINGS)
    assert conditions(deps) == {"Accepted": ("True", "Accepted"), "Provisioned": ("False", "CapacityIsNotFound")}
    # the limit of 2 GPUs holds two 1-GPU nodes: the third pod is left out, so the gang is blocked whole
    assert message(deps, "Provisioned").startswith("1 of 3 pods cannot be placed; default/train-0-2:")
    assert ("train", "CapacityIsNotFound", "Warning") in request_events(deps)
    assert executions(deps) == []


def test_a_request_given_back_is_not_provisioned_and_retried_later(table: Any) -> None:
    clock = Clock()
    deps = status_deps(table, clock, objects(template("worker"), request("train", count=2)))
    reconcile_once(deps, SETTINGS)
    assert conditions(deps)["Provisioned"] == ("False", "Provisioning")
    # the execution gave every node back (capacity failure) and backed the only group off
    for e in list(deps.workflows.executions):
        deps.workflows.finish(e)
    deps.backoffs.groups["auto-g6-az1"] = "InsufficientCapacity: backoff 300s"
    clock.t += SETTINGS.claim_grace_seconds + 1
    reconcile_once(deps, SETTINGS)
    assert conditions(deps)["Provisioned"] == ("False", "CapacityIsNotFound")
    assert "Failed" not in conditions(deps), "a capacity shortage is retried, not a permanent failure"
    assert len(executions(deps)) == 1, "nothing launched while the group is backed off"
    deps.backoffs.groups.clear()  # the backoff passed: provisioned again
    clock.t += 10
    reconcile_once(deps, SETTINGS)
    assert conditions(deps)["Provisioned"] == ("False", "Provisioning") and len(executions(deps)) == 2


def test_an_invalid_request_fails_naming_the_field_and_the_others_go_on(table: Any) -> None:
    deps = status_deps(table, Clock(), objects(template("worker"), request("bad", count=0), request("train", count=1)))
    reconcile_once(deps, SETTINGS)
    assert conditions(deps, "bad") == {"Failed": ("True", "FailedToCreatePods")}
    assert message(deps, "Failed", "bad") == (
        "ProvisioningRequest default/bad: field spec.podSets[0].count: must be an integer >= 1, got 0"
    )
    assert ("bad", "FailedToCreatePods", "Warning") in request_events(deps)
    assert conditions(deps)["Provisioned"] == ("False", "Provisioning")


def test_a_failed_status_write_does_not_stop_the_other_requests(table: Any) -> None:
    deps = status_deps(
        table, Clock(), objects(template("worker"), request("first", count=1), request("train", count=1))
    )
    deps.cluster.fail_for.add("first")
    reconcile_once(deps, SETTINGS)
    assert conditions(deps, "first") == {}
    assert conditions(deps)["Provisioned"] == ("False", "Provisioning")
    assert len(executions(deps)) == 2, "the decision stands whatever the status write did"


def test_check_capacity_is_provisioned_when_existing_capacity_fits_and_never_launches(table: Any) -> None:
    deps = status_deps(table, Clock(), objects(template("worker"), request("fits", count=1, cls=CHECK)))
    deps.cluster.objects.nodes.extend(ready_g6("hp-node-1"))
    reconcile_once(deps, SETTINGS)
    assert conditions(deps, "fits") == {"Accepted": ("True", "Accepted"), "Provisioned": ("True", "CapacityIsFound")}
    deps2 = status_deps(table, Clock(), objects(template("worker"), request("short", count=2, cls=CHECK)))
    deps2.cluster.objects.nodes.extend(ready_g6("hp-node-1"))
    reconcile_once(deps2, SETTINGS)
    assert conditions(deps2, "short")["Provisioned"] == ("False", "CapacityIsNotFound")
    assert executions(deps) == [] and executions(deps2) == []


def test_a_request_past_the_decisions_pod_budget_waits_and_one_past_it_alone_fails(
    table: Any, monkeypatch: Any
) -> None:
    from hyperpod_autoscaler.domain import gangs

    monkeypatch.setattr(gangs, "MAX_REQUEST_PODS", 2)  # requests are taken by name: a (2 pods), b (1), c (3)
    deps = status_deps(
        table,
        Clock(),
        objects(template("worker"), request("a", count=2), request("b", count=1), request("c", count=3)),
    )
    reconcile_once(deps, SETTINGS)
    assert conditions(deps, "a")["Provisioned"] == ("False", "Provisioning")
    assert conditions(deps, "b") == {"Accepted": ("True", "Accepted"), "Provisioned": ("False", "CapacityIsNotFound")}
    assert "0 are left" in message(deps, "Provisioned", "b"), "b fits the budget on another pass: retried"
    assert conditions(deps, "c") == {"Failed": ("True", "FailedToCreatePods")}, "c alone is past it: it never fits"


def test_the_capacity_is_revoked_when_a_booked_node_is_lost_and_only_then(table: Any) -> None:
    # types.go: CapacityRevoked, "requested resources are not longer valid"; Kueue then evicts the Workload and asks
    # again, the way out for pods that trigger no capacity of their own
    clock = Clock()
    deps = status_deps(table, clock, objects(template("worker"), request("train", count=2)))
    deps.cluster.objects.nodes.extend(ready_g6("hp-node-1", "hp-node-2"))
    reconcile_once(deps, SETTINGS)
    assert conditions(deps)["Provisioned"] == ("True", "CapacityIsFound")
    clock.t += 10
    reconcile_once(deps, SETTINGS)
    assert "CapacityRevoked" not in conditions(deps), "both nodes there: nothing revoked"

    (n2,) = [n for n in deps.cluster.objects.nodes if n.name == "hp-node-2"]
    n2.metadata.labels["sagemaker.amazonaws.com/node-health-status"] = "UnschedulablePendingReplacement"
    clock.t += 10
    reconcile_once(deps, SETTINGS)
    assert conditions(deps)["CapacityRevoked"] == ("True", "BookedNodeLost")
    assert "hp-node-2 (UnschedulablePendingReplacement)" in message(deps, "CapacityRevoked")
    assert request_events(deps)[-1] == ("train", "BookedNodeLost", "Warning")
    clock.t += 10
    writes = len(deps.cluster.writes)
    reconcile_once(deps, SETTINGS)
    assert len(deps.cluster.writes) == writes, "revoked once: the request wants nothing more"


def test_a_booked_node_gone_after_the_booking_is_over_revokes_nothing(table: Any) -> None:
    clock = Clock()
    deps = status_deps(table, clock, objects(template("worker"), request("train", count=1)))
    deps.cluster.objects.nodes.extend(ready_g6("hp-node-1"))
    reconcile_once(deps, SETTINGS)
    clock.t += 601
    reconcile_once(deps, SETTINGS)
    assert conditions(deps)["BookingExpired"] == ("True", "CapacityReservationTimeExpired")
    deps.cluster.objects.nodes.clear()
    clock.t += 10
    reconcile_once(deps, SETTINGS)
    assert "CapacityRevoked" not in conditions(deps)


def test_a_booked_node_gone_revokes_the_capacity(table: Any) -> None:
    clock = Clock()
    deps = status_deps(table, clock, objects(template("worker"), request("train", count=1)))
    deps.cluster.objects.nodes.extend(ready_g6("hp-node-1"))
    reconcile_once(deps, SETTINGS)
    deps.cluster.objects.nodes.clear()
    clock.t += 10
    reconcile_once(deps, SETTINGS)
    assert conditions(deps)["CapacityRevoked"] == ("True", "BookedNodeLost")
    assert message(deps, "CapacityRevoked") == "the capacity booked for it is lost: hp-node-1 (gone)"
