"""AWS for the tests and the sandbox: moto's server on 127.0.0.1 (real boto3 clients over HTTP), with the HyperPod emulator
(``hyperpod``), Step Functions executing the real ASL with Lambda tasks in-process (``sfn``), and one clock for all.

    aws = AwsEmulator(clock=SimClock()).start()
    sm = aws.client("sagemaker")          # boto3, endpoint_url = the server
    aws.hyperpod.capacity_failure("auto-g6-az1")
    ...
    aws.stop()
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from ..clock import SimClock
from . import sfn
from .hyperpod import HyperPodEmulator, NodeRecord, install

__all__ = ["AwsEmulator", "HyperPodEmulator", "NodeRecord", "wait_for_execution_threads"]

REGION = "us-west-2"
EXECUTION_THREADS = ("(_execution_logic)", "(eval)", "(_exec_and_notify)")
"""The names moto's ASL interpreter gives the threads of an execution (``Thread-N (<target>)``)."""
PROJECT = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_execution_threads(seconds: float) -> bool:
    """Wait (at most ``seconds``) until no thread of moto's ASL interpreter is alive; True when none is. A stopped
    execution's thread ends after its current state: a Task's handler returns, a Wait wakes (on the clock)."""
    deadline = time.monotonic() + seconds
    while True:
        alive = any(t.is_alive() and t.name.endswith(EXECUTION_THREADS) for t in threading.enumerate())
        if not alive or time.monotonic() >= deadline:
            return not alive
        time.sleep(0.02)


class AwsEmulator:
    def __init__(self, clock: Any = None, region: str = REGION, provisioning_delay: float = 60.0) -> None:
        self.clock = clock or SimClock()
        self.region = region
        self.hyperpod = HyperPodEmulator(now=self.clock.now, provisioning_delay=provisioning_delay)
        self.port = 0
        self.endpoint_url = ""
        self._server: Any = None
        self._env: dict[str, str | None] = {}

    def start(self) -> AwsEmulator:
        import logging

        from .server import moto_server

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.port = _free_port()
        for key, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": self.region,
            "MOTO_PORT": str(self.port),
            # moto's EC2 otherwise registers ~1,300 public AMIs with a volume and a snapshot each at every reset; the
            # autoscaler reads subnets only
            "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
        }.items():
            self._env.setdefault(key, os.environ.get(key))
            os.environ[key] = value
        self._server = moto_server("127.0.0.1", self.port)
        self._server.start()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        install(self.hyperpod)
        sfn.install(self.clock)
        self._config({"stepfunctions": {"execute_state_machine": True}})
        return self

    def _config(self, body: dict[str, Any]) -> None:
        req = urllib.request.Request(
            f"{self.endpoint_url}/moto-api/config", data=json.dumps(body).encode(), method="POST"
        )
        req.add_header("Content-Type", "application/json")
        urllib.request.urlopen(req, timeout=10).read()

    def reset(self) -> None:
        self.stop_executions()
        urllib.request.urlopen(
            urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST"), timeout=10
        ).read()
        fresh = HyperPodEmulator(now=self.clock.now, provisioning_delay=self.hyperpod.provisioning_delay)
        self.hyperpod = fresh
        install(fresh)
        sfn.install(self.clock)
        self._config({"stepfunctions": {"execute_state_machine": True}})

    def stop_executions(self, wait_seconds: float = 10.0) -> None:
        """Stop every running execution and wait (bounded) until moto's threads for them are over. moto runs each in
        threads of this process and routes its Lambda tasks to the handlers registered *now*: one left running past its
        emulator (a test that started one and ended) ran its task after the test had restored the environment, and
        cached clients for a server that was gone under the next test's keys (the next test's provision failed with
        EndpointConnectionError)."""
        with contextlib.suppress(Exception):  # best effort: the server may be gone already
            sfn = self.client("stepfunctions")
            for machine in sfn.list_state_machines().get("stateMachines", []):
                running = sfn.list_executions(stateMachineArn=machine["stateMachineArn"], statusFilter="RUNNING")
                for e in running.get("executions", []):
                    sfn.stop_execution(executionArn=e["executionArn"], error="EmulatorStopped")
        wait_for_execution_threads(wait_seconds)

    def stop(self) -> None:
        if self._server is not None:
            self.stop_executions()
            self._server.stop()
            self._server = None
        for key, value in self._env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def __enter__(self) -> AwsEmulator:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def client(self, service: str, retries: int | None = None, region: str | None = None) -> Any:
        config = Config(retries={"total_max_attempts": retries, "mode": "standard"}) if retries else None
        return boto3.client(
            service,
            region_name=region or self.region,
            endpoint_url=self.endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=config,
        )

    # --- the HyperPod cluster --------------------------------------------------------------------------------------------

    def create_hyperpod_cluster(self, spec: dict[str, Any] | None = None) -> str:
        """A cluster like ``examples/cluster.json`` (the seed), with its subnets created in moto's EC2 so that
        ``ec2:DescribeSubnets`` gives their zones."""
        spec = spec or json.loads((PROJECT / "examples" / "cluster.json").read_text())
        ec2 = self.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        zones = ["us-west-2a", "us-west-2b", "us-west-2c", "us-west-2d"]
        mapping: dict[str, str] = {}
        for i, group in enumerate(spec.get("InstanceGroups") or []):
            subnets = ((group.get("OverrideVpcConfig") or {}).get("Subnets")) or []
            new_ids = []
            for sub in subnets:
                zone = zones[i % len(zones)] if not mapping.get(sub) else mapping[sub]
                created = ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{len(mapping) + 1}.0/24", AvailabilityZone=zone)
                real = created["Subnet"]["SubnetId"]
                mapping[sub] = zone
                self.hyperpod.subnet_zones[real] = zone
                new_ids.append(real)
            if new_ids:
                group.setdefault("OverrideVpcConfig", {})["Subnets"] = new_ids
        return self.hyperpod.create_cluster(spec)

    def connect_kubernetes(self, kube: Any, catalog: Any = None) -> None:
        """Register each Running instance as a Kubernetes Node (HyperPod's labels, the catalog's allocatable), mark it
        NotReady when the instance fails, and remove it when the instance is gone."""
        from ..nodes import node_failed, node_manifest

        def running(rec: NodeRecord) -> None:
            kube.apply(node_manifest(rec, catalog))

        def gone(rec: NodeRecord) -> None:
            kube.delete("v1", "Node", rec.node_name)

        def failed(rec: NodeRecord) -> None:
            node_failed(kube, rec.node_name)

        self.hyperpod.on_running.append(running)
        self.hyperpod.on_gone.append(gone)
        self.hyperpod.on_failed.append(failed)
