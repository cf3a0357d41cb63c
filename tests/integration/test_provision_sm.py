"""The real provision state machine in moto's ASL interpreter, tasks routed to the real handler, against the HyperPod and
Kubernetes emulators on a simulated clock."""

from __future__ import annotations

from typing import Any

import pytest
from hpa_testkit.aws import sfn
from hpa_testkit.pytest_aws import Stack


def claim(count: int = 2, group: str = "auto-g6-az1", claim_id: str = "claim-0001") -> dict[str, Any]:
    return {
        "cluster": "hyperpod-eks-demo",
        "instanceGroup": group,
        "count": count,
        "claimId": claim_id,
        "pods": ["default/p1"],
    }


def states(out: dict[str, Any]) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in out["history"] if "stateEnteredEventDetails" in e]


def test_happy_path_nodes_running_and_ready(stack: Stack) -> None:
    out = stack.run("provision", claim())
    assert out["status"] == "SUCCEEDED", out
    assert out["output"]["status"] == "ready" and len(out["output"]["nodes"]) == 2
    nodes = [n["metadata"]["name"] for n in stack.kube.list("v1", "Node")]
    assert sorted(nodes) == sorted(out["output"]["nodes"])
    assert "WaitForNodes" in states(out) and "Finish" in states(out)


def test_throttling_and_conflicts_are_retried_with_growing_capped_jittered_intervals(stack: Stack) -> None:
    # the writes: reads ride out throttling inside the adapter, the writes' retries are the state machine's
    stack.aws.hyperpod.throttle(next_n=2, ops={"UpdateCluster", "BatchAddClusterNodes"})
    stack.aws.hyperpod.conflicts(next_n=3)
    out = stack.run("provision", claim())
    assert out["status"] == "SUCCEEDED", out
    intervals = [s for _t, s in sfn.retry_intervals]
    assert len(intervals) >= 4
    # FULL jitter: each interval is random in [0, min(MaxDelay, base * 2^attempt)]
    caps = [min(60.0, 5.0 * 2**i) for i in range(len(intervals))]
    assert all(0 <= got <= cap + 1e-6 for got, cap in zip(intervals, caps, strict=False)), (intervals, caps)
    errors = [e for (_t, _op, _p, e) in stack.aws.hyperpod.call_log if e]
    assert errors.count("ThrottlingException") == 2 and errors.count("ConflictException") == 3


def test_capacity_failure_gives_back_and_backs_off_the_group(stack: Stack) -> None:
    stack.aws.hyperpod.capacity_failure("auto-g6-az1")
    out = stack.run("provision", claim())
    assert out["status"] == "SUCCEEDED", "a capacity failure is an expected outcome, not a failed execution"
    assert out["output"]["status"] == "gave-back" and out["output"]["reason"] == "InsufficientCapacity"
    assert len(out["output"]["deleted"]) == 2
    from hyperpod_autoscaler import runtime

    backoffs = runtime.backoff().unavailable_groups()
    assert "auto-g6-az1" in backoffs
    assert stack.aws.hyperpod.clusters["hyperpod-eks-demo"].groups["auto-g6-az1"].target == 0, "no node left behind"
    # a second failure backs off longer
    first = out["output"]["backoffSeconds"]
    second = stack.run("provision", claim(claim_id="claim-0002"))["output"]["backoffSeconds"]
    assert second == 2 * first


def test_a_partial_capacity_failure_keeps_the_nodes_that_came_up_labelled_with_their_nodepool(stack: Stack) -> None:
    stack.aws.hyperpod.capacity_failure("auto-g6-az1", times=1)  # one of the three launches fails...
    stack.aws.hyperpod.failure_delay = stack.aws.hyperpod.provisioning_delay + 30  # ...after the other two are Ready
    out = stack.run("provision", {**claim(count=3), "nodePool": "gpunodepool"})
    assert out["status"] == "SUCCEEDED", out
    result = out["output"]
    assert result["status"] == "ready" and len(result["nodes"]) == 2, "the failed launch is dropped, not the claim"
    assert len(result["dropped"]) == 1, result
    nodes = {n["metadata"]["name"]: n for n in stack.kube.list("v1", "Node")}
    assert sorted(nodes) == result["nodes"]
    assert all(n["metadata"]["labels"].get("karpenter.sh/nodepool") == "gpunodepool" for n in nodes.values()), (
        "kept nodes belong to their NodePool, so consolidation can remove them when they are not needed"
    )
    assert stack.aws.hyperpod.clusters["hyperpod-eks-demo"].groups["auto-g6-az1"].target == 2, "nothing else left"
    from hyperpod_autoscaler import runtime

    assert "auto-g6-az1" in runtime.backoff().unavailable_groups(), (
        "the group is backed off, as for any capacity failure"
    )


def test_a_launch_that_fails_early_is_dropped_and_the_others_still_booting_are_kept(stack: Stack) -> None:
    # Karpenter's launches are independent: an insufficient-capacity answer for one node does not take the others
    # down. Here the third launch fails within seconds while the other two boot; they come up and are the claim's.
    stack.aws.hyperpod.capacity_limit("auto-g6-az1", 2)
    out = stack.run("provision", {**claim(count=3), "nodePool": "gpunodepool"})
    result = out["output"]
    assert result["status"] == "ready" and len(result["nodes"]) == 2 and len(result["dropped"]) == 1, result
    instances = stack.aws.hyperpod.clusters["hyperpod-eks-demo"].instances.values()
    assert sorted(i.status for i in instances) == ["Running", "Running"], "the failed launch is deleted"


def test_the_claims_record_counts_a_dropped_launch_off_so_its_pods_are_decided_again(stack: Stack) -> None:
    # reconcile reads in-flight capacity from the claim's record: a dropped launch is capacity no longer coming
    from hyperpod_autoscaler import runtime
    from hyperpod_autoscaler.domain.plan import InflightClaim

    store = runtime.claims()
    recorded = InflightClaim(
        "claim-0001", "gpunodepool", "auto-g6-az1", "ml.g6.xlarge", "us-west-2a", 3, ("default/p1",)
    )
    assert store.record_claim(recorded, "auto-g6-az1-claim-0001-1-tok", 3600)
    stack.aws.hyperpod.capacity_limit("auto-g6-az1", 2)
    out = stack.run("provision", {**claim(count=3), "clientToken": "claim-0001-1-tok"})
    assert out["output"]["status"] == "ready" and len(out["output"]["dropped"]) == 1, out["output"]
    after = store.get("claim-0001")
    assert after is not None and (after.claim.count, after.claim.dropped) == (2, 1)


def test_a_claim_whose_every_launch_fails_is_given_back(stack: Stack) -> None:
    stack.aws.hyperpod.capacity_failure("auto-g6-az1")
    out = stack.run("provision", claim(count=2))
    result = out["output"]
    assert result["status"] == "gave-back" and result["reason"] == "InsufficientCapacity", result
    assert stack.aws.hyperpod.clusters["hyperpod-eks-demo"].groups["auto-g6-az1"].target == 0


def test_the_same_pods_failing_again_in_a_later_attempt_back_off_longer(stack: Stack) -> None:
    # reconcile decides the same pods again under the same claim id, attempt after attempt (a new clientToken each):
    # every attempt's failure is a strike of its own, or a gang that can never all launch retries at the base backoff
    # forever (sandbox gang-scarce: 36 give-backs of one claim, every one 180 s)
    stack.aws.hyperpod.capacity_failure("auto-g6-az1")
    first = stack.run("provision", {**claim(), "clientToken": "claim-0001-1-aaaa"})["output"]["backoffSeconds"]
    second = stack.run("provision", {**claim(), "clientToken": "claim-0001-2-bbbb"})["output"]["backoffSeconds"]
    assert second == 2 * first


def test_registration_timeout(stack: Stack) -> None:
    stack.aws.hyperpod.group_delays["auto-g6-az1"] = 5000
    out = stack.run("provision", claim(count=1))
    assert out["status"] == "SUCCEEDED"
    assert out["output"]["reason"] == "RegistrationTimeout"
    assert stack.clock.elapsed >= 1200


def test_the_same_claim_started_twice_is_one_execution_and_one_scale_up(stack: Stack) -> None:
    import json

    client = stack.sfn
    payload = json.dumps(claim())
    first = client.start_execution(
        stateMachineArn=stack.machines["provision"], name="auto-g6-az1-claim-0001", input=payload
    )
    second = client.start_execution(
        stateMachineArn=stack.machines["provision"], name="auto-g6-az1-claim-0001", input=payload
    )
    assert first["executionArn"] == second["executionArn"]
    sfn.wait_for(client, first["executionArn"])
    adds = [c for c in stack.aws.hyperpod.call_log if c[1] == "BatchAddClusterNodes"]
    assert len(adds) == 1
    assert stack.aws.hyperpod.clusters["hyperpod-eks-demo"].groups["auto-g6-az1"].target == 2


def test_a_bad_input_fails_the_execution_naming_the_field(stack: Stack) -> None:
    out = stack.run("provision", {"cluster": "hyperpod-eks-demo", "instanceGroup": "auto-g6-az1", "claimId": "c"})
    assert out["status"] == "FAILED"
    failed = [e["executionFailedEventDetails"] for e in out["history"] if e.get("type") == "ExecutionFailed"]
    assert failed and failed[0]["error"] == "InvalidRequest"
    assert "field count" in failed[0]["cause"]
    assert not [c for c in stack.aws.hyperpod.call_log if c[1] in ("UpdateCluster", "BatchAddClusterNodes")]


def test_reads_ride_out_throttling_but_writes_leave_it_to_the_state_machine(stack: Stack) -> None:
    import pytest
    from hyperpod_autoscaler import runtime
    from hyperpod_autoscaler.domain.errors import Throttled

    adapter = runtime.hyperpod()
    stack.aws.hyperpod.throttle(next_n=2)
    assert adapter.describe_cluster().name == "hyperpod-eks-demo"
    stack.aws.hyperpod.throttle(rate=1.0)
    before = len(stack.aws.hyperpod.call_log)
    with pytest.raises(Throttled):
        adapter.scale_up("auto-g6-az1", 1, "claim-x")
    calls = [c[1] for c in stack.aws.hyperpod.call_log[before:]]
    assert calls == ["DescribeCluster"] * 4, "four read attempts, then the error goes to the caller"


def test_a_count_above_the_caps_is_refused_by_the_task_before_any_scaling(stack: Stack, monkeypatch: Any) -> None:
    def refused(out: dict[str, Any]) -> str:
        assert out["status"] == "FAILED", out
        failed = [e["executionFailedEventDetails"] for e in out["history"] if e.get("type") == "ExecutionFailed"]
        assert failed and failed[0]["error"] == "InvalidRequest"
        return str(failed[0]["cause"])

    cause = refused(stack.run("provision", claim(count=500)))
    assert "field count is 500" in cause and "MaxNodesPerDecision (20)" in cause
    assert stack.run("provision", claim(count=2, claim_id="first"))["status"] == "SUCCEEDED"
    monkeypatch.setenv("MAX_NODES_TOTAL", "3")
    cause = refused(stack.run("provision", claim(count=2, claim_id="second")))
    assert "auto-g6-az1 has 2 node(s)" in cause and "MaxNodesTotal (3)" in cause
    adds = [c for c in stack.aws.hyperpod.call_log if c[1] in ("UpdateCluster", "BatchAddClusterNodes")]
    assert len(adds) == 1, "only the claim within the caps scaled"
    assert stack.aws.hyperpod.clusters["hyperpod-eks-demo"].groups["auto-g6-az1"].target == 2


def update_cluster_mode(stack: Stack) -> None:
    """The cluster without continuous provisioning: scaling goes through UpdateCluster."""
    cluster = stack.aws.hyperpod.clusters["hyperpod-eks-demo"]
    cluster.mode = None
    cluster.spec.pop("NodeProvisioningMode", None)


def test_update_cluster_mode_sends_only_members_of_the_update_cluster_shape(stack: Stack) -> None:
    import botocore.session
    from hyperpod_autoscaler import runtime

    update_cluster_mode(stack)
    stack.aws.hyperpod.clusters["hyperpod-eks-demo"].groups["auto-g6-az1"].min_count = 1
    result = runtime.hyperpod().scale_up("auto-g6-az1", 2, "claim-u")
    assert result.mode == "update" and result.target_count == 2
    (params,) = [p for (_t, op, p, err) in stack.aws.hyperpod.call_log if op == "UpdateCluster" and err is None]
    model = botocore.session.get_session().get_service_model("sagemaker")
    allowed = set(model.operation_model("UpdateCluster").input_shape.members["InstanceGroups"].member.members)
    (item,) = params["InstanceGroups"]
    assert set(item) <= allowed, set(item) - allowed
    assert item["InstanceCount"] == 2 and item["MinInstanceCount"] == 1, "MinCount is echoed under its update name"
    assert item["ExecutionRole"] and item["InstanceType"] == "ml.g6.xlarge" and item["OverrideVpcConfig"]["Subnets"]


def written_counts(emulator: Any) -> list[int]:
    """The InstanceCount of every UpdateCluster write HyperPod accepted, in order."""
    accepted = [p for (_t, op, p, err) in emulator.call_log if op == "UpdateCluster" and err is None]
    return [g["InstanceCount"] for p in accepted for g in p["InstanceGroups"]]


def test_the_emulator_refuses_an_update_cluster_item_with_describe_only_fields(stack: Stack) -> None:
    from hpa_testkit.aws.hyperpod import HyperPodError

    update_cluster_mode(stack)
    item = {
        "InstanceGroupName": "auto-g6-az1",
        "InstanceType": "ml.g6.xlarge",
        "ExecutionRole": "arn:aws:iam::123456789012:role/HyperPodExecutionRole",
        "InstanceCount": 1,
        "MinCount": 0,
    }
    import pytest

    with pytest.raises(HyperPodError) as raised:
        stack.aws.hyperpod.handle("UpdateCluster", {"ClusterName": "hyperpod-eks-demo", "InstanceGroups": [item]})
    assert raised.value.code == "ValidationException" and "MinCount" in raised.value.message


def test_two_claims_on_one_group_in_update_cluster_mode_both_get_their_nodes(stack: Stack) -> None:
    import json

    update_cluster_mode(stack)
    client = stack.sfn
    arns = [
        client.start_execution(
            stateMachineArn=stack.machines["provision"],
            name=f"auto-g6-az1-{claim_id}",
            input=json.dumps(claim(count=count, claim_id=claim_id)),
        )["executionArn"]
        for claim_id, count in (("claim-a", 2), ("claim-b", 3))
    ]
    for arn in arns:
        sfn.wait_for(client, arn)
        assert client.describe_execution(executionArn=arn)["status"] == "SUCCEEDED"
    assert stack.aws.hyperpod.clusters["hyperpod-eks-demo"].groups["auto-g6-az1"].target == 5
    assert len(stack.kube.list("v1", "Node")) == 5


def test_a_delete_right_after_the_update_does_not_make_the_claim_scale_twice(stack: Stack) -> None:
    update_cluster_mode(stack)
    emulator = stack.aws.hyperpod
    first = stack.run("provision", claim(count=1, claim_id="seed"))
    assert first["status"] == "SUCCEEDED", first
    (old,) = [i for i in emulator.clusters["hyperpod-eks-demo"].instances.values()]
    update = emulator._op_UpdateCluster

    def update_then_consolidation_deletes(p: dict[str, Any]) -> dict[str, Any]:
        out = update(p)
        if emulator.clusters["hyperpod-eks-demo"].instances.get(old.instance_id, old).status != "ShuttingDown":
            emulator._op_BatchDeleteClusterNodes({"ClusterName": "hyperpod-eks-demo", "NodeIds": [old.instance_id]})
        return out

    emulator._op_UpdateCluster = update_then_consolidation_deletes  # type: ignore[method-assign]
    out = stack.run("provision", claim(count=2, claim_id="claim-d"))
    assert out["status"] == "SUCCEEDED", out
    assert written_counts(emulator) == [1, 3], "one write per claim"
    assert emulator.clusters["hyperpod-eks-demo"].groups["auto-g6-az1"].target == 2, "the claim's 2, the old one gone"


def test_a_give_back_whose_deletes_are_refused_retries_them_until_no_failed_launch_is_left(stack: Stack) -> None:
    # soak seed 6049: the give-back's BatchDeleteClusterNodes was refused ("node is busy") for both failed launches,
    # the execution ended, HyperPod kept retrying them and they came up later, owned by no claim
    stack.aws.hyperpod.capacity_failure("auto-g6-az1")
    stack.aws.hyperpod.delete_failures(next_n=3)
    out = stack.run("provision", claim())
    assert out["status"] == "SUCCEEDED", out
    assert out["output"]["status"] == "gave-back" and out["output"]["failed"] == {}, out["output"]
    cluster = stack.aws.hyperpod.clusters["hyperpod-eks-demo"]
    left = [i.instance_id for i in cluster.instances.values() if i.status != "ShuttingDown"]
    assert left == [], f"failed launches left to HyperPod's retries: {left}"
    assert cluster.groups["auto-g6-az1"].target == 0
    # the retried give-back counts the failure once (one strike: the base backoff), the next failure is the second
    from hyperpod_autoscaler.adapters.dynamo_state import BASE_SECONDS

    assert out["output"]["backoffSeconds"] == BASE_SECONDS
    second = stack.run("provision", claim(claim_id="claim-0002"))["output"]["backoffSeconds"]
    assert second == 2 * BASE_SECONDS


@pytest.mark.parametrize("mode", ["continuous", "update-cluster"])
def test_a_scale_task_that_times_out_after_its_launch_is_retried_and_launches_nothing_more(
    stack: Stack, mode: str
) -> None:
    # soak seed 6078: the scale task's Lambda timed out after BatchAddClusterNodes; the execution went to GiveBack with
    # no scale result, gave back nothing, and the launched node came up owned by no claim. A retry with the same
    # ClientToken gets the same nodes back. UpdateCluster has no token: its retry used to read the new target and add
    # the claim's count on top of it (twice the nodes); the intent the task records before writing tells the retry
    # that its write went through.
    emulator = stack.aws.hyperpod
    if mode == "update-cluster":
        update_cluster_mode(stack)
    sfn.lambda_error(sfn.TIMED_OUT, count=1, action="scale")
    out = stack.run("provision", claim())
    assert out["status"] == "SUCCEEDED", out
    assert out["output"]["status"] == "ready" and len(out["output"]["nodes"]) == 2, out["output"]
    cluster = emulator.clusters["hyperpod-eks-demo"]
    assert len(cluster.instances) == 2 and cluster.groups["auto-g6-az1"].target == 2
    assert sfn.lambda_faults_served == [(sfn.TIMED_OUT, "scale")]
    if mode == "update-cluster":
        assert written_counts(emulator) == [2], "one write for the claim"


def update_mode_task(stack: Stack) -> tuple[Any, Any]:
    """The cluster in UpdateCluster mode, and the provision task's dependencies as the function builds them."""
    from hyperpod_autoscaler import runtime

    update_cluster_mode(stack)
    return stack.aws.hyperpod, runtime.provision_deps()


def test_a_scale_retried_after_its_intent_but_before_any_write_writes_it_and_a_second_retry_does_not(
    stack: Stack,
) -> None:
    # the other side: an attempt recorded its intent and died before UpdateCluster took effect. Its retry sees the
    # target still at the recorded base and writes; a retry after that finds the new intent fulfilled and writes nothing
    from hyperpod_autoscaler.ports.hyperpod import ScaleIntent
    from hyperpod_autoscaler.services import provision

    emulator, deps = update_mode_task(stack)
    assert deps.intents is not None
    deps.intents.record("attempt-1", ScaleIntent("auto-g6-az1", 0, 2))
    event = claim(count=2) | {"clientToken": "attempt-1"}
    first = provision.scale(deps, event)
    assert first["targetCount"] == 2 and emulator.clusters["hyperpod-eks-demo"].groups["auto-g6-az1"].target == 2
    again = provision.scale(deps, event)
    assert again["targetCount"] == 2 and again["startedAt"] <= first["startedAt"] + 1
    assert written_counts(emulator) == [2], "written once"
    assert emulator.clusters["hyperpod-eks-demo"].groups["auto-g6-az1"].target == 2


def test_an_update_cluster_write_hyperpod_refused_leaves_no_intent_for_another_claims_write_to_be_taken_for(
    stack: Stack,
) -> None:
    # a refused write (ConflictException: another claim's update in progress) wrote nothing; if its intent stayed, the
    # retry would find the other claim's raised target and take it for its own write (flaky before: two claims at once)
    from hyperpod_autoscaler.domain.errors import ClusterBusy
    from hyperpod_autoscaler.services import provision

    emulator, deps = update_mode_task(stack)
    assert deps.intents is not None
    emulator.conflicts(next_n=1)
    event = claim(count=2) | {"clientToken": "attempt-c"}
    with pytest.raises(ClusterBusy):
        provision.scale(deps, event)
    assert deps.intents.recorded("attempt-c") is None
    emulator.clusters["hyperpod-eks-demo"].groups["auto-g6-az1"].target = 3  # another claim's write meanwhile
    provision.scale(deps, event)
    assert emulator.clusters["hyperpod-eks-demo"].groups["auto-g6-az1"].target == 5, "this claim's 2 on top"


def test_a_give_back_that_never_gets_its_deletes_done_still_counts_the_cloud_provider_error_once(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # the give-back counted CloudProviderErrors only when it completed: one whose deletes HyperPod refused on every
    # retry ended the execution Failed with the capacity failure never counted. It is counted by the first attempt
    # ($$.State.RetryCount 0), before anything can fail, and by no retry.
    import json

    monkeypatch.setenv("METRICS_SINK", "emf")
    stack.aws.hyperpod.capacity_failure("auto-g6-az1")
    stack.aws.hyperpod.delete_failures(rate=1.0)
    out = stack.run("provision", claim(), timeout=120)
    assert out["status"] == "FAILED", out
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    errors = [(line["Error"], line["InstanceGroup"]) for line in lines if "CloudProviderErrors" in line]
    assert errors == [("InsufficientCapacity", "auto-g6-az1")], errors
    deletes = [c for c in stack.aws.hyperpod.call_log if c[1] == "BatchDeleteClusterNodes"]
    assert len(deletes) == 7, "the give-back's first attempt and its six retries"
