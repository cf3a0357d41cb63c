"""The autoscaler's CloudWatch metrics, named after Karpenter's so that users find the charts they already know.

A small facade over Powertools Metrics: callers add datapoints with per-datapoint dimensions (a NodePool, an instance group,
a reason); ``flush`` groups them by dimension set and writes one Embedded Metric Format document per group with Powertools'
CloudWatch EMF provider (validation of names, units and resolutions included). Every datapoint also carries ``ClusterName``
(the EKS cluster's name, as Container Insights does), so an alarm can watch either source with the same dimensions.

Two sinks: ``emf`` (Lambda: the JSON goes to stdout and CloudWatch Logs turns it into metrics, no API call on the hot path)
and ``api`` (PutMetricData through boto3: the sandbox and the tests, where no log agent extracts EMF and the alarms are
evaluated on what moto's CloudWatch holds).
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from aws_lambda_powertools.metrics.exceptions import SchemaValidationError
from aws_lambda_powertools.metrics.provider.base import BaseProvider
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

DEFAULT_NAMESPACE = "HyperPodAutoscaler"

Unit = Literal["Count", "Seconds", "Milliseconds", "Percent", "None"]
Sink = Literal["emf", "api"]


@dataclass
class _Point:
    name: str
    value: float
    unit: str
    high_resolution: bool
    dimensions: tuple[tuple[str, str], ...]
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))


class AutoscalerMetrics(BaseProvider):
    """The ``MetricsPort`` (``ports.metrics``, where the metric names are). Collects datapoints during an invocation;
    ``flush`` publishes them. A Powertools metrics provider: a handler's ``@metrics.log_metrics`` flushes it at the end
    of every invocation, returned or raised (``entrypoints.HandlerMetrics``).

    Thread-safe: the reconcile loop records events from a small thread pool."""

    def __init__(
        self,
        cluster_name: str,
        namespace: str = DEFAULT_NAMESPACE,
        sink: Sink = "emf",
        cloudwatch: Any = None,
        out: TextIO | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        if sink not in ("emf", "api"):
            raise ValueError(f"AutoscalerMetrics: sink {sink!r} is not 'emf' or 'api' (METRICS_SINK)")
        if sink == "api" and cloudwatch is None:
            raise ValueError("AutoscalerMetrics: the 'api' sink needs a boto3 cloudwatch client")
        self.cluster_name = cluster_name
        self.namespace = namespace
        self.sink: Sink = sink
        self._cloudwatch = cloudwatch
        self._out = out
        self._now = now or (lambda: datetime.now(UTC))
        self._points: list[_Point] = []
        self._lock = threading.Lock()

    def add(
        self,
        name: str,
        value: float,
        unit: Unit = "Count",
        dimensions: Mapping[str, str] | None = None,
        high_resolution: bool = False,
    ) -> None:
        dims = tuple(
            sorted({"ClusterName": self.cluster_name, **{k: str(v) for k, v in (dimensions or {}).items()}}.items())
        )
        point = _Point(name, float(value), unit, high_resolution, dims, self._now())
        with self._lock:
            self._points.append(point)

    def count(self, name: str, value: float = 1, **dimensions: str) -> None:
        self.add(name, value, "Count", dimensions)

    def gauge(self, name: str, value: float, **dimensions: str) -> None:
        self.add(name, value, "Count", dimensions)

    def gauge_high_resolution(self, name: str, value: float, **dimensions: str) -> None:
        """A 1-second-resolution gauge (an alarm may evaluate it every 10 s)."""
        self.add(name, value, "Count", dimensions, high_resolution=True)

    def seconds(self, name: str, value: float, **dimensions: str) -> None:
        self.add(name, value, "Seconds", dimensions)

    # --- Powertools' provider interface (``aws_lambda_powertools.metrics.provider.base.BaseProvider``) ---------------

    def add_metric(self, name: str, unit: Unit, value: float, resolution: int = 60, **dimensions: str) -> None:
        self.add(name, value, unit, dimensions, high_resolution=resolution == 1)

    def serialize_metric_set(self) -> list[dict[str, Any]]:
        """The EMF documents of what is recorded and not yet flushed."""
        with self._lock:
            points = list(self._points)
        return self._emf_documents(points) if points else []

    def flush_metrics(self, raise_on_empty_metrics: bool = False) -> None:
        if not self.flush() and raise_on_empty_metrics:
            raise SchemaValidationError("Must contain at least one metric.")

    def clear_metrics(self) -> None:
        with self._lock:
            self._points = []

    def add_cold_start_metric(self, context: Any) -> None:
        self.count("ColdStart", 1, function_name=str(getattr(context, "function_name", "")))

    @property
    def pending(self) -> list[tuple[str, float, dict[str, str]]]:
        """(name, value, dimensions) not yet flushed; for tests and the report."""
        with self._lock:
            return [(p.name, p.value, dict(p.dimensions)) for p in self._points]

    def flush(self) -> list[dict[str, Any]]:
        """Publish and clear. Returns the EMF documents (also in ``api`` mode, where they are what was sent)."""
        with self._lock:
            points, self._points = self._points, []
        if not points:
            return []
        documents = self._emf_documents(points)
        if self.sink == "emf":
            out = self._out or sys.stdout
            for doc in documents:
                out.write(json.dumps(doc, separators=(",", ":")) + "\n")
            out.flush()
        else:
            self._put_metric_data(points)
        return documents

    def _emf_documents(self, points: list[_Point]) -> list[dict[str, Any]]:
        groups: dict[tuple[tuple[str, str], ...], list[_Point]] = {}
        for point in points:
            groups.setdefault(point.dimensions, []).append(point)
        documents = []
        for dims, group in groups.items():
            provider = AmazonCloudWatchEMFProvider(namespace=self.namespace, default_dimensions=dict(dims))
            provider.service = None  # type: ignore[assignment]  # no implicit "service" dimension: alarms match on ClusterName (+ their own) only
            for point in group:
                provider.add_metric(
                    name=point.name, unit=point.unit, value=point.value, resolution=1 if point.high_resolution else 60
                )
            documents.append(dict(provider.serialize_metric_set()))
        return documents

    def _put_metric_data(self, points: list[_Point]) -> None:
        data = [
            {
                "MetricName": p.name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in p.dimensions],
                "Timestamp": p.timestamp,
                "Value": p.value,
                "Unit": p.unit,
                "StorageResolution": 1 if p.high_resolution else 60,
            }
            for p in points
        ]
        for start in range(0, len(data), 500):
            self._cloudwatch.put_metric_data(Namespace=self.namespace, MetricData=data[start : start + 500])
