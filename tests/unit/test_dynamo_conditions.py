"""Issue 11, defect 10: the DynamoDB writes that concurrent writers share are conditional (moto in-process)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from hyperpod_autoscaler.adapters.dynamo_claims import DynamoClaimStore
from hyperpod_autoscaler.adapters.dynamo_disruption import DynamoDisruptionState
from hyperpod_autoscaler.adapters.dynamo_state import BASE_SECONDS, DynamoBackoff, DynamoScalerStates, StateChanged
from hyperpod_autoscaler.domain.plan import InflightClaim
from hyperpod_autoscaler.services.provision import ProvisionDeps, finish
from moto import mock_aws


class Clock:
    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def table() -> Any:
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


# --- backoff -----------------------------------------------------------------------------------------------------------


def test_a_success_clears_the_backoff_only_when_its_attempt_started_after_the_failure(table: Any) -> None:
    clock = Clock()
    backoff = DynamoBackoff(table, "state", now=clock)
    launched_before = clock.t - 60  # a launch that was already under way when the group failed
    backoff.mark_unavailable("g", "InsufficientCapacity: no capacity")
    clock.t += 30
    assert backoff.clear("g", since=launched_before) is False
    assert "g" in backoff.unavailable_groups(), "an older launch coming up says nothing about the failed capacity"
    assert backoff.clear("h", since=launched_before) is True, "no backoff: nothing to keep"
    assert backoff.clear("g", since=clock.t) is True
    assert backoff.unavailable_groups() == {}


def test_finish_clears_with_its_own_launch_time(table: Any) -> None:
    clock = Clock()
    calls: list[tuple[str, float | None]] = []

    class Backoff:
        def clear(self, group: str, since: float | None = None) -> bool:
            calls.append((group, since))
            return True

    deps = ProvisionDeps(hyperpod=None, cluster=None, backoff=Backoff(), metrics=_Metrics(), clock=clock)  # type: ignore[arg-type]
    finish(deps, {"instanceGroup": "g", "count": 1, "claimId": "c", "scale": {"startedAt": 123.0}, "check": {}})
    assert calls == [("g", 123.0)]


class _Metrics:
    def count(self, *args: Any, **kwargs: Any) -> None:
        pass


def test_concurrent_failures_are_all_counted(table: Any) -> None:
    clock = Clock()
    backoff = DynamoBackoff(table, "state", now=clock)
    with ThreadPoolExecutor(max_workers=4) as pool:
        seconds = sorted(pool.map(lambda _: backoff.mark_unavailable("g", "InsufficientCapacity"), range(4)))
    assert seconds == [BASE_SECONDS * 2**i for i in range(4)], "four strikes, none lost to a concurrent write"


# --- claims ------------------------------------------------------------------------------------------------------------


def claim(cid: str = "c1") -> InflightClaim:
    return InflightClaim(cid, "pool", "g", "ml.g6.xlarge", "us-west-2a", 1, ("default/p",))


def test_a_claim_attempt_is_recorded_once_and_only_over_the_attempt_that_ended(table: Any) -> None:
    store = DynamoClaimStore(table, "state", now=Clock())
    assert store.record_claim(claim(), "g-c1-1-aaaa", 600) is True
    assert store.record_claim(claim(), "g-c1-1-bbbb", 600) is False, "a second first attempt loses"
    assert store.record_claim(claim(), "g-c1-2-cccc", 600, attempt=2, replacing="g-c1-1-zzzz") is False
    assert store.record_claim(claim(), "g-c1-2-dddd", 600, attempt=2, replacing="g-c1-1-aaaa") is True
    assert store.record_claim(claim(), "g-c1-2-eeee", 600, attempt=2, replacing="g-c1-1-aaaa") is False
    current = store.get("c1")
    assert current is not None and (current.execution_name, current.attempt) == ("g-c1-2-dddd", 2)


def test_forgetting_a_claim_keeps_its_attempt_and_never_creates_one(table: Any) -> None:
    store = DynamoClaimStore(table, "state", now=Clock())
    store.record_claim(claim(), "g-c1-1-aaaa", 600)
    store.forget("c1")
    store.forget("replace-never-recorded")
    [rec] = store.recorded_claims()
    assert rec.closed_at is not None and rec.attempt == 1
    assert store.get("replace-never-recorded") is None


# --- disruption --------------------------------------------------------------------------------------------------------


def test_activity_is_written_over_the_version_read(table: Any) -> None:
    state = DynamoDisruptionState(table, "state", now=Clock())
    _, v0 = state.activity_versioned()
    assert state.save_activity({"n1": {"digest": "a", "since": 1.0}}, v0) is True
    assert state.save_activity({"n1": {"digest": "b", "since": 2.0}}, v0) is False, "a stale writer writes nothing"
    data, v1 = state.activity_versioned()
    assert data["n1"]["digest"] == "a" and v1 == v0 + 1


def test_replacements_are_created_once_moved_on_once_and_deleted_per_attempt(table: Any) -> None:
    state = DynamoDisruptionState(table, "state", now=Clock())
    rec = {"nodes": ["n1"], "provisionName": "replace-d-1-aaaa", "deprovisionName": "empty-d-1-aaaa"}
    assert state.put_replacement("d", rec) is True
    assert state.put_replacement("d", {**rec, "provisionName": "replace-d-1-bbbb"}) is False
    assert state.start_draining("d", {**rec, "phase": "draining"}) is True
    assert state.start_draining("d", {**rec, "phase": "draining"}) is False, "moved on once"
    assert state.delete_replacement("d", "replace-d-0-old") is False, "a stale pass leaves a newer attempt alone"
    assert state.delete_replacement("d", "replace-d-1-aaaa") is True
    assert state.replacements() == {}


def test_a_decision_attempt_is_recorded_by_one_of_concurrent_deciders(table: Any) -> None:
    state = DynamoDisruptionState(table, "state", now=Clock())
    barrier = threading.Barrier(6)

    def decide(i: int) -> bool:
        barrier.wait()
        return state.record_decision("d", {"name": f"empty-d-1-{i}", "attempt": 1}, None)

    with ThreadPoolExecutor(max_workers=6) as pool:
        won = list(pool.map(decide, range(6)))
    assert won.count(True) == 1
    current = state.decision("d")
    assert current is not None
    assert state.record_decision("d", {"name": "empty-d-2-x", "attempt": 2}, "empty-d-1-not-it") is False
    assert state.record_decision("d", {"name": "empty-d-2-x", "attempt": 2}, current["name"]) is True


# --- pod scaler --------------------------------------------------------------------------------------------------------


def test_scaler_state_is_never_overwritten_by_a_stale_writer(table: Any) -> None:
    one, two = DynamoScalerStates(table, "state"), DynamoScalerStates(table, "state")
    assert one.get("ns/so") is None and two.get("ns/so") is None
    one.put("ns/so", {"lastPoll": 1.0})
    with pytest.raises(StateChanged):
        two.put("ns/so", {"lastPoll": 0.5})
    assert two.get("ns/so") == {"lastPoll": 1.0}
    two.put("ns/so", {"lastPoll": 2.0})
    assert one.get("ns/so") == {"lastPoll": 2.0}
