"""Issue 15, honest figures: the sandbox's pending-pods signal reaches the alarm as it does in AWS. Container Insights
samples every collection interval (the CloudWatch agent's metrics_collection_interval, 60 s by default), the data point
is readable in CloudWatch the delivery lag later, and an alarm with a 60 s period is evaluated once a minute (a 10 or
30 s period: every 10 s) on the last complete period, [E-60, E) at minute E, or, when the latest data points have not
arrived, on the most recent ones in its evaluation range. So a pod pending from t=10 is first sampled at t=60; that
sample belongs to the period [60, 120), complete at 120, and readable at 60 + lag: the alarm goes to ALARM at the first
once-a-minute evaluation at or after both."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hpa_testkit.sandbox.runner import Sandbox, SandboxOptions, to_datetime
from hpa_testkit.sandbox.scenario import Scenario

PENDING_FROM = 10  # the Job's pod is created (and pending) at t=10


def first_alarm(cloudwatch: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    scenario = Scenario.model_validate(
        {
            "name": "cloudwatch-model",
            "duration": 300,
            "provisioningDelay": 900,  # the pod stays pending for the whole run: the alarm has something to see
            "jobs": [{"at": PENDING_FROM, "name": "train", "count": 1, "cpu": "1", "memory": "1Gi", "gpus": 1}],
            "cloudWatch": cloudwatch,
        }
    )
    with Sandbox(scenario, SandboxOptions(speed=100_000, live=False)) as sandbox:
        summary = sandbox.run()
        alarm = next(a for a in sandbox.alarms.values() if a.name.endswith("pending-pods"))
        start = sandbox.clock.start
        transitions = [(stamp.timestamp() - start, state) for stamp, state in alarm.history]
    return next(t for t, state in transitions if state == "ALARM"), summary


@pytest.mark.parametrize("lag", [0, 90, 150])
def test_the_alarm_sees_pending_pods_after_collection_and_delivery(lag: float) -> None:
    at, summary = first_alarm({"collectionInterval": 60, "deliveryLag": lag, "alarmPeriod": 60})
    sampled = math.ceil(PENDING_FROM / 60) * 60  # the first collection after the pod became pending
    period_end = sampled + 60
    evaluated = math.ceil(max(period_end, sampled + lag) / 60) * 60  # the first evaluation after both
    assert at == evaluated, (lag, at)
    assert summary["cloudWatchModel"] == {
        "pendingPodsMetric": "pod_status_pending",
        "collectionIntervalSeconds": 60,
        "deliveryLagSeconds": lag,
        "queueDeliveryLagSeconds": 60,
        "alarmPeriodSeconds": 60,
    }


def test_the_functions_high_resolution_metric_is_stamped_on_the_cluster_clock() -> None:
    """``PendingPods`` is what reconcile counts each time it runs (PutMetricData in the sandbox, EMF in AWS). Its data
    points carry the runtime's clock, so in the sandbox they land in cluster time, where the alarm looks (they used to
    carry wall time: an alarm on PendingPods never saw them). The pod is pending from t=10; the safety-net schedule
    (rate(1 minute), from t=0) runs reconcile at t=60, which counts it."""
    scenario = Scenario.model_validate(
        {
            "name": "pending-pods-metric",
            "duration": 180,
            "provisioningDelay": 900,
            "jobs": [{"at": PENDING_FROM, "name": "train", "count": 1, "cpu": "1", "memory": "1Gi", "gpus": 1}],
            "cloudWatch": {"pendingPodsMetric": "PendingPods", "alarmPeriod": 10},
        }
    )
    with Sandbox(scenario, SandboxOptions(speed=100_000, live=False)) as sandbox:
        sandbox.run()
        stats = sandbox._client("cloudwatch").get_metric_statistics(
            Namespace="HyperPodAutoscaler",
            MetricName="PendingPods",
            Dimensions=[{"Name": "ClusterName", "Value": "hyperpod-eks-demo"}],
            StartTime=to_datetime(sandbox.clock.start),
            EndTime=to_datetime(sandbox.clock.now() + 60),
            Period=60,
            Statistics=["Maximum"],
        )
        points = {p["Timestamp"].timestamp() - sandbox.clock.start: p["Maximum"] for p in stats["Datapoints"]}
        alarm = next(a for a in sandbox.alarms.values() if a.name.endswith("pending-pods"))
        states = [state for _, state in alarm.history]
    assert points.get(0) == 0 and points.get(60) == 1, points
    assert alarm.metric_name == "PendingPods" and alarm.period == 10
    assert "ALARM" in states, states


@pytest.mark.parametrize("lag", [0, 150])
def test_the_queue_alarm_sees_the_depth_after_sqs_pushes_it_and_it_is_delivered(lag: float) -> None:
    """SQS pushes a queue's depth to CloudWatch at one-minute intervals (SQS developer guide, "Available CloudWatch
    metrics"); the point is readable ``queueDeliveryLag`` later. Messages arrive from t=10 and nothing consumes them:
    the depth is first sampled at t=60, and the pod tier's queue alarm (60 s period, evaluated every minute) goes to
    ALARM at the first evaluation at or after both the end of that sample's period and its arrival."""
    scenario = Scenario.model_validate(
        {
            "name": "queue-model",
            "duration": 360,
            "parameters": {"ScalerQueueName": "q"},
            "traffic": [
                {
                    "source": "constant",
                    "as": "sqs",
                    "queue": "q",
                    "deployment": "nobody",
                    "start": PENDING_FROM,
                    "end": 360,
                    "rate": 1.0,
                    "perReplicaPerSecond": 1.0,
                }
            ],
            "cloudWatch": {"queueDeliveryLag": lag},
        }
    )
    with Sandbox(scenario, SandboxOptions(speed=100_000, live=False)) as sandbox:
        summary = sandbox.run()
        alarm = next(a for a in sandbox.alarms.values() if a.name.endswith("pod-tier-sqs-q"))
        start = sandbox.clock.start
        at = next(stamp.timestamp() - start for stamp, state in alarm.history if state == "ALARM")
    sampled = 60
    evaluated = math.ceil(max(sampled + 60, sampled + lag) / 60) * 60
    assert at == evaluated, (lag, at)
    assert summary["cloudWatchModel"]["queueDeliveryLagSeconds"] == lag
