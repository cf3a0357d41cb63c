"""The pod scaler handler with every sample event, and the end-to-end path of issue 5: a queue fills -> the Deployment
scales -> its pods go pending -> reconcile -> provision -> nodes Ready -> pods bound; the queue drains -> the replicas
fall back to the minimum after the cooldown. Real handlers, moto's server, the HyperPod and Kubernetes emulators."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hpa_testkit.pytest_aws import Stack
from hpa_testkit.sandbox.runner import load_yaml_objects
from hpa_testkit.scheduler import ReplicaController, SchedulerStandIn

ROOT = Path(__file__).resolve().parents[2]
EVENTS = sorted((ROOT / "events" / "pod_scaler").glob("*.json"))


def sample(name: str) -> dict[str, Any]:
    return json.loads((ROOT / "events" / "pod_scaler" / name).read_text())


def deployment(name: str, replicas: int, gpus: int = 0) -> dict[str, Any]:
    requests: dict[str, Any] = {"cpu": "2", "memory": "4Gi"}
    if gpus:
        requests["nvidia.com/gpu"] = str(gpus)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "x", "resources": {"requests": requests}}]},
            },
        },
    }


def sqs_scaled_object(queue_url: str, target: str = "worker", minimum: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": f"{target}-scaler", "namespace": "default"},
        "spec": {
            "scaleTargetRef": {"name": target},
            "minReplicaCount": minimum,
            "maxReplicaCount": 8,
            "cooldownPeriod": 300,
            "triggers": [{"type": "aws-sqs-queue", "metadata": {"queueURL": queue_url, "queueLength": "5"}}],
        },
    }


def replicas(stack: Stack, name: str) -> int:
    (d,) = [d for d in stack.kube.list("apps/v1", "Deployment") if d["metadata"]["name"] == name]
    return int(d["spec"]["replicas"])


def queue(stack: Stack, messages: int) -> str:
    sqs = stack.aws.client("sqs")
    url = sqs.create_queue(QueueName="llm-requests")["QueueUrl"]
    for i in range(messages):
        sqs.send_message(QueueUrl=url, MessageBody=str(i))
    return url


def alb_requests(stack: Stack, value: float) -> None:
    cw = stack.aws.client("cloudwatch", region="us-east-2")
    cw.put_metric_data(
        Namespace="AWS/ApplicationELB",
        MetricData=[
            {
                "MetricName": "RequestCount",
                "Dimensions": [
                    {"Name": "LoadBalancer", "Value": "app/k8s-default-ingressn-1a2b3c4d5e/50dc6c495c0c9188"}
                ],
                "Timestamp": datetime.fromtimestamp(stack.clock.now() - 30, UTC),
                "Value": value,
            }
        ],
    )


@pytest.mark.parametrize("path", EVENTS, ids=[p.stem for p in EVENTS])
def test_every_sample_event(stack: Stack, path: Path) -> None:
    for obj in load_yaml_objects(ROOT / "examples" / "seed" / "scaledobject.yaml"):
        stack.kube.apply(obj)
    stack.kube.apply(deployment("worker", 1))
    stack.kube.apply(sqs_scaled_object(queue(stack, 12)))
    alb_requests(stack, 8)
    out = stack.invoke("pod_scaler", json.loads(path.read_text()))
    assert out["held"] and out["last"]["errors"] == {}, out
    assert replicas(stack, "nd-deepseek-llm-r1-distill-qwen-1-5b") == 3, "the seed ScaledObject: ceil(8 / 3) = 3 = max"
    assert replicas(stack, "worker") == 3, "ceil(12 / 5) = 3"


def test_a_bad_scaled_object_is_reported_and_the_others_scale(stack: Stack) -> None:
    stack.kube.apply(deployment("worker", 1))
    stack.kube.apply(sqs_scaled_object(queue(stack, 12)))
    bad = sqs_scaled_object("u", target="other")
    bad["spec"]["triggers"][0]["metadata"]["queueLength"] = "lots"
    stack.kube.apply(bad)
    out = stack.invoke("pod_scaler", sample("manual.json"))
    assert "queueLength" in out["last"]["errors"]["default/other-scaler"]
    assert replicas(stack, "worker") == 3


def conditions(obj: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in obj["status"]["conditions"]}


def events_for(stack: Stack, name: str) -> list[tuple[str, str, str]]:
    return [
        (e["type"], e["reason"], e["message"])
        for e in stack.kube.list("v1", "Event", "default")
        if e["involvedObject"]["kind"] == "ScaledObject" and e["involvedObject"]["name"] == name
    ]


def test_keda_status_and_events_are_written(stack: Stack) -> None:
    """KEDA-style status through the status subresource and Events, as KEDA's operator writes them; a bad ScaledObject
    gets Ready=False naming the field while the others are still scaled."""
    stack.kube.apply(deployment("worker", 1))
    stack.kube.apply(deployment("other", 2))
    stack.kube.apply(sqs_scaled_object(queue(stack, 12)))
    failing = sqs_scaled_object("https://sqs.us-east-1.amazonaws.com/000000000000/missing", target="other")
    failing["spec"]["fallback"] = {"failureThreshold": 3, "replicas": 2}
    stack.kube.apply(failing)
    bad = sqs_scaled_object("u", target="nothing")
    bad["metadata"]["name"] = "bad-scaler"
    bad["spec"]["triggers"][0]["type"] = "kafka"
    stack.kube.apply(bad)
    stack.invoke("pod_scaler", sample("manual.json"))
    assert replicas(stack, "worker") == 3, "ceil(12 / 5) = 3: the bad object does not stop the others"

    good = stack.kube.get("keda.sh/v1alpha1", "ScaledObject", "worker-scaler", "default")
    assert good is not None
    assert conditions(good)["Ready"] == ("True", "ScaledObjectReady")
    assert conditions(good)["Active"] == ("True", "ScalerActive")
    assert conditions(good)["Fallback"] == ("False", "NoFallbackFound")
    assert good["status"]["originalReplicaCount"] == 1 and good["status"]["lastActiveTime"]
    (health,) = good["status"]["health"].values()
    assert health == {"numberOfFailures": 0, "status": "Happy"}
    assert ("Normal", "SuccessfulRescale") in {e[:2] for e in events_for(stack, "worker-scaler")}

    other = stack.kube.get("keda.sh/v1alpha1", "ScaledObject", "other-scaler", "default")
    assert other is not None
    assert conditions(other)["Ready"] == ("False", "TriggerError")
    (health,) = other["status"]["health"].values()
    assert health["status"] == "Failing" and health["numberOfFailures"] >= 1
    assert replicas(stack, "other") == 2, "a failing trigger: no scale-down, no deactivation"
    assert any(e[1] == "KEDAScalerFailed" and e[0] == "Warning" for e in events_for(stack, "other-scaler"))

    broken = stack.kube.get("keda.sh/v1alpha1", "ScaledObject", "bad-scaler", "default")
    assert broken is not None
    assert conditions(broken)["Ready"] == ("False", "ScaledObjectCheckFailed")
    (ready,) = [c for c in broken["status"]["conditions"] if c["type"] == "Ready"]
    assert "spec.triggers[0].type" in ready["message"]
    assert ("Warning", "ScaledObjectCheckFailed") in {e[:2] for e in events_for(stack, "bad-scaler")}


def test_a_redelivered_alarm_scales_once(stack: Stack) -> None:
    stack.kube.apply(deployment("worker", 1))
    stack.kube.apply(sqs_scaled_object(queue(stack, 40)))
    event = sample("alarm-sqs-queue.json")
    first = stack.invoke("pod_scaler", event)
    second = stack.invoke("pod_scaler", copy.deepcopy(event))
    assert first == second
    assert replicas(stack, "worker") == 4, "max(2 * 1, 4) = 4 (KEDA's HPA has no behavior), once"


def test_end_to_end_queue_to_nodes_and_back(stack: Stack) -> None:
    stack.seed()
    sqs = stack.aws.client("sqs")
    url = queue(stack, 20)
    stack.kube.apply(deployment("worker", 1, gpus=1))
    stack.kube.apply(sqs_scaled_object(url))
    controller, scheduler = ReplicaController(stack.kube, now=stack.clock.now), SchedulerStandIn(stack.kube)

    out = stack.invoke("pod_scaler", sample("alarm-sqs-queue.json"))
    assert replicas(stack, "worker") == 4, out  # ceil(20 / 5)
    controller.step()
    bound, unschedulable = scheduler.step()
    assert (bound, unschedulable) == (0, 4), "no nodes yet"

    decided = stack.invoke("reconcile", {"source": "manual", "reason": "pods pending", "id": "e2e-1"})
    assert decided["executionsStarted"], decided
    assert all(r["output"]["status"] == "ready" for r in stack.wait_all("provision"))
    controller.step()
    scheduler.step()
    pods = stack.kube.list("v1", "Pod", "default")
    assert len(pods) == 4 and all(p["spec"].get("nodeName") for p in pods), "every replica bound to a new node"

    sqs.purge_queue(QueueUrl=url)
    for _ in range(12):  # the schedule every minute, until the 300 s window and the cooldown have passed
        stack.clock.advance(60)
        stack.invoke("pod_scaler", sample("schedule.json") | {"id": f"tick-{stack.clock.now()}"})
    assert replicas(stack, "worker") == 1, "back to minReplicaCount"
    controller.step()
    assert len(stack.kube.list("v1", "Pod", "default")) == 1


def test_each_scaling_decision_is_one_structured_log_line(stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    """Issue 15: what scaled, from what to what, and why, at the cluster's time, in the pod scaler's log."""
    import logging

    stack.kube.apply(deployment("worker", 1))
    stack.kube.apply(sqs_scaled_object(queue(stack, 12)))
    with caplog.at_level(logging.INFO, logger="hyperpod_autoscaler.services.pod_scaler"):
        stack.invoke("pod_scaler", sample("manual.json"))
    lines = [r.msg for r in caplog.records if isinstance(r.msg, dict) and r.msg.get("decision") == "pod-scale"]
    assert len(lines) == 1, lines
    line = lines[0]
    assert (line["scaledObject"], line["target"], line["from"], line["to"]) == (
        "default/worker-scaler",
        "Deployment/worker",
        1,
        3,
    )
    assert line["why"] and line["at"] == stack.clock.now()
