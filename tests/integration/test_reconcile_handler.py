"""The reconcile handler with every sample event, through moto's server (DynamoDB, Step Functions, CloudWatch, the
HyperPod emulator) and the Kubernetes emulator."""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from hpa_testkit.pytest_aws import Stack
from hpa_testkit.sandbox.runner import load_yaml_objects
from hyperpod_autoscaler.domain.errors import InvalidObject

ROOT = Path(__file__).resolve().parents[2]
EVENTS = sorted((ROOT / "events" / "reconcile").glob("*.json"))


def sample(name: str) -> dict[str, Any]:
    return json.loads((ROOT / "events" / "reconcile" / name).read_text())


def pending(stack: Stack) -> list[dict[str, Any]]:
    pods = load_yaml_objects(ROOT / "examples" / "seed" / "pods.yaml")
    for p in pods:
        stack.kube.apply(p)
    return pods


@pytest.mark.parametrize("path", EVENTS, ids=[p.stem for p in EVENTS])
def test_every_sample_event_decides(stack: Stack, path: Path) -> None:
    stack.seed()
    pending(stack)
    out = stack.invoke("reconcile", json.loads(path.read_text()))
    assert out["held"] is True, out
    assert out["executionsStarted"], out
    results = stack.wait_all("provision")
    assert results and all(r["status"] == "SUCCEEDED" for r in results), results


def test_alarm_to_ready_nodes_with_nominated_events(stack: Stack) -> None:
    stack.seed()
    pods = pending(stack)
    out = stack.invoke("reconcile", sample("alarm-pending-pods.json"))
    claims = out["last"]["claims"]
    assert out["passes"] == 1 and sum(c["count"] for c in claims) >= 1
    results = stack.wait_all("provision")
    assert all(r["output"]["status"] == "ready" for r in results), results
    nodes = stack.kube.list("v1", "Node")
    assert len(nodes) == sum(c["count"] for c in claims)
    reasons = {(e["involvedObject"]["name"], e["reason"]) for e in stack.kube.list("v1", "Event", "default")}
    for p in pods:
        assert (p["metadata"]["name"], "Nominated") in reasons


def test_a_redelivered_event_is_one_decision(stack: Stack) -> None:
    stack.seed()
    pending(stack)
    event = sample("alarm-pending-pods.json")
    first = stack.invoke("reconcile", event)
    second = stack.invoke("reconcile", copy.deepcopy(event))
    assert first == second, "the redelivery gets the recorded answer"
    assert len(stack.executions("provision")) == len(first["executionsStarted"]) >= 1


def test_a_second_event_while_provisioning_adds_nothing(stack: Stack) -> None:
    stack.seed()
    pending(stack)
    stack.invoke("reconcile", sample("alarm-pending-pods.json"))
    again = sample("schedule.json")
    again["id"] = "another-delivery"
    out = stack.invoke("reconcile", again)
    # The execution runs on the simulated clock and may already be over: then its Ready nodes are the capacity (a
    # closed execution is never counted as in flight).
    assert out["last"]["claims"] == [], "in-flight claims count as capacity"
    assert out["last"]["inflightNodes"] >= 1 or stack.kube.list("v1", "Node"), out


def test_schedule_writes_status_conditions(stack: Stack) -> None:
    stack.seed()
    out = stack.invoke("reconcile", sample("schedule.json"))
    assert out["validation"]["failures"] == []
    pools = stack.kube.list("karpenter.sh/v1", "NodePool")
    assert pools and all(
        any(c["type"] == "Ready" for c in (p.get("status") or {}).get("conditions") or []) for p in pools
    )


def test_a_malformed_event_names_the_field(stack: Stack) -> None:
    event = sample("alarm-pending-pods.json")
    del event["detail"]["state"]["value"]
    with pytest.raises(InvalidObject, match=r"state\.value"):
        stack.invoke("reconcile", event)


def test_pods_given_back_once_are_provisioned_again_by_a_new_execution(stack: Stack) -> None:
    """Issue 11, defect 1: the execution name must not be derived from the claim alone. Step Functions keeps a closed
    execution's name for 90 days, so after one capacity give-back the same pods on the same group were never provisioned
    again (``ExecutionAlreadyExists`` was taken for "already started")."""
    from hyperpod_autoscaler.adapters.dynamo_state import BASE_SECONDS

    stack.seed()
    pending(stack)
    hp = stack.aws.hyperpod
    groups = list(hp.clusters[stack.cluster_name].groups)
    for group in groups:
        hp.capacity_failure(group)
    first = stack.invoke("reconcile", sample("alarm-pending-pods.json"))
    [name] = first["executionsStarted"]
    [gave_back] = stack.wait_all("provision")
    assert gave_back["output"]["status"] == "gave-back", gave_back
    assert stack.kube.list("v1", "Node") == []
    for group in groups:
        hp.capacity_failure(group, times=0)  # capacity is back
    stack.clock.advance(BASE_SECONDS + 1)  # and the group's backoff is over

    again = sample("schedule.json")
    again["id"] = "after-the-backoff"
    second = stack.invoke("reconcile", again)
    [claim] = second["last"]["claims"]
    assert claim["claimId"] == first["last"]["claims"][0]["claimId"], "the same pods on the same group: the same claim"
    assert second["executionsStarted"] and name not in second["executionsStarted"], "a new attempt, a new name"
    assert second["last"]["inflightNodes"] == 0, "the closed execution is not capacity"
    results = stack.wait_all("provision")
    assert len(results) == 2 and sorted(r["output"]["status"] for r in results) == ["gave-back", "ready"], results
    assert len(stack.kube.list("v1", "Node")) == claim["count"]


def test_concurrent_invocations_hold_the_lease_once_and_ask_for_the_planned_nodes_once(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11, defect 2: the holder id is unique per invocation (the production one, from the Lambda context), so of N
    overlapping invocations exactly one holds the lease; the others leave a pass request and return."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from hyperpod_autoscaler.services import reconcile as service

    stack.seed()
    pending(stack)
    dry = stack.invoke("reconcile", {"source": "manual", "reason": "how many nodes", "dryRun": True})
    need = dry["last"]["plannedNodes"]
    assert need >= 1 and stack.executions("provision") == []

    n = 8
    returned = threading.Semaphore(0)
    real_once = service.reconcile_once

    def held_pass(*args: object, **kwargs: object) -> object:
        # the holder's pass waits (a bounded while) until every other invocation has returned: the overlap is certain
        for _ in range(n - 1):
            if not returned.acquire(timeout=5.0):
                break
        return real_once(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(service, "reconcile_once", held_pass)

    def invoke(i: int) -> dict[str, Any]:
        event = sample("schedule.json")
        event["id"] = f"overlap-{i}"
        try:
            out: dict[str, Any] = stack.invoke("reconcile", event)
            return out
        finally:
            returned.release()

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=n) as pool:
        results = list(pool.map(invoke, range(n)))
    assert time.monotonic() - started < 30
    assert sum(1 for r in results if r["held"]) == 1, [r["held"] for r in results]
    assert all(r["stopped"] == "contended" for r in results if not r["held"])
    executions = stack.executions("provision")
    asked = 0
    for e in executions:
        asked += json.loads(stack.sfn.describe_execution(executionArn=e["executionArn"])["input"])["count"]
    assert asked == need, (asked, need)
    targets = sum(g.target for g in stack.aws.hyperpod.clusters[stack.cluster_name].groups.values())
    assert targets == need, "no double provisioning"


def test_a_large_answer_is_recorded_small_and_the_work_runs_once(stack: Stack) -> None:
    """Issue 11, defect 10: the idempotency record used to hold the whole answer; one over DynamoDB's 400 KB failed the
    invocation after its work had run (and the redelivery ran it again)."""
    from hyperpod_autoscaler import entrypoints
    from hyperpod_autoscaler.adapters.lambda_events import parse_trigger

    trigger = parse_trigger({**sample("schedule.json"), "id": "a-large-answer"})
    runs: list[int] = []

    def work() -> dict[str, Any]:
        runs.append(1)
        return {"held": True, "passes": 1, "kept": {f"hyperpod-i-{i:017d}": "x" * 100 for i in range(5000)}}

    first = entrypoints.idempotent(trigger, None, work)
    assert len(first["kept"]) == 5000, "the invocation that did the work answers in full"
    second = entrypoints.idempotent(trigger, None, work)
    assert runs == [1], "the redelivery did not run the work again"
    assert second["held"] is True and second["passes"] == 1 and "kept" not in second and "truncated" in second


def test_redeliveries_share_one_idempotency_store(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 16: a persistence layer built per invocation registered one more user-agent handler on the container's
    DynamoDB client each time; the store is the container's, so a warm invocation adds none."""
    from hyperpod_autoscaler import entrypoints, runtime
    from hyperpod_autoscaler.adapters.lambda_events import parse_trigger

    events = runtime.client("dynamodb").meta.events
    registered: list[str] = []
    real_register = events.register
    monkeypatch.setattr(
        events, "register", lambda name, *a, **k: (registered.append(name), real_register(name, *a, **k))
    )
    for n in range(3):
        trigger = parse_trigger({**sample("schedule.json"), "id": f"warm-{n}"})
        assert entrypoints.idempotent(trigger, None, lambda: {"n": 1}) == {"n": 1}
    assert len(registered) <= 1, registered


def poison_pod(name: str, requests: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}"},
        "spec": {"containers": [{"name": "main", "image": "pause", "resources": {"requests": requests}}]},
        "status": {
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}],
        },
    }


@pytest.mark.parametrize(
    "requests",
    [{"cpu": "1", "memory": "1e400"}, {"cpu": "1", "memory": "1e10000000"}, {"cpu": "-1"}],
    ids=["overflow", "huge-exponent", "negative"],
)
def test_a_poison_pod_is_skipped_with_an_event_and_the_others_get_claims(
    stack: Stack, requests: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    stack.seed()
    pods = pending(stack)
    stack.kube.apply(poison_pod("poison", requests))
    out = stack.invoke("reconcile", sample("alarm-pending-pods.json"))
    assert sum(c["pods"] for c in out["last"]["claims"]) == len(pods), out
    assert out["last"]["skippedObjects"] == 1, out
    events = stack.kube.list("v1", "Event", "default")
    nominated = {e["involvedObject"]["name"] for e in events if e["reason"] == "Nominated"}
    assert nominated == {p["metadata"]["name"] for p in pods}
    poison = [(e["type"], e["reason"], e["message"]) for e in events if e["involvedObject"]["name"] == "poison"]
    assert [(t, r) for t, r, _ in poison] == [("Warning", "InvalidObject")], poison
    field = "memory" if "memory" in requests else "cpu"
    assert f"field spec.containers[0].resources.requests: {field}:" in poison[0][2], poison
    assert any("default/poison" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    cloudwatch = stack.aws.client("cloudwatch")
    dims = [
        d for metric in cloudwatch.list_metrics(MetricName="InvalidObjects")["Metrics"] for d in metric["Dimensions"]
    ]
    assert {"Name": "Kind", "Value": "Pod"} in dims, dims
    assert all(r["status"] == "SUCCEEDED" for r in stack.wait_all("provision"))


def test_a_malformed_nodepool_and_nodeclass_are_skipped_with_events_and_the_others_serve(stack: Stack) -> None:
    stack.seed()
    pods = pending(stack)
    bad_pool = load_yaml_objects(ROOT / "examples" / "seed" / "nodepool.yaml")[0]
    bad_pool["metadata"] = {"name": "broken-pool"}
    bad_pool["spec"]["limits"] = {"cpu": "1e400"}
    bad_class = load_yaml_objects(ROOT / "examples" / "seed" / "nodeclass.yaml")[0]
    bad_class["metadata"] = {"name": "broken-class"}
    bad_class["spec"]["instanceGroups"] = "auto-g6-az1"
    stack.kube.apply(bad_pool)
    stack.kube.apply(bad_class)
    out = stack.invoke("reconcile", sample("alarm-pending-pods.json"))
    assert sum(c["pods"] for c in out["last"]["claims"]) == len(pods), out
    assert out["last"]["skippedObjects"] == 2, out
    events = stack.kube.list("v1", "Event", "default")
    warned = {
        e["involvedObject"]["name"]: (e["involvedObject"]["kind"], e["involvedObject"]["uid"], e["message"])
        for e in events
        if e["reason"] == "InvalidObject"
    }
    assert set(warned) == {"broken-pool", "broken-class"}, warned
    uids = {
        o["metadata"]["name"]: o["metadata"]["uid"]
        for kind in (("karpenter.sh/v1", "NodePool"), ("karpenter.sagemaker.amazonaws.com/v1", "HyperpodNodeClass"))
        for o in stack.kube.list(*kind)
    }
    assert warned["broken-pool"][:2] == ("NodePool", uids["broken-pool"]), "kubectl describe finds it by uid"
    assert "field spec.limits: cpu: '1e400' is larger than the largest quantity" in warned["broken-pool"][2]
    assert warned["broken-class"][:2] == ("HyperpodNodeClass", uids["broken-class"])
    assert "field spec.instanceGroups" in warned["broken-class"][2]
    assert all(r["status"] == "SUCCEEDED" for r in stack.wait_all("provision"))


def conditions(stack: Stack, api: str, kind: str) -> dict[str, dict[str, dict[str, Any]]]:
    return {
        o["metadata"]["name"]: {c["type"]: c for c in (o.get("status") or {}).get("conditions") or []}
        for o in stack.kube.list(api, kind)
    }


def test_while_hyperpods_own_autoscaler_is_enabled_nothing_launches_and_it_says_why(stack: Stack) -> None:
    """Issue 15: two autoscalers never fight. AutoScaling.Mode Enable -> no claim, no execution, no instance; a False
    NoConflictingAutoscaler condition on every NodePool and HyperpodNodeClass, a Warning event and the gauge. Disabled
    again -> the same pods are served and the conditions turn True."""
    stack.seed()
    pods = pending(stack)
    spec = stack.aws.hyperpod.clusters["hyperpod-eks-demo"].spec
    spec["AutoScaling"] = {"Mode": "Enable", "AutoScalerType": "Karpenter", "Status": "InService"}
    out = stack.invoke("reconcile", sample("alarm-pending-pods.json"))
    assert out["executionsStarted"] == [] and out["last"]["claims"] == [], out
    assert "AutoScaling.Mode: Enable" in out["last"]["conflict"], out
    assert stack.executions("provision") == []
    assert all(g.target == 0 for g in stack.aws.hyperpod.clusters["hyperpod-eks-demo"].groups.values())
    for api, kind in (("karpenter.sh/v1", "NodePool"), ("karpenter.sagemaker.amazonaws.com/v1", "HyperpodNodeClass")):
        found = conditions(stack, api, kind)
        assert found, kind
        for name, conds in found.items():
            assert conds["NoConflictingAutoscaler"]["status"] == "False", (kind, name, conds)
            assert conds["NoConflictingAutoscaler"]["reason"] == "HyperPodAutoScalingEnabled"
    warnings = [e for e in stack.kube.list("v1", "Event", "default") if e["reason"] == "AutoscalerConflict"] + [
        e for e in stack.kube.list("v1", "Event") if e["reason"] == "AutoscalerConflict"
    ]
    assert {e["involvedObject"]["kind"] for e in warnings} == {"NodePool"}, warnings
    assert all(e["type"] == "Warning" for e in warnings)
    metric = stack.aws.client("cloudwatch").list_metrics(MetricName="AutoscalerConflict")["Metrics"]
    assert metric, "the AutoscalerConflict gauge is published"

    spec["AutoScaling"] = {"Mode": "Disable", "Status": "InService"}
    again = sample("alarm-pending-pods.json")
    again["id"] = "after-disable"
    served = stack.invoke("reconcile", again)
    assert served["last"]["conflict"] is None, served
    assert sum(c["pods"] for c in served["last"]["claims"]) == len(pods)
    assert all(r["status"] == "SUCCEEDED" for r in stack.wait_all("provision"))
    for conds in conditions(stack, "karpenter.sh/v1", "NodePool").values():
        assert conds["NoConflictingAutoscaler"]["status"] == "True", conds


def test_metrics_recorded_before_the_handler_raises_are_still_published(stack: Stack) -> None:
    """Powertools' ``@metrics.log_metrics`` flushes in a ``finally``: a pass that counted the pending pods and then
    failed (HyperPod answering 500 to every DescribeCluster) still publishes what it counted."""
    stack.seed()
    pods = pending(stack)
    stack.aws.hyperpod.server_errors(rate=1.0, ops={"DescribeCluster"})
    with pytest.raises(Exception):  # noqa: B017 - whatever the mapped error, the handler raised
        stack.invoke("reconcile", sample("alarm-pending-pods.json"))
    cloudwatch = stack.aws.client("cloudwatch")
    data = cloudwatch.get_metric_statistics(
        Namespace="HyperPodAutoscaler",
        MetricName="PendingPods",
        Dimensions=[{"Name": "ClusterName", "Value": "hyperpod-eks-demo"}],
        StartTime=0,
        EndTime=4_000_000_000,
        Period=60,
        Statistics=["Maximum"],
    )["Datapoints"]
    assert [d["Maximum"] for d in data] == [len(pods)], data
