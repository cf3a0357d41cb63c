"""Faults on the workflows' paths: the real state machines in moto's interpreter, tasks routed to the real handlers,
against the HyperPod and Kubernetes emulators with injected SageMaker 5xx, Kubernetes 409/429/500, hung calls and Lambda
service errors. Transient faults are retried until the workflow succeeds; a failed check never deletes a booting node; a
drain that cannot finish ends within its bound and gives the node back; a rollback rides out Lambda throttling, and the
execution's failure says whether the nodes were restored; a node a failed rollback left tainted is restored by the next
disruption pass."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hpa_testkit.aws import sfn
from hpa_testkit.pods import pdb, running_pod
from hpa_testkit.pytest_aws import Stack

CLUSTER = "hyperpod-eks-demo"
GROUP = "auto-g6-az1"
TAINT = "karpenter.sh/disrupted"


def claim(count: int = 2, claim_id: str = "claim-0001") -> dict[str, Any]:
    return {"cluster": CLUSTER, "instanceGroup": GROUP, "count": count, "claimId": claim_id, "pods": ["default/p1"]}


def states(out: dict[str, Any]) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in out["history"] if "stateEnteredEventDetails" in e]


def failure(out: dict[str, Any]) -> dict[str, Any]:
    (failed,) = [e["executionFailedEventDetails"] for e in out["history"] if e.get("type") == "ExecutionFailed"]
    return dict(failed)


def target(stack: Stack) -> int:
    return stack.aws.hyperpod.clusters[CLUSTER].groups[GROUP].target


def node(stack: Stack, name: str) -> dict[str, Any] | None:
    return stack.kube.get("v1", "Node", name)


def restored(n: dict[str, Any] | None) -> bool:
    assert n is not None
    return not n["spec"].get("unschedulable") and not any(t["key"] == TAINT for t in n["spec"].get("taints") or [])


def up(stack: Stack, count: int = 1) -> list[str]:
    out = stack.run("provision", claim(count, "seed"))
    assert out["status"] == "SUCCEEDED" and out["output"]["status"] == "ready", out
    return sorted(out["output"]["nodes"])


def deletes(stack: Stack) -> list[Any]:
    return [c for c in stack.aws.hyperpod.call_log if c[1] == "BatchDeleteClusterNodes"]


# --- defect 3: transient errors are retried; a check never gives back a booting node ------------------------------------


@pytest.mark.parametrize(("code", "status"), [("InternalFailure", 500), ("ServiceUnavailable", 503)])
def test_sagemaker_5xx_on_the_scale_up_is_retried_and_the_claim_succeeds(stack: Stack, code: str, status: int) -> None:
    stack.aws.hyperpod.server_errors(next_n=3, ops={"BatchAddClusterNodes", "UpdateCluster"}, code=code, status=status)
    out = stack.run("provision", claim())
    assert out["status"] == "SUCCEEDED" and out["output"]["status"] == "ready", out
    assert [c[3] for c in stack.aws.hyperpod.call_log if c[3]] == [code] * 3
    assert states(out).count("Scale") == 1 and "GiveBack" not in states(out)
    assert target(stack) == 2, "one scale-up took effect"


def test_kubernetes_500_and_429_during_the_checks_are_retried(stack: Stack) -> None:
    stack.kube.fail(500, count=3, methods={"GET"}, path="/api/v1/nodes/hyperpod-")
    stack.kube.fail(429, count=3, methods={"GET"}, path="/api/v1/nodes/hyperpod-")
    out = stack.run("provision", claim())
    assert out["status"] == "SUCCEEDED" and out["output"]["status"] == "ready", out
    assert sorted(f[2] for f in stack.kube.faults_served) == [429] * 3 + [500] * 3
    assert deletes(stack) == []


@pytest.mark.parametrize("broken", ["kubernetes", "hyperpod"])
def test_a_check_that_keeps_failing_never_deletes_a_booting_node(stack: Stack, broken: str) -> None:
    if broken == "kubernetes":
        stack.kube.fail(500, count=10_000, methods={"GET"}, path="/api/v1/nodes/hyperpod-")
    else:
        stack.aws.hyperpod.server_errors(rate=1.0, ops={"ListClusterNodes"}, code="ServiceUnavailable", status=503)
    out = stack.run("provision", claim())
    assert out["status"] == "SUCCEEDED", out
    assert out["output"]["status"] == "unverified" and out["output"]["error"]["Error"] == "Unavailable", out
    assert "GiveBack" not in states(out)
    assert deletes(stack) == [], "no node was given back because a check failed"
    assert target(stack) == 2
    live = [i for i in stack.aws.hyperpod.clusters[CLUSTER].instances.values() if i.status != "ShuttingDown"]
    assert len(live) == 2, "both nodes keep booting (or run)"


def test_a_capacity_failure_still_gives_back(stack: Stack) -> None:
    """The check's Catch still sends a real capacity failure to GiveBack (only check *errors* keep the nodes)."""
    stack.aws.hyperpod.capacity_failure(GROUP)
    out = stack.run("provision", claim())
    assert out["status"] == "SUCCEEDED" and out["output"]["status"] == "gave-back", out
    assert out["output"]["reason"] == "InsufficientCapacity" and target(stack) == 0


def test_kubernetes_errors_during_the_cordon_are_retried(stack: Stack) -> None:
    (a,) = up(stack)
    stack.kube.fail(500, count=2, methods={"PUT"}, path="/api/v1/nodes/")
    stack.kube.fail(429, count=2, methods={"PUT"}, path="/api/v1/nodes/")
    stack.kube.fail(409, count=8, methods={"PUT"}, path="/api/v1/nodes/")  # more than the adapter's own re-reads
    out = stack.run("deprovision", {"cluster": CLUSTER, "nodes": [a], "reason": "Empty"})
    assert out["status"] == "SUCCEEDED", out
    assert node(stack, a) is None and target(stack) == 0
    assert "Rollback" not in states(out)


def test_a_hung_kubernetes_call_times_out_as_unavailable(stack: Stack) -> None:
    import os

    from hyperpod_autoscaler.adapters.kube import KubeCluster
    from hyperpod_autoscaler.domain.errors import Unavailable

    cluster = KubeCluster.from_kubeconfig(os.environ["KUBECONFIG"])
    cluster.request_timeout = (1.0, 0.3)
    stack.kube.hang(2.0, count=1, methods={"GET"}, path="/api/v1/nodes/stuck")
    began = time.monotonic()
    with pytest.raises(Unavailable):
        cluster.get_node("stuck")
    assert time.monotonic() - began < 1.5, "the request timeout ended the call, not the server"
    assert cluster.get_node("stuck") is None, "the next call is served"


def test_a_hung_sagemaker_call_times_out_and_a_read_is_tried_again(stack: Stack) -> None:
    import boto3
    from botocore.config import Config
    from hyperpod_autoscaler.adapters.hyperpod import HyperPodAdapter
    from hyperpod_autoscaler.domain.errors import Unavailable

    sm = boto3.client(
        "sagemaker",
        region_name="us-west-2",
        endpoint_url=stack.aws.endpoint_url,
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=1, read_timeout=0.3),
    )
    adapter = HyperPodAdapter(sm, stack.aws.client("ec2"), CLUSTER, sleep=lambda _s: None)
    stack.aws.hyperpod.hang(1.0, next_n=1, ops={"DescribeCluster"})
    assert adapter.describe_cluster().name == CLUSTER, "the read timed out once, then was served"
    stack.aws.hyperpod.hang(1.0, next_n=1, ops={"ListClusterNodes"})
    stack.aws.hyperpod.server_errors(next_n=5, ops={"ListClusterNodes"})
    with pytest.raises(Unavailable):
        adapter.list_nodes()


# --- defect 5: a drain that can never finish ends within its bound, through a rollback -----------------------------------


def test_a_drain_that_can_never_finish_is_handed_back_within_its_bound(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hyperpod_autoscaler.services import deprovision

    monkeypatch.setattr(deprovision, "DRAIN_BOUND_SECONDS", 900)  # the real bound (hours) is checked by the ASL lint
    (a,) = up(stack)
    stack.kube.apply(pdb("web", {"app": "web"}, min_available=1))
    stack.kube.apply(running_pod("web-1", a, {"app": "web"}))
    started = stack.clock.now()
    # expiry without a terminationGracePeriod waits on the PDB without end
    out = stack.run("deprovision", {"cluster": CLUSTER, "nodes": [a], "reason": "Expired"})
    assert out["status"] == "SUCCEEDED", out
    assert states(out)[-2:] == ["HandBack", "HandedBack"], states(out)[-5:]
    waited = stack.clock.now() - started
    assert 900 <= waited <= 900 + 120, waited
    assert restored(node(stack, a)), "the node is back in service for the next decision"
    assert [p["metadata"]["name"] for p in stack.kube.list("v1", "Pod")] == ["web-1"]
    assert target(stack) == 1 and stack.kube.store.pdb_violations == []


# --- defect 6: rollback under Lambda throttling; the failure tells the truth; stranded nodes are repaired ------------------


def _fail_the_drain(stack: Stack) -> None:
    """The eviction is refused for good (403): the drain fails after the node was tainted and cordoned."""
    stack.kube.fail(403, count=1, methods={"POST"}, path="/eviction")


def test_the_rollback_rides_out_lambda_throttling_and_says_the_node_was_restored(stack: Stack) -> None:
    (a,) = up(stack)
    stack.kube.apply(running_pod("web-1", a, {"app": "web"}))
    _fail_the_drain(stack)
    sfn.lambda_error("TooManyRequestsException", count=5, action="rollback")
    sfn.lambda_error("AWSLambdaException", count=2, action="rollback")
    sfn.lambda_error("ClientExecutionTimeoutException", count=2, action="rollback")
    out = stack.run("deprovision", {"cluster": CLUSTER, "nodes": [a], "reason": "Underutilized"})
    assert out["status"] == "FAILED"
    assert len(sfn.lambda_faults_served) == 9
    assert failure(out)["error"] == "DeprovisionFailed" and "untainted and uncordoned" in failure(out)["cause"]
    assert restored(node(stack, a)), "the cause says restored, and it is"


def test_a_failed_rollback_says_so_and_the_next_disruption_pass_restores_the_node(stack: Stack) -> None:
    (a,) = up(stack)
    stack.kube.apply(running_pod("web-1", a, {"app": "web"}, annotations={"karpenter.sh/do-not-disrupt": "true"}))
    _fail_the_drain(stack)
    sfn.lambda_error("ServiceException", count=1000, action="rollback")
    out = stack.run("deprovision", {"cluster": CLUSTER, "nodes": [a], "reason": "Expired"})
    assert out["status"] == "FAILED"
    cause = failure(out)["cause"]
    assert failure(out)["error"] == "DeprovisionRollbackFailed" and "may still be tainted" in cause, cause
    stranded = node(stack, a)
    assert stranded is not None and not restored(stranded), "the cause tells the truth: the node is still tainted"
    sfn.lambda_faults.clear()

    stack.seed()
    result = stack.invoke("disruption", {"source": "manual", "reason": "t", "id": "pass-1"})["result"]
    assert result["restored"] == [a]
    assert restored(node(stack, a))
