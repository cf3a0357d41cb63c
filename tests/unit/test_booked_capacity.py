"""Capacity a Provisioned ProvisioningRequest has booked is not counted as free for other pods (issue 17).

Cluster Autoscaler books it by injecting the request's pods into its simulation before any scale-up
(kubernetes/autoscaler ``cluster-autoscaler/processors/provreq/processor.go``, ``bookCapacity``; which requests book:
``ShouldCapacityBeBooked`` in ``provisioningrequest/conditions/conditions.go``). The first two tables are its tests
``TestBookCapacity`` and ``TestBookCapacityConsumed`` (``processor_test.go``) as data: whether a request books capacity
at all. Upstream injects every pod of a request not fully scheduled; we inject the ones not yet scheduled (documented
in docs/gangs.md), so the partly scheduled case books 1 pod, not 2. The other tests show what booking does to a plan
and to consolidation; their expected placements are worked out by hand: the booked node has 4 GPUs, the request asks
4 one-GPU pods, so nothing else with a GPU fits there while it is booked.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hyperpod_autoscaler.domain import gangs
from hyperpod_autoscaler.domain.gangs import BEST_EFFORT_ATOMIC, CHECK_CAPACITY
from hyperpod_autoscaler.domain.objects import parse_objects

from . import disruption_fixtures as df
from .disruption_fixtures import base, disrupt, reasons
from .engine_fixtures import node, nodeclass, nodepool, pod
from .test_gangs import gang_plan, template

AT = "2026-01-01T00:00:00Z"


def upstream_request(cls: str, conditions: list[str], count: int = 10) -> dict[str, Any]:
    """``BuildTestProvisioningRequest("ns", "pr", "2", "100m", "", count, false, now, cls)`` with each condition True."""
    return {
        "apiVersion": "autoscaling.x-k8s.io/v1",
        "kind": "ProvisioningRequest",
        "metadata": {"name": "pr", "namespace": "ns"},
        "spec": {
            "provisioningClassName": cls,
            "podSets": [{"podTemplateRef": {"name": "pr-template"}, "count": count}],
        },
        "status": {
            "conditions": [
                {"type": c, "status": "True", "reason": "", "message": "", "lastTransitionTime": AT} for c in conditions
            ]
        },
    }


def upstream_template() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PodTemplate",
        "metadata": {"name": "pr-template", "namespace": "ns"},
        "template": {
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "2", "memory": "100m"}}}]}
        },
    }


def booked(objects: list[dict[str, Any]]) -> list[gangs.Reservation]:
    parsed = parse_objects(copy.deepcopy(objects))
    return gangs.reservations(parsed.pods, parsed.provisioning_requests, parsed.pod_templates)


# processor_test.go TestBookCapacity: (name, class, conditions True, capacity is booked)
BOOK_CAPACITY = [
    ("ProvReq is new, check-capacity class", CHECK_CAPACITY, [], False),
    ("ProvReq is Failed, best-effort-atomic class", BEST_EFFORT_ATOMIC, ["Failed"], False),
    ("ProvReq is Provisioned, unknown class", "unknown", ["Provisioned"], False),
    ("ProvReq is Provisioned, capacity should be booked, check-capacity class", CHECK_CAPACITY, ["Provisioned"], True),
    (
        "ProvReq is Provisioned, capacity should be booked, best-effort-atomic class",
        BEST_EFFORT_ATOMIC,
        ["Provisioned"],
        True,
    ),
    (
        "ProvReq has BookingExpired, capacity should not be booked, best-effort-atomic class",
        BEST_EFFORT_ATOMIC,
        ["Provisioned", "BookingExpired"],
        False,
    ),
]


@pytest.mark.parametrize(("name", "cls", "conditions", "is_booked"), BOOK_CAPACITY, ids=[c[0] for c in BOOK_CAPACITY])
def test_book_capacity_upstream(name: str, cls: str, conditions: list[str], is_booked: bool) -> None:
    out = booked([upstream_template(), upstream_request(cls, conditions)])
    assert bool(out and out[0].pods) is is_booked, name
    if is_booked:
        assert [p.key for p in out[0].pods] == [f"ns/pr-0-{i}" for i in range(10)]


def scheduled_consumer(i: int) -> dict[str, Any]:
    body = pod(f"pod-{i}", cpu="1", ns="ns", node="node")
    body["metadata"]["annotations"] = {"autoscaling.x-k8s.io/consume-provisioning-request": "pr"}
    return body


# processor_test.go TestBookCapacityConsumed: podCount 2; (name, scheduled pods, booked, pods we hold)
BOOK_CAPACITY_CONSUMED = [
    ("none scheduled", 0, True, 2),
    ("partially scheduled", 1, True, 1),
    ("fully scheduled", 2, False, 0),
]


@pytest.mark.parametrize(
    ("name", "scheduled", "is_booked", "held"), BOOK_CAPACITY_CONSUMED, ids=[c[0] for c in BOOK_CAPACITY_CONSUMED]
)
def test_book_capacity_consumed_upstream(name: str, scheduled: int, is_booked: bool, held: int) -> None:
    objects = [
        node("node", cpu="10", memory="10Gi"),
        upstream_template(),
        upstream_request(BEST_EFFORT_ATOMIC, ["Provisioned"], count=2),
        *(scheduled_consumer(i) for i in range(scheduled)),
    ]
    out = booked(objects)
    assert bool(out) is is_booked, name
    assert sum(len(r.pods) for r in out) == held


# --- what booking does ------------------------------------------------------------------------------------------------


def gpu_node(name: str = "gpu-node") -> dict[str, Any]:
    return node(name, group="g5-12x-az1", cpu="40", memory="160Gi", gpu=4)


def provisioned_train(nodes: str = "gpu-node", *extra: str, count: int = 4) -> dict[str, Any]:
    conditions = [
        {
            "type": "Provisioned",
            "status": "True",
            "reason": "CapacityIsProvisioned",
            "message": "",
            "lastTransitionTime": AT,
        }
    ]
    conditions += [{"type": c, "status": "True", "reason": c, "message": "", "lastTransitionTime": AT} for c in extra]
    return {
        "apiVersion": "autoscaling.x-k8s.io/v1",
        "kind": "ProvisioningRequest",
        "metadata": {"name": "train", "namespace": "default"},
        "spec": {
            "provisioningClassName": BEST_EFFORT_ATOMIC,
            "podSets": [{"podTemplateRef": {"name": "worker"}, "count": count}],
        },
        "status": {"conditions": conditions, "provisioningClassDetails": {"bookedNodes": nodes}},
    }


def test_another_pod_does_not_take_the_room_a_provisioned_request_booked() -> None:
    p = gang_plan([nodeclass(), nodepool(), gpu_node(), template("worker"), provisioned_train(), pod("solo-0", gpu=1)])
    assert p.existing_nodes.get("gpu-node", []) == []
    assert {k for c in p.node_claims for k in c.pods} == {"default/solo-0"}
    assert p.stats["booked"] == {"default/train": {"pods": 4, "held": {"gpu-node": 4}}}
    assert p.gangs == [], "a Provisioned request is not planned again"


def test_once_the_booking_is_over_the_room_is_free_again() -> None:
    over = provisioned_train("gpu-node", "BookingExpired")
    p = gang_plan([nodeclass(), nodepool(), gpu_node(), template("worker"), over, pod("solo-0", gpu=1)])
    assert p.existing_nodes == {"gpu-node": ["default/solo-0"]} and p.node_claims == []


def test_the_room_of_bound_consuming_pods_is_not_held_twice() -> None:
    # 3 of the 4 pods run on the node: one GPU is still booked, none is free for the solo pod
    bound = []
    for i in range(3):
        body = pod(f"train-w-{i}", gpu=1, node="gpu-node")
        body["metadata"]["annotations"] = {"autoscaling.x-k8s.io/consume-provisioning-request": "train"}
        bound.append(body)
    objects = [nodeclass(), nodepool(), gpu_node(), template("worker"), provisioned_train(), *bound]
    p = gang_plan([*objects, pod("solo-0", gpu=1)])
    assert p.stats["booked"] == {"default/train": {"pods": 1, "held": {"gpu-node": 1}}}
    assert {k for c in p.node_claims for k in c.pods} == {"default/solo-0"}


def test_booked_room_is_held_on_another_node_when_the_listed_one_is_gone() -> None:
    # ScheduleAnywhere, as Cluster Autoscaler injects it: the listed node is gone, another 4-GPU node holds the room
    p = gang_plan(
        [
            nodeclass(),
            nodepool(),
            gpu_node("other"),
            template("worker"),
            provisioned_train("gone"),
            pod("solo-0", gpu=1),
        ]
    )
    assert p.stats["booked"]["default/train"]["held"] == {"other": 4}
    assert "default/solo-0" in {k for c in p.node_claims for k in c.pods}


def test_consolidation_does_not_move_pods_into_booked_room() -> None:
    # a 1-GPU pod alone on a g6 node moves onto the 4-GPU node's free room (3 GPUs), unless a request booked it
    objects = [
        *base(groups=["g5-12x-az1", "auto-g6-az1"]),
        df.node("gpu-node", group="g5-12x-az1", cpu="40", memory="160Gi", gpu=4),
        df.node("g6-node", group="auto-g6-az1", cpu="4", memory="16Gi", gpu=1),
        df.running("anchor-0", on="gpu-node", gpu=1, annotations={"karpenter.sh/do-not-disrupt": "true"}),
        df.running("solo-0", on="g6-node", gpu=1),
        template("worker"),
    ]
    free = reasons(disrupt(objects))
    assert ("Underutilized", ["g6-node"], None) in free, f"the check: without the booking the pod moves: {free}"
    held = reasons(disrupt([*objects, provisioned_train(count=3)]))
    assert all(nodes != ["g6-node"] for _, nodes, _ in held), held
