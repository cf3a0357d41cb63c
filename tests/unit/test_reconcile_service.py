"""The reconcile pass with fakes at the ports and the real DynamoDB lease and claim store (moto in-process)."""

from __future__ import annotations

import io
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from hyperpod_autoscaler.adapters.dynamo_claims import DynamoClaimStore
from hyperpod_autoscaler.adapters.dynamo_lease import DynamoLease
from hyperpod_autoscaler.adapters.lambda_events import parse_trigger
from hyperpod_autoscaler.adapters.metrics import AutoscalerMetrics
from hyperpod_autoscaler.domain.catalog import Catalog
from hyperpod_autoscaler.domain.hyperpod import ClusterView
from hyperpod_autoscaler.domain.objects import ClusterObjects, load_yaml_documents, parse_objects
from hyperpod_autoscaler.ports.cluster import ObjectRef
from hyperpod_autoscaler.ports.workflow import Execution, StartResult
from hyperpod_autoscaler.services.leased_loop import LoopSettings
from hyperpod_autoscaler.services.reconcile import (
    ReconcileDeps,
    ReconcileSettings,
    reconcile_once,
    run_reconcile,
)
from moto import mock_aws

ROOT = Path(__file__).resolve().parents[2]
SM = "arn:aws:states:us-west-2:123456789012:stateMachine:provision"


def seed_objects() -> ClusterObjects:
    docs: list[Any] = []
    for name in ("nodeclass.yaml", "nodepool.yaml", "pods.yaml"):
        docs += load_yaml_documents((ROOT / "examples" / "seed" / name).read_text())
    return parse_objects(docs)


class FakeCluster:
    def __init__(self, objects: ClusterObjects) -> None:
        self.objects = objects
        self.events: list[tuple[ObjectRef, str, str, str]] = []
        self._lock = threading.Lock()

    def snapshot(self) -> ClusterObjects:
        return self.objects

    def record_event(self, ref: ObjectRef, reason: str, message: str, type_: str = "Normal") -> None:
        with self._lock:
            self.events.append((ref, reason, message, type_))


class FakeHyperPod:
    def describe_cluster(self) -> ClusterView:
        return ClusterView.from_describe_cluster(json.loads((ROOT / "examples" / "cluster.json").read_text()))


class FakeBackoffs:
    def __init__(self) -> None:
        self.groups: dict[str, str] = {}

    def unavailable_groups(self) -> dict[str, str]:
        return dict(self.groups)


class FakeWorkflows:
    """Step Functions' name semantics: a second start with the same name starts nothing."""

    def __init__(self) -> None:
        self.executions: dict[str, Execution] = {}
        self.start_calls = 0
        self._lock = threading.Lock()

    def start(self, state_machine_arn: str, name: str, input: dict[str, Any]) -> StartResult:
        with self._lock:
            self.start_calls += 1
            if name in self.executions:
                return StartResult(self.executions[name].arn, started=False)
            self.executions[name] = Execution(f"{state_machine_arn}:{name}", name, "RUNNING", input, 0.0)
            return StartResult(self.executions[name].arn, started=True)

    def running(self, state_machine_arn: str) -> list[Execution]:
        with self._lock:
            return [e for e in self.executions.values() if e.status == "RUNNING"]

    def describe(self, state_machine_arn: str, name: str) -> Execution | None:
        with self._lock:
            return self.executions.get(name)

    def finish(self, name: str) -> None:
        e = self.executions[name]
        self.executions[name] = Execution(e.arn, e.name, "SUCCEEDED", e.input, e.started_at)


class Clock:
    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def table():
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-west-2")
        client.create_table(
            TableName="state",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        )
        yield client


def make_deps(table: Any, clock: Clock, objects: ClusterObjects | None = None) -> ReconcileDeps:
    return ReconcileDeps(
        cluster=FakeCluster(objects or seed_objects()),  # type: ignore[arg-type]
        hyperpod=FakeHyperPod(),
        claims=DynamoClaimStore(table, "state", now=clock),
        backoffs=FakeBackoffs(),
        workflows=FakeWorkflows(),
        metrics=AutoscalerMetrics("demo", out=io.StringIO()),
        catalog=Catalog.builtin(),
        clock=clock,
    )


SETTINGS = ReconcileSettings(cluster_name="hyperpod-eks-demo", provision_state_machine_arn=SM)


def test_one_pass_starts_one_execution_per_group_claim(table: Any) -> None:
    clock = Clock()
    deps = make_deps(table, clock)
    result = reconcile_once(deps, SETTINGS)
    assert result.pending == 6 and result.planned_nodes == 2
    [claim] = result.claims
    assert (claim.instance_group, claim.count, claim.recorded) == ("auto-g6-az1", 2, True)
    workflows: FakeWorkflows = deps.workflows  # type: ignore[assignment]
    [execution] = workflows.executions.values()
    assert execution.name == claim.execution_name
    assert execution.input["count"] == 2 and len(execution.input["pods"]) == 6
    nominated = [e for e in deps.cluster.events if e[1] == "Nominated"]  # type: ignore[attr-defined]
    assert len(nominated) == 6 and "auto-g6-az1" in nominated[0][2]


def test_a_running_execution_is_capacity_and_a_finished_one_is_not(table: Any) -> None:
    clock = Clock()
    deps = make_deps(table, clock)
    first = reconcile_once(deps, SETTINGS)
    clock.t += 10
    second = reconcile_once(deps, SETTINGS)
    assert second.inflight_nodes == 2 and second.planned_nodes == 0 and second.claims == []
    # The execution ended (say its nodes failed and were given back) and the pods are still pending: decide again.
    deps.workflows.finish(first.claims[0].execution_name)  # type: ignore[attr-defined]
    clock.t += SETTINGS.claim_grace_seconds + 1
    third = reconcile_once(deps, SETTINGS)
    assert third.inflight_nodes == 0 and third.planned_nodes == 2


def test_a_recorded_claim_whose_start_was_lost_is_started_again(table: Any) -> None:
    clock = Clock()
    deps = make_deps(table, clock)
    first = reconcile_once(deps, SETTINGS)
    workflows: FakeWorkflows = deps.workflows  # type: ignore[assignment]
    workflows.executions.clear()  # as if the decider died between the record and the start
    clock.t += 5
    second = reconcile_once(deps, SETTINGS)
    assert second.planned_nodes == 0, "the recorded claim is still counted as capacity"
    assert list(workflows.executions) == [first.claims[0].execution_name], "and its execution is started again"


def test_the_per_decision_cap_cuts_the_plan_and_says_so(table: Any) -> None:
    clock = Clock()
    deps = make_deps(table, clock)
    settings = ReconcileSettings(
        cluster_name="hyperpod-eks-demo", provision_state_machine_arn=SM, max_nodes_per_decision=1
    )
    result = reconcile_once(deps, settings)
    assert result.planned_nodes == 1 and result.capped
    assert any(e[1] == "CapReached" for e in deps.cluster.events)  # type: ignore[attr-defined]


def test_a_group_in_backoff_is_not_launched_into(table: Any) -> None:
    clock = Clock()
    deps = make_deps(table, clock)
    deps.backoffs.groups["auto-g6-az1"] = "InsufficientCapacity"  # type: ignore[attr-defined]
    result = reconcile_once(deps, SETTINGS)
    assert all(c.instance_group != "auto-g6-az1" for c in result.claims)


def test_twenty_overlapping_invocations_provision_the_planned_nodes_once(table: Any) -> None:
    clock = Clock()
    deps = make_deps(table, clock)
    lease = DynamoLease(table, "state", now=clock)
    loop = LoopSettings(budget_seconds=0.0)
    trigger = parse_trigger(json.loads((ROOT / "events" / "reconcile" / "schedule.json").read_text()))

    def invoke(i: int) -> Any:
        return run_reconcile(deps, SETTINGS, lease, loop, trigger, holder=f"invocation-{i}", sleep=lambda s: None)

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(invoke, range(20)))
    # Contenders leave a pass request; whoever holds the lease answers it. Drain any request left over.
    invoke(99)
    workflows: FakeWorkflows = deps.workflows  # type: ignore[assignment]
    assert len(workflows.executions) == 1
    [execution] = workflows.executions.values()
    assert execution.input["count"] == 2
    assert any(r.held for r in results)


def test_a_closed_attempt_is_not_capacity_and_the_next_decision_is_a_new_attempt(table: Any) -> None:
    """Defect 1: Step Functions keeps a closed execution's name for 90 days; the same pods decided again must start a new
    execution, not collide with the closed one (and a closed one is never capacity, even within the grace period)."""
    clock = Clock()
    deps = make_deps(table, clock)
    workflows: FakeWorkflows = deps.workflows  # type: ignore[assignment]
    first = reconcile_once(deps, SETTINGS)
    [claim] = first.claims
    workflows.finish(claim.execution_name)  # gave back at once (capacity): closed within the grace period
    clock.t += 5
    second = reconcile_once(deps, SETTINGS)
    [again] = second.claims
    assert second.inflight_nodes == 0, "a closed execution is not capacity"
    assert again.claim_id == claim.claim_id and again.execution_name != claim.execution_name and again.recorded
    assert again.execution_name.split("-")[-2] == "2", "attempt 2"
    assert len(workflows.executions) == 2 and workflows.executions[again.execution_name].status == "RUNNING"
    assert len(again.execution_name) <= 80
    assert workflows.executions[again.execution_name].input["clientToken"].startswith(claim.claim_id + "-2-")


def test_concurrent_deciders_of_one_decision_start_one_attempt(table: Any) -> None:
    """Without the lease (expired, or a bug), deciders that see the same ended attempt still agree on the next one."""
    clock = Clock()
    deps = make_deps(table, clock)
    workflows: FakeWorkflows = deps.workflows  # type: ignore[assignment]
    first = reconcile_once(deps, SETTINGS)
    workflows.finish(first.claims[0].execution_name)
    clock.t += SETTINGS.claim_grace_seconds + 1
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: reconcile_once(deps, SETTINGS), range(8)))
    names = {c.execution_name for r in results for c in r.claims}
    assert len(names) == 1 and sum(c.recorded for r in results for c in r.claims) == 1
    assert len(workflows.executions) == 2


def test_each_decision_is_one_structured_log_line(table: Any, caplog: pytest.LogCaptureFixture) -> None:
    """Issue 15: the reconcile side of the decision lines: the claim started (what, for which pods, why, its execution),
    then, once the pods ride it, what was not launched for and why."""
    import logging

    clock = Clock()
    deps = make_deps(table, clock)
    with caplog.at_level(logging.INFO, logger="hyperpod_autoscaler.services.reconcile"):
        result = reconcile_once(deps, SETTINGS)
        clock.t += 10
        reconcile_once(deps, SETTINGS)
    lines = [r.msg for r in caplog.records if isinstance(r.msg, dict) and "decision" in r.msg]
    started = [m for m in lines if m["decision"] == "provision"]
    assert len(started) == 1, lines
    (claim,) = result.claims
    line = started[0]
    assert (line["instanceGroup"], line["count"], line["podCount"], line["execution"]) == (
        "auto-g6-az1",
        2,
        6,
        claim.execution_name,
    )
    assert line["at"] == 1_800_000_000.0 and "cheapest placement" in line["why"] and "$" in line["why"]
    kept = [m for m in lines if m["decision"] == "provision-kept"]
    assert kept and kept[-1]["onNodesLaunching"] == 6, "the second pass launches nothing: the pods ride the claim"


def test_the_pods_of_a_dropped_launch_are_planned_again_while_the_claim_still_runs(table: Any) -> None:
    """A claim's execution dropped one of its two launches (insufficient capacity: the provision check deletes it,
    backs the group off, and counts it off the claim's record). The next pass plans the pods that launch was for
    again at once, instead of letting them ride a node that will never come until the execution ends. Here the
    seed's only group is backed off, so they are reported unschedulable with the backoff's reason."""
    clock = Clock()
    deps = make_deps(table, clock)
    first = reconcile_once(deps, SETTINGS)
    (claim,) = first.claims
    token = claim.execution_name[claim.execution_name.index(claim.claim_id) :]
    deps.claims.drop(claim.claim_id, token, 1)  # type: ignore[attr-defined]
    deps.backoffs.groups["auto-g6-az1"] = "InsufficientCapacity: no capacity"  # type: ignore[attr-defined]
    clock.t += 10
    second = reconcile_once(deps, SETTINGS)
    assert second.inflight_nodes == 1, "one node of the two is still coming"
    assert second.unschedulable == 3 and second.claims == [], "the dropped node's 3 pods are decided again"

    deps.claims.drop(claim.claim_id, "another-attempt-token", 2)  # type: ignore[attr-defined]
    assert deps.claims.get(claim.claim_id).claim.count == 1, "another attempt's drop leaves this record alone"  # type: ignore[attr-defined]


def test_the_nominated_event_names_what_exists(table: Any) -> None:
    """Issue 15: no ``nodeclaim/<id>`` (there is no such object here): the instance group and the execution."""
    deps = make_deps(table, Clock())
    (claim,) = reconcile_once(deps, SETTINGS).claims
    messages = {e[2] for e in deps.cluster.events if e[1] == "Nominated"}  # type: ignore[attr-defined]
    assert messages == {
        "Pod should schedule on: a new node of instance group auto-g6-az1 (ml.g6.xlarge, us-west-2a), launched by "
        f"provision execution {claim.execution_name}"
    }
