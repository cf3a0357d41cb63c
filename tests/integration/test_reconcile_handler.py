"""The reconcile handler with every sample event, through moto's server (DynamoDB, Step Functions, CloudWatch, the
HyperPod emulator) and the Kubernetes emulator."""

from __future__ import annotations

import copy
import json
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
    assert out["last"]["claims"] == [] and out["last"]["inflightNodes"] >= 1, "in-flight claims count as capacity"


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
