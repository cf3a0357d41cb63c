"""The disruption handler end to end: decisions start the real deprovision (and provision, for replacements) state
machines in moto's interpreter against the HyperPod and Kubernetes emulators."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest
from hpa_testkit.pods import running_pod
from hpa_testkit.pytest_aws import Stack

ROOT = Path(__file__).resolve().parents[2]
EVENTS = sorted((ROOT / "events" / "disruption").glob("*.json"))
CLUSTER = "hyperpod-eks-demo"


def gpu_pool() -> dict[str, Any]:
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": "gpu"},
        "spec": {
            "template": {
                "spec": {
                    "nodeClassRef": {
                        "group": "karpenter.sagemaker.amazonaws.com",
                        "kind": "HyperpodNodeClass",
                        "name": "multiazg6",
                    },
                    "expireAfter": "Never",
                }
            },
            "disruption": {
                "consolidationPolicy": "WhenEmptyOrUnderutilized",
                "consolidateAfter": "0s",
                "budgets": [{"nodes": "100%"}],
            },
        },
    }


def up(stack: Stack, group: str, count: int, pool: str = "gpu") -> list[str]:
    out = stack.run(
        "provision",
        {
            "cluster": CLUSTER,
            "instanceGroup": group,
            "count": count,
            "claimId": f"seed-{group}",
            "pods": [],
            "nodePool": pool,
        },
    )
    assert out["output"]["status"] == "ready", out
    return sorted(out["output"]["nodes"])


def setup(stack: Stack) -> None:
    stack.seed()
    for pool in stack.kube.list("karpenter.sh/v1", "NodePool"):
        stack.kube.delete("karpenter.sh/v1", "NodePool", pool["metadata"]["name"])
    stack.kube.apply(gpu_pool())


def group_target(stack: Stack, group: str) -> int:
    return stack.aws.hyperpod.clusters[CLUSTER].groups[group].target


@pytest.mark.parametrize("path", EVENTS, ids=[p.stem for p in EVENTS])
def test_every_sample_event(stack: Stack, path: Path) -> None:
    setup(stack)
    up(stack, "auto-g6-az1", 1)
    event = json.loads(path.read_text())
    out = stack.invoke("disruption", event)
    assert out["held"], out
    decided = out["result"]["decisions"]
    assert [d["reason"] for d in decided] == ["Empty"]
    if event.get("dryRun"):
        assert out["result"]["deprovisionsStarted"] == [] and group_target(stack, "auto-g6-az1") == 1
    else:
        assert all(r["status"] == "SUCCEEDED" for r in stack.wait_all("deprovision"))
        assert group_target(stack, "auto-g6-az1") == 0, "scaled to zero"


def test_empty_nodes_go_and_busy_nodes_are_not_decided_twice(stack: Stack) -> None:
    setup(stack)
    nodes = up(stack, "auto-g6-az1", 2)
    first = stack.invoke("disruption", {"source": "manual", "reason": "t", "id": "pass-1"})
    assert sorted(first["result"]["decisions"][0]["nodes"]) == nodes
    assert all(r["status"] == "SUCCEEDED" for r in stack.wait_all("deprovision"))
    assert stack.kube.list("v1", "Node") == []
    again = stack.invoke("disruption", {"source": "manual", "reason": "t", "id": "pass-2"})
    assert again["result"]["decisions"] == []
    assert len(stack.executions("deprovision")) == 1


def test_replacement_comes_up_before_the_old_node_is_drained(stack: Stack) -> None:
    setup(stack)
    (big,) = up(stack, "auto-g6-4xaz2", 1)
    stack.kube.apply(running_pod("infer-0", big, {"app": "infer"}, cpu="2", gpu=1))
    first = stack.invoke("disruption", {"source": "manual", "reason": "t", "id": "pass-1"})
    (decision,) = first["result"]["decisions"]
    assert decision["reason"] == "Underutilized" and decision["replacement"]["instanceType"] == "ml.g6.xlarge"
    assert first["result"]["replacementsStarted"] and not first["result"]["deprovisionsStarted"]
    big_node = next(n for n in stack.kube.list("v1", "Node") if n["metadata"]["name"] == big)
    assert not big_node["spec"].get("unschedulable"), "nothing is drained before the replacement is Ready"
    provisions = stack.wait_all("provision")
    assert all(r["output"]["status"] == "ready" for r in provisions)
    second = stack.invoke("disruption", {"source": "manual", "reason": "t", "id": "pass-2"})
    assert second["result"]["deprovisionsStarted"], second
    assert all(r["status"] == "SUCCEEDED" for r in stack.wait_all("deprovision"))
    names = [n["metadata"]["name"] for n in stack.kube.list("v1", "Node")]
    assert big not in names and len(names) == 1
    assert group_target(stack, "auto-g6-4xaz2") == 0 and group_target(stack, "auto-g6-az1") == 1
    events = [e for e in stack.kube.list("v1", "Event", "default") if e["involvedObject"]["name"] == big]
    assert any(e["reason"] == "DisruptionLaunching" for e in events)


def test_blocked_nodes_get_an_event_with_the_reason(stack: Stack) -> None:
    setup(stack)
    (node,) = up(stack, "auto-g6-az1", 1)
    stack.kube.apply(running_pod("train-0", node, annotations={"karpenter.sh/do-not-disrupt": "true"}))
    out = stack.invoke("disruption", {"source": "manual", "reason": "t", "id": "pass-1"})
    assert out["result"]["decisions"] == []
    assert "do-not-disrupt" in out["result"]["kept"][node]
    events = [e for e in stack.kube.list("v1", "Event", "default") if e["involvedObject"]["name"] == node]
    assert any(e["reason"] == "DisruptionBlocked" and "do-not-disrupt" in e["message"] for e in events)


def test_a_refused_deprovision_is_retried_by_a_later_pass(stack: Stack) -> None:
    """Issue 11, defect 1: the deprovision name must not be derived from the decision alone (``<reason>-<hash>``): after
    one refused delete, the same idle node was re-decided every pass and never removed (the closed execution's name)."""
    setup(stack)
    (node,) = up(stack, "auto-g6-az1", 1)
    stack.aws.hyperpod.delete_failures(ids={node[len("hyperpod-") :]})
    first = stack.invoke("disruption", {"source": "manual", "reason": "t", "id": "pass-1"})
    assert [d["nodes"] for d in first["result"]["decisions"]] == [[node]]
    [refused] = stack.wait_all("deprovision")
    assert refused["status"] in ("SUCCEEDED", "FAILED"), refused
    kept = [n for n in stack.kube.list("v1", "Node") if n["metadata"]["name"] == node]
    assert kept and not kept[0]["spec"].get("unschedulable"), "refused: rolled back, back in service"
    stack.aws.hyperpod.delete_failures()  # the refusal was transient

    second = stack.invoke("disruption", {"source": "manual", "reason": "t", "id": "pass-2"})
    assert [d["nodes"] for d in second["result"]["decisions"]] == [[node]], "the same decision again"
    [name] = second["result"]["deprovisionsStarted"]
    assert name not in first["result"]["deprovisionsStarted"], "a new attempt, a new name"
    results = stack.wait_all("deprovision")
    assert len(results) == 2 and all(r["status"] in ("SUCCEEDED", "FAILED") for r in results)
    assert stack.kube.list("v1", "Node") == [], "the idle node is removed"
    assert group_target(stack, "auto-g6-az1") == 0, "scaled to zero"


def test_concurrent_passes_start_one_deprovision(stack: Stack) -> None:
    """Two deciders of one decision (the lease aside) agree on one attempt through the conditional write."""
    from concurrent.futures import ThreadPoolExecutor

    from hyperpod_autoscaler import runtime
    from hyperpod_autoscaler.services.disruption import disrupt_once

    setup(stack)
    up(stack, "auto-g6-az1", 1)
    deps, config = runtime.disruption_deps(), runtime.disruption_config()
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda _: disrupt_once(deps, config), range(6)))
    assert len({n for r in results for n in r.deprovisions}) == 1
    assert len(stack.executions("deprovision")) == 1


def test_an_empty_event_is_not_a_manual_invoke(stack: Stack) -> None:
    """Issue 11, defect 10: ``{}`` used to count as a manual invoke and start real deprovisions."""
    from hyperpod_autoscaler.domain.errors import InvalidObject

    setup(stack)
    up(stack, "auto-g6-az1", 1)
    with pytest.raises(InvalidObject, match=r"field source: required field is missing"):
        stack.invoke("disruption", {})
    assert stack.executions("deprovision") == []
    assert group_target(stack, "auto-g6-az1") == 1


def test_a_replacement_that_never_came_up_is_decided_again_under_a_new_name(stack: Stack) -> None:
    """Issue 11, defect 1: ``replace-<id>`` collided with the closed provision execution of the first replacement."""
    from hyperpod_autoscaler.adapters.dynamo_state import BASE_SECONDS

    setup(stack)
    (big,) = up(stack, "auto-g6-4xaz2", 1)
    stack.kube.apply(running_pod("infer-0", big, {"app": "infer"}, cpu="2", gpu=1))
    stack.aws.hyperpod.capacity_failure("auto-g6-az1")
    first = stack.invoke("disruption", {"source": "manual", "reason": "t", "id": "pass-1"})
    [name] = first["result"]["replacementsStarted"]
    replacement = [r for r in stack.wait_all("provision") if r["output"]["status"] != "ready"]
    assert [r["output"]["status"] for r in replacement] == ["gave-back"], replacement
    stack.invoke("disruption", {"source": "manual", "reason": "t", "id": "pass-2"})  # drops the decision
    stack.aws.hyperpod.capacity_failure("auto-g6-az1", times=0)
    stack.clock.advance(BASE_SECONDS + 1)
    third = stack.invoke("disruption", {"source": "manual", "reason": "t", "id": "pass-3"})
    [again] = third["result"]["replacementsStarted"]
    assert again != name and again.startswith(name.rsplit("-", 2)[0]), (again, name)
    assert any(r["output"]["status"] == "ready" for r in stack.wait_all("provision"))
    fourth = stack.invoke("disruption", {"source": "manual", "reason": "t", "id": "pass-4"})
    assert fourth["result"]["deprovisionsStarted"], fourth
    assert all(r["status"] == "SUCCEEDED" for r in stack.wait_all("deprovision"))
    names = [n["metadata"]["name"] for n in stack.kube.list("v1", "Node")]
    assert big not in names and len(names) == 1


def test_while_hyperpods_own_autoscaler_is_enabled_no_node_is_removed(stack: Stack) -> None:
    """Issue 15: two autoscalers never fight. An empty node is not removed while AutoScaling.Mode is Enable (a Warning
    event on the NodePool and a False condition say why); once disabled it is."""
    setup(stack)
    up(stack, "auto-g6-az1", 1)
    spec = stack.aws.hyperpod.clusters[CLUSTER].spec
    spec["AutoScaling"] = {"Mode": "Enable", "AutoScalerType": "Karpenter", "Status": "InService"}
    held = stack.invoke("disruption", {"source": "manual", "reason": "t", "id": "pass-1"})
    assert held["result"]["decisions"] == [] and held["result"]["deprovisionsStarted"] == [], held
    assert "AutoScaling.Mode: Enable" in held["result"]["conflict"]
    assert stack.executions("deprovision") == [] and group_target(stack, "auto-g6-az1") == 1
    events = [e for e in stack.kube.list("v1", "Event") if e["reason"] == "AutoscalerConflict"]
    assert [(e["involvedObject"]["kind"], e["involvedObject"]["name"], e["type"]) for e in events] == [
        ("NodePool", "gpu", "Warning")
    ]
    (pool,) = stack.kube.list("karpenter.sh/v1", "NodePool")
    conds = {c["type"]: c["status"] for c in pool["status"]["conditions"]}
    assert conds["NoConflictingAutoscaler"] == "False", conds

    spec["AutoScaling"] = {"Mode": "Disable"}
    out = stack.invoke("disruption", {"source": "manual", "reason": "t", "id": "pass-2"})
    assert [d["reason"] for d in out["result"]["decisions"]] == ["Empty"] and out["result"]["conflict"] is None
    assert all(r["status"] == "SUCCEEDED" for r in stack.wait_all("deprovision"))
    assert group_target(stack, "auto-g6-az1") == 0


def test_the_disruption_lease_ends_when_the_invocation_can_no_longer_run(stack: Stack, monkeypatch: Any) -> None:
    """A disruption invocation that Lambda ends at its timeout cannot release its lease. It held the lease for 300 s
    whatever time it had left (its function times out at 120 s), keeping every later pass out for minutes: the
    whole-system soak saw idle nodes kept past their bound. The lease now ends with the invocation's remaining time
    (the test context gives it 60 s)."""
    from hyperpod_autoscaler.services import disruption

    seen: list[float] = []
    real = disruption.disrupt_once

    def watched(*args: Any, **kwargs: Any) -> Any:
        table = os.environ["TABLE_NAME"]
        item = stack.aws.client("dynamodb").get_item(
            TableName=table, Key={"pk": {"S": "lease#disruption"}, "sk": {"S": "lease"}}, ConsistentRead=True
        )["Item"]
        seen.append(float(item["leaseUntil"]["N"]) - stack.clock.now())
        return real(*args, **kwargs)

    monkeypatch.setattr(disruption, "disrupt_once", watched)
    stack.invoke("disruption", json.loads((ROOT / "events" / "disruption" / "schedule.json").read_text()))
    assert seen and 0 < seen[0] <= 60.0, seen


def test_each_decision_is_one_structured_log_line_naming_its_execution(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 15: what an operator reads to learn why a node went or stayed: the decision, its nodes, why, and the
    execution started for it; the nodes kept, each with its code and why."""
    setup(stack)
    (big,) = up(stack, "auto-g6-4xaz2", 1)
    (small,) = up(stack, "auto-g6-az1", 1)
    stack.kube.apply(running_pod("infer-0", big, {"app": "infer"}, cpu="2", gpu=1))
    stack.kube.apply(running_pod("train-0", small, gpu=1, annotations={"karpenter.sh/do-not-disrupt": "true"}))
    with caplog.at_level(logging.INFO, logger="hyperpod_autoscaler.services.disruption"):
        out = stack.invoke("disruption", {"source": "manual", "reason": "t", "id": "pass-1"})
    lines = [r.msg for r in caplog.records if isinstance(r.msg, dict) and r.msg.get("decision", "").startswith("disr")]
    decided = [m for m in lines if m["decision"] == "disruption"]
    kept = [m for m in lines if m["decision"] == "disruption-kept"]
    assert len(decided) == 1 and decided[0]["nodes"] == [big] and decided[0]["reason"] == "Underutilized"
    assert decided[0]["execution"] == out["result"]["replacementsStarted"][0]
    assert decided[0]["replacement"]["instanceType"] == "ml.g6.xlarge" and "saves" in decided[0]["why"]
    assert kept[0]["kept"][small]["code"] == "DoNotDisrupt" and "do-not-disrupt" in kept[0]["kept"][small]["why"]


def test_the_services_log_lines_carry_the_invocations_correlation_id(stack: Stack) -> None:
    """The disruption service logs through a standard-library logger; bridged to the handler's Powertools logger
    (``copy_config_to_registered_loggers``), each of its lines is the handler's JSON with the event's id as correlation
    id, so one search finds everything an invocation did."""
    setup(stack)
    (big,) = up(stack, "auto-g6-4xaz2", 1)
    stack.kube.apply(running_pod("infer-0", big, {"app": "infer"}, cpu="2", gpu=1))
    with stack.log_lines("disruption") as logs:
        stack.invoke("disruption", {"source": "manual", "reason": "t", "id": "pass-7"})
    decided = [line for line in logs if isinstance(line.get("message"), dict) and line["message"].get("decision")]
    assert decided and all(line["name"] == "hyperpod_autoscaler.services.disruption" for line in decided), logs
    assert {line["correlation_id"] for line in decided} == {"pass-7"}, decided
