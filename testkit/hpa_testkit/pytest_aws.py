"""pytest fixtures for AWS: moto's server with the HyperPod emulator on a simulated clock, and ``stack``: the project's
resources created there as template.yaml wires them (table, the seed HyperPod cluster, the real state machines with their
Lambda tasks routed to the real handlers), connected to the Kubernetes emulator."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import logging
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from hpa_testkit.aws import AwsEmulator, sfn
from hpa_testkit.clock import SimClock
from hpa_testkit.kube import KubeEmulator

PROJECT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
REGION = "us-west-2"
FUNCTIONS = sorted(p.parent.name for p in (PROJECT / "functions").glob("*/app.py"))
"""Every function in the project; the workflow task functions are also routed as the state machines' Lambda tasks."""
ROUTED = ("provision", "deprovision")


def load_handler(name: str) -> ModuleType:
    path = PROJECT / "functions" / name / "app.py"
    spec = importlib.util.spec_from_file_location(f"hpa_fn_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def function_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:hpa-{name}"


@dataclass
class Stack:
    aws: AwsEmulator
    kube: KubeEmulator
    clock: SimClock
    cluster_name: str
    table: str
    machines: dict[str, str] = field(default_factory=dict)
    handlers: dict[str, ModuleType] = field(default_factory=dict)

    @property
    def sfn(self) -> Any:
        return self.aws.client("stepfunctions")

    def run(
        self, machine: str, payload: dict[str, Any], name: str | None = None, timeout: float = 60.0
    ) -> dict[str, Any]:
        client = self.sfn
        kwargs: dict[str, Any] = {
            "stateMachineArn": self.machines[machine],
            "input": json.dumps(payload),
            "name": name or uuid.uuid4().hex,
        }
        arn = client.start_execution(**kwargs)["executionArn"]
        out = sfn.wait_for(client, arn, timeout=timeout)
        out["history"] = sfn.history(client, arn)
        return out

    def seed(self) -> None:
        """The seed's HyperpodNodeClass and NodePools (``examples/seed``), as a user would apply them."""
        from hpa_testkit.sandbox.runner import load_yaml_objects

        for name in ("nodeclass.yaml", "nodepool.yaml"):
            for obj in load_yaml_objects(PROJECT / "examples" / "seed" / name):
                self.kube.apply(obj)

    def executions(self, machine: str) -> list[dict[str, Any]]:
        return list(self.sfn.list_executions(stateMachineArn=self.machines[machine])["executions"])

    def wait_all(self, machine: str, timeout: float = 60.0) -> list[dict[str, Any]]:
        return [sfn.wait_for(self.sfn, e["executionArn"], timeout=timeout) for e in self.executions(machine)]

    @contextlib.contextmanager
    def log_lines(self, function: str) -> Iterator[list[dict[str, Any]]]:
        """The JSON lines the function's Powertools logger writes meanwhile: its own and, bridged to it, the services'
        standard-library loggers' (what CloudWatch Logs would hold). Filled when the block ends."""
        handler = self.handlers[function].logger.registered_handler
        buffer = io.StringIO()
        old = handler.setStream(buffer)
        lines: list[dict[str, Any]] = []
        try:
            yield lines
        finally:
            handler.setStream(old)
            lines.extend(json.loads(line) for line in buffer.getvalue().splitlines() if line.startswith("{"))

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        from hpa_testkit.sandbox.runner import LambdaContext

        return self.handlers[function].handler(event, LambdaContext(function, self.clock.now() + 60, self.clock))  # type: ignore[arg-type]


def _unbridge_package_logger() -> None:
    """Undo what the handlers' ``copy_config_to_registered_loggers`` did to the package's logger (the Powertools handler,
    no propagation): the test process goes on, and pytest's ``caplog`` reads what propagates to the root logger."""
    package = logging.getLogger("hyperpod_autoscaler")
    package.handlers = []
    package.propagate = True
    package.setLevel(logging.NOTSET)


@pytest.fixture
def sim_clock() -> SimClock:
    return SimClock()


@pytest.fixture
def aws(sim_clock: SimClock) -> Iterator[AwsEmulator]:
    emu = AwsEmulator(clock=sim_clock).start()
    emu.reset()
    sfn.retry_intervals.clear()
    sfn.waits.clear()
    sfn.lambda_faults.clear()
    sfn.lambda_faults_served.clear()
    try:
        yield emu
    finally:
        emu.stop()


@contextlib.contextmanager
def open_stack(aws: AwsEmulator, kube: KubeEmulator, kubeconfig: str, sim_clock: SimClock) -> Iterator[Stack]:
    """The project's resources on running emulators, as template.yaml wires them (the ``stack`` fixture; the fault soak
    benchmark uses it directly)."""
    from hyperpod_autoscaler import runtime

    ddb = aws.client("dynamodb")
    table = "hpa-state"
    ddb.create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    )
    aws.create_hyperpod_cluster()
    aws.connect_kubernetes(kube)
    env = {
        "AWS_ENDPOINT_URL": aws.endpoint_url,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "HYPERPOD_CLUSTER_NAME": "hyperpod-eks-demo",
        "EKS_CLUSTER_NAME": "hyperpod-eks-demo",
        "TABLE_NAME": table,
        "KUBECONFIG": kubeconfig,
        "METRICS_SINK": "api",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "test",
    }
    before = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    runtime.use_clock(sim_clock.now, sim_clock.sleep)
    s = Stack(aws, kube, sim_clock, "hyperpod-eks-demo", table)
    for name in ROUTED:
        s.handlers[name] = load_handler(name)
        sfn.route_lambda(function_arn(name), s.handlers[name].handler)
    client = aws.client("stepfunctions")
    s.machines["provision"] = sfn.create_state_machine(
        client,
        "provision",
        PROJECT / "statemachines" / "provision.asl.json",
        {"ProvisionFunctionArn": function_arn("provision"), "RegistrationTimeoutSeconds": 1200},
    )
    s.machines["deprovision"] = sfn.create_state_machine(
        client,
        "deprovision",
        PROJECT / "statemachines" / "deprovision.asl.json",
        {"DeprovisionFunctionArn": function_arn("deprovision")},
    )
    s.machines["drill"] = sfn.create_state_machine(
        client,
        "drill",
        PROJECT / "statemachines" / "drill.asl.json",
        {
            "ProvisionFunctionArn": function_arn("provision"),
            "ProvisionStateMachineArn": s.machines["provision"],
            "DeprovisionStateMachineArn": s.machines["deprovision"],
        },
    )
    machine_env = {
        "PROVISION_STATE_MACHINE_ARN": s.machines["provision"],
        "DEPROVISION_STATE_MACHINE_ARN": s.machines["deprovision"],
        "RECHECK_BUDGET_SECONDS": "0",
    }
    before.update({k: os.environ.get(k) for k in machine_env})
    os.environ.update(machine_env)
    for name in FUNCTIONS:
        if name not in s.handlers:
            s.handlers[name] = load_handler(name)
    try:
        yield s
    finally:
        runtime.use_clock(__import__("time").time, __import__("time").sleep)
        runtime.reset()
        _unbridge_package_logger()
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture
def stack(aws: AwsEmulator, kube: KubeEmulator, kubeconfig: str, sim_clock: SimClock) -> Iterator[Stack]:
    with open_stack(aws, kube, kubeconfig, sim_clock) as s:
        yield s
