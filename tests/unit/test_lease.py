"""The reconcile lease on DynamoDB (moto in-process) and the leased re-check loop on a fake clock."""

from __future__ import annotations

import boto3
import pytest
from hyperpod_autoscaler.adapters.dynamo_lease import DynamoLease
from hyperpod_autoscaler.services.leased_loop import LoopSettings, run_leased_loop
from moto import mock_aws


class FakeClock:
    def __init__(self, start: float = 1_000_000.0) -> None:
        self.t = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def lease(clock: FakeClock):
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="state",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        )
        yield DynamoLease(client, "state", now=clock)


def test_one_holder_at_a_time_until_expiry(lease: DynamoLease, clock: FakeClock) -> None:
    assert lease.acquire("r", "a", 30)
    assert not lease.acquire("r", "b", 30)
    assert lease.acquire("r", "a", 30), "re-acquiring our own lease is allowed"
    clock.t += 31
    assert lease.holder("r") is None
    assert lease.acquire("r", "b", 30), "an expired lease is free"
    assert not lease.renew("r", "a", 30), "the old holder lost it"
    assert lease.renew("r", "b", 30)


def test_release_is_refused_while_a_pass_request_is_owed(lease: DynamoLease, clock: FakeClock) -> None:
    assert not lease.request_pass("r"), "nobody holds it: the caller should acquire"
    assert lease.acquire("r", "a", 30)
    pass_started = clock.t
    clock.t += 2
    assert lease.request_pass("r")
    assert lease.pass_requested("r", pass_started)
    assert not lease.release("r", "a", pass_started), "the request came after our pass started"
    assert lease.holder("r") == "a"
    clock.t += 1
    assert not lease.pass_requested("r", clock.t)
    assert lease.release("r", "a", clock.t), "a new pass started after the request: release goes through"
    assert lease.holder("r") is None


def test_release_of_a_lease_we_lost_is_not_an_error(lease: DynamoLease, clock: FakeClock) -> None:
    assert lease.acquire("r", "a", 5)
    clock.t += 6
    assert lease.acquire("r", "b", 5)
    assert lease.release("r", "a", clock.t)
    lease.force_release("r", "a")
    assert lease.holder("r") == "b"


def _settings(**kw: float) -> LoopSettings:
    base = {"interval_seconds": 5.0, "budget_seconds": 50.0, "lease_seconds": 30.0, "poll_seconds": 1.0}
    base.update(kw)
    return LoopSettings(**base)


def test_loop_stops_and_releases_when_nothing_is_left(lease: DynamoLease, clock: FakeClock) -> None:
    work = iter([True, True, False])

    def one_pass() -> tuple[str, bool]:
        return "pass", next(work)

    out = run_leased_loop(lease, "r", "a", one_pass, _settings(), clock=clock, sleep=clock.sleep)
    assert out.held and out.stopped == "done" and len(out.passes) == 3
    assert sum(clock.slept) == pytest.approx(10.0), "two intervals of 5 s between three passes"
    assert lease.holder("r") is None


def test_a_contender_leaves_a_request_and_the_holder_answers_it(lease: DynamoLease, clock: FakeClock) -> None:
    seen: list[str] = []

    def contender_pass() -> tuple[str, bool]:
        raise AssertionError("the contender must not decide while the lease is held")

    def holder_pass() -> tuple[str, bool]:
        seen.append(f"pass at {clock.t - 1_000_000.0:.0f}")
        if len(seen) == 1:
            # While the holder decides, another trigger arrives: it must not run, and must be answered.
            clock.t += 1
            other = run_leased_loop(lease, "r", "b", contender_pass, _settings(), clock=clock, sleep=clock.sleep)
            assert not other.held and other.stopped == "contended"
        return "pass", False

    out = run_leased_loop(lease, "r", "a", holder_pass, _settings(), clock=clock, sleep=clock.sleep)
    assert out.stopped == "done"
    assert len(seen) == 2, "the release was refused once, so the holder ran one more pass"
    assert lease.holder("r") is None


def test_a_request_wakes_a_sleeping_holder_within_a_poll(lease: DynamoLease, clock: FakeClock) -> None:
    calls: list[float] = []

    def one_pass() -> tuple[str, bool]:
        calls.append(clock.t)
        return "pass", len(calls) < 3

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if len(calls) == 1 and clock.t - calls[0] >= 2:
            lease.request_pass("r")

    out = run_leased_loop(lease, "r", "a", one_pass, _settings(interval_seconds=10.0), clock=clock, sleep=sleep)
    assert out.stopped == "done"
    assert calls[1] - calls[0] == pytest.approx(2.0), "woken by the request after 2 s instead of the 10 s interval"
    assert calls[2] - calls[1] == pytest.approx(10.0)


def test_budget_ends_the_loop_and_frees_the_lease(lease: DynamoLease, clock: FakeClock) -> None:
    out = run_leased_loop(
        lease, "r", "a", lambda: ("pass", True), _settings(budget_seconds=20.0), clock=clock, sleep=clock.sleep
    )
    assert out.stopped == "budget"
    assert len(out.passes) == 4, "passes at 0, 5, 10, 15 s; none starts after the 20 s budget"
    assert lease.holder("r") is None


def test_remaining_lambda_time_bounds_the_loop(lease: DynamoLease, clock: FakeClock) -> None:
    deadline = clock.t + 30.0
    out = run_leased_loop(
        lease,
        "r",
        "a",
        lambda: ("pass", True),
        _settings(safety_margin_seconds=10.0),
        remaining_seconds=lambda: deadline - clock.t,
        clock=clock,
        sleep=clock.sleep,
    )
    assert out.stopped == "budget"
    assert clock.t <= deadline - 10.0


def test_zero_budget_is_one_pass(lease: DynamoLease, clock: FakeClock) -> None:
    out = run_leased_loop(
        lease, "r", "a", lambda: ("pass", True), _settings(budget_seconds=0.0), clock=clock, sleep=clock.sleep
    )
    assert len(out.passes) == 1 and clock.slept == []


def test_an_error_in_a_pass_frees_the_lease(lease: DynamoLease, clock: FakeClock) -> None:
    def boom() -> tuple[str, bool]:
        raise RuntimeError("API down")

    with pytest.raises(RuntimeError):
        run_leased_loop(lease, "r", "a", boom, _settings(), clock=clock, sleep=clock.sleep)
    assert lease.holder("r") is None


def test_a_holder_that_lost_its_lease_stops(lease: DynamoLease, clock: FakeClock) -> None:
    def slow_pass() -> tuple[str, bool]:
        clock.t += 40  # longer than the lease: someone else takes it
        lease.acquire("r", "b", 30)
        return "pass", True

    out = run_leased_loop(lease, "r", "a", slow_pass, _settings(), clock=clock, sleep=clock.sleep)
    assert out.stopped == "lease-lost" and len(out.passes) == 1
    assert lease.holder("r") == "b", "the new holder keeps it"


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="lease_seconds"):
        LoopSettings(interval_seconds=30, lease_seconds=10)
    with pytest.raises(ValueError, match="budget_seconds"):
        LoopSettings(budget_seconds=-1)


def test_holder_ids_are_unique_per_invocation() -> None:
    """Issue 11, defect 2: the production holder was the constant prefix, and the lease admits its own holder again."""
    from types import SimpleNamespace

    from hyperpod_autoscaler.services.leased_loop import new_holder

    assert new_holder("reconcile", SimpleNamespace(aws_request_id="req-1")) == "reconcile:req-1"
    assert new_holder("reconcile", SimpleNamespace(aws_request_id="req-2")) != new_holder(
        "reconcile", SimpleNamespace(aws_request_id="req-1")
    )
    anonymous = {new_holder("reconcile") for _ in range(100)} | {new_holder("reconcile", object()) for _ in range(100)}
    assert len(anonymous) == 200 and "reconcile" not in anonymous


def test_an_empty_event_is_an_error_naming_the_field() -> None:
    """Issue 11, defect 10: ``{}`` is not a manual invoke."""
    import pytest
    from hyperpod_autoscaler.adapters.lambda_events import parse_trigger
    from hyperpod_autoscaler.domain.errors import InvalidObject

    for event in ({}, {"reason": "x"}, {"dryRun": False}):
        with pytest.raises(InvalidObject, match=r"manual invoke: field source: required field is missing"):
            parse_trigger(event)
    assert parse_trigger({"source": "manual"}).kind == "manual"
