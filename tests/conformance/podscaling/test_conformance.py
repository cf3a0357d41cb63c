"""Runs the pod-scaling conformance cases (``*.yaml`` next to this file) against the domain and the trigger adapters.

Every case names the upstream test it was ported from (``source``) and shows the upstream arithmetic
(``arithmetic``); expected values are upstream's. A case with ``deliberateDifference`` documents where we differ on
purpose (``docs/pod-scaling.md``): it asserts our documented value and records upstream's in ``upstream``.

Kinds:

* ``object`` — polls of one ScaledObject through ``podscaling.decide`` (KEDA's executor, fallback and the HPA).
* ``rate`` — ``hpa.limit_with_behavior`` / ``hpa.limit_legacy`` (``convertDesiredReplicasWithBehaviorRate``,
  ``convertDesiredReplicasWithRules``).
* ``stabilize`` — ``hpa.stabilize_with_behavior`` / ``hpa.stabilize_legacy`` and the recommendations kept.
* ``events`` — ``hpa.store_scale_event`` and ``hpa.changed_in_period``.
* ``scaler`` — ``AwsTriggerMetrics.read`` with a stub boto3 client answering the upstream mock's response.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hyperpod_autoscaler.adapters.aws_metrics import AwsTriggerMetrics
from hyperpod_autoscaler.domain import hpa
from hyperpod_autoscaler.domain.podscaling import Reading, ScalerState, decide, parse_scaled_object, record_scale

HERE = Path(__file__).parent
NOW = 1_000_000.0


def load_cases() -> list[dict[str, Any]]:
    cases = []
    for path in sorted(HERE.glob("*.yaml")):
        for case in yaml.safe_load(path.read_text()):
            case["_file"] = path.name
            cases.append(case)
    return cases


CASES = load_cases()


def expected(case: dict[str, Any], key: str = "expect") -> Any:
    return case[key]


def trigger(name: str, raw: dict[str, Any]) -> dict[str, Any]:
    """A short trigger (``{target, metricType, activation}``) as an aws-cloudwatch trigger; a full one as it is."""
    if "type" in raw:
        return {"name": name, **raw}
    meta = {"namespace": "N", "metricName": name, "targetMetricValue": str(raw["target"])}
    if "activation" in raw:
        meta["activationTargetMetricValue"] = str(raw["activation"])
    return {
        "type": "aws-cloudwatch",
        "name": name,
        "metricType": raw.get("metricType", "AverageValue"),
        "metadata": meta,
    }


def scaled_object(raw: dict[str, Any]) -> dict[str, Any]:
    spec = {k: v for k, v in raw.items() if k not in ("triggers", "behavior", "createdAgo")}
    spec["scaleTargetRef"] = {"name": "web"}
    spec["triggers"] = [trigger(n, t) for n, t in raw["triggers"].items()]
    if "behavior" in raw:
        spec["advanced"] = {"horizontalPodAutoscalerConfig": {"behavior": raw["behavior"]}}
    meta: dict[str, Any] = {"name": "so", "namespace": "conformance"}
    if "createdAgo" in raw:
        meta["creationTimestamp"] = datetime.fromtimestamp(NOW - raw["createdAgo"], UTC).isoformat()
    return {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": meta, "spec": spec}


def uniform_events(raw: dict[str, Any] | None) -> list[hpa.ScaleEvent]:
    """``generateEventsUniformDistribution``: each event in the middle of its segment of the last ``spread`` seconds."""
    if not raw:
        return []
    changes, spread = raw["changes"], raw["spread"]
    segment = spread / len(changes)
    return [hpa.ScaleEvent(c, NOW - (spread - segment * (i + 1) + segment / 2)) for i, c in enumerate(changes)]


def state_from(raw: dict[str, Any] | None) -> ScalerState:
    raw = raw or {}
    state = ScalerState(created_at=NOW - raw.get("seenAgo", 3600))
    if "lastActiveAgo" in raw:
        state.last_active = NOW - raw["lastActiveAgo"]
    state.failures = dict(raw.get("failures") or {})
    if "recommendations" in raw:
        state.hpa.initialized = True
        state.hpa.recommendations = [(NOW - ago, r) for r, ago in raw["recommendations"]]
    state.hpa.up_events = uniform_events(raw.get("scaleUpEvents"))
    state.hpa.down_events = uniform_events(raw.get("scaleDownEvents"))
    return state


def reading(name: str, value: Any) -> Reading:
    if isinstance(value, str) and value.startswith("error"):
        return Reading(name, None, value)
    return Reading(name, float(value))


def run_object(case: dict[str, Any]) -> None:
    spec = parse_scaled_object(scaled_object(case["scaledObject"]))
    state = state_from(case.get("state"))
    current = case["polls"][0]["current"]
    for i, poll in enumerate(case["polls"]):
        current = poll.get("current", current)
        now = NOW + poll.get("at", 0)
        readings = [reading(n, v) for n, v in poll["metrics"].items()]
        decision = decide(spec, current, readings, state, now)
        want = poll["expect"]
        where = f"poll {i} (at {poll.get('at', 0)}s, current {current})"
        assert decision.replicas == want["replicas"], f"{where}: {decision.reason}"
        if "active" in want:
            assert decision.active == want["active"], where
        if "metrics" in want:
            got = {m.trigger.name: m.value for m in decision.metrics}
            assert got == want["metrics"], where
        if "failures" in want:
            assert state.failures == want["failures"], where
        if "lastActiveAgo" in want:
            ago = None if state.last_active is None else now - state.last_active
            assert ago == want["lastActiveAgo"], where
        record_scale(spec, state, decision, current, now)
        current = decision.replicas


def behavior_of(raw: dict[str, Any] | None) -> hpa.Behavior | None:
    if raw is None:
        return None
    doc = scaled_object({"triggers": {"q": {"target": 1}}, "behavior": raw})
    return parse_scaled_object(doc).behavior


def run_rate(case: dict[str, Any]) -> None:
    memory = hpa.HpaMemory(up_events=uniform_events(case.get("scaleUpEvents")))
    memory.down_events = uniform_events(case.get("scaleDownEvents"))
    behavior = behavior_of(case.get("behavior"))
    cur, want, low, high = case["current"], case["desired"], case["min"], case["max"]
    if behavior is None:
        got = hpa.limit_legacy(cur, want, low, high)
    else:
        got = hpa.limit_with_behavior(memory, behavior, cur, want, low, high, NOW)
    assert got == (expected(case)["replicas"], expected(case)["condition"])


def run_stabilize(case: dict[str, Any]) -> None:
    memory = hpa.HpaMemory([(NOW - ago, r) for r, ago in case["recommendations"]], initialized=True)
    if case.get("legacy"):
        got = hpa.stabilize_legacy(memory, case["desired"], NOW)
    else:
        rules = hpa.Behavior(
            hpa.Rules(case.get("upWindow", 0), hpa.DEFAULT_SCALE_UP.policies),
            hpa.Rules(case.get("downWindow", 0), hpa.DEFAULT_SCALE_DOWN.policies),
        )
        got = hpa.stabilize_with_behavior(memory, rules, case["desired"], case["current"], NOW)
    want = expected(case)
    assert got == want["replicas"]
    if "recommendations" in want:
        assert [r for _, r in memory.recommendations] == want["recommendations"]
    if "logLength" in want:
        assert len(memory.recommendations) == want["logLength"]


def run_events(case: dict[str, Any]) -> None:
    behavior = None
    for direction in ("up", "down"):
        events = [hpa.ScaleEvent(c, NOW - ago) for c, ago in case["previous"]]
        memory = hpa.HpaMemory(up_events=events) if direction == "up" else hpa.HpaMemory(down_events=events)
        if case.get("rules") is not None:
            key = "scaleUp" if direction == "up" else "scaleDown"
            behavior = behavior_of({key: case["rules"]})
        assert hpa.changed_in_period(events, 60, NOW) == expected(case)["changeIn60s"], direction
        change = case["replicaChange"] if direction == "up" else -case["replicaChange"]
        hpa.store_scale_event(memory, behavior, 10, 10 + change, NOW)
        stored = memory.up_events if direction == "up" else memory.down_events
        assert [[e.change, e.outdated] for e in stored] == expected(case)["stored"], direction


class StubClient:
    """A boto3 client answering what the upstream mock answers, recording the request."""

    def __init__(self, response: dict[str, Any]) -> None:
        self.response = response
        self.calls: list[dict[str, Any]] = []

    def _answer(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        if "error" in self.response:
            raise RuntimeError(self.response["error"])
        return self.response

    get_queue_attributes = _answer
    get_metric_data = _answer


def run_scaler(case: dict[str, Any]) -> None:
    client = StubClient(case["response"])
    now = datetime.fromisoformat(case["now"]).timestamp() if "now" in case else NOW
    reader = AwsTriggerMetrics(lambda service, region: client, now=lambda: now)
    spec = parse_scaled_object(scaled_object({"triggers": {"t": case["trigger"]}}))
    want = expected(case)
    if want.get("error"):
        with pytest.raises(Exception):  # noqa: B017 - any error: upstream asserts only that one occurs
            reader.read(spec.triggers[0])
        return
    value = reader.read(spec.triggers[0])
    if "value" in want:
        assert value == want["value"]
    if "window" in want:
        call = client.calls[0]
        got = [call["StartTime"].isoformat(), call["EndTime"].isoformat()]
        assert got == want["window"]
    if "attributeNames" in want:
        assert client.calls[0]["AttributeNames"] == want["attributeNames"]


RUNNERS = {
    "object": run_object,
    "rate": run_rate,
    "stabilize": run_stabilize,
    "events": run_events,
    "scaler": run_scaler,
}


def test_every_case_names_its_source_and_arithmetic() -> None:
    assert len(CASES) >= 80
    for case in CASES:
        assert case.get("source") and case.get("arithmetic"), case["id"]
        assert case["kind"] in RUNNERS, case["id"]
        if "deliberateDifference" in case:
            assert case.get("upstream") is not None, f"{case['id']}: record upstream's value too"
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids)), "case ids are unique"


@pytest.mark.parametrize("case", CASES, ids=[f"{c['_file']}::{c['id']}" for c in CASES])
def test_case(case: dict[str, Any]) -> None:
    RUNNERS[case["kind"]](case)
