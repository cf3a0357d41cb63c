"""The composition root of the Lambda functions: configuration from the environment (set by template.yaml) and the
adapters built from it, once per container and reused across warm invocations.

Handlers stay a few lines: they parse the event and call a service with what this module builds (Powertools' decorators
log and flush the metrics). The sandbox runs the same handlers in-process; it points the AWS clients at moto
(``AWS_ENDPOINT_URL``), the Kubernetes client at the emulator (``KUBECONFIG``), and the clock at its simulated cluster
time (``use_clock``).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar

from .domain.errors import InvalidObject

if TYPE_CHECKING:  # the adapters and services are imported where they are built: a handler imports only what it uses
    from aws_lambda_powertools.metrics.provider.base import BaseProvider
    from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer

    from .adapters.metrics import AutoscalerMetrics
    from .domain.catalog import Catalog
    from .ports.claims import ClaimsPort
    from .ports.cluster import ClusterPort
    from .ports.hyperpod import HyperPodPort, ScaleIntents
    from .ports.lease import LeasePort
    from .ports.metrics import MetricsPort
    from .ports.state import BackoffPort
    from .ports.workflow import WorkflowPort
    from .services.deprovision import DeprovisionDeps
    from .services.disruption import DisruptionConfig, DisruptionDeps
    from .services.leased_loop import LoopSettings
    from .services.pod_scaler import PodScalerDeps
    from .services.provision import ProvisionDeps
    from .services.reconcile import ReconcileDeps, ReconcileSettings

T = TypeVar("T")


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


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    if raw.lower() not in ("true", "false"):
        raise InvalidObject("environment", name, name, f"{raw!r} is not true or false")
    return raw.lower() == "true"


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
            region=region(),
        )


_lock = threading.Lock()
_built: dict[tuple[str, ...], Any] = {}


def once(key: tuple[str, ...], build: Callable[[], T]) -> T:
    """What ``build`` returns, built once per container for ``key`` and reused by its warm invocations. The key names
    the configuration it was built from (service, region, endpoint, table, ...): tests and the sandbox switch endpoints
    between runs and get new clients, and ``reset`` forgets them all."""
    with _lock:
        if key in _built:
            return _built[key]  # type: ignore[no-any-return]
    made = build()  # outside the lock: a builder asks for the clients it needs through ``once`` too
    with _lock:
        return _built.setdefault(key, made)  # type: ignore[no-any-return]


def reset() -> None:
    """Forget every cached client, adapter and dependency set (tests and the sandbox switch endpoints between runs)."""
    with _lock:
        _built.clear()


def region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def _endpoint() -> str:
    return os.environ.get("AWS_ENDPOINT_URL", "")


CONNECT_TIMEOUT_SECONDS = 3.0
READ_TIMEOUT_SECONDS = 10.0
"""botocore's defaults are 60 s each: one hung call would use up a function's whole timeout."""


_LOADER: list[Any] = []


def _session() -> Any:
    """A boto3 session of its own for each client (sessions are not thread-safe), sharing one botocore data loader in the
    process: the loader keeps the service models and endpoint rules it has read (a few MB of JSON), instead of every
    new session reading them again. In Lambda a process is one container, so this changes nothing there."""
    import boto3
    import botocore.loaders
    import botocore.session

    if not _LOADER:
        _LOADER.append(botocore.loaders.create_loader())
    core = botocore.session.Session()
    core.register_component("data_loader", _LOADER[0])
    return boto3.session.Session(botocore_session=core)


def _cached_client(service: str, region_name: str, config: Any = None, kind: str = "client") -> Any:
    """The container's boto3 client of ``kind`` for the service in the region and the current endpoint (boto3 honours
    ``AWS_ENDPOINT_URL``), built on first use."""
    return once(
        (kind, service, region_name, _endpoint()),
        lambda: _session().client(service, region_name=region_name, config=config),
    )


def _timeouts() -> Any:
    from botocore.config import Config

    return Config(connect_timeout=CONNECT_TIMEOUT_SECONDS, read_timeout=READ_TIMEOUT_SECONDS)


def client(service: str) -> Any:
    """A boto3 client per service in the function's region, with connect and read timeouts."""
    return _cached_client(service, region(), _timeouts())


def regional_client(service: str, region_name: str | None = None) -> Any:
    """A client in ``region_name`` (a ScaledObject trigger's awsRegion), else the function's region; with the same
    timeouts."""
    if not region_name:
        return client(service)
    return _cached_client(service, region_name, _timeouts())


def _sagemaker() -> Any:
    """SageMaker's client makes one attempt per call: the HyperPod adapter retries what it can safely retry itself."""
    from .adapters.hyperpod import sagemaker_config

    return _cached_client("sagemaker", region(), sagemaker_config(), kind="sagemaker-1attempt")


def kubernetes() -> ClusterPort:
    """The cluster port: from ``KUBECONFIG`` (+ ``KUBE_CONTEXT``) when set (the sandbox, a laptop), else from EKS with a
    token renewed before it expires."""
    from .adapters.kube import KubeCluster

    kubeconfig = os.environ.get("KUBECONFIG", "")
    context = os.environ.get("KUBE_CONTEXT", "")

    def build() -> KubeCluster:
        if kubeconfig:
            return KubeCluster.from_kubeconfig(kubeconfig, context or None, now=now)
        cfg = Config.from_env()
        return KubeCluster.from_eks(cfg.eks_cluster, cfg.region, now=now)

    return once(("kubernetes", kubeconfig, context), build)


def catalog() -> Catalog:
    from .domain.catalog import Catalog

    path = os.environ.get("CATALOG_FILE") or ""
    return once(("catalog", path), lambda: Catalog.load(path or None))


def _metrics(service: str) -> AutoscalerMetrics:
    from .adapters.metrics import AutoscalerMetrics

    def build() -> AutoscalerMetrics:
        sink = os.environ.get("METRICS_SINK", "emf")
        return AutoscalerMetrics(
            env("EKS_CLUSTER_NAME"),
            namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "HyperPodAutoscaler"),
            sink=sink,  # type: ignore[arg-type]
            cloudwatch=client("cloudwatch") if sink == "api" else None,
            now=_now_datetime,  # datapoints stamped on the runtime's clock (the sandbox's cluster time, else wall time)
        )

    return once(("metrics", service), build)


def metrics(service: str) -> MetricsPort:
    """One per function and container, as its dependencies: the handler's ``@metrics.log_metrics`` flushes what each
    invocation recorded (``entrypoints.HandlerMetrics``)."""
    return _metrics(service)


def metrics_provider(service: str) -> BaseProvider:
    """The same metrics as Powertools' provider, for the handler's decorator to flush."""
    return _metrics(service)


def built_metrics(service: str) -> BaseProvider | None:
    """The function's metrics if something built them (None: nothing was recorded, nothing to flush)."""
    with _lock:
        built: BaseProvider | None = _built.get(("metrics", service))
    return built


def _now_datetime() -> datetime:
    return datetime.fromtimestamp(now(), UTC)


# --- adapters, one per container -------------------------------------------------------------------------------------


def hyperpod() -> HyperPodPort:
    from .adapters.hyperpod import HyperPodAdapter

    name = env("HYPERPOD_CLUSTER_NAME")
    return once(
        ("hyperpod", name, region(), _endpoint()),
        lambda: HyperPodAdapter(_sagemaker(), client("ec2"), name, now=now, sleep=sleep),
    )


def _table() -> tuple[str, str, str]:
    return env("TABLE_NAME"), region(), _endpoint()


def backoff() -> BackoffPort:
    from .adapters.dynamo_state import DynamoBackoff

    return once(("backoff", *_table()), lambda: DynamoBackoff(client("dynamodb"), env("TABLE_NAME"), now=now))


def claims() -> ClaimsPort:
    from .adapters.dynamo_claims import DynamoClaimStore

    return once(("claims", *_table()), lambda: DynamoClaimStore(client("dynamodb"), env("TABLE_NAME"), now=now))


def scale_intents() -> ScaleIntents:
    from .adapters.dynamo_state import DynamoScaleIntents

    return once(("intents", *_table()), lambda: DynamoScaleIntents(client("dynamodb"), env("TABLE_NAME"), now=now))


def workflows() -> WorkflowPort:
    from .adapters.stepfunctions import StepFunctionsWorkflows

    return once(("workflows", region(), _endpoint()), lambda: StepFunctionsWorkflows(client("stepfunctions")))


def lease() -> LeasePort:
    from .adapters.dynamo_lease import DynamoLease

    return once(("lease", *_table()), lambda: DynamoLease(client("dynamodb"), env("TABLE_NAME"), now=now))


def idempotency_store(partition: str) -> BasePersistenceLayer:
    """Powertools Idempotency's records on the state table, under ``pk = partition``. One per container: each layer
    registers its feature on the client it is given, so one per invocation would pile handlers onto the shared client."""
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    return once(
        ("idempotency", partition, *_table()),
        lambda: DynamoDBPersistenceLayer(
            table_name=env("TABLE_NAME"),
            key_attr="pk",
            sort_key_attr="sk",
            static_pk_value=partition,
            expiry_attr="expiresAt",
            boto3_client=client("dynamodb"),
        ),
    )


# --- per-function dependencies ---------------------------------------------------------------------------------------


def provision_deps(service: str = "provision") -> ProvisionDeps:
    from .services.provision import ProvisionDeps

    return ProvisionDeps(
        hyperpod=hyperpod(),
        cluster=kubernetes(),
        backoff=backoff(),
        metrics=metrics(service),
        claims=claims(),
        intents=scale_intents(),
        clock=now,
        max_nodes_per_decision=env_int("MAX_NODES_PER_DECISION", 20),
        max_nodes_total=env_int("MAX_NODES_TOTAL", 100),
    )


def deprovision_deps(service: str = "deprovision") -> DeprovisionDeps:
    from .services.deprovision import DeprovisionDeps

    return DeprovisionDeps(hyperpod=hyperpod(), cluster=kubernetes(), metrics=metrics(service), clock=now)


def reconcile_settings() -> ReconcileSettings:
    from .services.reconcile import ReconcileSettings

    return ReconcileSettings(
        cluster_name=env("HYPERPOD_CLUSTER_NAME"),
        provision_state_machine_arn=env("PROVISION_STATE_MACHINE_ARN"),
        max_nodes_per_decision=env_int("MAX_NODES_PER_DECISION", 20),
        max_nodes_total=env_int("MAX_NODES_TOTAL", 100),
        registration_timeout_seconds=env_int("REGISTRATION_TIMEOUT_SECONDS", 1200),
        atomic_pod_groups=env_bool("ATOMIC_POD_GROUPS", True),
    )


def loop_settings() -> LoopSettings:
    from .services.leased_loop import LoopSettings

    return LoopSettings(
        interval_seconds=env_float("RECHECK_INTERVAL_SECONDS", 5.0),
        budget_seconds=env_float("RECHECK_BUDGET_SECONDS", 50.0),
    )


class DeciderPorts(TypedDict):
    """What both deciders (reconcile and disruption) read and start: the cluster, HyperPod, the workflows, the groups in
    backoff, the metrics, the catalog and the clock."""

    cluster: ClusterPort
    hyperpod: HyperPodPort
    workflows: WorkflowPort
    backoffs: BackoffPort
    metrics: MetricsPort
    catalog: Catalog
    clock: Callable[[], float]


def decider_ports(service: str) -> DeciderPorts:
    return DeciderPorts(
        cluster=kubernetes(),
        hyperpod=hyperpod(),
        workflows=workflows(),
        backoffs=backoff(),
        metrics=metrics(service),
        catalog=catalog(),
        clock=now,
    )


def reconcile_deps(service: str = "reconcile") -> ReconcileDeps:
    """Built once per container: the engine's caches and the sent-events memory live across warm invocations."""
    from .services.reconcile import ReconcileDeps

    return once(("reconcile-deps", service), lambda: ReconcileDeps(**decider_ports(service), claims=claims()))


def pod_scaler_deps(service: str = "pod-scaler") -> PodScalerDeps:
    from .adapters.aws_metrics import AwsTriggerMetrics
    from .adapters.dynamo_state import DynamoScalerStates
    from .adapters.eventbridge import EventBridgeAnnouncer
    from .services.pod_scaler import PodScalerDeps

    cluster_name = env("HYPERPOD_CLUSTER_NAME")
    return PodScalerDeps(
        cluster=kubernetes(),
        metrics_reader=once(("trigger-metrics",), lambda: AwsTriggerMetrics(regional_client, now=now)),
        states=once(("scaler-states", *_table()), lambda: DynamoScalerStates(client("dynamodb"), env("TABLE_NAME"))),
        metrics=metrics(service),
        clock=now,
        announcer=once(
            ("announcer", cluster_name, region(), _endpoint()),
            lambda: EventBridgeAnnouncer(client("events"), cluster_name),
        ),
    )


def disruption_config() -> DisruptionConfig:
    from .domain.disruption import DisruptionSettings
    from .services.disruption import DisruptionConfig

    return DisruptionConfig(
        cluster_name=env("HYPERPOD_CLUSTER_NAME"),
        provision_state_machine_arn=env("PROVISION_STATE_MACHINE_ARN"),
        deprovision_state_machine_arn=env("DEPROVISION_STATE_MACHINE_ARN"),
        settings=DisruptionSettings(min_savings_fraction=env_float("MIN_SAVINGS_FRACTION", 0.2)),
        registration_timeout_seconds=env_int("REGISTRATION_TIMEOUT_SECONDS", 1200),
    )


def disruption_deps(service: str = "disruption") -> DisruptionDeps:
    """Built once per container, as reconcile's."""
    from .adapters.dynamo_disruption import DynamoDisruptionState
    from .services.disruption import DisruptionDeps

    return once(
        ("disruption-deps", service),
        lambda: DisruptionDeps(
            **decider_ports(service), state=DynamoDisruptionState(client("dynamodb"), env("TABLE_NAME"), now=now)
        ),
    )
