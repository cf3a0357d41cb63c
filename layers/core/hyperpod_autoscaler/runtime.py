"""The composition root of the Lambda functions: configuration from the environment (set by template.yaml) and the
adapters built from it, once per container and reused across warm invocations.

Handlers stay a few lines: they parse the event, call a service with what this module builds, and flush metrics. The
sandbox runs the same handlers in-process; it points the AWS clients at moto (``AWS_ENDPOINT_URL``), the Kubernetes client
at the emulator (``KUBECONFIG``), and the clock at its simulated cluster time (``use_clock``).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from .domain.errors import InvalidObject


class _Clock:
    """Wall time, or the sandbox's cluster clock."""

    def __init__(self) -> None:
        self.now: Callable[[], float] = time.time
        self.sleep: Callable[[float], None] = time.sleep


CLOCK = _Clock()


def use_clock(now: Callable[[], float], sleep: Callable[[float], None]) -> None:
    CLOCK.now = now
    CLOCK.sleep = sleep


def now() -> float:
    return CLOCK.now()


def sleep(seconds: float) -> None:
    CLOCK.sleep(seconds)


def env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None or value == "":
        raise InvalidObject("environment", name, name, "is not set (template.yaml sets it)")
    return value


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(float(raw))
    except ValueError:
        raise InvalidObject("environment", name, name, f"{raw!r} is not a number") from None


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError:
        raise InvalidObject("environment", name, name, f"{raw!r} is not a number") from None


@dataclass(frozen=True)
class Config:
    hyperpod_cluster: str
    eks_cluster: str
    table: str
    region: str

    @classmethod
    def from_env(cls) -> Config:
        return cls(
            hyperpod_cluster=env("HYPERPOD_CLUSTER_NAME"),
            eks_cluster=env("EKS_CLUSTER_NAME"),
            table=env("TABLE_NAME"),
            region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        )


_lock = threading.Lock()
_clients: dict[tuple[str, str, str], Any] = {}


CONNECT_TIMEOUT_SECONDS = 3.0
READ_TIMEOUT_SECONDS = 10.0
"""botocore's defaults are 60 s each: one hung call would use up a function's whole timeout."""


def client(service: str) -> Any:
    """A boto3 client per service, shared by the container's invocations (boto3 honours ``AWS_ENDPOINT_URL``)."""
    import boto3
    from botocore.config import Config

    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    key = (service, region, os.environ.get("AWS_ENDPOINT_URL", ""))
    with _lock:
        if key not in _clients:
            _clients[key] = boto3.session.Session().client(
                service,
                region_name=region,
                config=Config(connect_timeout=CONNECT_TIMEOUT_SECONDS, read_timeout=READ_TIMEOUT_SECONDS),
            )
        return _clients[key]


_cluster_cache: dict[tuple[str, str], Any] = {}


def kubernetes() -> Any:
    """The cluster port: from ``KUBECONFIG`` (+ ``KUBE_CONTEXT``) when set (the sandbox, a laptop), else from EKS with a
    token renewed before it expires."""
    from .adapters.kube import KubeCluster

    kubeconfig = os.environ.get("KUBECONFIG", "")
    key = (kubeconfig, os.environ.get("KUBE_CONTEXT", ""))
    with _lock:
        if key not in _cluster_cache:
            if kubeconfig:
                _cluster_cache[key] = KubeCluster.from_kubeconfig(kubeconfig, os.environ.get("KUBE_CONTEXT") or None)
            else:
                cfg = Config.from_env()
                _cluster_cache[key] = KubeCluster.from_eks(cfg.eks_cluster, cfg.region)
        return _cluster_cache[key]


@cache
def catalog() -> Any:
    from .domain.catalog import Catalog

    return Catalog.load(os.environ.get("CATALOG_FILE") or None)


def metrics(service: str) -> Any:
    from .adapters.metrics import AutoscalerMetrics

    sink = os.environ.get("METRICS_SINK", "emf")
    return AutoscalerMetrics(
        env("EKS_CLUSTER_NAME"),
        namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "HyperPodAutoscaler"),
        sink=sink,  # type: ignore[arg-type]
        cloudwatch=client("cloudwatch") if sink == "api" else None,
    )


# --- per-function dependencies ---------------------------------------------------------------------------------------


def hyperpod() -> Any:
    from .adapters.hyperpod import HyperPodAdapter

    return HyperPodAdapter(_sagemaker(), client("ec2"), env("HYPERPOD_CLUSTER_NAME"), now=now, sleep=sleep)


def _sagemaker() -> Any:
    import boto3

    from .adapters.hyperpod import sagemaker_config

    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    key = ("sagemaker-1attempt", region, os.environ.get("AWS_ENDPOINT_URL", ""))
    with _lock:
        if key not in _clients:
            _clients[key] = boto3.session.Session().client("sagemaker", region_name=region, config=sagemaker_config())
        return _clients[key]


def backoff() -> Any:
    from .adapters.dynamo_state import DynamoBackoff

    return DynamoBackoff(client("dynamodb"), env("TABLE_NAME"), now=now)


def claims() -> Any:
    from .adapters.dynamo_claims import DynamoClaimStore

    return DynamoClaimStore(client("dynamodb"), env("TABLE_NAME"), now=now)


def workflows() -> Any:
    from .adapters.stepfunctions import StepFunctionsWorkflows

    return StepFunctionsWorkflows(client("stepfunctions"))


def lease() -> Any:
    from .adapters.dynamo_lease import DynamoLease

    return DynamoLease(client("dynamodb"), env("TABLE_NAME"), now=now)


def provision_deps(service: str = "provision") -> Any:
    from .services.provision import ProvisionDeps

    return ProvisionDeps(
        hyperpod=hyperpod(),
        cluster=kubernetes(),
        backoff=backoff(),
        metrics=metrics(service),
        claims=claims(),
        clock=now,
        max_nodes_per_decision=env_int("MAX_NODES_PER_DECISION", 20),
        max_nodes_total=env_int("MAX_NODES_TOTAL", 100),
    )


def deprovision_deps(service: str = "deprovision") -> Any:
    from .services.deprovision import DeprovisionDeps

    return DeprovisionDeps(hyperpod=hyperpod(), cluster=kubernetes(), metrics=metrics(service), clock=now)


def reconcile_settings() -> Any:
    from .services.reconcile import ReconcileSettings

    return ReconcileSettings(
        cluster_name=env("HYPERPOD_CLUSTER_NAME"),
        provision_state_machine_arn=env("PROVISION_STATE_MACHINE_ARN"),
        max_nodes_per_decision=env_int("MAX_NODES_PER_DECISION", 20),
        max_nodes_total=env_int("MAX_NODES_TOTAL", 100),
        registration_timeout_seconds=env_int("REGISTRATION_TIMEOUT_SECONDS", 1200),
    )


def loop_settings() -> Any:
    from .services.leased_loop import LoopSettings

    return LoopSettings(
        interval_seconds=env_float("RECHECK_INTERVAL_SECONDS", 5.0),
        budget_seconds=env_float("RECHECK_BUDGET_SECONDS", 50.0),
    )


_reconcile_deps: dict[str, Any] = {}


def reconcile_deps(service: str = "reconcile") -> Any:
    """Built once per container: the engine's caches and the sent-events memory live across warm invocations."""
    from .services.reconcile import ReconcileDeps

    with _lock:
        deps = _reconcile_deps.get(service)
    if deps is None:
        deps = ReconcileDeps(
            cluster=kubernetes(),
            hyperpod=hyperpod(),
            claims=claims(),
            backoffs=backoff(),
            workflows=workflows(),
            metrics=metrics(service),
            catalog=catalog(),
            clock=now,
        )
        with _lock:
            _reconcile_deps[service] = deps
    return deps


def reset() -> None:
    """Forget every cached client and dependency set (tests and the sandbox switch endpoints between runs)."""
    with _lock:
        _clients.clear()
        _cluster_cache.clear()
        _reconcile_deps.clear()
        _disruption_deps.clear()
    catalog.cache_clear()


def regional_client(service: str, region: str | None = None) -> Any:
    """A client in ``region`` (a ScaledObject trigger's awsRegion), else the function's region."""
    import boto3

    if not region:
        return client(service)
    key = (service, region, os.environ.get("AWS_ENDPOINT_URL", ""))
    with _lock:
        if key not in _clients:
            _clients[key] = boto3.session.Session().client(service, region_name=region)
        return _clients[key]


def pod_scaler_deps(service: str = "pod-scaler") -> Any:
    from .adapters.aws_metrics import AwsTriggerMetrics
    from .adapters.dynamo_state import DynamoScalerStates
    from .adapters.eventbridge import EventBridgeAnnouncer
    from .services.pod_scaler import PodScalerDeps

    return PodScalerDeps(
        cluster=kubernetes(),
        metrics_reader=AwsTriggerMetrics(regional_client, now=now),
        states=DynamoScalerStates(client("dynamodb"), env("TABLE_NAME")),
        metrics=metrics(service),
        clock=now,
        announcer=EventBridgeAnnouncer(client("events"), env("HYPERPOD_CLUSTER_NAME")),
    )


_disruption_deps: dict[str, Any] = {}


def disruption_config() -> Any:
    from .domain.disruption import DisruptionSettings
    from .services.disruption import DisruptionConfig

    return DisruptionConfig(
        cluster_name=env("HYPERPOD_CLUSTER_NAME"),
        provision_state_machine_arn=env("PROVISION_STATE_MACHINE_ARN"),
        deprovision_state_machine_arn=env("DEPROVISION_STATE_MACHINE_ARN"),
        settings=DisruptionSettings(min_savings_fraction=env_float("MIN_SAVINGS_FRACTION", 0.2)),
        registration_timeout_seconds=env_int("REGISTRATION_TIMEOUT_SECONDS", 1200),
    )


def disruption_deps(service: str = "disruption") -> Any:
    from .adapters.dynamo_disruption import DynamoDisruptionState
    from .services.disruption import DisruptionDeps

    with _lock:
        deps = _disruption_deps.get(service)
    if deps is None:
        deps = DisruptionDeps(
            cluster=kubernetes(),
            hyperpod=hyperpod(),
            workflows=workflows(),
            state=DynamoDisruptionState(client("dynamodb"), env("TABLE_NAME"), now=now),
            metrics=metrics(service),
            catalog=catalog(),
            clock=now,
            backoffs=backoff(),
        )
        with _lock:
            _disruption_deps[service] = deps
    return deps
