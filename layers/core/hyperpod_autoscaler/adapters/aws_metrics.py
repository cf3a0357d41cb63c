"""Reading a ScaledObject trigger's metric the way KEDA's scalers do: ``aws-sqs-queue`` from the queue's attributes,
``aws-cloudwatch`` from GetMetricData (newest datapoint of the collection window)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ..domain.podscaling import TriggerSpec, duration_seconds


def _flag(meta: dict[str, str] | Any, key: str, default: bool) -> bool:
    raw = meta.get(key)
    return default if raw is None else str(raw).strip().lower() == "true"


class AwsTriggerMetrics:
    """``client_for(service, region)`` gives a boto3 client (``runtime.regional_client``): a trigger's ``awsRegion``
    picks the region, as in KEDA."""

    def __init__(self, client_for: Callable[[str, str | None], Any], now: Callable[[], float] = time.time) -> None:
        self._client_for = client_for
        self._now = now

    def read(self, trigger: TriggerSpec) -> float:
        if trigger.type == "aws-sqs-queue":
            return self._sqs(trigger)
        if trigger.type == "aws-cloudwatch":
            return self._cloudwatch(trigger)
        raise ValueError(f"no reader for trigger type {trigger.type}")

    def _sqs(self, t: TriggerSpec) -> float:
        meta = t.metadata
        sqs = self._client_for("sqs", meta.get("awsRegion"))
        names = ["ApproximateNumberOfMessages"]
        if _flag(meta, "scaleOnInFlight", True):
            names.append("ApproximateNumberOfMessagesNotVisible")
        if _flag(meta, "scaleOnDelayed", False):
            names.append("ApproximateNumberOfMessagesDelayed")
        attrs = sqs.get_queue_attributes(QueueUrl=meta["queueURL"], AttributeNames=names).get("Attributes") or {}
        value = 0.0
        for name in names:  # KEDA's getAwsSqsQueueLength: a requested attribute missing is an error, not 0
            if name not in attrs:
                raise ValueError(f"trigger {t.name}: attribute {name} not found in the GetQueueAttributes response")
            value += int(attrs[name])  # strconv.ParseInt: "1.5" or "x" is an error
        return value

    def _cloudwatch(self, t: TriggerSpec) -> float:
        meta = t.metadata
        cw = self._client_for("cloudwatch", meta.get("awsRegion"))
        period = int(float(meta.get("metricStatPeriod", "300")))
        window = duration_seconds(meta.get("metricCollectionTime"), 300.0)
        offset = duration_seconds(meta.get("metricEndTimeOffset"), 0.0)
        # KEDA's computeQueryWindow: the end is truncated to a whole period, the start a collection time before it
        end = (self._now() - offset) // period * period
        start = end - window
        query: dict[str, Any] = {"Id": "m", "ReturnData": True}
        if meta.get("expression"):
            query["Expression"] = meta["expression"]
            query["Period"] = period
        else:
            names = [n for n in str(meta.get("dimensionName", "")).split(";") if n]
            values = [v for v in str(meta.get("dimensionValue", "")).split(";") if v]
            if len(names) != len(values):
                raise ValueError(f"trigger {t.name}: dimensionName and dimensionValue have different lengths")
            query["MetricStat"] = {
                "Metric": {
                    "Namespace": meta["namespace"],
                    "MetricName": meta["metricName"],
                    "Dimensions": [{"Name": n, "Value": v} for n, v in zip(names, values, strict=True)],
                },
                "Period": period,
                "Stat": meta.get("metricStat") or meta.get("statistic") or "Average",
            }
        out = cw.get_metric_data(
            MetricDataQueries=[query],
            StartTime=datetime.fromtimestamp(start, UTC),
            EndTime=datetime.fromtimestamp(end, UTC),
            ScanBy="TimestampDescending",
        )
        results = out.get("MetricDataResults") or []
        values_out = results[0].get("Values") if results else None
        if values_out:
            return float(values_out[0])
        if results and not _flag(meta, "ignoreNullValues", True):
            raise ValueError(f"trigger {t.name}: empty metric data received, ignoreNullValues is false")
        # no datapoint in the window: KEDA answers minMetricValue (0 unless set)
        return float(meta.get("minMetricValue", "0") or 0)
