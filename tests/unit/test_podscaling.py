"""The pod-scaling math against KEDA's and the HPA's documented rules (shared/reference/keda-hpa.md), table-driven."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hyperpod_autoscaler.domain.errors import InvalidObject
from hyperpod_autoscaler.domain.podscaling import (
    DEFAULT_SCALE_DOWN,
    DEFAULT_SCALE_UP,
    Reading,
    ScalerState,
    decide,
    parse_scaled_object,
    record_scale,
)

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

# (id, ScaledObject spec overrides, current replicas, readings, expected replicas)
ONE_POLL = [
    ("average-value: ceil(23/5)=5 (Pods 4 per 15s allows 1+4)", {"maxReplicaCount": 20}, 1, [q(23)], 5),
    ("rate-limited: 4 -> 8 (Pods +4 and Percent 100% both give 8)", {"maxReplicaCount": 20}, 4, [q(1000)], 8),
    ("within tolerance: 21/(5*4)=1.05 keeps 4", {}, 4, [q(21)], 4),
    ("just outside tolerance: 23/(5*4)=1.15 -> 5", {}, 4, [q(23)], 5),
    ("tolerance below: 18/(5*4)=0.9 keeps 4", {"minReplicaCount": 1}, 4, [q(18)], 4),
    ("clamped to maxReplicaCount", {"maxReplicaCount": 3}, 2, [q(100)], 3),
    ("activation strictly above: 0 stays at 0", {}, 0, [q(0)], 0),
    ("activation from 0 goes to max(min, 1)", {}, 0, [q(1)], 1),
    ("activation from 0 with min 2 goes to 2", {"minReplicaCount": 2}, 0, [q(50)], 2),
    (
        "activation threshold: 3 is not > 3",
        {
            "triggers": [
                {"type": "aws-sqs-queue", "name": "q", "metadata": {"queueURL": "u", "activationQueueLength": "3"}}
            ]
        },
        0,
        [q(3)],
        0,
    ),
    ("below minReplicaCount goes up to it", {"minReplicaCount": 2}, 0, [q(0)], 2),
    (
        "several triggers: the largest wins",
        {
            "maxReplicaCount": 50,
            "triggers": [
                {"type": "aws-sqs-queue", "name": "q", "metadata": {"queueURL": "u", "queueLength": "10"}},
                {
                    "type": "aws-cloudwatch",
                    "name": "alb",
                    "metadata": {
                        "namespace": "AWS/ApplicationELB",
                        "metricName": "RequestCount",
                        "targetMetricValue": "2",
                    },
                },
            ],
        },
        2,
        [q(30), q(8, "alb")],
        4,
    ),
    (
        "Value metric type: ceil(current * metric / target) = ceil(2*10/5)",
        {
            "maxReplicaCount": 20,
            "triggers": [
                {
                    "type": "aws-cloudwatch",
                    "name": "q",
                    "metricType": "Value",
                    "metadata": {"namespace": "N", "metricName": "M", "targetMetricValue": "5"},
                }
            ],
        },
        2,
        [q(10)],
        4,
    ),
    (
        "selectPolicy Min: min(2+4, 2*2) = 4",
        {"maxReplicaCount": 20, "advanced": behavior(up={"selectPolicy": "Min"})},
        2,
        [q(100)],
        4,
    ),
    ("scale-up Disabled keeps the count", {"advanced": behavior(up={"selectPolicy": "Disabled"})}, 2, [q(100)], 2),
    (
        "scale-down without window, Pods 1 per 60s: 5 -> 4",
        {
            "minReplicaCount": 1,
            "advanced": behavior(
                down={"stabilizationWindowSeconds": 0, "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]}
            ),
        },
        5,
        [q(1)],
        4,
    ),
    (
        "scale-down default: 100% per 15s to the floor when the window has no higher recommendation",
        {"minReplicaCount": 1},
        6,
        [q(0)],
        1,
    ),
    (
        "fallback not yet: one failure keeps the count",
        {"fallback": {"failureThreshold": 2, "replicas": 6}},
        2,
        [q(None, error="x")],
        2,
    ),
]


@pytest.mark.parametrize(
    ("spec", "current", "readings", "expected"), [c[1:] for c in ONE_POLL], ids=[c[0] for c in ONE_POLL]
)
def test_one_poll(spec: dict[str, Any], current: int, readings: list[Reading], expected: int) -> None:
    s = parse_scaled_object(so(**spec))
    state = ScalerState(created_at=NOW - 3600)
    assert decide(s, current, readings, state, NOW).replicas == expected


def test_paused_replicas() -> None:
    doc = so()
    doc["metadata"]["annotations"] = {"autoscaling.keda.sh/paused-replicas": "3"}
    assert decide(parse_scaled_object(doc), 7, [q(100)], ScalerState(), NOW).replicas == 3


def test_scale_up_policy_counts_what_was_added_in_the_period() -> None:
    s = parse_scaled_object(so(maxReplicaCount=50))
    state = ScalerState(created_at=0)
    record_scale(state, NOW - 5, +4)  # 1 -> 5 five seconds ago
    # period start = 5 - 4 = 1: Pods gives 1+4=5, Percent gives 2: nothing more within the 15 s period
    assert decide(s, 5, [q(200)], state, NOW).replicas == 5
    # 16 s later the period has passed
    assert decide(s, 5, [q(200)], state, NOW + 11).replicas == 10


def test_scale_down_stabilization_window_takes_the_highest_recommendation() -> None:
    s = parse_scaled_object(so(minReplicaCount=1, maxReplicaCount=20))
    state = ScalerState(created_at=0)
    assert decide(s, 8, [q(40)], state, NOW).replicas == 8  # recommendation 8
    assert decide(s, 8, [q(5)], state, NOW + 100).replicas == 8, "within the 300 s window, 8 is still recommended"
    assert decide(s, 8, [q(5)], state, NOW + 301).replicas == 1, "the window has moved past the high recommendation"


def test_scale_up_window_takes_the_lowest_recommendation() -> None:
    s = parse_scaled_object(so(maxReplicaCount=20, advanced=behavior(up={"stabilizationWindowSeconds": 60})))
    state = ScalerState(created_at=0)
    assert decide(s, 2, [q(10)], state, NOW).replicas == 2
    assert decide(s, 2, [q(40)], state, NOW + 30).replicas == 2, "the window still holds the recommendation 2"
    assert decide(s, 2, [q(40)], state, NOW + 61).replicas == 6


def test_cooldown_before_zero() -> None:
    s = parse_scaled_object(so(minReplicaCount=0, cooldownPeriod=300))
    state = ScalerState(created_at=0)
    assert decide(s, 1, [q(3)], state, NOW).replicas == 1
    assert decide(s, 1, [q(0)], state, NOW + 200).replicas == 1, "inactive, cooldown not over"
    assert decide(s, 1, [q(0)], state, NOW + 300).replicas == 0, "cooldownPeriod after the last active poll"


def test_initial_cooldown_keeps_a_new_object_up() -> None:
    s = parse_scaled_object(so(initialCooldownPeriod=600, cooldownPeriod=0))
    state = ScalerState()
    assert decide(s, 1, [q(0)], state, NOW).replicas == 1
    assert decide(s, 1, [q(0)], state, NOW + 601).replicas == 0


def test_idle_replica_count() -> None:
    s = parse_scaled_object(so(idleReplicaCount=0, minReplicaCount=2, cooldownPeriod=60))
    state = ScalerState(created_at=0)
    assert decide(s, 2, [q(5)], state, NOW).replicas == 2, "active; ceil(5/5)=1 is below minReplicaCount"
    assert decide(s, 2, [q(0)], state, NOW + 30).replicas == 2, "inactive, cooldown not over"
    assert decide(s, 2, [q(0)], state, NOW + 61).replicas == 0
    assert decide(s, 0, [q(7)], state, NOW + 62).replicas == 2, "from idle, activation goes to minReplicaCount"


def test_min_above_zero_never_reaches_zero() -> None:
    s = parse_scaled_object(so(minReplicaCount=1, cooldownPeriod=0))
    state = ScalerState(created_at=0)
    assert decide(s, 1, [q(0)], state, NOW + 10_000).replicas == 1


@pytest.mark.parametrize(
    ("behavior_", "current", "expected"),
    [
        ("static", 2, 6),
        ("currentReplicas", 2, 2),
        ("currentReplicasIfHigher", 8, 8),
        ("currentReplicasIfHigher", 2, 6),
        ("currentReplicasIfLower", 8, 6),
        ("currentReplicasIfLower", 2, 2),
    ],
)
def test_fallback_after_the_failure_threshold(behavior_: str, current: int, expected: int) -> None:
    s = parse_scaled_object(
        so(fallback={"failureThreshold": 3, "replicas": 6, "behavior": behavior_}, maxReplicaCount=20)
    )
    state = ScalerState(created_at=0)
    for i in range(2):
        assert decide(s, current, [q(None, error="AccessDenied")], state, NOW + i).replicas == current
    assert decide(s, current, [q(None, error="AccessDenied")], state, NOW + 3).replicas == expected
    decide(s, current, [q(10)], state, NOW + 4)
    assert state.failures == 0, "a good read resets the count"


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
    assert s.scale_up == DEFAULT_SCALE_UP and s.scale_down == DEFAULT_SCALE_DOWN
    state = ScalerState(created_at=0)
    assert decide(s, 1, [Reading(t.name, 8.0)], state, NOW).replicas == 3  # ceil(8/3) = 3 = max


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
        ({"fallback": {"failureThreshold": 0, "replicas": 1}}, "spec.fallback.failureThreshold"),
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
    state = ScalerState(
        created_at=1.0, last_active=2.0, failures=1, recommendations=[(3.0, 4)], scale_events=[(5.0, -1)]
    )
    assert ScalerState.from_dict(state.to_dict()) == state
