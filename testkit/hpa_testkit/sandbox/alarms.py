"""CloudWatch alarm evaluation for the sandbox (moto stores metric data but never evaluates alarms).

Each alarm of the template is evaluated on the metric data published to moto's CloudWatch, with the alarm's Period,
EvaluationPeriods, DatapointsToAlarm, Statistic, ComparisonOperator, Threshold and TreatMissingData. A transition produces
the "CloudWatch Alarm State Change" event exactly as AWS sends it to EventBridge (only on transitions)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

COMPARATORS: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}


@dataclass
class Alarm:
    name: str
    arn: str
    namespace: str
    metric_name: str
    dimensions: dict[str, str]
    statistic: str
    period: int
    evaluation_periods: int
    datapoints_to_alarm: int
    comparison: str
    threshold: float
    treat_missing: str = "missing"
    state: str = "INSUFFICIENT_DATA"
    history: list[tuple[datetime, str]] = field(default_factory=list)

    @classmethod
    def from_properties(cls, props: dict[str, Any], region: str, account: str) -> Alarm:
        name = str(props["AlarmName"])
        evaluation = int(props.get("EvaluationPeriods", 1))
        return cls(
            name=name,
            arn=f"arn:aws:cloudwatch:{region}:{account}:alarm:{name}",
            namespace=str(props["Namespace"]),
            metric_name=str(props["MetricName"]),
            dimensions={str(d["Name"]): str(d["Value"]) for d in props.get("Dimensions") or []},
            statistic=str(props.get("Statistic") or "Maximum"),
            period=int(props.get("Period", 60)),
            evaluation_periods=evaluation,
            datapoints_to_alarm=int(props.get("DatapointsToAlarm", evaluation)),
            comparison=str(props["ComparisonOperator"]),
            threshold=float(props["Threshold"]),
            treat_missing=str(props.get("TreatMissingData", "missing")),
        )


def aggregate(values: Sequence[float], statistic: str) -> float:
    if statistic == "Sum":
        return float(sum(values))
    if statistic == "Average":
        return float(sum(values)) / len(values)
    if statistic == "Minimum":
        return float(min(values))
    if statistic == "SampleCount":
        return float(len(values))
    return float(max(values))


def evaluation_interval(period: int) -> int:
    """How often CloudWatch evaluates an alarm of this period, in seconds: every 10 seconds for a 10 or 30 second
    (high-resolution) period, else every minute ("Using Amazon CloudWatch alarms", AlarmThatSendsEmail.html)."""
    return 10 if period < 60 else 60


EXTRA_RANGE_PERIODS = 2
"""How many periods beyond EvaluationPeriods an evaluation looks back for data points that arrived late. CloudWatch
"attempts to retrieve a higher number of data points than the number specified as Evaluation Periods" (the evaluation
range, "Configuring how CloudWatch alarms treat missing data", alarms-and-missing-data.html) without saying how many
more for a given period: two is this model's assumption."""


def evaluation_range(alarm: Alarm) -> int:
    """The periods one evaluation retrieves (the evaluation range)."""
    return alarm.evaluation_periods + EXTRA_RANGE_PERIODS


def evaluate(
    alarm: Alarm, datapoints: Sequence[tuple[datetime, float]], now: datetime, range_periods: int | None = None
) -> str:
    """The alarm state at ``now`` from raw datapoints (timestamp, value) of its metric: M of the last N periods. With
    ``range_periods`` (the evaluation range, at least N), the N most recent periods that have data within that range
    are evaluated, as CloudWatch does when the latest data points have not arrived yet; the periods still missing are
    then treated as TreatMissingData says."""
    periods: list[float | None] = []
    end = now
    for _ in range(max(alarm.evaluation_periods, range_periods or 0)):
        start = end - timedelta(seconds=alarm.period)
        values = [v for t, v in datapoints if start <= t < end]
        periods.append(aggregate(values, alarm.statistic) if values else None)
        end = start
    present = [p for p in periods if p is not None][: alarm.evaluation_periods]
    missing = alarm.evaluation_periods - len(present)
    compare = COMPARATORS[alarm.comparison]
    if not present:
        return {"breaching": "ALARM", "notBreaching": "OK"}.get(alarm.treat_missing, "INSUFFICIENT_DATA")
    breaching = sum(1 for p in present if compare(p, alarm.threshold))
    if alarm.treat_missing == "breaching":
        breaching += missing
    if breaching >= alarm.datapoints_to_alarm:
        return "ALARM"
    return "OK"


def state_change_event(alarm: Alarm, old: str, new: str, now: datetime, region: str, account: str) -> dict[str, Any]:
    """The EventBridge event AWS sends on an alarm transition."""
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    reason = (
        f"Threshold Crossed: datapoints were {'' if new == 'ALARM' else 'not '}{alarm.comparison} {alarm.threshold}"
    )
    return {
        "version": "0",
        "id": f"{alarm.name}-{int(now.timestamp())}-{new}",
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": account,
        "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [alarm.arn],
        "detail": {
            "alarmName": alarm.name,
            "state": {
                "value": new,
                "reason": reason,
                "reasonData": json.dumps({"threshold": alarm.threshold}),
                "timestamp": stamp,
            },
            "previousState": {"value": old, "reason": "", "timestamp": stamp},
            "configuration": {
                "metrics": [
                    {
                        "id": "m1",
                        "metricStat": {
                            "metric": {
                                "namespace": alarm.namespace,
                                "name": alarm.metric_name,
                                "dimensions": alarm.dimensions,
                            },
                            "period": alarm.period,
                            "stat": alarm.statistic,
                        },
                        "returnData": True,
                    }
                ]
            },
        },
    }


def ceil_to_period(now: datetime, period: int) -> datetime:
    epoch = now.timestamp()
    return datetime.fromtimestamp(math.floor(epoch / period) * period, tz=now.tzinfo)
