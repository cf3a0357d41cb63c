"""The embedded sandbox: the real handlers and state machines, wired as ``template.yaml`` wires them, on emulators.

``Sandbox`` starts the Kubernetes API emulator and moto's server with the HyperPod emulator, creates the stack's resources
there from the template (table, queues, state machines with their substitutions, the functions' environment), applies the
seed objects, then plays a scenario on the cluster clock (``SteppedClock``): traffic into SQS, Jobs, faults, drills, the
replica controller and scheduler stand-ins, the HyperPod node life cycle. Because moto evaluates no alarms and routes no
events to Lambda, the sandbox evaluates the template's alarms on the published metrics and delivers each state change and
each schedule tick to the targets of the template's rules whose patterns match: a rule removed from the template is a rule
that never fires here.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import random
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from hyperpod_autoscaler.domain.gangs import POD_GROUP_LABEL, POD_GROUP_TOTAL

from hpa_testkit.aws import sfn, wait_for_execution_threads
from hpa_testkit.scheduler import GANG_ANNOTATION

from .alarms import Alarm, evaluate, evaluation_interval, evaluation_range, state_change_event
from .clock import SteppedClock, quiet_stopped_threads
from .eventbus import matches, resolve
from .lambda_faults import LambdaFaults, LambdaTimedOut, SandboxTimedout, TooManyRequests, arm, restore
from .report import Sample, Timeline
from .scenario import ArrivalStream, Scenario, load_azure_arrivals
from .template import StateMachineSpec, Wiring, read_wiring, ref_target
from .tracking import PodTracker
from .verdict import (
    DEMAND_EVERY_SECONDS,
    DemandTracker,
    managed_types,
    pending_pod_minutes,
    priced_over_time,
    static_baseline_hourly,
    unserved_reasons,
)

ACCOUNT = "123456789012"
REGION = "us-west-2"
STACK = "hpa-sandbox"
PROJECT = Path(__file__).resolve().parents[3]
AZURE_TRACE = Path(__file__).resolve().parents[1] / "data" / "azure_llm_2023" / "arrivals.csv"
"""The arrivals of the Azure LLM inference trace, shipped with the test kit (source and licence in its README.md)."""


def parse_rate(expression: str) -> float:
    """``rate(1 minute)`` / ``rate(5 minutes)`` / ``rate(30 seconds)`` -> seconds. cron() schedules are not played."""
    expression = expression.strip()
    if not expression.startswith("rate(") or not expression.endswith(")"):
        raise ValueError(f"schedule {expression!r}: the sandbox plays rate() schedules only")
    value, unit = expression[5:-1].split()
    seconds = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}[unit.rstrip("s")]
    return float(value) * seconds


@dataclass
class LambdaContext:
    """What a handler reads from Lambda's context object."""

    function_name: str
    deadline: float
    clock: SteppedClock
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = ""

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - self.clock.now()) * 1000))


@dataclass
class Invocation:
    function: str
    source: str
    t: float
    future: Future[Any]


class FunctionHost:
    """Loads a function's ``app.py`` from its CodeUri and invokes it the way Lambda's asynchronous invoke does (in a
    worker thread, with a context whose remaining time follows the cluster clock)."""

    def __init__(self, wiring: Wiring, clock: SteppedClock, pool: ThreadPoolExecutor) -> None:
        self.wiring = wiring
        self.clock = clock
        self.pool = pool
        self.modules: dict[str, ModuleType] = {}
        self.invocations: list[Invocation] = []
        self.errors: list[tuple[float, str, str]] = []
        self.log_stream: Any = None
        """Where the functions' Powertools log lines go (CloudWatch Logs' part): a file, so the live view stays readable."""
        self.faults = LambdaFaults()
        self.retries: list[tuple[float, str, Any, str, int]] = []
        """Asynchronous events Lambda keeps to retry: (due, function, event, source, attempt), after throttling or a
        timeout."""
        self._lock = threading.Lock()

    def handler(self, logical_id: str) -> Callable[[Any, Any], Any]:
        spec = self.wiring.functions[logical_id]
        module = self.modules.get(logical_id)
        if module is None:
            path = PROJECT / spec.module_path
            loader = importlib.util.spec_from_file_location(f"sandbox_fn_{logical_id}", path)
            if loader is None or loader.loader is None:
                raise FileNotFoundError(f"{logical_id}: no handler module at {path}")
            module = importlib.util.module_from_spec(loader)
            loader.loader.exec_module(module)
            handler = getattr(getattr(module, "logger", None), "registered_handler", None)
            if self.log_stream is not None and isinstance(handler, logging.StreamHandler):
                handler.setStream(self.log_stream)
            self.modules[logical_id] = module
        return getattr(module, spec.handler_name)

    def release_log_stream(self) -> None:
        """Point the handlers' log handlers back at stderr before the sandbox closes its log file: a Powertools logger is
        shared by name across sandboxes in one process, and the next sandbox's ``setStream`` flushes the old stream."""
        for module in self.modules.values():
            handler = getattr(getattr(module, "logger", None), "registered_handler", None)
            if isinstance(handler, logging.StreamHandler) and handler.stream is self.log_stream:
                handler.setStream(sys.stderr)

    def timeout(self, logical_id: str) -> float:
        props = self.wiring.resources[logical_id].get("Properties") or {}
        return float(props.get("Timeout") or 60)

    def call(self, logical_id: str, event: Any) -> Any:
        """A synchronous invoke (a Step Functions task): exceptions propagate with their class."""
        if self.faults.throttled():
            raise TooManyRequests(f"Rate exceeded for {logical_id}")
        self.clock.enter_work()
        try:
            ctx = LambdaContext(logical_id, self.clock.now() + self.timeout(logical_id), self.clock)
            return self._run(logical_id, event, ctx)
        except LambdaTimedOut:
            self.clock.sleep(max(0.0, ctx.deadline - self.clock.now()))
            raise SandboxTimedout(f"Task timed out after {self.timeout(logical_id):.2f} seconds") from None
        finally:
            self.clock.exit_work()

    def _run(self, logical_id: str, event: Any, ctx: LambdaContext) -> Any:
        """The handler, killed part-way when the ``lambda-timeouts`` fault picks this invocation (see lambda_faults)."""
        fn = self.handler(logical_id)
        previous = arm(self.faults.calls_before_kill())
        try:
            return fn(event, ctx)
        finally:
            restore(previous)

    def invoke_async(self, logical_id: str, event: Any, source: str, attempt: int = 0) -> None:
        if self.faults.throttled():
            self.retry_later(logical_id, event, source, 60.0, attempt)  # Lambda keeps a throttled event, retries it
            return

        def run() -> Any:
            try:
                ctx = LambdaContext(logical_id, self.clock.now() + self.timeout(logical_id), self.clock)
                return self._run(logical_id, event, ctx)
            except LambdaTimedOut:
                with self._lock:
                    self.errors.append((self.clock.elapsed, logical_id, "Sandbox.Timedout"))
                if attempt < 2:  # Lambda retries a failed asynchronous event twice, a minute apart and more
                    self.retry_later(logical_id, event, source, 60.0 * (attempt + 1), attempt + 1)
                return None
            except Exception as exc:  # Lambda records it and sends the event to the failure destination
                with self._lock:
                    self.errors.append((self.clock.elapsed, logical_id, f"{type(exc).__name__}: {exc}"))
                raise

        self.clock.queued()  # busy from the moment it is queued: the runner waits for it to start and finish

        def run_counted() -> Any:
            self.clock.enter_work(count=False)
            try:
                return run()
            finally:
                self.clock.exit_work()

        if self.clock.turns:
            # a thread of its own, queued for its turn now (in the order the worker holding the turn invokes), so that
            # a pool with every thread asleep on the clock can never keep the next turn from starting
            worker = self.clock.new_worker(f"{logical_id}#{len(self.invocations)}")
            future: Future[Any] = Future()

            def in_turn() -> None:
                try:
                    with self.clock.run_as(worker):
                        future.set_result(run_counted())
                except BaseException as exc:  # the invocation's error (or a stopped clock) is the future's
                    future.set_exception(exc)

            threading.Thread(target=in_turn, name=f"lambda-{worker.name}", daemon=True).start()
        else:
            future = self.pool.submit(run_counted)
        with self._lock:
            self.invocations.append(Invocation(logical_id, source, self.clock.elapsed, future))

    def retry_later(self, logical_id: str, event: Any, source: str, delay: float, attempt: int) -> None:
        with self._lock:
            self.retries.append((self.clock.now() + delay, logical_id, event, source, attempt))

    def redeliver_due(self) -> None:
        """Lambda's retries of asynchronous events whose time has come (called by the runner once a tick)."""
        now = self.clock.now()
        with self._lock:
            due = [r for r in self.retries if r[0] <= now]
            self.retries = [r for r in self.retries if r[0] > now]
        for _, logical_id, event, source, attempt in due:
            self.invoke_async(logical_id, event, source, attempt)


_put_events_hook: list[Callable[[list[dict[str, Any]]], None] | None] = [None]
_put_events_patched = [False]


def _route_put_events(hook: Callable[[list[dict[str, Any]]], None] | None) -> None:
    """moto keeps PutEvents to itself (it does not invoke Lambda targets): the sandbox, which runs moto's server in this
    process, sees each accepted entry and delivers it to the template's rules, as EventBridge would."""
    _put_events_hook[0] = hook
    if _put_events_patched[0]:
        return
    from moto.events import models as events_models

    original = events_models.EventsBackend.put_events

    def put_events(backend: Any, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = original(backend, events)
        route = _put_events_hook[0]
        if route is not None:
            route([e for e, r in zip(events, out, strict=False) if "EventId" in r])
        return out

    events_models.EventsBackend.put_events = put_events  # type: ignore[method-assign]
    _put_events_patched[0] = True


def stack_context(wiring: Wiring, physical: dict[str, str]) -> dict[str, Any]:
    context: dict[str, Any] = {
        "AWS::Region": REGION,
        "AWS::AccountId": ACCOUNT,
        "AWS::StackName": STACK,
        "AWS::Partition": "aws",
        "AWS::NoValue": None,
    }
    context.update(wiring.parameters)
    context.update(physical)
    return context


def creation_order(machines: dict[str, StateMachineSpec]) -> list[str]:
    """State machines in an order where each comes after the machines its substitutions name (as CloudFormation orders
    them by their references)."""
    refs = {lid: {ref_target(v) for v in spec.substitutions.values()} & set(machines) for lid, spec in machines.items()}
    order: list[str] = []
    while len(order) < len(machines):
        ready = [lid for lid in machines if lid not in order and refs[lid] <= set(order)]
        if not ready:
            cycle = sorted(set(machines) - set(order))
            raise ValueError(f"template.yaml: state machines {cycle} name each other in DefinitionSubstitutions")
        order.extend(ready)
    return order


def load_yaml_objects(path: Path) -> list[dict[str, Any]]:
    from hyperpod_autoscaler.domain.objects import load_yaml_documents

    return [d for d in load_yaml_documents(path.read_text(), str(path)) if isinstance(d, dict)]


def deployment_manifest(d: Any) -> list[dict[str, Any]]:
    requests: dict[str, Any] = {"cpu": d.cpu, "memory": d.memory}
    limits: dict[str, Any] = {}
    if d.gpus:
        requests["nvidia.com/gpu"] = d.gpus
        limits["nvidia.com/gpu"] = d.gpus
    labels = {"app": d.name, **d.labels}
    objs: list[dict[str, Any]] = [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": d.name, "namespace": d.namespace, "labels": labels},
            "spec": {
                "replicas": d.replicas,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [
                            {
                                "name": d.name,
                                "image": "public.ecr.aws/eks-distro/kubernetes/pause:3.7",
                                "resources": {"requests": requests, **({"limits": limits} if limits else {})},
                            }
                        ],
                        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                    },
                },
            },
        }
    ]
    if d.pdb_min_available is not None:
        objs.append(
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": {"name": d.name, "namespace": d.namespace},
                "spec": {"minAvailable": d.pdb_min_available, "selector": {"matchLabels": labels}},
            }
        )
    return objs


def job_manifest(job: Any, clock_start: float) -> list[dict[str, Any]]:
    requests: dict[str, Any] = {"cpu": job.cpu, "memory": job.memory}
    if job.gpus:
        requests["nvidia.com/gpu"] = job.gpus
    labels = {"job-name": job.name}
    annotations = {"hpa-testkit/run-seconds": str(job.duration)}
    pod_annotations = {"karpenter.sh/do-not-disrupt": "true"} if job.do_not_disrupt else {}
    pod_labels = dict(labels)
    if job.gang:
        annotations[GANG_ANNOTATION] = "true"
        pod_labels[POD_GROUP_LABEL] = job.name
        pod_annotations[POD_GROUP_TOTAL] = str(job.count)
    return [
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": job.name, "namespace": job.namespace, "labels": labels, "annotations": annotations},
            "spec": {
                "parallelism": job.count,
                "completions": job.count,
                "template": {
                    "metadata": {"labels": pod_labels, "annotations": pod_annotations},
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [
                            {
                                "name": "train",
                                "image": "public.ecr.aws/eks-distro/kubernetes/pause:3.7",
                                "resources": {"requests": requests, "limits": {"nvidia.com/gpu": job.gpus}},
                            }
                        ],
                        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                    },
                },
            },
        },
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": job.name, "namespace": job.namespace},
            "spec": {"minAvailable": job.count, "selector": {"matchLabels": labels}},
        },
    ]


def to_datetime(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def event_json(event: dict[str, Any]) -> str:
    return json.dumps(event, sort_keys=True)


def env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


@dataclass
class SandboxOptions:
    template: Path = PROJECT / "template.yaml"
    speed: float | None = None
    live: bool | None = None
    parameter_overrides: dict[str, Any] = field(default_factory=dict)
    workers: int = 32
    function_log: Path | None = None
    """File for the functions' log lines (default: in the sandbox's temporary directory)."""
    connection_file: Path | None = None
    """Where ``status --sandbox DIR`` finds this sandbox (the CLI: ``DIR/sandbox.json`` in the report directory; default:
    in the sandbox's temporary directory). Each sandbox has its own and removes only its own."""
    quiet_timeout: float | None = None
    """Real seconds the runner waits for running invocations before it advances the clock anyway (a slow tick).
    Default: 5; 120 in a deterministic run, where a slow tick would make the run's figures depend on the machine's
    speed (there, one means a worker that neither slept nor ended for two minutes: a hang)."""
    deterministic: bool = True
    """Turns (see ``clock``) and seeded identifiers: the same scenario gives the same figures twice. Off, invocations
    and executions run concurrently, as in AWS (the whole-system soak, which looks for races)."""


DETERMINISTIC_SEED = 20261203
"""The seed of a deterministic run's identifiers (``Sandbox._seed_identifiers``)."""

#: What the sandbox sets on the stack: a quick re-check loop and the sandbox's own limits.
SANDBOX_PARAMETERS: dict[str, Any] = {
    "HyperPodClusterName": "hyperpod-eks-demo",
    "HyperPodClusterId": "abcd1234efgh",
    "EksClusterName": "hyperpod-eks-demo",
    "InstanceGroupExecutionRoleArns": ["arn:aws:iam::123456789012:role/HyperPodExecutionRole"],
}


class Sandbox:
    """One scenario on the emulators. Use as a context manager: ``with Sandbox(scenario) as sb: summary = sb.run()``."""

    def __init__(self, scenario: Scenario, options: SandboxOptions | None = None) -> None:
        self.scenario = scenario
        self.options = options or SandboxOptions()
        self.clock = SteppedClock(turns=self.options.deterministic)
        self.timeline = Timeline()
        self.tracker = PodTracker()
        self.demand = DemandTracker()
        self.pool = ThreadPoolExecutor(max_workers=self.options.workers, thread_name_prefix="lambda")
        overrides = {
            **SANDBOX_PARAMETERS,
            **scenario.cloudwatch.template_parameters(),
            **scenario.parameters,
            **self.options.parameter_overrides,
        }
        self.wiring = read_wiring(self.options.template, overrides)
        self.functions = FunctionHost(self.wiring, self.clock, self.pool)
        self.physical: dict[str, str] = {}
        self.alarms: dict[str, Alarm] = {}
        self.queues: dict[str, str] = {}
        self._in_flight: dict[str, list[Any]] = {}
        self.faults_injected: list[dict[str, Any]] = []
        self.drill_runs: list[dict[str, Any]] = []
        self._failed_by: dict[int, int] = {}
        self._clients: dict[str, Any] = {}
        self.decisions = 0
        self.slow_ticks = 0
        self.ended_at = scenario.duration
        self.interrupted_at: float | None = None
        self._collected: list[tuple[float, str, str, dict[str, str], float, datetime]] = []
        """Data points sampled and not yet in CloudWatch: (when they arrive, namespace, metric, dimensions, value, the
        sample's time), in arrival order."""
        """Pending-pods samples Container Insights collected, not yet in CloudWatch: (delivered at, timestamp, value)."""
        """The cluster second at which Ctrl-C (KeyboardInterrupt) stopped the run; None when it played to its end."""
        self.live: Any = None
        self._next_schedule: dict[str, float] = {}
        self._schedule_expr: dict[str, str] = {}
        self._tmp = tempfile.TemporaryDirectory(prefix="hpa-sandbox-")
        self.kube: Any = None
        self.aws: Any = None
        self._env_before: dict[str, str | None] = {}
        self._core_log_handler: logging.Handler | None = None
        self._core_log_propagate = True
        self._core_log_level = logging.NOTSET
        self._uuid4_before: Callable[[], uuid.UUID] | None = None
        self._random_before: Any = None

    # --- set-up ----------------------------------------------------------------------------------------------------------

    def __enter__(self) -> Sandbox:
        try:
            self.start()
        except BaseException:
            self.stop()  # a half-started sandbox must not leave its servers or environment behind
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def start(self) -> None:
        from hpa_testkit.aws import AwsEmulator
        from hpa_testkit.kube import KubeEmulator

        log_path = self.options.function_log or Path(self._tmp.name) / "functions.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.functions.log_stream = log_path.open("w", encoding="utf-8")
        self.function_log = log_path
        # the core's own log lines (a give-back, a dropped decision) are the functions' too: into the same file
        core_log = logging.getLogger("hyperpod_autoscaler")
        self._core_log_handler = logging.StreamHandler(self.functions.log_stream)
        self._core_log_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self._core_log_propagate = core_log.propagate
        self._core_log_level = core_log.level
        core_log.addHandler(self._core_log_handler)
        core_log.propagate = False
        core_log.setLevel(logging.INFO)  # the decisions (one structured line each) are INFO, as in CloudWatch Logs
        # moto's interpreter logs an error for every IsPresent Choice on an absent path: the definitions rely on it
        logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
        self.kube = KubeEmulator()
        self.kube.store.now = self.clock.now  # objects' ages (node expiry, consolidateAfter) on the cluster clock
        self.kube.start()
        kubeconfig = self.kube.write_kubeconfig(str(Path(self._tmp.name) / "kubeconfig"), context="sandbox")
        self.aws = AwsEmulator(clock=self.clock, region=REGION)
        self.aws.start()
        self.aws.reset()  # moto's backends live in the process: a second sandbox starts from nothing too
        self._set_env(
            {
                "AWS_ENDPOINT_URL": self.aws.endpoint_url,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "KUBECONFIG": kubeconfig,
                "KUBE_CONTEXT": "sandbox",
                "METRICS_SINK": "api",
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_DEV": "false",
            }
        )
        from hyperpod_autoscaler import runtime

        runtime.reset()
        runtime.use_clock(self.clock.now, self.clock.sleep)
        if self.options.deterministic:
            self._seed_identifiers()
        self._create_stack()
        self._apply_seed()
        self._publish_connection()
        _route_put_events(self._put_events)

    @property
    def quiet_timeout(self) -> float:
        if self.options.quiet_timeout is not None:
            return self.options.quiet_timeout
        return 120.0 if self.options.deterministic else 5.0

    def _seed_identifiers(self) -> None:
        """Every random identifier and draw of this run from seeded generators, so that names (and the decisions that
        break ties by name) are the same on every run: ``uuid.uuid4`` (the product's tokens, request ids, event ids),
        the ``random`` module (client backoff jitter) and moto's own generator. Undone in ``stop``."""
        from moto.moto_api._internal import mock_random

        ids = random.Random(DETERMINISTIC_SEED)

        def uuid4() -> uuid.UUID:
            return uuid.UUID(int=ids.getrandbits(128), version=4)

        self._uuid4_before = uuid.uuid4
        self._random_before = random.getstate()
        uuid.uuid4 = uuid4  # type: ignore[assignment]
        random.seed(DETERMINISTIC_SEED)
        mock_random.seed(DETERMINISTIC_SEED)

    def _put_events(self, entries: list[dict[str, Any]]) -> None:
        for entry in entries:
            try:
                detail = json.loads(entry.get("Detail") or "{}")
            except ValueError:
                detail = {}
            event = {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": entry.get("DetailType"),
                "source": entry.get("Source"),
                "account": ACCOUNT,
                "time": to_datetime(self.clock.now()).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "region": REGION,
                "resources": entry.get("Resources") or [],
                "detail": detail,
            }
            self._decision(self.clock.elapsed, "event", f"event {event['detail-type']} from {event['source']}")
            self._deliver(event, self.clock.elapsed)

    def _publish_connection(self) -> None:
        """``status --sandbox DIR`` and ``drill --sandbox DIR`` (other processes) find the emulators and the stack here."""
        keys = [
            "AWS_ENDPOINT_URL",
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "KUBECONFIG",
            "KUBE_CONTEXT",
            "HYPERPOD_CLUSTER_NAME",
            "EKS_CLUSTER_NAME",
            "TABLE_NAME",
            "PROVISION_STATE_MACHINE_ARN",
            "DEPROVISION_STATE_MACHINE_ARN",
            "METRICS_SINK",
        ]
        env = {k: os.environ[k] for k in keys if k in os.environ}
        env["DRILL_STATE_MACHINE_ARN"] = self.physical.get("DrillStateMachine", "")
        path = self.options.connection_file or Path(self._tmp.name) / "sandbox.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(env, indent=2))
        self.connection_file = path

    def stop(self) -> None:
        import time as _time

        from hyperpod_autoscaler import runtime

        _route_put_events(None)
        quiet_stopped_threads()
        if self.aws is not None:
            self.aws.stop_executions(wait_seconds=0)  # their tasks must not run once the environment goes back
        self.clock.stop()
        wait_for_execution_threads(
            10.0
        )  # a Wait woke on the stopped clock, a Task's handler returned  # invocations still waiting on cluster time end (else their threads keep the process alive)
        self.pool.shutdown(wait=False, cancel_futures=True)
        if getattr(self, "connection_file", None) is not None:
            with contextlib.suppress(OSError):
                self.connection_file.unlink()
        runtime.use_clock(_time.time, _time.sleep)
        runtime.reset()
        if self._uuid4_before is not None:
            uuid.uuid4 = self._uuid4_before  # type: ignore[assignment]
            random.setstate(self._random_before)
            self._uuid4_before = None
        for stopper in (self.aws, self.kube):
            if stopper is not None:
                with contextlib.suppress(Exception):  # best effort at shutdown
                    stopper.stop()
        for key, value in self._env_before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if self._core_log_handler is not None:
            core_log = logging.getLogger("hyperpod_autoscaler")
            core_log.removeHandler(self._core_log_handler)
            core_log.propagate = self._core_log_propagate
            core_log.setLevel(self._core_log_level)
        if self.functions.log_stream is not None:
            self.functions.release_log_stream()
            self.functions.log_stream.close()
        self._tmp.cleanup()

    def _client(self, service: str) -> Any:
        """The runner's own boto3 clients, made once: creating one costs milliseconds, and the runner calls every tick."""
        if service not in self._clients:
            self._clients[service] = self.aws.client(service)
        return self._clients[service]

    def _set_env(self, values: dict[str, str]) -> None:
        for key, value in values.items():
            self._env_before.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    def _condition_true(self, name: str | None, context: dict[str, Any]) -> bool:
        if not name:
            return True
        from .template import load_template

        conditions = load_template(self.options.template).get("Conditions") or {}
        return bool(_eval_condition(conditions.get(name), conditions, context))

    def _create_stack(self) -> None:
        wiring = self.wiring
        physical = self.physical
        table = f"{STACK}-StateTable"
        physical["StateTable"] = table
        for logical_id in wiring.functions:
            name = f"{STACK}-{logical_id}"
            physical[logical_id] = name
            physical[f"{logical_id}.Arn"] = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
        for logical_id in wiring.alarms:
            physical[logical_id] = ""  # filled below (the name may Sub other values)
        context = stack_context(wiring, physical)
        for logical_id, spec in wiring.alarms.items():
            physical[logical_id] = str(resolve(spec.properties.get("AlarmName", logical_id), context))
        context = stack_context(wiring, physical)

        ddb = self._client("dynamodb")
        props = resolve(wiring.resources["StateTable"]["Properties"], context)
        ddb.create_table(
            TableName=table,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=props["AttributeDefinitions"],
            KeySchema=props["KeySchema"],
        )
        sqs = self._client("sqs")
        physical["FailureQueue"] = sqs.create_queue(QueueName=f"{STACK}-failures")["QueueUrl"]
        for name in sorted({t.queue for t in self.scenario.traffic if t.kind == "sqs" and t.queue}):
            self.queues[name] = sqs.create_queue(QueueName=name)["QueueUrl"]

        for logical_id in creation_order(wiring.state_machines):
            spec = wiring.state_machines[logical_id]
            context = stack_context(wiring, physical)  # the machines created so far (the drill starts the others)
            substitutions = {k: str(resolve(v, context)) for k, v in spec.substitutions.items()}
            arn = sfn.create_state_machine(
                self._client("stepfunctions"), f"{STACK}-{logical_id}", PROJECT / spec.definition_uri, substitutions
            )
            physical[logical_id] = arn
            physical[f"{logical_id}.Arn"] = arn
        for logical_id in wiring.functions:
            sfn.route_lambda(
                physical[f"{logical_id}.Arn"],
                lambda event, _ctx, lid=logical_id: self.functions.call(lid, event),
            )
        context = stack_context(wiring, physical)

        env: dict[str, str] = {}
        for spec in wiring.functions.values():
            for key, value in spec.environment.items():
                resolved = resolve(value, context)
                if key != "POWERTOOLS_SERVICE_NAME" and resolved is not None:
                    env[key] = env_value(resolved)
        env["METRICS_SINK"] = "api"
        self._set_env(env)

        for logical_id, spec in wiring.alarms.items():
            resource = wiring.resources[logical_id]
            if not self._condition_true(resource.get("Condition"), context):
                continue
            props = resolve(spec.properties, context)
            if "MetricName" not in props:
                continue  # metric-math alarms are for operators; the sandbox plays the single-metric ones
            self.alarms[logical_id] = Alarm.from_properties(props, REGION, ACCOUNT)
        self.rules = []
        for rule in wiring.rules:
            if not rule.enabled:
                continue
            pattern = resolve(rule.pattern, context) if rule.pattern else None
            self.rules.append((rule, pattern))
            if rule.schedule:
                self._next_schedule[rule.logical_id] = 0.0
                self._schedule_expr[rule.logical_id] = str(resolve(rule.schedule, context))
        cluster = json.loads((PROJECT / "examples" / "cluster.json").read_text())
        for extra in self.scenario.instance_groups:
            group = json.loads(json.dumps(cluster["InstanceGroups"][0]))
            group.update(InstanceGroupName=extra.name, InstanceType=extra.instance_type)
            group["OverrideVpcConfig"]["Subnets"] = [extra.subnet]
            cluster["InstanceGroups"].append(group)
        hp = self.aws.hyperpod
        delays = self.scenario.provisioning_delay
        if isinstance(delays, dict):
            hp.provisioning_delay = float(delays.get("default", hp.provisioning_delay))
            hp.group_delays.update({g: float(v) for g, v in delays.items() if g != "default"})
        else:
            hp.provisioning_delay = float(delays)
        self.aws.create_hyperpod_cluster(cluster)
        self.aws.connect_kubernetes(self.kube)
        self.cluster_name = cluster["ClusterName"]

    def _apply_seed(self) -> None:
        objects: list[dict[str, Any]] = []
        if self.scenario.seed:
            for name in ("nodeclass.yaml", "nodepool.yaml"):
                objects.extend(load_yaml_objects(PROJECT / "examples" / "seed" / name))
        text = json.dumps(self.scenario.objects)
        for name, url in self.queues.items():
            text = text.replace("{{queue:" + name + "}}", url)
        objects.extend(json.loads(text))
        for d in self.scenario.deployments:
            objects.extend(deployment_manifest(d))
        for obj in objects:
            self.kube.apply(obj)

    # --- the scenario --------------------------------------------------------------------------------------------------

    def run(self, live: Any = None) -> dict[str, Any]:
        """Play the scenario; returns the summary (see ``summary``)."""
        import time

        from hpa_testkit.scheduler import ReplicaController, SchedulerStandIn

        sc = self.scenario
        speed = self.options.speed or sc.speed
        controller = ReplicaController(self.kube, now=self.clock.now)
        scheduler = SchedulerStandIn(self.kube)
        trace = None
        if any(t.source == "azure-llm" for t in sc.traffic):
            trace = load_azure_arrivals(_azure_trace_file())
        streams = [ArrivalStream(t, trace if t.source == "azure-llm" else None) for t in sc.traffic]
        self.live = live
        self._outage_groups: set[str] = set()
        self._gang_started: dict[str, float] = {}
        self._gang_startable: dict[str, float] = {}
        self._nodes_seen: dict[str, dict[str, Any]] = {}
        self._bound_last: dict[str, tuple[str, bool]] = {}
        self.killed_pods: list[str] = []
        self.fallback_nodes_during_outage = 0
        t = 0.0
        self.clock.wait_quiet(self.quiet_timeout)  # with turns: the runner's turn, the scenario's first tick
        try:  # Ctrl-C stops the run where it is: the summary and the report then cover what was played
            while t <= sc.duration:
                started = time.monotonic()
                self._faults(t)
                self._jobs(t)
                self._drills(t)
                self._follow_drills(t)
                self._traffic(streams, t)
                controller.step()
                scheduler.step()
                self.aws.hyperpod.tick()
                self._observe(t)
                self._publish_metrics(t)
                self._alarms(t)
                self._schedules(t)
                self.functions.redeliver_due()
                if not self.clock.wait_quiet(self.quiet_timeout):
                    self.slow_ticks += 1
                self.clock.advance(sc.tick)
                t += sc.tick
                pace = sc.tick / speed - (time.monotonic() - started)
                if pace > 0:
                    time.sleep(pace)
                if self.settled(t):
                    break
        except KeyboardInterrupt:
            self.interrupted_at = t
        self.ended_at = min(t, sc.duration)
        for inv in list(self.functions.invocations):
            if not inv.future.done():
                self.clock.advance(sc.tick)
                if self.clock.turns:
                    self.clock.wait_quiet(self.quiet_timeout)
        return self.summary()

    @property
    def played_seconds(self) -> float:
        """The cluster seconds the figures cover: the scenario's duration, or less when Ctrl-C stopped the run."""
        if self.interrupted_at is not None:
            return min(float(self.interrupted_at), float(self.scenario.duration))
        return float(self.scenario.duration)

    def settled(self, t: float) -> bool:
        """Whether nothing can happen any more before the scenario's end, so that the run may end at ``t`` (the
        scenario plays to its end; a subclass that can tell decides)."""
        return False

    def _decision(self, t: float, kind: str, text: str) -> None:
        self.timeline.event(t, kind, text)
        if self.live is not None:
            self.live.decision(t, text)

    def _faults(self, t: float) -> None:
        for fault in self.scenario.faults:
            if fault.at <= t < fault.at + self.scenario.tick:
                self.faults_injected.append({"at": t, "kind": fault.kind, "group": fault.group})
                self._decision(t, "fault", f"fault: {fault.kind} {fault.group or ''} for {fault.duration:.0f}s")
                self._fault_on(fault, t)
            elif fault.kind == "node-failure" and fault.at < t < fault.at + fault.duration:
                self._fail_nodes(fault, t)  # none was Running yet: fail one as soon as there is one
            end = fault.at + fault.duration
            if end <= t < end + self.scenario.tick:
                self._decision(t, "fault", f"fault over: {fault.kind} {fault.group or ''}")
                self._fault_off(fault)

    def _fault_on(self, fault: Any, t: float) -> None:
        hp = self.aws.hyperpod
        if fault.kind == "capacity-outage" and fault.group:
            hp.capacity_failure(fault.group)
            self._outage_groups.add(fault.group)
        elif fault.kind == "partial-capacity" and fault.group:
            hp.capacity_limit(fault.group, fault.count)
        elif fault.kind == "throttling":
            hp.throttle(fault.rate)
        elif fault.kind == "conflicts":
            hp.conflict_while_updating = True
            hp.conflicts(next_n=max(1, int(fault.rate or 3)))
        elif fault.kind == "delete-failures":
            hp.delete_failures(rate=fault.rate)
        elif fault.kind == "sagemaker-5xx":
            hp.server_errors(rate=fault.rate)
        elif fault.kind == "kube-errors":
            faults = self.kube.random_faults
            faults.rate, faults.codes = fault.rate, tuple(fault.codes)
            faults.hang_rate, faults.hang_seconds = fault.hang_rate, fault.hang_seconds
        elif fault.kind == "lambda-timeouts":
            self.functions.faults.timeout_rate = fault.rate
        elif fault.kind == "lambda-throttling":
            self.functions.faults.throttle_rate = fault.rate
        elif fault.kind == "node-failure":
            self._fail_nodes(fault, t)
        elif fault.kind == "execution-already-exists":
            sfn.lost_start_responses["rate"] = fault.rate

    def _fault_off(self, fault: Any) -> None:
        hp = self.aws.hyperpod
        if fault.kind == "capacity-outage" and fault.group:
            hp.capacity_failure(fault.group, times=0)
            self._outage_groups.discard(fault.group)
        elif fault.kind == "partial-capacity" and fault.group:
            hp.capacity_limit(fault.group, None)
        elif fault.kind == "throttling":
            hp.throttle(0.0)
        elif fault.kind == "conflicts":
            hp.conflicts(next_n=0)
        elif fault.kind == "delete-failures":
            hp.delete_failures(rate=0.0)
        elif fault.kind == "sagemaker-5xx":
            hp.server_errors()
        elif fault.kind == "kube-errors":
            self.kube.random_faults.rate = self.kube.random_faults.hang_rate = 0.0
        elif fault.kind == "lambda-timeouts":
            self.functions.faults.timeout_rate = 0.0
        elif fault.kind == "lambda-throttling":
            self.functions.faults.throttle_rate = 0.0
        elif fault.kind == "execution-already-exists":
            sfn.lost_start_responses["rate"] = 0.0

    def _fail_nodes(self, fault: Any, t: float) -> None:
        """``count`` Running instances (of ``group`` when given, the oldest first) fail after being Ready; when fewer are
        Running, the rest fail as they come up, until the fault's ``duration`` ends."""
        done = self._failed_by.setdefault(id(fault), 0)
        if done >= fault.count:
            return
        hp = self.aws.hyperpod
        with hp.lock:
            running = sorted(
                (i for c in hp.clusters.values() for i in c.instances.values() if i.status == "Running"),
                key=lambda i: (i.launched_at, i.instance_id),
            )
        chosen = [i for i in running if fault.group in (None, i.group)][: fault.count - done]
        self._failed_by[id(fault)] = done + len(chosen)
        for inst in chosen:
            hp.fail_instance(inst.instance_id)
            self._decision(t, "fault", f"node hyperpod-{inst.instance_id} failed ({inst.group})")

    def _jobs(self, t: float) -> None:
        for job in self.scenario.jobs:
            if job.at <= t < job.at + self.scenario.tick:
                for obj in job_manifest(job, t):
                    self.kube.apply(obj)
                self._decision(t, "job", f"{job.count} training pods of Job {job.name} submitted")

    def _drills(self, t: float) -> None:
        arn = self.physical.get("DrillStateMachine")
        for drill in self.scenario.drills:
            if drill.at <= t < drill.at + self.scenario.tick and arn:
                body = {"drill": drill.name, "cluster": self.cluster_name, **drill.input}
                if drill.name == "replace-node" and not body.get("node"):
                    nodes = sorted(
                        self.kube.list("v1", "Node"),
                        key=lambda n: (n["metadata"].get("creationTimestamp", ""), n["metadata"]["name"]),
                    )
                    if not nodes:
                        self._decision(t, "drill", "drill replace-node skipped: no node to replace")
                        continue
                    body["node"] = nodes[0]["metadata"]["name"]  # the oldest node, as an operator would pick
                started = self._client("stepfunctions").start_execution(
                    stateMachineArn=arn, name=f"drill-{drill.name}-{int(t)}", input=json.dumps(body)
                )
                self.drill_runs.append({"name": drill.name, "arn": started["executionArn"], "at": t, "seconds": None})
                self._decision(t, "drill", f"drill {drill.name} started {json.dumps(drill.input)}")

    def _traffic(self, streams: list[ArrivalStream], t: float) -> None:
        for stream in streams:
            traffic = stream.traffic
            arrived = stream.take(t + self.scenario.tick)
            ready = self._ready_replicas(traffic.deployment, traffic.namespace)
            capacity = int(ready * traffic.per_replica_per_second * self.scenario.tick)
            if traffic.kind == "sqs" and traffic.queue:
                url = self.queues[traffic.queue]
                self._produce(traffic.queue, url, arrived)
                self._consume(traffic.queue, url, capacity)
            elif traffic.kind == "alb" and traffic.load_balancer:
                self._client("cloudwatch").put_metric_data(
                    Namespace="AWS/ApplicationELB",
                    MetricData=[
                        {
                            "MetricName": "RequestCount",
                            "Dimensions": [{"Name": "LoadBalancer", "Value": traffic.load_balancer}],
                            "Timestamp": to_datetime(self.clock.now()),
                            "Value": float(arrived),
                            "Unit": "Count",
                        }
                    ],
                )

    def _produce(self, queue: str, url: str, count: int) -> None:
        """``count`` requests arrive as messages. Straight into moto's queue model (in this process): its SendMessage
        re-computes every queue attribute, a scan of the whole queue, per message."""
        if count <= 0:
            return
        try:
            from moto.sqs.models import Message, sqs_backends

            model = sqs_backends[ACCOUNT][REGION].get_queue(queue)
            batch = []
            for _ in range(count):
                message = Message(str(uuid.uuid4()), "req")
                message.mark_sent()
                batch.append(message)
            with model._messages_lock:
                model._messages.extend(batch)
                model._messages_lock.notify_all()
        except (ImportError, KeyError, AttributeError, TypeError):
            sqs = self._client("sqs")
            for start in range(0, count, 10):
                n = min(10, count - start)
                sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "req"} for i in range(n)])

    def _consume(self, queue: str, url: str, count: int) -> None:
        """The Deployment's Ready replicas work off up to ``count`` requests a tick. A request taken in one tick is in
        flight (received, not visible: KEDA's ``scaleOnInFlight`` counts it) until it is done and deleted in the next,
        as a consumer that receives, works and deletes. moto's server runs in this process, so the consumer works on its
        queue model directly (receiving and deleting 10 at a time through the API scans the whole queue per call:
        minutes of CPU for a busy hour)."""
        try:
            from moto.sqs.models import sqs_backends

            model = sqs_backends[ACCOUNT][REGION].get_queue(queue)
            with model._messages_lock:
                done = self._in_flight.pop(queue, [])
                if done:
                    gone = {id(m) for m in done}
                    model._messages = [m for m in model._messages if id(m) not in gone]
                taken = model._messages[: max(0, count)]
                for m in taken:
                    m.visible_at = float("inf")  # until deleted (moto's visibility runs on the wall clock)
                self._in_flight[queue] = taken
        except (ImportError, KeyError, AttributeError):
            sqs = self._client("sqs")
            served = 0
            while served < count:
                msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=min(10, count - served)).get(
                    "Messages", []
                )
                if not msgs:
                    return
                sqs.delete_message_batch(
                    QueueUrl=url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)],
                )
                served += len(msgs)

    def _ready_replicas(self, deployment: str, namespace: str) -> int:
        count = 0
        for pod in self._pods:
            meta = pod.get("metadata") or {}
            if meta.get("namespace") != namespace or (meta.get("labels") or {}).get("app") != deployment:
                continue
            if (pod.get("spec") or {}).get("nodeName") and (pod.get("status") or {}).get("phase") == "Running":
                count += 1
        return count

    _pods: list[dict[str, Any]] = []

    # --- observing and the AWS side of metrics, alarms and schedules ---------------------------------------------------

    def _observe(self, t: float) -> None:
        from hyperpod_autoscaler.domain.catalog import Catalog
        from hyperpod_autoscaler.domain.k8s import HP_GROUP_LABEL, INSTANCE_TYPE_LABEL

        catalog = getattr(self, "_catalog", None) or Catalog.builtin()
        self._catalog = catalog
        pods = self.kube.list("v1", "Pod")
        nodes = self.kube.list("v1", "Node")
        self._pods = pods
        per_group: dict[str, int] = {}
        cost = 0.0
        node_names = set()
        for node in nodes:
            meta = node.get("metadata") or {}
            labels = meta.get("labels") or {}
            name = meta.get("name", "")
            node_names.add(name)
            group = labels.get(HP_GROUP_LABEL, "unmanaged")
            per_group[group] = per_group.get(group, 0) + 1
            itype_name = labels.get(INSTANCE_TYPE_LABEL, "")
            cost += catalog[itype_name].price if itype_name in catalog else 0.0
            if name not in self._nodes_seen:
                self._nodes_seen[name] = {"group": group, "created": t, "type": itype_name}
                self.tracker.observe_node(name, t)
                self._decision(t, "node", f"node {name} joined ({group})")
        for name, info in self._nodes_seen.items():
            if name not in node_names and "gone" not in info:
                info["gone"] = t
                self._decision(t, "node", f"node {name} left ({info['group']})")
        for group in self._outage_groups:
            self.fallback_nodes_during_outage = max(
                self.fallback_nodes_during_outage, sum(n for g, n in per_group.items() if g != group)
            )
        pending = running = 0
        bound_now: dict[str, tuple[str, bool]] = {}
        for pod in pods:
            meta = pod.get("metadata") or {}
            uid = meta.get("uid") or f"{meta.get('namespace')}/{meta.get('name')}"
            key = f"{meta.get('namespace')}/{meta.get('name')}"
            phase = (pod.get("status") or {}).get("phase")
            node = (pod.get("spec") or {}).get("nodeName")
            if phase in ("Succeeded", "Failed"):
                continue
            owner = next((str(r.get("kind")) for r in meta.get("ownerReferences") or [] if r.get("controller")), None)
            if node:
                running += 1
                protected = (meta.get("annotations") or {}).get("karpenter.sh/do-not-disrupt") == "true"
                bound_now[uid] = (node, protected)
                self.tracker.observe_bound(uid, key, node, t, owner)
            else:
                pending += 1
                self.tracker.observe_pending(uid, key, t, owner)
        self._observe_gang_jobs(t, pods)
        present = {(p.get("metadata") or {}).get("uid") or "" for p in pods}
        for uid in [u for u, r in self.tracker.records.items() if r.bound_at is None and u not in present]:
            self.tracker.forget(uid)  # deleted while pending (the Deployment scaled down first): not a pod to serve
        for uid, (node, protected) in self._bound_last.items():
            if uid not in bound_now and node not in node_names and protected:
                self.killed_pods.append(uid)  # a do-not-disrupt pod that went with its node, not through a drain
        self._bound_last = bound_now
        self._pending = pending
        replicas = {}
        for dep in self.scenario.deployments:
            replicas[dep.name] = self._ready_replicas(dep.name, dep.namespace)
        self.timeline.samples.append(Sample(t, pending, running, dict(per_group), round(cost, 4), replicas))
        if t % DEMAND_EVERY_SECONDS == 0:
            objects, view = self._engine_view()
            self.demand.observe(t, pods, managed_types(objects, view, catalog))
        if self.live is not None:
            self.live.update(t, pending, running, per_group, cost)

    def _observe_gang_jobs(self, t: float, pods: list[dict[str, Any]]) -> None:
        """A gang Job starts when every one of its pods runs at once (the first time it does)."""
        for job in self.scenario.jobs:
            if not job.gang or job.name in self._gang_started or t < job.at:
                continue
            nodes = [
                str((p.get("spec") or {}).get("nodeName"))
                for p in pods
                if (p.get("metadata") or {}).get("namespace") == job.namespace
                and ((p.get("metadata") or {}).get("labels") or {}).get("job-name") == job.name
                and (p.get("status") or {}).get("phase") == "Running"
            ]
            if len(nodes) >= job.count:
                self._gang_started[job.name] = t
                # it could start once the last node its pods run on joined
                joined = [self._nodes_seen[n]["created"] for n in nodes if n in self._nodes_seen]
                self._gang_startable[job.name] = max(joined, default=t)
                self._decision(t, "job", f"gang Job {job.name} started: all {job.count} pods run")

    def gang_jobs(self) -> list[dict[str, Any]]:
        """Per gang Job: when it started, and the GPU nodes billed while it could not start (every GPU node of the
        cluster from its submission until the last node its pods run on joined, or the end: the run's other GPU work
        counts too, so a scenario that measures this has none). A node bills while it is a Node (Running in HyperPod),
        as EC2 bills an instance from when it is running."""
        catalog = getattr(self, "_catalog", None)
        end = self.played_seconds
        out = []
        for job in self.scenario.jobs:
            if not job.gang:
                continue
            started = self._gang_started.get(job.name)
            until = self._gang_startable.get(job.name, end)
            hours = cost = 0.0
            for info in self._nodes_seen.values():
                itype = catalog[info["type"]] if catalog is not None and info.get("type") in catalog else None
                if itype is None or not itype.gpus:
                    continue
                seconds = max(0.0, min(until, info.get("gone", end)) - max(job.at, info["created"]))
                hours += seconds / 3600
                cost += seconds / 3600 * itype.price
            out.append(
                {
                    "name": job.name,
                    "pods": job.count,
                    "submittedAt": job.at,
                    "startedAt": started,
                    "secondsToStart": None if started is None else round(started - job.at, 1),
                    "gpuNodeHoursWhileWaiting": round(hours, 3),
                    "gpuNodeCostWhileWaiting": round(cost, 2),
                }
            )
        return out

    def _publish_metrics(self, t: float) -> None:
        """What AWS publishes without us: SQS queue depth (every minute, readable in CloudWatch ``queueDeliveryLag``
        seconds later) and, as the CloudWatch agent with Container Insights does, the cluster's pending pods: sampled
        every ``collectionInterval`` seconds, readable ``deliveryLag`` seconds later; each with the sample's own
        timestamp, as the scenario's ``cloudWatch`` model says."""
        cw = self._client("cloudwatch")
        model = self.scenario.cloudwatch
        eks = str(self.wiring.parameters.get("EksClusterName"))
        if t % model.collection_interval < self.scenario.tick - 1e-9:  # the first tick of each collection interval
            stamp = to_datetime(self.clock.now())
            point = ("ContainerInsights", "pod_status_pending", {"ClusterName": eks}, float(self._pending), stamp)
            self._collected.append((t + model.delivery_lag, *point))
        if int(t) % 60 == 0:  # SQS pushes its queue metrics at one-minute intervals
            stamp = to_datetime(self.clock.now())
            sqs = self._client("sqs")
            for name, url in self.queues.items():
                attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
                depth = float(attrs["Attributes"]["ApproximateNumberOfMessages"])
                point = ("AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": name}, depth, stamp)
                self._collected.append((t + model.queue_delivery_lag, *point))
        self._collected.sort(key=lambda p: p[0])
        data = []
        while self._collected and self._collected[0][0] <= t:  # delivered by now
            data.append(self._collected.pop(0)[1:])
        for namespace, metric, dims, value, stamp in data:
            cw.put_metric_data(
                Namespace=namespace,
                MetricData=[
                    {
                        "MetricName": metric,
                        "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
                        "Timestamp": stamp,
                        "Value": value,
                    }
                ],
            )

    def _alarms(self, t: float) -> None:
        cw = self._client("cloudwatch")
        now = to_datetime(self.clock.now())
        for alarm in self.alarms.values():
            if int(t) % evaluation_interval(alarm.period) != 0:
                continue
            window = alarm.period * evaluation_range(alarm)
            stats = cw.get_metric_statistics(
                Namespace=alarm.namespace,
                MetricName=alarm.metric_name,
                Dimensions=[{"Name": k, "Value": v} for k, v in alarm.dimensions.items()],
                StartTime=to_datetime(self.clock.now() - window),
                EndTime=now,
                Period=alarm.period,
                Statistics=[alarm.statistic],
            )
            points = [(p["Timestamp"], float(p[alarm.statistic])) for p in stats.get("Datapoints", [])]
            old = alarm.state
            new = evaluate(alarm, points, now, evaluation_range(alarm))
            if new == old:
                continue
            alarm.state = new
            alarm.history.append((now, new))
            self._decision(t, "alarm", f"alarm {alarm.name}: {old} -> {new}")
            self._deliver(state_change_event(alarm, old, new, now, REGION, ACCOUNT), t)

    def _deliver(self, event: dict[str, Any], t: float) -> None:
        for rule, pattern in self.rules:
            if pattern is None or not matches(pattern, event):
                continue
            for target in rule.targets:
                if target in self.wiring.functions:
                    self.functions.invoke_async(target, event, rule.logical_id)
                    self.decisions += 1

    def scheduled_event(self, rule: str) -> dict[str, Any]:
        """What EventBridge Scheduler delivers for a tick of the schedule rule ``rule`` (a new event id each time)."""
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": ACCOUNT,
            "time": to_datetime(self.clock.now()).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": REGION,
            "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{STACK}-{rule}"],
            "detail": {},
        }

    def _schedules(self, t: float) -> None:
        for rule, _pattern in self.rules:
            if not rule.schedule:
                continue
            due = self._next_schedule.get(rule.logical_id, 0.0)
            if t < due:
                continue
            self._next_schedule[rule.logical_id] = due + parse_rate(self._schedule_expr[rule.logical_id])
            event = self.scheduled_event(rule.logical_id)
            if rule.input:
                event = json.loads(rule.input)
            for target in rule.targets:
                if target in self.wiring.functions:
                    self.functions.invoke_async(target, event, rule.logical_id)

    # --- the result ----------------------------------------------------------------------------------------------------

    def _engine_view(self) -> tuple[Any, Any]:
        """The cluster as the engine reads it: the Kubernetes objects (lenient) and the HyperPod view."""
        from hyperpod_autoscaler.domain.hyperpod import ClusterView
        from hyperpod_autoscaler.domain.objects import parse_objects

        docs = [
            *self.kube.list("v1", "Pod"),
            *self.kube.list("v1", "Node"),
            *self.kube.list("karpenter.sh/v1", "NodePool"),
            *self.kube.list("karpenter.sagemaker.amazonaws.com/v1", "HyperpodNodeClass"),
        ]
        objects = parse_objects(docs, strict=False, ignore_unknown_kinds=True)
        raw = self.aws.hyperpod.observe("DescribeCluster", {"ClusterName": self.cluster_name})  # faults are not ours
        view = ClusterView.from_describe_cluster(raw)
        emulated = self.aws.hyperpod.clusters.get(self.cluster_name)
        for group in view.instance_groups:
            if not group.zones and emulated is not None and group.name in emulated.groups:
                group.zones = [emulated.groups[group.name].zone]  # what ec2:DescribeSubnets answers in AWS
        return objects, view

    def _node_reasons(self) -> tuple[dict[str, int], dict[str, int]]:
        """Nodes created and removed, counted by why: a provision for pending pods or a replacement; a disruption's
        reason (Empty, Underutilized, Drifted, Expired, ...) or, for a node that left with no deprovision, its failure."""
        client = self._client("stepfunctions")
        created_by: dict[str, str] = {}
        removed_by: dict[str, str] = {}
        for logical_id in self.wiring.state_machines:
            arn = self.physical.get(logical_id)
            kind = logical_id.replace("StateMachine", "")
            if not arn or kind not in ("Provision", "Deprovision"):
                continue
            for e in client.list_executions(stateMachineArn=arn).get("executions", []):
                d = client.describe_execution(executionArn=e["executionArn"])
                given = json.loads(d.get("input") or "{}")
                if kind == "Deprovision":
                    for node in given.get("nodes") or []:
                        removed_by.setdefault(node, str(given.get("reason") or "Deprovision"))
                    continue
                output = json.loads(d.get("output") or "{}") if d.get("output") else {}
                why = "Replacement" if str(given.get("claimId", "")).startswith("replace-") else "PendingPods"
                for node in (output.get("nodes") if isinstance(output, dict) else None) or []:
                    created_by.setdefault(node, why)
        created: dict[str, int] = {}
        removed: dict[str, int] = {}
        for name, info in sorted(self._nodes_seen.items()):
            why = created_by.get(name, "Unattributed")
            created[why] = created.get(why, 0) + 1
            if "gone" in info:
                gone = removed_by.get(name, "NodeFailure")
                removed[gone] = removed.get(gone, 0) + 1
        return created, removed

    def verdict(self) -> dict[str, Any]:
        """Did it do a good job: the figures ``hpa_testkit.sandbox.verdict`` defines, with their units in their names."""
        from .report import summarize_times

        delays = {name: self.scenario.delay_for(info["group"]) for name, info in self._nodes_seen.items()}
        from hyperpod_autoscaler.domain.catalog import Catalog

        objects, view = self._engine_view()
        catalog = getattr(self, "_catalog", None) or Catalog.builtin()
        duration = self.played_seconds
        static_hourly, static_nodes = static_baseline_hourly(self.demand.peak_pods, objects, view, catalog)
        created, removed = self._node_reasons()
        beyond = summarize_times(self.tracker.beyond_provisioning(delays))
        return {
            "cost": round(self.timeline.cost(), 3),
            "staticBaselineCost": round(static_hourly * duration / 3600, 3),
            "staticBaselineNodes": static_nodes,
            "karpenterStyleCost": round(priced_over_time(self.demand.points, duration), 3),
            "pendingPodMinutes": round(pending_pod_minutes(self.timeline.samples), 2),
            "timeToCapacityBeyondBootSeconds": {k: beyond[k] for k in ("p50", "p95", "max")},
            "nodesCreatedByReason": created,
            "nodesRemovedByReason": removed,
            "drills": self._drill_outcomes(),
            "violations": {
                "pdb": len(self.kube.store.pdb_violations),
                "doNotDisrupt": len(self.killed_pods),
            },
            "unservedPods": unserved_reasons(self.tracker.unserved(), objects, view, catalog),
            **({"gangJobs": self.gang_jobs()} if any(j.gang for j in self.scenario.jobs) else {}),
        }

    def summary(self) -> dict[str, Any]:
        from .report import summarize_times

        delays = {name: self.scenario.delay_for(info["group"]) for name, info in self._nodes_seen.items()}
        last = self.timeline.samples[-1] if self.timeline.samples else None
        executions = self._executions()
        return {
            "verdict": self.verdict(),
            "scenario": self.scenario.name,
            "clusterSeconds": self.played_seconds if self.interrupted_at is not None else self.scenario.duration,
            "interruptedAt": self.interrupted_at,
            "cloudWatchModel": self.scenario.cloudwatch.summary(),
            "timeToCapacity": summarize_times(self.tracker.times_to_capacity()),
            "timeToCapacityBeyondProvisioning": summarize_times(self.tracker.beyond_provisioning(delays)),
            "timeToCapacityBeyondProvisioningJobPods": summarize_times(self.tracker.beyond_provisioning(delays, "Job")),
            "podsServed": len(self.tracker.served),
            "podsUnserved": self.tracker.unserved(),
            "nodeHours": {g: round(h, 3) for g, h in self.timeline.node_hours().items()},
            "cost": round(self.timeline.cost(), 3),
            "nodesAtEnd": dict(last.nodes) if last else {},
            "scaleToZero": bool(last) and sum(last.nodes.values()) == 0,
            "nodesCreated": len(self._nodes_seen),
            "disruptions": executions.get("Deprovision", 0),
            "provisionExecutions": executions.get("Provision", 0),
            "faultsInjected": self.faults_injected,
            "drills": self._drill_outcomes(),
            "fallbackNodesDuringOutage": self.fallback_nodes_during_outage,
            "pdbViolations": len(self.kube.store.pdb_violations),
            "doNotDisruptViolations": len(self.killed_pods),
            "invocations": len(self.functions.invocations),
            "slowTicks": self.slow_ticks,
            "invocationErrors": [list(e) for e in self.functions.errors[:50]],
            "scaledObjects": self._scaled_objects(),
            "gangJobs": self.gang_jobs(),
        }

    def _scaled_objects(self) -> dict[str, Any]:
        """What ``kubectl get scaledobject`` and ``kubectl describe`` show: the status the pod scaler wrote (conditions,
        health, lastActiveTime) and how many Events of each reason."""
        events: dict[str, dict[str, int]] = {}
        for e in self.kube.list("v1", "Event"):
            ref = e.get("involvedObject") or {}
            if ref.get("kind") == "ScaledObject":
                per = events.setdefault(f"{ref.get('namespace')}/{ref.get('name')}", {})
                per[e["reason"]] = per.get(e["reason"], 0) + 1
        out: dict[str, Any] = {}
        for obj in self.kube.list("keda.sh/v1alpha1", "ScaledObject"):
            key = f"{obj['metadata'].get('namespace')}/{obj['metadata']['name']}"
            status = obj.get("status") or {}
            out[key] = {
                "conditions": {c["type"]: f"{c['status']} ({c['reason']})" for c in status.get("conditions") or []},
                "health": status.get("health", {}),
                "lastActiveTime": status.get("lastActiveTime"),
                "originalReplicaCount": status.get("originalReplicaCount"),
                "events": events.get(key, {}),
            }
        return out

    def _follow_drills(self, t: float) -> None:
        """Note the cluster time at which each drill ended (moto stamps executions with wall time)."""
        client = self._client("stepfunctions")
        for run in self.drill_runs:
            if run["seconds"] is None and client.describe_execution(executionArn=run["arn"])["status"] != "RUNNING":
                run["seconds"] = t - run["at"]

    def _drill_outcomes(self) -> list[dict[str, Any]]:
        """Each drill the scenario started: its name, the execution's status, and how long it ran in cluster seconds
        (None: still running at the end)."""
        client = self._client("stepfunctions")
        return [
            {
                "name": r["name"],
                "status": client.describe_execution(executionArn=r["arn"])["status"],
                "seconds": r["seconds"],
            }
            for r in self.drill_runs
        ]

    def _executions(self) -> dict[str, int]:
        out: dict[str, int] = {}
        client = self._client("stepfunctions")
        for logical_id in self.wiring.state_machines:
            arn = self.physical.get(logical_id)
            if not arn:
                continue
            count = len(client.list_executions(stateMachineArn=arn).get("executions", []))
            out[logical_id.replace("StateMachine", "")] = count
        return out


def _azure_trace_file() -> Path:
    if not AZURE_TRACE.exists():
        raise FileNotFoundError(f"the Azure LLM trace extract {AZURE_TRACE} is missing from the checkout")
    return AZURE_TRACE


def _eval_condition(node: Any, conditions: dict[str, Any], context: dict[str, Any]) -> Any:
    if isinstance(node, dict) and len(node) == 1:
        ((fn, arg),) = node.items()
        if fn == "Fn::Not":
            return not _eval_condition(arg[0], conditions, context)
        if fn == "Fn::Equals":
            a, b = (_eval_condition(x, conditions, context) for x in arg)
            return str(a) == str(b)
        if fn == "Fn::And":
            return all(_eval_condition(x, conditions, context) for x in arg)
        if fn == "Fn::Or":
            return any(_eval_condition(x, conditions, context) for x in arg)
        if fn == "Condition":
            return _eval_condition(conditions.get(arg), conditions, context)
        if fn == "Fn::Join":
            sep, items = arg
            values = [_eval_condition(i, conditions, context) for i in items]
            flat = [str(x) for v in values for x in (v if isinstance(v, list) else [v])]
            return sep.join(flat)
        return resolve(node, context)
    return node
