"""Reconcile plans gangs as ``plan`` does, so a gang's pods are never launched partly (issue 17): a blocked gang
launches nothing, an accepted best-effort-atomic gang's new nodes go out as ONE provision execution (one instance group,
count N) carrying the gang, apart from the other pods' claims.

Worked out by hand: the seed NodePool ``gpunodepool`` takes only ``ml.g6.xlarge`` in us-west-2a, i.e. instance group
``auto-g6-az1`` of ``examples/cluster.json`` (empty); an ``ml.g6.xlarge`` has one GPU, so each 1-GPU pod needs a node of
its own. Requests are Cluster Autoscaler's v1 API (kubernetes/autoscaler
``cluster-autoscaler/apis/provisioningrequest/autoscaling.x-k8s.io/v1/types.go``), their pods named
``<request>-<pod set>-<index>`` (``cluster-autoscaler/provisioningrequest/pods/pods.go``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hyperpod_autoscaler.domain.objects import ClusterObjects, load_yaml_documents, parse_objects
from hyperpod_autoscaler.domain.plan import GangRef
from hyperpod_autoscaler.services.reconcile import reconcile_once

from .engine_fixtures import pod
from .test_gangs import GROUP_LABEL, TOTAL, request, template
from .test_reconcile_service import SETTINGS, Clock, FakeWorkflows, make_deps
from .test_reconcile_service import table as table  # the moto DynamoDB fixture

ROOT = Path(__file__).resolve().parents[2]
TRAIN = GangRef("ProvisioningRequest", "default", "train")


def objects(*extra: dict[str, Any], gpu_limit: str | None = None) -> ClusterObjects:
    docs: list[Any] = []
    for name in ("nodeclass.yaml", "nodepool.yaml"):
        docs += load_yaml_documents((ROOT / "examples" / "seed" / name).read_text())
    if gpu_limit is not None:
        docs[-1]["spec"]["limits"] = {"nvidia.com/gpu": gpu_limit}
    return parse_objects([*docs, *extra])


def pending(name: str, gpu: int = 1, **meta: Any) -> dict[str, Any]:
    body = pod(name, gpu=gpu)
    body["status"] = {
        "phase": "Pending",
        "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}],
    }
    body["metadata"].update(meta)
    return body


def executions(deps: Any) -> list[dict[str, Any]]:
    workflows: FakeWorkflows = deps.workflows
    return [e.input for e in workflows.executions.values()]


def test_an_atomic_request_goes_out_as_one_execution_apart_from_the_other_pods(table: Any) -> None:
    deps = make_deps(table, Clock(), objects(template("worker"), request("train", count=3), pending("solo")))
    result = reconcile_once(deps, SETTINGS)
    assert result.gangs == 1
    by_gang = {(e.get("gang") or {}).get("name"): e for e in executions(deps)}
    assert set(by_gang) == {"train", None}, "the gang's nodes and the other pod's node are two executions"
    gang = by_gang["train"]
    assert gang["instanceGroup"] == "auto-g6-az1" and gang["count"] == 3
    assert gang["gang"] == {"source": "ProvisioningRequest", "namespace": "default", "name": "train"}
    assert sorted(gang["pods"]) == ["default/train-0-0", "default/train-0-1", "default/train-0-2"]
    assert by_gang[None]["count"] == 1 and by_gang[None]["pods"] == ["default/solo"]
    assert [c.gang for c in result.claims if c.gang] == [TRAIN]


def test_a_request_is_planned_without_any_pending_pod(table: Any) -> None:
    # Kueue's provisioning admission check creates the request before the job's pods exist
    deps = make_deps(table, Clock(), objects(template("worker"), request("train", count=2)))
    result = reconcile_once(deps, SETTINGS)
    assert result.pending == 0 and result.more, "a pass with a gang to plan keeps re-checking"
    [execution] = executions(deps)
    assert execution["count"] == 2 and execution["gang"]["name"] == "train"


def test_a_blocked_request_launches_nothing_while_the_other_pods_get_their_node(table: Any) -> None:
    # the NodePool may hold 2 GPUs: the request's 3 one-GPU pods cannot all be placed, the other pod's one can
    deps = make_deps(
        table, Clock(), objects(template("worker"), request("train", count=3), pending("solo"), gpu_limit="2")
    )
    reconcile_once(deps, SETTINGS)
    [execution] = executions(deps)
    assert execution["pods"] == ["default/solo"] and execution["count"] == 1 and "gang" not in execution


def test_a_gang_in_flight_is_capacity_and_is_not_launched_again(table: Any) -> None:
    clock = Clock()
    deps = make_deps(table, clock, objects(template("worker"), request("train", count=2)))
    reconcile_once(deps, SETTINGS)
    clock.t += 10
    second = reconcile_once(deps, SETTINGS)
    assert second.claims == [] and second.inflight_nodes == 2
    assert len(executions(deps)) == 1


def test_an_incomplete_pod_group_launches_nothing_and_its_pods_say_why(table: Any) -> None:
    members = [pending(f"g-{i}", labels={GROUP_LABEL: "grp"}, annotations={TOTAL: "3"}) for i in range(2)]
    deps = make_deps(table, Clock(), objects(*members))
    result = reconcile_once(deps, SETTINGS)
    assert executions(deps) == [] and result.claims == []
    failed = {e[0].name: e[2] for e in deps.cluster.events if e[1] == "FailedProvisioning"}
    assert set(failed) == {"g-0", "g-1"}
    assert all("group has fewer runnable pods than expected (2 of 3)" in m for m in failed.values()), failed


def test_a_complete_pod_group_goes_out_as_one_execution(table: Any) -> None:
    members = [pending(f"g-{i}", labels={GROUP_LABEL: "grp"}, annotations={TOTAL: "2"}) for i in range(2)]
    deps = make_deps(table, Clock(), objects(*members))
    reconcile_once(deps, SETTINGS)
    [execution] = executions(deps)
    assert execution["count"] == 2 and sorted(execution["pods"]) == ["default/g-0", "default/g-1"]
    assert execution["gang"] == {"source": "PodGroup", "namespace": "default", "name": "grp"}
