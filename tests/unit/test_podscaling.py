"""ScaledObject parsing and the behaviours issue 13 fixed; the upstream-derived cases live in tests/conformance/podscaling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hyperpod_autoscaler.adapters.aws_metrics import AwsTriggerMetrics
from hyperpod_autoscaler.domain.errors import InvalidObject
from hyperpod_autoscaler.domain.hpa import DEFAULT_SCALE_DOWN, DEFAULT_SCALE_UP, HpaMemory, ScaleEvent
from hyperpod_autoscaler.domain.podscaling import Reading, ScalerState, decide, parse_scaled_object

ROOT = Path(__file__).resolve().parents[2]


def so(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "scaleTargetRef": {"name": "web"},
        "triggers": [{"type": "aws-sqs-queue", "name": "q", "metadata": {"queueURL": "http://q", "queueLength": "5"}}],
    }
    base.update(spec)
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "s", "namespace": "d"},
        "spec": base,
    }


def behavior(up: dict[str, Any] | None = None, down: dict[str, Any] | None = None) -> dict[str, Any]:
    b: dict[str, Any] = {}
    if up is not None:
        b["scaleUp"] = up
    if down is not None:
        b["scaleDown"] = down
    return {"horizontalPodAutoscalerConfig": {"behavior": b}}


def q(value: float | None, name: str = "q", error: str | None = None) -> Reading:
    return Reading(name, value, error)


NOW = 10_000.0
ERR = "AccessDenied"


def test_paused_replicas() -> None:
    doc = so()
    doc["metadata"]["annotations"] = {"autoscaling.keda.sh/paused-replicas": "3"}
    assert decide(parse_scaled_object(doc), 7, [q(100)], ScalerState(), NOW).replicas == 3


def two_triggers(**spec: Any) -> dict[str, Any]:
    sqs = {"type": "aws-sqs-queue", "metadata": {"queueURL": "http://q", "queueLength": "5"}}
    return so(triggers=[{**sqs, "name": "q"}, {**sqs, "name": "f"}], **spec)


# --- issue 13: each test below failed on the code before the fix ----------------------------------------------------


def test_a_failing_trigger_keeps_keda_from_going_to_zero() -> None:
    """One trigger idle, the other failing, no fallback: KEDA does not deactivate (Ready False, TriggerError)."""
    s = parse_scaled_object(two_triggers(minReplicaCount=0, cooldownPeriod=300))
    state = ScalerState(created_at=0, last_active=NOW - 3600)
    assert decide(s, 2, [q(0), q(None, "f", ERR)], state, NOW).replicas == 2


def test_a_failing_trigger_keeps_the_hpa_from_scaling_down() -> None:
    """The valid metric proposes ceil(5/5) = 1 < 4 while another is invalid: the HPA does not scale."""
    s = parse_scaled_object(two_triggers(minReplicaCount=1))
    state = ScalerState(created_at=0)
    assert decide(s, 4, [q(5), q(None, "f", ERR)], state, NOW).replicas == 4


def test_fallback_is_one_trigger_s_metric_and_the_largest_proposal_wins() -> None:
    """f falls back to 6 replicas (metric 6 * 5 = 30), q proposes ceil(5/5) = 1: the HPA takes 6."""
    s = parse_scaled_object(two_triggers(minReplicaCount=1, fallback={"failureThreshold": 1, "replicas": 6}))
    state = ScalerState(created_at=0)
    decide(s, 3, [q(15), q(None, "f", ERR)], state, NOW - 30)
    assert decide(s, 3, [q(5), q(None, "f", ERR)], state, NOW).replicas == 6


def test_fallback_goes_through_the_hpa_stabilization() -> None:
    """No drop from 10 to 2 in one step: the 5-minute window still holds the 10 recommended a minute ago."""
    s = parse_scaled_object(so(minReplicaCount=1, maxReplicaCount=20, fallback={"failureThreshold": 1, "replicas": 2}))
    state = ScalerState(created_at=0)
    assert decide(s, 10, [q(50)], state, NOW - 60).replicas == 10
    assert decide(s, 10, [q(None, error=ERR)], state, NOW - 30).replicas == 10
    assert decide(s, 10, [q(None, error=ERR)], state, NOW).replicas == 10, "fallback 2, but stabilized"


def test_fallback_starts_only_when_failures_exceed_the_threshold() -> None:
    s = parse_scaled_object(so(maxReplicaCount=20, fallback={"failureThreshold": 2, "replicas": 4}))
    state = ScalerState(created_at=0)
    assert decide(s, 2, [q(None, error=ERR)], state, NOW).replicas == 2
    assert decide(s, 2, [q(None, error=ERR)], state, NOW + 30).replicas == 2, "2 failures are not > 2"
    assert decide(s, 2, [q(None, error=ERR)], state, NOW + 60).replicas == 4


def test_failure_threshold_zero_is_valid() -> None:
    s = parse_scaled_object(so(maxReplicaCount=20, fallback={"failureThreshold": 0, "replicas": 4}))
    assert decide(s, 2, [q(None, error=ERR)], ScalerState(created_at=0), NOW).replicas == 4


def test_fallback_refreshes_the_last_active_time() -> None:
    s = parse_scaled_object(so(minReplicaCount=0, fallback={"failureThreshold": 0, "replicas": 2}))
    state = ScalerState(created_at=0, last_active=NOW - 3600)
    decide(s, 2, [q(None, error=ERR)], state, NOW)
    assert state.last_active == NOW


def test_percent_scale_down_truncates() -> None:
    """Percent 50 from 5: int(5 * 0.5) = 2, as Go's int32(float64), not ceil(2.5) = 3."""
    down = {"stabilizationWindowSeconds": 0, "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}]}
    s = parse_scaled_object(so(minReplicaCount=1, advanced=behavior(down=down)))
    assert decide(s, 5, [q(0)], ScalerState(created_at=0), NOW).replicas == 2


def test_cooldown_does_not_delay_zero_for_an_object_never_active() -> None:
    s = parse_scaled_object(so(minReplicaCount=0, cooldownPeriod=300))
    assert decide(s, 1, [q(0)], ScalerState(created_at=NOW - 10), NOW).replicas == 0


def test_without_behavior_scale_up_is_at_most_double_or_four() -> None:
    """KEDA creates its HPA without a behavior: the HPA's legacy limit max(2 * 1, 4) = 4, not 1 + 4 = 5."""
    s = parse_scaled_object(so(maxReplicaCount=20))
    assert decide(s, 1, [q(23)], ScalerState(created_at=0), NOW).replicas == 4


class _Client:
    def __init__(self, response: dict[str, Any]) -> None:
        self.response = response

    def get_queue_attributes(self, **_: Any) -> dict[str, Any]:
        return self.response

    def get_metric_data(self, **_: Any) -> dict[str, Any]:
        return self.response


def test_sqs_attribute_missing_from_the_response_is_an_error() -> None:
    s = parse_scaled_object(so())
    reader = AwsTriggerMetrics(lambda service, region: _Client({"Attributes": {"ApproximateNumberOfMessages": "3"}}))
    with pytest.raises(ValueError, match="ApproximateNumberOfMessagesNotVisible"):
        reader.read(s.triggers[0])


def test_cloudwatch_reads_integer_seconds_and_honours_ignore_null_values() -> None:
    meta = {"namespace": "N", "metricName": "M", "targetMetricValue": "1", "metricCollectionTime": "60"}
    s = parse_scaled_object(so(triggers=[{"type": "aws-cloudwatch", "metadata": meta}]))
    reader = AwsTriggerMetrics(lambda service, region: _Client({"MetricDataResults": [{"Values": [7.0]}]}))
    assert reader.read(s.triggers[0]) == 7.0
    meta = {**meta, "ignoreNullValues": "false"}
    s = parse_scaled_object(so(triggers=[{"type": "aws-cloudwatch", "metadata": meta}]))
    reader = AwsTriggerMetrics(lambda service, region: _Client({"MetricDataResults": [{"Values": []}]}))
    with pytest.raises(ValueError, match="ignoreNullValues"):
        reader.read(s.triggers[0])


def test_seed_scaled_object_reads_unmodified() -> None:
    docs = list(yaml.safe_load_all((ROOT / "examples" / "seed" / "scaledobject.yaml").read_text()))
    s = parse_scaled_object(docs[0])
    assert (s.name, s.target_name, s.min_replicas, s.max_replicas) == (
        "nd-deepseek-llm-scaler",
        "nd-deepseek-llm-r1-distill-qwen-1-5b",
        1,
        3,
    )
    (t,) = s.triggers
    assert t.type == "aws-cloudwatch" and t.target == 3.0 and t.metadata["statistic"] == "Sum"
    assert s.behavior is None, "no behavior: KEDA's HPA takes the legacy normalization"
    state = ScalerState(created_at=0)
    assert decide(s, 1, [Reading(t.name, 8.0)], state, NOW).replicas == 3  # ceil(8/3) = 3 = max


def test_a_given_behavior_gets_the_api_server_defaults() -> None:
    s = parse_scaled_object(so(advanced=behavior(up={"stabilizationWindowSeconds": 60})))
    assert s.behavior is not None
    assert s.behavior.scale_up.policies == DEFAULT_SCALE_UP.policies
    assert s.behavior.scale_up.stabilization_window_seconds == 60
    assert s.behavior.scale_down == DEFAULT_SCALE_DOWN


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"triggers": []}, "spec.triggers"),
        ({"triggers": [{"type": "kafka", "metadata": {}}]}, "spec.triggers[0].type"),
        (
            {"triggers": [{"type": "aws-sqs-queue", "metadata": {"queueURL": "u", "queueLength": "many"}}]},
            "spec.triggers[0].metadata.queueLength",
        ),
        ({"triggers": [{"type": "aws-sqs-queue", "metadata": {}}]}, "spec.triggers[0].metadata.queueURL"),
        (
            {"triggers": [{"type": "aws-cloudwatch", "metadata": {"namespace": "N", "metricName": "M"}}]},
            "spec.triggers[0].metadata.threshold",
        ),
        ({"minReplicaCount": 5, "maxReplicaCount": 2}, "spec.maxReplicaCount"),
        ({"scaleTargetRef": {}}, "spec.scaleTargetRef.name"),
        ({"fallback": {"failureThreshold": -1, "replicas": 1}}, "spec.fallback.failureThreshold"),
        (
            {"advanced": behavior(up={"policies": [{"type": "Pods", "value": 1, "periodSeconds": 4000}]})},
            "periodSeconds",
        ),
    ],
)
def test_bad_scaled_objects_name_the_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidObject) as err:
        parse_scaled_object(so(**spec))
    assert field in str(err.value) and "ScaledObject d/s" in str(err.value)


def test_state_round_trips() -> None:
    memory = HpaMemory([(3.0, 4)], [ScaleEvent(2, 5.0)], [ScaleEvent(1, 6.0, True)], initialized=True)
    state = ScalerState(created_at=1.0, last_active=2.0, failures={"q": 1}, hpa=memory, last_poll=7.0)
    assert ScalerState.from_dict(state.to_dict()) == state
