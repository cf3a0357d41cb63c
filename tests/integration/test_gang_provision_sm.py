"""A gang's claim in the real provision state machine (moto's ASL interpreter, the HyperPod and Kubernetes emulators on a
simulated clock): when the claim fails, every node it launched is given back, the ones that came up too (issue 17: a
part of a gang is of no use to it and must not bill), and the group is backed off."""

from __future__ import annotations

from typing import Any

from hpa_testkit.pytest_aws import Stack

GROUP = "auto-g6-az1"


def gang_claim(count: int, claim_id: str = "gang-0001") -> dict[str, Any]:
    return {
        "cluster": "hyperpod-eks-demo",
        "instanceGroup": GROUP,
        "count": count,
        "claimId": claim_id,
        "pods": [f"default/train-0-{i}" for i in range(count)],
        "nodePool": "gpunodepool",
        "gang": {"source": "ProvisioningRequest", "namespace": "default", "name": "train"},
    }


def test_a_gang_whose_launch_partly_fails_gives_back_the_nodes_that_came_up_too(stack: Stack) -> None:
    # the same fault as the plain claim's test (test_provision_sm): one of three launches fails after two are Ready
    stack.aws.hyperpod.capacity_failure(GROUP, times=1)
    stack.aws.hyperpod.failure_delay = stack.aws.hyperpod.provisioning_delay + 30
    out = stack.run("provision", gang_claim(3))
    assert out["status"] == "SUCCEEDED", "a capacity failure is an expected outcome, not a failed execution"
    result = out["output"]
    assert result["status"] == "gave-back" and result["reason"] == "InsufficientCapacity", result
    assert result["kept"] == [] and len(result["deleted"]) == 3, result
    assert stack.aws.hyperpod.clusters["hyperpod-eks-demo"].groups[GROUP].target == 0, "no node of the gang bills"
    from hyperpod_autoscaler import runtime

    assert GROUP in runtime.backoff().unavailable_groups(), "the group is backed off, as for any capacity failure"


def test_a_gang_that_times_out_gives_back_every_node_and_backs_off(stack: Stack) -> None:
    stack.aws.hyperpod.group_delays[GROUP] = 5000
    out = stack.run("provision", gang_claim(2))
    assert out["status"] == "SUCCEEDED", out
    result = out["output"]
    assert result["reason"] == "RegistrationTimeout" and result["kept"] == [] and len(result["deleted"]) == 2
    assert stack.aws.hyperpod.clusters["hyperpod-eks-demo"].groups[GROUP].target == 0
    from hyperpod_autoscaler import runtime

    assert GROUP in runtime.backoff().unavailable_groups()


def test_a_gang_whose_nodes_all_come_up_keeps_them(stack: Stack) -> None:
    out = stack.run("provision", gang_claim(2))
    assert out["status"] == "SUCCEEDED" and out["output"]["status"] == "ready", out
    assert len(out["output"]["nodes"]) == 2
    assert stack.aws.hyperpod.clusters["hyperpod-eks-demo"].groups[GROUP].target == 2


def test_a_gang_meeting_partial_capacity_is_given_back_before_any_of_its_nodes_runs(stack: Stack) -> None:
    # only 2 instances of the group can launch: the third fails at once (EC2 answers an insufficient-capacity launch
    # within seconds), while the two others still boot; the gang gives all three back, so none ever bills
    hp = stack.aws.hyperpod
    hp.capacity_limit(GROUP, 2)
    ran: list[str] = []
    hp.on_running.append(lambda rec: ran.append(rec.instance_id))
    out = stack.run("provision", gang_claim(3))
    result = out["output"]
    assert result["status"] == "gave-back" and result["reason"] == "InsufficientCapacity", result
    assert len(result["deleted"]) == 3 and ran == [], (result, ran)
