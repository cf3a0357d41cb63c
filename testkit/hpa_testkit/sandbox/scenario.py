"""Sandbox scenarios: YAML files describing workloads, traffic, jobs, faults and drills on a simulated clock.

See docs/scenarios.md for the format. Times are cluster seconds from the start of the scenario.
"""

from __future__ import annotations

import csv
import math
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from hyperpod_autoscaler.domain.errors import InvalidObject
from hyperpod_autoscaler.domain.parsing import validation_error
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Deployment(_Model):
    """A Deployment the sandbox creates (its pods are made by the controller stand-in)."""

    name: str
    namespace: str = "default"
    replicas: int = Field(default=1, ge=0)
    cpu: str = "1"
    memory: str = "1Gi"
    gpus: int = Field(default=0, ge=0)
    labels: dict[str, str] = Field(default_factory=dict)
    pdb_min_available: int | str | None = Field(default=None, alias="pdbMinAvailable")


class Traffic(_Model):
    """Requests that drive a ScaledObject: replayed from the Azure LLM trace, or at a constant rate."""

    source: Literal["azure-llm", "constant"] = "azure-llm"
    kind: Literal["sqs", "alb"] = Field(default="sqs", alias="as")
    queue: str | None = None
    load_balancer: str | None = Field(default=None, alias="loadBalancer")
    deployment: str
    namespace: str = "default"
    start: float = 0
    end: float | None = None
    rate: float = 0.0
    rate_scale: float = Field(default=1.0, gt=0, alias="rateScale")
    time_scale: float = Field(default=1.0, gt=0, alias="timeScale")
    per_replica_per_second: float = Field(default=1.0, gt=0, alias="perReplicaPerSecond")

    @model_validator(mode="after")
    def _target(self) -> Traffic:
        if self.kind == "sqs" and not self.queue:
            raise ValueError("traffic as sqs needs queue")
        if self.kind == "alb" and not self.load_balancer:
            raise ValueError("traffic as alb needs loadBalancer")
        return self


class Job(_Model):
    """A burst of GPU training Jobs: ``count`` pods that run for ``duration`` seconds once bound, with a PDB of minAvailable
    = count and do-not-disrupt when ``doNotDisrupt``."""

    at: float
    name: str
    namespace: str = "default"
    count: int = Field(default=1, ge=1)
    cpu: str = "2"
    memory: str = "8Gi"
    gpus: int = Field(default=1, ge=0)
    duration: float = Field(default=600, gt=0)
    do_not_disrupt: bool = Field(default=True, alias="doNotDisrupt")
    gang: bool = False
    """A distributed training job: its pods are a Kueue pod group (``kueue.x-k8s.io/pod-group-name`` = the Job's name,
    ``pod-group-total-count`` = ``count``), and it starts (its pods' ``duration`` counts) only once all of them run."""


FaultKind = Literal[
    "capacity-outage",
    "throttling",
    "conflicts",
    "delete-failures",
    "sagemaker-5xx",
    "kube-errors",
    "lambda-timeouts",
    "lambda-throttling",
    "node-failure",
    "execution-already-exists",
    "partial-capacity",
]


class Fault(_Model):
    """A fault from ``at`` for ``duration`` seconds (see docs/scenarios.md for each kind)."""

    at: float
    kind: FaultKind
    group: str | None = None
    duration: float = Field(default=600, gt=0)
    rate: float = Field(default=0.2, ge=0, le=1)
    codes: list[Literal[409, 410, 429, 500]] = Field(default_factory=lambda: [409, 410, 429, 500])
    """``kube-errors``: the HTTP statuses the Kubernetes API answers."""
    hang_rate: float = Field(default=0.0, ge=0, le=1, alias="hangRate")
    """``kube-errors``: the share of requests that hang ``hangSeconds`` (real seconds) before they are answered."""
    hang_seconds: float = Field(default=1.0, ge=0, le=30, alias="hangSeconds")
    count: int = Field(default=1, ge=0)
    """``node-failure``: how many Ready nodes (of ``group`` when given) fail at ``at``; ``partial-capacity``: how many
    instances of ``group`` can hold capacity at once."""


class InstanceGroup(_Model):
    """An instance group added to the sandbox's HyperPod cluster (``examples/cluster.json``), like its first group but
    with its own name and type (and subnet, hence zone)."""

    name: str
    instance_type: str = Field(alias="instanceType")
    subnet: str = "subnet-0a1b2c3d4e5f60001"


class Drill(_Model):
    at: float
    name: str
    input: dict[str, Any] = Field(default_factory=dict)


class CloudWatchModel(_Model):
    """How the pending-pods signal reaches the autoscaler in AWS (docs/scenarios.md cites the sources): Container
    Insights samples the cluster every ``collectionInterval`` seconds (the CloudWatch agent's
    ``metrics_collection_interval``, 60 by default), the data point can be read from CloudWatch ``deliveryLag`` seconds
    after it was collected (the agent flushes its embedded-metric-format log events every 5 s, then CloudWatch Logs
    turns them into metrics; AWS publishes no figure for that delay, 60 s is this model's assumption), and the alarm of
    ``alarmPeriod`` seconds is evaluated every minute (every 10 s for a 10 or 30 s period), on the most recent data
    points it has. ``pendingPodsMetric: PendingPods`` makes the alarm watch the autoscaler's own high-resolution metric
    instead (the template's ``PendingPodsMetricNamespace``/``PendingPodsMetricName``), which reconcile publishes with
    PutMetricData whenever it runs (no collection interval, no delivery lag)."""

    collection_interval: float = Field(default=60, gt=0, alias="collectionInterval")
    delivery_lag: float = Field(default=60, ge=0, alias="deliveryLag")
    queue_delivery_lag: float = Field(default=60, ge=0, alias="queueDeliveryLag")
    """Seconds from SQS sampling a queue's depth (``ApproximateNumberOfMessagesVisible``, pushed to CloudWatch at
    one-minute intervals) to CloudWatch having the data point. AWS publishes no figure: 60 s is this model's
    assumption, as for ``deliveryLag``."""
    alarm_period: Literal[10, 30, 60] = Field(default=60, alias="alarmPeriod")
    pending_pods_metric: Literal["pod_status_pending", "PendingPods"] = Field(
        default="pod_status_pending", alias="pendingPodsMetric"
    )

    def template_parameters(self) -> dict[str, Any]:
        """The template parameters this model sets (the alarm's period and metric)."""
        namespace = "ContainerInsights" if self.pending_pods_metric == "pod_status_pending" else "HyperPodAutoscaler"
        return {
            "PendingPodsAlarmPeriod": self.alarm_period,
            "PendingPodsMetricNamespace": namespace,
            "PendingPodsMetricName": self.pending_pods_metric,
        }

    def summary(self) -> dict[str, Any]:
        return {
            "pendingPodsMetric": self.pending_pods_metric,
            "collectionIntervalSeconds": self.collection_interval,
            "deliveryLagSeconds": self.delivery_lag,
            "queueDeliveryLagSeconds": self.queue_delivery_lag,
            "alarmPeriodSeconds": self.alarm_period,
        }


class Scenario(_Model):
    name: str
    description: str = ""
    duration: float = Field(default=3600, gt=0)
    tick: float = Field(default=5, gt=0)
    speed: float = Field(default=60, gt=0)
    provisioning_delay: float | dict[str, float] = Field(default=90, alias="provisioningDelay")
    seed: bool = True
    objects: list[dict[str, Any]] = Field(default_factory=list)
    """Extra Kubernetes objects applied at the start (after the seed), as inline manifests."""
    deployments: list[Deployment] = Field(default_factory=list)
    traffic: list[Traffic] = Field(default_factory=list)
    jobs: list[Job] = Field(default_factory=list)
    faults: list[Fault] = Field(default_factory=list)
    drills: list[Drill] = Field(default_factory=list)
    cloudwatch: CloudWatchModel = Field(default_factory=CloudWatchModel, alias="cloudWatch")
    """How Container Insights and the pending-pods alarm see pending pods (AWS's defaults)."""
    instance_groups: list[InstanceGroup] = Field(default_factory=list, alias="instanceGroups")
    """Instance groups added to the seed cluster (list them in a HyperpodNodeClass among ``objects``)."""
    parameters: dict[str, str] = Field(default_factory=dict)
    """Template parameter overrides, as ``sam deploy --parameter-overrides`` gives them (``AtomicPodGroups: "false"``)."""

    def delay_for(self, group: str) -> float:
        if isinstance(self.provisioning_delay, dict):
            return float(self.provisioning_delay.get(group, self.provisioning_delay.get("default", 90)))
        return float(self.provisioning_delay)


def load_scenario(path: str | Path) -> Scenario:
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as exc:
        raise InvalidObject("Scenario", str(path), "", f"not valid YAML: {exc}") from None
    try:
        return Scenario.model_validate(raw or {})
    except ValidationError as exc:
        raise validation_error("Scenario", str(path), exc) from None


def load_azure_arrivals(path: str | Path) -> list[float]:
    """Request arrival times (seconds from the first request) of the Azure LLM inference trace: the original CSV
    (``TIMESTAMP`` column) or the project's extract (``gap_ms``: milliseconds since the previous request)."""
    out: list[float] = []
    first: datetime | None = None
    elapsed_ms = 0
    with Path(path).open() as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            if "gap_ms" in row:
                try:
                    elapsed_ms += int(row["gap_ms"])
                except (TypeError, ValueError):
                    raise ValueError(f"{path}:{line}: field gap_ms is {row['gap_ms']!r}, not a whole number") from None
                out.append(elapsed_ms / 1000.0)
                continue
            stamp = datetime.fromisoformat(row["TIMESTAMP"][:26])
            first = first or stamp
            out.append((stamp - first).total_seconds())
    return out


class ArrivalStream:
    """Arrivals of one traffic entry on the cluster clock: ``take(until)`` returns how many requests arrived since the
    last call. Trace times are stretched by ``timeScale`` and thinned deterministically by ``rateScale``."""

    def __init__(self, traffic: Traffic, trace: list[float] | None) -> None:
        self.traffic = traffic
        self._times: list[float] = []
        if traffic.source == "azure-llm":
            if trace is None:
                raise ValueError("azure-llm traffic needs the trace")
            scale = traffic.rate_scale
            for i, t in enumerate(trace):
                copies = math.floor((i + 1) * scale) - math.floor(i * scale)  # deterministic thinning or repetition
                self._times.extend([traffic.start + t * traffic.time_scale] * copies)
        self._index = 0
        self._clock = traffic.start
        self._carry = 0.0

    def take(self, until: float) -> int:
        end = min(until, self.traffic.end) if self.traffic.end is not None else until
        if self.traffic.source == "constant":
            start = max(self._clock, self.traffic.start)
            self._clock = max(self._clock, until)
            self._carry += max(0.0, end - start) * self.traffic.rate
            whole = math.floor(self._carry)
            self._carry -= whole
            return whole
        count = 0
        while self._index < len(self._times) and self._times[self._index] < end:
            self._index += 1
            count += 1
        return count
