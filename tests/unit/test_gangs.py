"""All-or-nothing planning of gangs: ProvisioningRequests (both classes) and Kueue pod groups.

Semantics from upstream: the API and classes from kubernetes/autoscaler
``cluster-autoscaler/apis/provisioningrequest/autoscaling.x-k8s.io/v1/types.go``; the pods of a request as
``cluster-autoscaler/provisioningrequest/pods/pods.go`` makes them (``<request>-<pod set>-<index>``); consuming pods
filtered out of scale-up as ``cluster-autoscaler/processors/provreq`` (ProvisioningRequestPodsFilter) does; pod groups
from kubernetes-sigs/kueue ``site/content/en/docs/tasks/run/plain_pods.md`` and ``.../troubleshooting_pods.md`` (no
Workload while the group has fewer runnable pods than its total count). Every expected placement below is worked out by
hand: an ``ml.g6.xlarge`` (4 vCPU, 1 GPU) holds one 1-GPU pod; it costs less than an ``ml.g6.4xlarge`` (also 1 GPU).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hyperpod_autoscaler.domain import gangs
from hyperpod_autoscaler.domain.catalog import Catalog
from hyperpod_autoscaler.domain.gangs import BEST_EFFORT_ATOMIC, CHECK_CAPACITY
from hyperpod_autoscaler.domain.objects import parse_objects
from hyperpod_autoscaler.domain.plan import Plan, PlanInput, PlanOptions
from hyperpod_autoscaler.domain.scheduling import schedule

from .engine_fixtures import cluster, node, nodeclass, nodepool, pod

G6 = [{"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["ml.g6.xlarge"]}]
GROUP_LABEL = "kueue.x-k8s.io/pod-group-name"
TOTAL = "kueue.x-k8s.io/pod-group-total-count"


def template(name: str, gpu: int = 1, cpu: str = "1") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PodTemplate",
        "metadata": {"name": name, "namespace": "default"},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {
                "containers": [
                    {"name": "c", "resources": {"requests": {"cpu": cpu, "memory": "1Gi", "nvidia.com/gpu": str(gpu)}}}
                ]
            },
        },
    }


def request(
    name: str,
    count: Any = 4,
    template_name: str = "worker",
    cls: str = BEST_EFFORT_ATOMIC,
    parameters: dict[str, str] | None = None,
    created: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "autoscaling.x-k8s.io/v1",
        "kind": "ProvisioningRequest",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "provisioningClassName": cls,
            "podSets": [{"podTemplateRef": {"name": template_name}, "count": count}],
        },
    }
    if parameters is not None:
        body["spec"]["parameters"] = parameters
    if created:
        body["metadata"]["creationTimestamp"] = created
    return body


def group_pod(name: str, group: str, total: str, gpu: int = 1, node_name: str | None = None) -> dict[str, Any]:
    body = pod(name, gpu=gpu, labels={GROUP_LABEL: group}, node=node_name)
    body["metadata"]["annotations"] = {TOTAL: total}
    return body


def g6_cluster(limits: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return [nodeclass(), nodepool(requirements=G6, limits=limits)]


def gang_plan(
    objects: list[dict[str, Any]], unavailable: dict[str, str] | None = None, max_new: int | None = None
) -> Plan:
    parsed = parse_objects(copy.deepcopy(objects))
    inp = PlanInput.from_objects(parsed, cluster(), Catalog.builtin())
    inp.unavailable_groups = unavailable or {}
    return schedule(inp, PlanOptions(time_budget_seconds=0.2, max_new_nodes=max_new))


def decision(p: Plan, name: str) -> dict[str, Any]:
    contract = p.to_contract()
    found = [d for d in contract["provisioningRequests"] + contract["podGroups"] if d["name"] == name]
    assert len(found) == 1, contract
    return found[0]


def claimed(p: Plan) -> set[str]:
    return {k for c in p.node_claims for k in c.pods}


TRAIN = [f"default/train-0-{j}" for j in range(4)]


def test_atomic_request_provisions_every_pod_from_one_group() -> None:
    p = gang_plan([*g6_cluster(), template("worker"), request("train")])
    d = decision(p, "train")
    assert {k: d[k] for k in ("namespace", "name", "class", "decision", "pods")} == {
        "namespace": "default",
        "name": "train",
        "class": BEST_EFFORT_ATOMIC,
        "decision": "provision",
        "pods": TRAIN,
    }
    assert sorted(sorted(c.pods) for c in p.node_claims) == [[k] for k in TRAIN]
    assert p.scale_up == {"auto-g6-az1": 4}
    assert p.unschedulable == {}


def test_nodepool_limit_blocks_the_whole_gang_and_leaves_its_room_to_other_pods() -> None:
    # 3 GPUs allowed: 4 one-GPU pods cannot all be placed, so none is; the lone GPU pod still gets its node.
    p = gang_plan([*g6_cluster({"nvidia.com/gpu": 3}), template("worker"), request("train"), pod("solo-0", gpu=1)])
    d = decision(p, "train")
    assert d["decision"] == "blocked" and d["pods"] == TRAIN
    assert "4 of 4 pods cannot be placed" not in d["reason"] and "pods cannot be placed" in d["reason"]
    assert [c.pods for c in p.node_claims] == [["default/solo-0"]]
    assert set(p.unschedulable) == set(TRAIN)
    assert all(r.startswith("ProvisioningRequest default/train is blocked") for r in p.unschedulable.values())


def test_a_group_in_backoff_blocks_a_gang_that_needs_it() -> None:
    p = gang_plan(
        [*g6_cluster(), template("worker"), request("train")], unavailable={"auto-g6-az1": "capacity backoff for 300 s"}
    )
    d = decision(p, "train")
    assert d["decision"] == "blocked" and "capacity backoff for 300 s" in d["reason"]
    assert p.node_claims == []


def test_the_cap_on_new_nodes_per_decision_blocks_a_gang_that_needs_more() -> None:
    # At most 3 new nodes: the 4-pod gang gets none, the lone pod gets one of the 3.
    p = gang_plan([*g6_cluster(), template("worker"), request("train"), pod("solo-0", gpu=1)], max_new=3)
    assert decision(p, "train")["decision"] == "blocked"
    assert [c.pods for c in p.node_claims] == [["default/solo-0"]]


def test_a_gang_uses_existing_room_first_and_new_nodes_for_the_rest() -> None:
    # n1 (one GPU) takes one pod; the other three get an ml.g6.xlarge each.
    objects = [*g6_cluster(), node("n1", group="auto-g6-az1", cpu="4", memory="16Gi", gpu=1)]
    p = gang_plan([*objects, template("worker"), request("train")])
    assert decision(p, "train")["decision"] == "provision"
    assert len(p.existing_nodes["n1"]) == 1 and p.scale_up == {"auto-g6-az1": 3}
    assert sorted(p.existing_nodes["n1"] + sorted(claimed(p))) == TRAIN


def test_another_pod_may_use_the_room_a_gang_node_leaves() -> None:
    # An ml.g6.xlarge (3.92 allocatable CPUs) holds the gang's 1-CPU 1-GPU pod and the lone 1-CPU pod: one node.
    p = gang_plan([*g6_cluster(), template("worker"), request("train", 1), pod("solo-0")])
    assert [sorted(c.pods) for c in p.node_claims] == [["default/solo-0", "default/train-0-0"]]
    assert decision(p, "train")["decision"] == "provision"


def cpu_template(name: str) -> dict[str, Any]:
    t = template(name)
    del t["template"]["spec"]["containers"][0]["resources"]["requests"]["nvidia.com/gpu"]
    return t


def test_check_capacity_does_not_count_the_new_nodes_of_other_gangs() -> None:
    # "early" gets a new ml.g6.xlarge with room left for a 1-CPU pod; "late" asks only for existing capacity.
    objects = [
        *g6_cluster(),
        template("worker"),
        cpu_template("cpu"),
        request("early", 1, created="2026-12-01T10:00:00Z"),
        request("late", 1, template_name="cpu", cls=CHECK_CAPACITY, created="2026-12-02T10:00:00Z"),
    ]
    p = gang_plan(objects)
    assert decision(p, "early")["decision"] == "provision"
    assert decision(p, "late")["decision"] == "blocked"
    assert [c.pods for c in p.node_claims] == [["default/early-0-0"]]


def test_an_atomic_gang_may_share_a_node_another_gang_gets() -> None:
    objects = [
        *g6_cluster(),
        template("worker"),
        cpu_template("cpu"),
        request("early", 1, created="2026-12-01T10:00:00Z"),
        request("late", 1, template_name="cpu", created="2026-12-02T10:00:00Z"),
    ]
    p = gang_plan(objects)
    late = decision(p, "late")
    assert late["decision"] == "provision" and "room on 1 new nodes of earlier gangs" in late["reason"]
    assert [sorted(c.pods) for c in p.node_claims] == [["default/early-0-0", "default/late-0-0"]]


def test_the_older_gang_keeps_the_capacity_and_the_other_is_not_planned_in_part() -> None:
    # 6 GPUs for two gangs of 4: "late" comes first by name, but "early" is older and takes 4; 2 are left, so "late"
    # gets none rather than 2 nodes for half a job.
    objects = [
        *g6_cluster({"nvidia.com/gpu": 6}),
        template("worker"),
        request("late", created="2026-12-02T10:00:00Z"),
        request("early", created="2026-12-01T10:00:00Z"),
    ]
    p = gang_plan(objects)
    assert decision(p, "early")["decision"] == "provision"
    assert decision(p, "late")["decision"] == "blocked"
    assert claimed(p) == {f"default/early-0-{j}" for j in range(4)}
    assert [g.name for g in p.gangs] == ["early", "late"]


def gpu_node() -> dict[str, Any]:
    return node("gpu-node", group="g5-12x-az1", cpu="40", memory="160Gi", gpu=4)


def test_check_capacity_fits_existing_capacity_and_books_it() -> None:
    # The 4-GPU node holds the request's 4 one-GPU pods; the lone GPU pod must not take that booked room.
    objects = [
        nodeclass(),
        nodepool(),
        gpu_node(),
        template("worker"),
        request("probe", cls=CHECK_CAPACITY),
        pod("solo-0", gpu=1),
    ]
    p = gang_plan(objects)
    d = decision(p, "probe")
    assert d["decision"] == "fits" and d["class"] == CHECK_CAPACITY
    assert sorted(p.existing_nodes["gpu-node"]) == [f"default/probe-0-{j}" for j in range(4)]
    assert claimed(p) == {"default/solo-0"}


def test_check_capacity_never_adds_nodes() -> None:
    p = gang_plan([nodeclass(), nodepool(), template("worker"), request("probe", cls=CHECK_CAPACITY)])
    d = decision(p, "probe")
    assert d["decision"] == "blocked" and "check-capacity never adds nodes" in d["reason"]
    assert p.node_claims == []


def test_check_capacity_blocked_when_existing_capacity_is_short_by_one() -> None:
    # 5 pods, 4 GPUs on the only node: none is placed there either (all or nothing).
    p = gang_plan([nodeclass(), nodepool(), gpu_node(), template("worker"), request("probe", 5, cls=CHECK_CAPACITY)])
    assert decision(p, "probe")["decision"] == "blocked"
    assert p.existing_nodes.get("gpu-node", []) == [] and p.node_claims == []
    assert len(p.unschedulable) == 5


def test_kueue_pod_group_is_planned_all_together() -> None:
    objects = [*g6_cluster(), *(group_pod(f"g-{i}", "group-a", "3") for i in range(3))]
    p = gang_plan(objects)
    d = decision(p, "group-a")
    assert d == {
        "namespace": "default",
        "name": "group-a",
        "decision": "provision",
        "pods": ["default/g-0", "default/g-1", "default/g-2"],
        "reason": d["reason"],
    }
    assert p.scale_up == {"auto-g6-az1": 3}
    assert p.to_contract()["provisioningRequests"] == []


def test_a_pod_group_with_fewer_pods_than_its_total_is_blocked() -> None:
    p = gang_plan([*g6_cluster(), group_pod("g-0", "group-a", "3"), group_pod("g-1", "group-a", "3")])
    d = decision(p, "group-a")
    assert d["decision"] == "blocked"
    assert "fewer runnable pods than expected (2 of 3)" in d["reason"]
    assert p.node_claims == [] and set(p.unschedulable) == {"default/g-0", "default/g-1"}


def test_a_pod_group_counts_its_running_pods() -> None:
    # One member already runs on n1: the group is complete, its 2 pending pods get a node each.
    objects = [
        *g6_cluster(),
        node("n1", group="auto-g6-az1", cpu="4", memory="16Gi", gpu=1),
        group_pod("g-0", "group-a", "3", node_name="n1"),
        group_pod("g-1", "group-a", "3"),
        group_pod("g-2", "group-a", "3"),
    ]
    p = gang_plan(objects)
    assert decision(p, "group-a")["pods"] == ["default/g-1", "default/g-2"]
    assert claimed(p) == {"default/g-1", "default/g-2"} and len(p.node_claims) == 2


def two_pools(b_limit: int | None = None) -> list[dict[str, Any]]:
    """pool-a: auto-g6-az1 (ml.g6.xlarge, $0.8048) at most 2 GPUs; pool-b: auto-g6-4xaz2 (ml.g6.4xlarge, $1.3232)."""
    return [
        nodeclass("hp-a", ["auto-g6-az1"]),
        nodeclass("hp-b", ["auto-g6-4xaz2"]),
        nodepool("pool-a", nodeclass_name="hp-a", limits={"nvidia.com/gpu": 2}),
        nodepool("pool-b", nodeclass_name="hp-b", limits=None if b_limit is None else {"nvidia.com/gpu": b_limit}),
        template("worker"),
    ]


def test_atomic_nodes_come_from_one_group_unless_the_request_allows_more() -> None:
    # Free, the 3 pods would take the 2 cheap nodes and one ml.g6.4xlarge: two groups, two zones.
    one = gang_plan([*two_pools(), request("train", 3)])
    assert decision(one, "train")["decision"] == "provision"
    assert one.scale_up == {"auto-g6-4xaz2": 3}
    many = gang_plan([*two_pools(), request("train", 3, parameters={"allowMultipleInstanceGroups": "true"})])
    assert many.scale_up == {"auto-g6-4xaz2": 1, "auto-g6-az1": 2}


def test_atomic_request_blocked_when_no_single_group_holds_it() -> None:
    p = gang_plan([*two_pools(b_limit=1), request("train", 3)])
    d = decision(p, "train")
    assert d["decision"] == "blocked"
    assert "auto-g6-4xaz2, auto-g6-az1" in d["reason"] and "allowMultipleInstanceGroups" in d["reason"]
    assert p.node_claims == []


def test_pods_consuming_a_request_are_not_planned_on_their_own() -> None:
    consumer = pod("real-0", gpu=1)
    consumer["metadata"]["annotations"] = {"autoscaling.x-k8s.io/consume-provisioning-request": "train"}
    old = pod("real-1", gpu=1)
    old["metadata"]["annotations"] = {"cluster-autoscaler.kubernetes.io/consume-provisioning-request": "train"}
    p = gang_plan([*g6_cluster(), template("worker"), request("train"), consumer, old])
    assert claimed(p) == set(TRAIN)
    assert "default/real-0" not in p.unschedulable and "default/real-1" not in p.unschedulable
    assert set(p.stats["skipped"]) == {"default/real-0", "default/real-1"}


def bad_template() -> dict[str, Any]:
    t = template("broken")
    t["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "lots"
    return t


BAD_INPUTS = [
    (
        [request("bad", count=0)],
        "bad",
        "ProvisioningRequest default/bad: field spec.podSets[0].count: must be an integer >= 1, got 0",
    ),
    (
        [request("bad", count="3")],
        "bad",
        "ProvisioningRequest default/bad: field spec.podSets[0].count: must be an integer >= 1, got '3'",
    ),
    (
        [request("bad", template_name="nope")],
        "bad",
        "ProvisioningRequest default/bad: field spec.podSets[0].podTemplateRef.name: PodTemplate default/nope does not"
        " exist",
    ),
    (
        [request("bad", cls="queued-provisioning.gke.io")],
        "bad",
        "ProvisioningRequest default/bad: field spec.provisioningClassName: queued-provisioning.gke.io is not served",
    ),
    (
        [{**request("bad"), "spec": {"provisioningClassName": BEST_EFFORT_ATOMIC}}],
        "bad",
        "ProvisioningRequest default/bad: field spec.podSets: must list 1 to 32 pod sets",
    ),
    (
        [bad_template(), request("bad", template_name="broken")],
        "bad",
        "PodTemplate default/broken: field template.spec.containers[0].resources.requests",
    ),
    (
        [request("bad", count=2**31 - 1)],
        "bad",
        "ProvisioningRequest default/bad: field spec.podSets: asks for 2147483647 pods; the requests of one decision may "
        "ask for 100000 together, 100000 are left",
    ),
    (
        [group_pod("g-0", "grp", "three"), group_pod("g-1", "grp", "three")],
        "grp",
        "Pod default/g-0: field metadata.annotations[kueue.x-k8s.io/pod-group-total-count]: must be an integer >= 1, "
        "got 'three'",
    ),
    (
        [group_pod("g-0", "grp", "2"), group_pod("g-1", "grp", "3")],
        "grp",
        "Pod default/g-1: field metadata.annotations[kueue.x-k8s.io/pod-group-total-count]: is 3, but default/g-0 "
        "says 2",
    ),
]


@pytest.mark.parametrize("bad,name,error", BAD_INPUTS, ids=[e for _, _, e in BAD_INPUTS])
def test_bad_input_blocks_only_its_own_gang(bad: list[dict[str, Any]], name: str, error: str) -> None:
    p = gang_plan([*g6_cluster(), template("worker"), request("train"), *bad])
    d = decision(p, name)
    assert d["decision"] == "blocked" and d["reason"].startswith(error), d["reason"]
    assert decision(p, "train")["decision"] == "provision"
    assert claimed(p) == set(TRAIN)


def test_finished_requests_are_not_planned() -> None:
    done = request("done")
    done["status"] = {"conditions": [{"type": "Failed", "status": "True", "reason": "CapacityIsNotFound"}]}
    p = gang_plan([*g6_cluster(), template("worker"), done])
    assert p.gangs == [] and p.node_claims == []


def test_the_pods_all_requests_may_ask_for_are_bounded_together(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gangs, "MAX_REQUEST_PODS", 6)
    parsed = parse_objects([template("worker"), request("a"), request("b")])
    split = gangs.split_gangs(parsed.pods, parsed.provisioning_requests, parsed.pod_templates)
    assert [(g.name, len(g.pods), g.error) for g in split.gangs] == [
        ("a", 4, None),
        (
            "b",
            0,
            "ProvisioningRequest default/b: field spec.podSets: asks for 4 pods; the requests of one decision may ask "
            "for 6 together, 2 are left",
        ),
    ]
