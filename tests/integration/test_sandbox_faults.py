"""The sandbox's fault kinds for what the whole-system soak injects (``sagemaker-5xx``, ``kube-errors``,
``lambda-timeouts``, ``lambda-throttling``, ``node-failure``): each one observed where it acts, in the emulator that
injects it, and all of them parsed and switched on and off by a scenario."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from hpa_testkit.aws import AwsEmulator
from hpa_testkit.clock import SimClock
from hpa_testkit.kube import KubeEmulator
from hpa_testkit.sandbox.clock import SteppedClock
from hpa_testkit.sandbox.lambda_faults import LambdaTimedOut, arm, restore
from hpa_testkit.sandbox.runner import PROJECT, FunctionHost
from hpa_testkit.sandbox.scenario import Scenario
from hpa_testkit.sandbox.template import read_wiring
from kubernetes.client import CoreV1Api
from kubernetes.client.exceptions import ApiException


def make_node(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "spec": {}}


def test_sagemaker_5xx_answers_internal_failure_or_unavailable() -> None:
    with AwsEmulator(clock=SimClock()) as aws:
        aws.create_hyperpod_cluster()
        aws.hyperpod.server_errors(rate=1.0)
        with pytest.raises(ClientError) as err:
            aws.client("sagemaker").describe_cluster(ClusterName="hyperpod-eks-demo")
        assert err.value.response["Error"]["Code"] in ("InternalFailure", "ServiceUnavailable")
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] in (500, 503)
        aws.hyperpod.server_errors()
        assert aws.client("sagemaker").describe_cluster(ClusterName="hyperpod-eks-demo")["ClusterName"]


def test_node_failure_marks_the_instance_failed_and_the_node_not_ready() -> None:
    clock = SimClock()
    kube = KubeEmulator().start()
    try:
        with AwsEmulator(clock=clock, provisioning_delay=10) as aws:
            aws.create_hyperpod_cluster()
            aws.connect_kubernetes(kube)
            sm = aws.client("sagemaker")
            sm.batch_add_cluster_nodes(
                ClusterName="hyperpod-eks-demo",
                NodesToAdd=[{"InstanceGroupName": "auto-g6-az1", "IncrementTargetCountBy": 1}],
            )
            clock.advance(11)
            aws.hyperpod.tick()
            (node,) = kube.list("v1", "Node")
            instance = node["metadata"]["name"].removeprefix("hyperpod-")
            assert aws.hyperpod.fail_instance(instance) and not aws.hyperpod.fail_instance("i-none")
            summaries = sm.list_cluster_nodes(ClusterName="hyperpod-eks-demo")["ClusterNodeSummaries"]
            assert [s["InstanceStatus"]["Status"] for s in summaries] == ["Failure"]
            after = kube.get("v1", "Node", node["metadata"]["name"])
            assert after is not None and after["status"]["conditions"][0]["status"] == "Unknown"
            assert {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"} in after["spec"]["taints"]
            clock.advance(aws.hyperpod.recovery_delay)  # the seed cluster's NodeRecovery: Automatic replaces it
            aws.hyperpod.tick()
            summaries = sm.list_cluster_nodes(ClusterName="hyperpod-eks-demo")["ClusterNodeSummaries"]
            assert [s["InstanceStatus"]["Status"] for s in summaries] == ["Running"]
            recovered = kube.get("v1", "Node", node["metadata"]["name"])
            assert recovered is not None and recovered["status"]["conditions"][0]["status"] == "True"
    finally:
        kube.stop()


def test_kube_errors_answer_the_chosen_statuses_over_http_only(kube: KubeEmulator) -> None:
    kube.apply(make_node("n1"))
    api = CoreV1Api(kube.api_client())
    kube.random_faults.rate, kube.random_faults.codes = 1.0, (410,)
    try:
        with pytest.raises(ApiException) as err:
            api.list_node()
        assert err.value.status == 410 and kube.random_faults.injected == {"410": 1}
        assert [n["metadata"]["name"] for n in kube.list("v1", "Node")] == ["n1"], "direct reads are not faulted"
    finally:
        kube.random_faults.rate = 0.0
    assert [n.metadata.name for n in api.list_node().items] == ["n1"]


def _host() -> FunctionHost:
    from concurrent.futures import ThreadPoolExecutor

    return FunctionHost(read_wiring(PROJECT / "template.yaml"), SteppedClock(), ThreadPoolExecutor(max_workers=1))


def test_a_timed_out_invocation_has_no_effect_after_its_kill_point(kube: KubeEmulator) -> None:
    kube.apply(make_node("n1"))
    api = CoreV1Api(kube.api_client())
    calls: list[str] = []

    def handler() -> None:
        for _ in range(3):
            api.list_node()
            calls.append("listed")

    previous = arm(1)
    try:
        with pytest.raises(LambdaTimedOut):
            handler()
    finally:
        restore(previous)
    assert calls == ["listed"]
    api.list_node()  # disarmed: the next invocation on this thread runs normally


def test_lambda_timeouts_and_throttling_reach_step_functions_under_lambdas_error_names() -> None:
    host = _host()
    host.handler = lambda _lid: _raise_timeout  # type: ignore[method-assign]
    host.faults.timeout_rate = 1.0
    host.clock.sleep = lambda _s: None  # type: ignore[method-assign]
    with pytest.raises(Exception) as err:
        host.call("ReconcileFunction", {})
    assert type(err.value).__name__ == "Sandbox.Timedout"
    host.faults.throttle_rate = 1.0
    with pytest.raises(Exception) as err:
        host.call("ReconcileFunction", {})
    assert type(err.value).__name__ == "Lambda.TooManyRequestsException"
    host.invoke_async("ReconcileFunction", {}, "rule")  # throttled: kept and retried later, not run now
    assert host.invocations == [] and [r[1] for r in host.retries] == ["ReconcileFunction"]
    assert host.faults.injected == {"timedOut": 1, "throttled": 2}


def _raise_timeout(_event: Any, _ctx: Any) -> None:
    raise LambdaTimedOut("frozen")


def test_scenario_fault_kinds_parse_with_their_parameters() -> None:
    scenario = Scenario.model_validate(
        {
            "name": "f",
            "faults": [
                {"at": 0, "kind": "sagemaker-5xx", "rate": 0.5},
                {"at": 0, "kind": "kube-errors", "codes": [429, 500], "hangRate": 0.1, "hangSeconds": 2},
                {"at": 0, "kind": "lambda-timeouts", "rate": 0.1},
                {"at": 0, "kind": "lambda-throttling", "rate": 0.3},
                {"at": 60, "kind": "node-failure", "count": 2, "group": "auto-g6-az1"},
            ],
        }
    )
    kinds = [f.kind for f in scenario.faults]
    assert kinds == ["sagemaker-5xx", "kube-errors", "lambda-timeouts", "lambda-throttling", "node-failure"]
    assert scenario.faults[1].codes == [429, 500] and scenario.faults[4].count == 2
    with pytest.raises(ValueError):
        Scenario.model_validate({"name": "f", "faults": [{"at": 0, "kind": "kube-errors", "codes": [404]}]})
