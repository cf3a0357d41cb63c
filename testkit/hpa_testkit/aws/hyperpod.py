"""A HyperPod emulator inside moto's server: the cluster APIs the autoscaler calls, with a realistic node life cycle and
injectable faults.

moto models CreateCluster / DescribeCluster / ListClusterNodes but lacks UpdateCluster, BatchAddClusterNodes and
BatchDeleteClusterNodes, drops the Orchestrator and names nodes ``gpu-0``. This module owns the cluster state and serves
all seven operations from moto's SageMaker endpoint (``install`` adds the methods to moto's ``SageMakerResponse``), on
the wire format botocore expects (awsJson1_1; errors as ``{"__type", "message"}``).

Life cycle on the given clock: an added instance is ``Pending`` and becomes ``Running`` after the group's provisioning
delay (the ``on_running`` hook registers its Kubernetes Node); during a capacity outage a launch ends in ``Failure``
(``InsufficientInstanceCapacity``) after ``failure_delay`` and, in continuous mode, is retried by the service after the delay; under
partial capacity (``capacity_limit``) only the first instances launched get capacity and the others fail the same way;
a deleted instance is ``ShuttingDown`` and gone after ``shutdown_delay`` (``on_gone`` removes the Node).
"""

from __future__ import annotations

import functools
import json
import random
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

CONTINUOUS = "Continuous"
ACCOUNT = "123456789012"


PUBLIC_AMI = "ami-0hyperpodpublic00"


@functools.cache
def _input_shape(operation: str) -> Any:
    from botocore.session import get_session

    return get_session().get_service_model("sagemaker").operation_model(operation).input_shape


def validate_input(operation: str, params: dict[str, Any]) -> str:
    """botocore's parameter validation of ``params`` against the operation's input shape in the sagemaker service
    model, as the real service validates a request: the report, or "" when it is valid."""
    from botocore.validate import ParamValidator

    report = ParamValidator().validate(params, _input_shape(operation))
    return report.generate_report() if report.has_errors() else ""


class HyperPodError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass
class Instance:
    instance_id: str
    logical_id: str
    group: str
    instance_type: str
    zone: str
    status: str
    launched_at: float
    ready_at: float
    gone_at: float | None = None
    message: str = ""
    recover_at: float | None = None


@dataclass
class Group:
    name: str
    instance_type: str
    spec: dict[str, Any]
    zone: str
    target: int = 0
    min_count: int = 0
    status: str = "InService"
    updating_until: float = 0.0


@dataclass
class Cluster:
    name: str
    arn: str
    mode: str | None
    spec: dict[str, Any]
    groups: dict[str, Group]
    instances: dict[str, Instance] = field(default_factory=dict)
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    updating_until: float = 0.0


@dataclass
class NodeRecord:
    """What the hooks get: enough to register (or remove) the Kubernetes Node."""

    instance_id: str
    group: str
    instance_type: str
    zone: str
    cluster: str

    @property
    def node_name(self) -> str:
        return f"hyperpod-{self.instance_id}"


class HyperPodEmulator:
    def __init__(
        self,
        now: Callable[[], float] = time.time,
        provisioning_delay: float = 60.0,
        shutdown_delay: float = 5.0,
        failure_delay: float = 30.0,
        update_duration: float = 20.0,
        seed: int = 7,
    ) -> None:
        self.now = now
        self.provisioning_delay = provisioning_delay
        self.group_delays: dict[str, float] = {}
        self.shutdown_delay = shutdown_delay
        self.failure_delay = failure_delay
        """A launch into a group without capacity is reported ``Failure`` this soon (EC2 answers an insufficient-capacity
        launch at once; HyperPod lists the failed instance within tens of seconds), not after the full boot time."""
        self.update_duration = update_duration
        self.recovery_delay = 600.0
        """With ``NodeRecovery: Automatic``, a failed instance is replaced (Running again) this long after it failed."""
        self.rng = random.Random(seed)
        self.ids = random.Random(seed + 1)
        """Instance and logical ids from a seeded generator: the same run names the same nodes."""
        self.clusters: dict[str, Cluster] = {}
        self.subnet_zones: dict[str, str] = {}
        self.lock = threading.RLock()
        self.on_running: list[Callable[[NodeRecord], None]] = []
        self.on_gone: list[Callable[[NodeRecord], None]] = []
        self.on_failed: list[Callable[[NodeRecord], None]] = []
        self.call_log: list[tuple[float, str, dict[str, Any], str | None]] = []
        # faults
        self.capacity_outages: dict[str, int | None] = {}
        self.capacity_limits: dict[str, int] = {}
        """Partial capacity: group -> how many of its instances can hold capacity (booting or Running) at once."""
        self.throttle_rate = 0.0
        self.throttle_next = 0
        self.throttle_ops: set[str] | None = None
        self.conflict_next = 0
        self.conflict_while_updating = True
        self.delete_fail_rate = 0.0
        self.delete_fail_ids: set[str] = set()
        self.delete_fail_next = 0
        self.server_error_next = 0
        self.server_error_rate = 0.0
        self.server_error_ops: set[str] | None = None
        self.server_error: tuple[str, int] = ("InternalFailure", 500)
        self.hang_next = 0
        self.hang_seconds = 0.0
        self.hang_ops: set[str] | None = None

    # --- faults ----------------------------------------------------------------------------------------------------------

    def capacity_failure(self, group: str, times: int | None = None) -> None:
        """Launches in ``group`` fail (``times`` launches, or until cleared with ``times=0``)."""
        with self.lock:
            if times == 0:
                self.capacity_outages.pop(group, None)
            else:
                self.capacity_outages[group] = times

    def capacity_limit(self, group: str, count: int | None) -> None:
        """Only ``count`` instances of ``group`` can hold capacity at once (booting or Running; the first launched get
        it): a launch past that ends in ``Failure`` (``InsufficientInstanceCapacity``) and HyperPod keeps retrying it in
        the background. ``None`` lifts the limit."""
        with self.lock:
            if count is None:
                self.capacity_limits.pop(group, None)
            else:
                self.capacity_limits[group] = count

    def _starved(self, cluster: Cluster, inst: Instance) -> bool:
        """Whether ``inst`` finds no capacity under its group's partial-capacity limit: the group's Running instances
        and those booting that were launched before it already take all of it."""
        limit = self.capacity_limits.get(inst.group)
        if limit is None:
            return False
        first = (inst.launched_at, inst.instance_id)
        holding = sum(
            1
            for o in cluster.instances.values()
            if o is not inst
            and o.group == inst.group
            and (o.status == "Running" or (o.status == "Pending" and (o.launched_at, o.instance_id) < first))
        )
        return holding >= limit

    def throttle(self, rate: float = 0.0, next_n: int = 0, ops: set[str] | None = None) -> None:
        """Throttle the next ``next_n`` calls, then each call with probability ``rate``; only the operations in ``ops``
        when given (e.g. the writes, whose retries the state machines own)."""
        with self.lock:
            self.throttle_rate = rate
            self.throttle_next = next_n
            self.throttle_ops = set(ops) if ops else None

    def conflicts(self, next_n: int) -> None:
        with self.lock:
            self.conflict_next = next_n

    def delete_failures(self, rate: float = 0.0, ids: set[str] | None = None, next_n: int = 0) -> None:
        """Refuse node deletes (``InvalidNodeStatus``, as HyperPod does for a node it is busy with): the next ``next_n``
        node ids asked for, then each with probability ``rate``, and always those in ``ids``."""
        with self.lock:
            self.delete_fail_rate = rate
            self.delete_fail_ids = set(ids or ())
            self.delete_fail_next = next_n

    def server_errors(
        self,
        next_n: int = 0,
        rate: float = 0.0,
        ops: set[str] | None = None,
        code: str = "InternalFailure",
        status: int = 500,
    ) -> None:
        """Answer the next ``next_n`` calls, then each call with probability ``rate``, with a 5xx (``InternalFailure``
        500 by default; ``ServiceUnavailable`` 503 is the other real one); only the operations in ``ops`` when given.
        Nothing is done for a failed call."""
        with self.lock:
            self.server_error_next = next_n
            self.server_error_rate = rate
            self.server_error_ops = set(ops) if ops else None
            self.server_error = (code, status)

    def hang(self, seconds: float, next_n: int = 1, ops: set[str] | None = None) -> None:
        """Hold the next ``next_n`` calls (of ``ops`` when given) for ``seconds`` of real time before serving them: longer
        than the client's read timeout, the client gives up while the call still takes effect, as a slow API does."""
        with self.lock:
            self.hang_seconds = seconds
            self.hang_next = next_n
            self.hang_ops = set(ops) if ops else None

    def _hang(self, op: str) -> None:
        with self.lock:
            if self.hang_next <= 0 or (self.hang_ops is not None and op not in self.hang_ops):
                return
            self.hang_next -= 1
            seconds = self.hang_seconds
        time.sleep(seconds)  # real time, outside the lock: the client's socket times out meanwhile

    def fail_instance(self, instance_id: str, message: str = "NodeHealthCheckFailed: GPU health check failed") -> bool:
        """A Running instance fails after it was Ready (HyperPod reports ``Failure``); the ``on_failed`` hooks mark its
        Kubernetes Node NotReady. With the cluster's ``NodeRecovery: Automatic`` it is Running (and registered) again
        after ``recovery_delay``, as HyperPod's automatic node recovery does. False when no such Running instance."""
        with self.lock:
            found = None
            for cluster in self.clusters.values():
                inst = cluster.instances.get(instance_id)
                if inst is not None and inst.status == "Running":
                    inst.status, inst.message, inst.ready_at = "Failure", message, float("inf")
                    if cluster.spec.get("NodeRecovery") == "Automatic":  # HyperPod replaces the faulty instance
                        inst.recover_at = self.now() + self.recovery_delay
                    found = NodeRecord(inst.instance_id, inst.group, inst.instance_type, inst.zone, cluster.name)
        if found is None:
            return False
        for hook in self.on_failed:
            hook(found)
        return True

    def delay_for(self, group: str) -> float:
        return self.group_delays.get(group, self.provisioning_delay)

    # --- the cluster -----------------------------------------------------------------------------------------------------

    def create_cluster(self, spec: dict[str, Any]) -> str:
        name = spec["ClusterName"]
        arn = spec.get("ClusterArn") or f"arn:aws:sagemaker:us-west-2:{ACCOUNT}:cluster/{secrets.token_hex(6)}"
        groups: dict[str, Group] = {}
        for g in spec.get("InstanceGroups") or []:
            subnets = ((g.get("OverrideVpcConfig") or {}).get("Subnets")) or []
            zone = next((self.subnet_zones[s] for s in subnets if s in self.subnet_zones), "us-west-2a")
            spec_keep = {
                k: v
                for k, v in g.items()
                if k not in ("CurrentCount", "TargetCount", "Status", "ActiveOperations", "InstanceCount")
            }
            groups[g["InstanceGroupName"]] = Group(
                g["InstanceGroupName"],
                g["InstanceType"],
                spec_keep,
                zone,
                int(g.get("TargetCount", 0)),
                int(g.get("MinCount", 0)),
            )
        with self.lock:
            self.clusters[name] = Cluster(name, arn, spec.get("NodeProvisioningMode"), dict(spec), groups)
        return arn

    def _cluster(self, name: str) -> Cluster:
        cluster = self.clusters.get(name)
        if cluster is None:
            for c in self.clusters.values():
                if c.arn == name:
                    return c
            raise HyperPodError("ResourceNotFound", f"Cluster {name} not found")
        return cluster

    def _faults(self, op: str) -> None:
        if self.server_error_ops is None or op in self.server_error_ops:
            fire = self.server_error_next > 0
            if fire:
                self.server_error_next -= 1
            elif self.server_error_rate and self.rng.random() < self.server_error_rate:
                fire = True
            if fire:
                code, status = self.server_error
                raise HyperPodError(code, "We encountered an internal error. Please try again.", status)
        if self.throttle_ops is None or op in self.throttle_ops:
            if self.throttle_next > 0:
                self.throttle_next -= 1
                raise HyperPodError("ThrottlingException", "Rate exceeded")
            if self.throttle_rate and self.rng.random() < self.throttle_rate:
                raise HyperPodError("ThrottlingException", "Rate exceeded")
        if op in ("UpdateCluster", "BatchAddClusterNodes", "BatchDeleteClusterNodes") and self.conflict_next > 0:
            self.conflict_next -= 1
            raise HyperPodError("ConflictException", "The cluster is being updated by another operation")

    def _launch(self, cluster: Cluster, group: Group, now: float) -> Instance:
        inst = Instance(
            instance_id=f"i-{self.ids.getrandbits(68):017x}",
            logical_id=f"{self.ids.getrandbits(64):016x}",
            group=group.name,
            instance_type=group.instance_type,
            zone=group.zone,
            status="Pending",
            launched_at=now,
            ready_at=now + self.delay_for(group.name),
        )
        cluster.instances[inst.instance_id] = inst
        return inst

    def tick(self) -> None:
        """Advance every instance's life cycle to the clock's time (also done lazily on every call)."""
        running: list[NodeRecord] = []
        gone: list[NodeRecord] = []
        with self.lock:
            now = self.now()
            for cluster in self.clusters.values():
                for group in cluster.groups.values():
                    if group.status == "Updating" and now >= group.updating_until:
                        group.status = "InService"
                if now >= cluster.updating_until and cluster.spec.get("ClusterStatus") == "Updating":
                    cluster.spec["ClusterStatus"] = "InService"
                for inst in list(cluster.instances.values()):
                    if inst.status == "Failure" and inst.recover_at is not None and now >= inst.recover_at:
                        inst.status, inst.message, inst.recover_at = "Running", "", None
                        running.append(
                            NodeRecord(inst.instance_id, inst.group, inst.instance_type, inst.zone, cluster.name)
                        )
                        continue
                    outage = inst.group in self.capacity_outages
                    starved = inst.status in ("Pending", "Failure") and self._starved(cluster, inst)
                    due = inst.ready_at
                    if starved and not outage and inst.status == "Pending":
                        due = min(due, inst.launched_at + self.failure_delay)
                        if now >= due:
                            inst.status = "Failure"
                            inst.message = "InsufficientInstanceCapacity: no capacity for the instance type in the zone"
                            inst.ready_at = now + self.delay_for(inst.group)  # the service retries in the background
                        continue
                    if starved and inst.status == "Failure":
                        if now >= due:
                            inst.ready_at = now + self.delay_for(inst.group)
                        continue
                    if outage and inst.status == "Pending":
                        due = min(due, inst.launched_at + self.failure_delay)
                    if inst.status in ("Pending", "Failure") and now >= due:
                        if outage:
                            remaining = self.capacity_outages[inst.group]
                            if remaining is not None:
                                remaining -= 1
                                if remaining <= 0:
                                    del self.capacity_outages[inst.group]
                                else:
                                    self.capacity_outages[inst.group] = remaining
                            inst.status = "Failure"
                            inst.message = "InsufficientInstanceCapacity: no capacity for the instance type in the zone"
                            inst.ready_at = now + self.delay_for(inst.group)  # the service retries in the background
                        else:
                            inst.status = "Running"
                            inst.message = ""
                            running.append(
                                NodeRecord(inst.instance_id, inst.group, inst.instance_type, inst.zone, cluster.name)
                            )
                    elif inst.status == "ShuttingDown" and inst.gone_at is not None and now >= inst.gone_at:
                        del cluster.instances[inst.instance_id]
                        gone.append(
                            NodeRecord(inst.instance_id, inst.group, inst.instance_type, inst.zone, cluster.name)
                        )
        for rec in running:
            for hook in self.on_running:
                hook(rec)
        for rec in gone:
            for hook in self.on_gone:
                hook(rec)

    # --- operations (wire shapes) ----------------------------------------------------------------------------------------

    def handle(self, op: str, params: dict[str, Any]) -> dict[str, Any]:
        self._hang(op)
        self.tick()
        error: str | None = None
        try:
            with self.lock:
                self._faults(op)
                return getattr(self, f"_op_{op}")(params)
        except HyperPodError as exc:
            error = exc.code
            raise
        finally:
            self.call_log.append((self.now(), op, params, error))

    def observe(self, op: str, params: dict[str, Any]) -> dict[str, Any]:
        """A read by the test harness itself (an observer, a report): no injected fault, hang or call-log entry, so
        that what a test injects for the autoscaler never breaks the harness that watches it."""
        self.tick()
        with self.lock:
            return getattr(self, f"_op_{op}")(params)

    def _group_view(self, cluster: Cluster, group: Group) -> dict[str, Any]:
        insts = [i for i in cluster.instances.values() if i.group == group.name and i.status != "ShuttingDown"]
        running = sum(1 for i in insts if i.status == "Running")
        pending = group.target - running
        view = {
            **group.spec,
            "InstanceGroupName": group.name,
            "InstanceType": group.instance_type,
            "CurrentCount": running,
            "TargetCount": group.target,
            "MinCount": group.min_count,
            "Status": group.status,
            "CurrentImageId": group.spec.get("ImageId", PUBLIC_AMI),  # DescribeCluster-only, as the next two
            "DesiredImageId": group.spec.get("ImageId", PUBLIC_AMI),
            "TargetStateCount": group.target,
        }
        if pending > 0:
            view["ActiveOperations"] = {"Scaling": 1}
        return view

    def _op_DescribeCluster(self, p: dict[str, Any]) -> dict[str, Any]:
        c = self._cluster(p["ClusterName"])
        out = {
            **{k: v for k, v in c.spec.items() if k not in ("InstanceGroups",)},
            "ClusterArn": c.arn,
            "ClusterName": c.name,
            "ClusterStatus": c.spec.get("ClusterStatus", "InService"),
            "CreationTime": datetime(2026, 1, 1, tzinfo=UTC).timestamp(),
            "InstanceGroups": [self._group_view(c, g) for g in c.groups.values()],
        }
        if c.mode:
            out["NodeProvisioningMode"] = c.mode
        return out

    def _op_UpdateCluster(self, p: dict[str, Any]) -> dict[str, Any]:
        report = validate_input("UpdateCluster", p)
        if report:
            raise HyperPodError("ValidationException", f"UpdateCluster input does not match its shape: {report}")
        c = self._cluster(p["ClusterName"])
        now = self.now()
        if self.conflict_while_updating and now < c.updating_until:
            raise HyperPodError("ConflictException", f"Cluster {c.name} is Updating; retry when it is InService")
        items = p.get("InstanceGroups") or []
        for item in items:
            for key in ("InstanceGroupName", "InstanceCount", "ExecutionRole"):
                if key not in item:
                    raise HyperPodError("ValidationException", f"InstanceGroups[].{key} is required")
            if item["InstanceGroupName"] not in c.groups:
                raise HyperPodError("ValidationException", f"Instance group {item['InstanceGroupName']} does not exist")
        for item in items:
            group = c.groups[item["InstanceGroupName"]]
            new = int(item["InstanceCount"])
            alive = [i for i in c.instances.values() if i.group == group.name and i.status != "ShuttingDown"]
            for _ in range(max(0, new - len(alive))):
                self._launch(c, group, now)
            for inst in sorted(alive, key=lambda i: (i.status == "Running", -i.launched_at))[
                : max(0, len(alive) - new)
            ]:
                inst.status, inst.gone_at = "ShuttingDown", now + self.shutdown_delay
            group.target = new
            group.min_count = int(item.get("MinInstanceCount", group.min_count))
            group.status = "Updating"
            group.updating_until = now + self.update_duration
        c.updating_until = now + self.update_duration
        c.spec["ClusterStatus"] = "Updating"
        return {"ClusterArn": c.arn}

    def _op_BatchAddClusterNodes(self, p: dict[str, Any]) -> dict[str, Any]:
        c = self._cluster(p["ClusterName"])
        if c.mode != CONTINUOUS:
            raise HyperPodError("ValidationException", "BatchAddClusterNodes needs NodeProvisioningMode Continuous")
        token = p.get("ClientToken")
        if token and token in c.tokens:
            return c.tokens[token]
        now = self.now()
        ok: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        for item in p.get("NodesToAdd") or []:
            name = item.get("InstanceGroupName")
            n = int(item.get("IncrementTargetCountBy", 0))
            group = c.groups.get(name)
            if group is None:
                failed.append(
                    {
                        "InstanceGroupName": name,
                        "ErrorCode": "InstanceGroupNotFound",
                        "FailedCount": n,
                        "Message": "no such group",
                    }
                )
                continue
            if not 1 <= n <= 50:
                raise HyperPodError("ValidationException", "IncrementTargetCountBy must be between 1 and 50")
            for _ in range(n):
                inst = self._launch(c, group, now)
                ok.append({"NodeLogicalId": inst.logical_id, "InstanceGroupName": name, "Status": "Pending"})
            group.target += n
        result = {"Successful": ok, "Failed": failed}
        if token:
            c.tokens[token] = result
        return result

    def _op_BatchDeleteClusterNodes(self, p: dict[str, Any]) -> dict[str, Any]:
        c = self._cluster(p["ClusterName"])
        ids = list(p.get("NodeIds") or [])
        logical = list(p.get("NodeLogicalIds") or [])
        if len(ids) + len(logical) > 99 or len(ids) > 99:
            raise HyperPodError("ValidationException", "too many node ids")
        now = self.now()
        out: dict[str, Any] = {
            "Successful": [],
            "Failed": [],
            "SuccessfulNodeLogicalIds": [],
            "FailedNodeLogicalIds": [],
        }
        by_logical = {i.logical_id: i for i in c.instances.values()}
        for node_id in ids:
            inst = c.instances.get(node_id)
            if inst is None:
                out["Failed"].append({"Code": "NodeIdNotFound", "Message": f"{node_id} not found", "NodeId": node_id})
                continue
            refuse_next = self.delete_fail_next > 0
            self.delete_fail_next -= 1 if refuse_next else 0
            if (
                refuse_next
                or node_id in self.delete_fail_ids
                or (self.delete_fail_rate and self.rng.random() < self.delete_fail_rate)
            ):
                out["Failed"].append({"Code": "InvalidNodeStatus", "Message": "node is busy", "NodeId": node_id})
                continue
            self._shut_down(c, inst, now)
            out["Successful"].append(node_id)
        for lid in logical:
            inst = by_logical.get(lid)
            if inst is None:
                out["FailedNodeLogicalIds"].append(
                    {"Code": "NodeIdNotFound", "Message": f"{lid} not found", "NodeLogicalId": lid}
                )
                continue
            self._shut_down(c, inst, now)
            out["SuccessfulNodeLogicalIds"].append(lid)
        return out

    def _shut_down(self, c: Cluster, inst: Instance, now: float) -> None:
        if inst.status != "ShuttingDown":
            c.groups[inst.group].target = max(0, c.groups[inst.group].target - 1)
        if inst.status == "Running":
            inst.status, inst.gone_at = "ShuttingDown", now + self.shutdown_delay
        else:
            inst.status, inst.gone_at = "ShuttingDown", now  # never came up: gone at once

    def _node_summary(self, inst: Instance, logical: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "InstanceGroupName": inst.group,
            "InstanceId": inst.instance_id,
            "InstanceType": inst.instance_type,
            "LaunchTime": inst.launched_at,
            "InstanceStatus": {"Status": inst.status, **({"Message": inst.message} if inst.message else {})},
        }
        if logical:
            out["NodeLogicalId"] = inst.logical_id
        return out

    def _op_ListClusterNodes(self, p: dict[str, Any]) -> dict[str, Any]:
        c = self._cluster(p["ClusterName"])
        contains = p.get("InstanceGroupNameContains") or ""
        items = sorted(
            (i for i in c.instances.values() if contains in i.group), key=lambda i: (i.launched_at, i.instance_id)
        )
        size = int(p.get("MaxResults") or 100)
        start = int(p.get("NextToken") or 0)
        page = items[start : start + size]
        out: dict[str, Any] = {
            "ClusterNodeSummaries": [self._node_summary(i, bool(p.get("IncludeNodeLogicalIds"))) for i in page]
        }
        if start + size < len(items):
            out["NextToken"] = str(start + size)
        return out

    def _op_DescribeClusterNode(self, p: dict[str, Any]) -> dict[str, Any]:
        c = self._cluster(p["ClusterName"])
        inst = c.instances.get(p.get("NodeId", "")) or next(
            (i for i in c.instances.values() if i.logical_id == p.get("NodeLogicalId")), None
        )
        if inst is None:
            raise HyperPodError("ResourceNotFound", "node not found")
        details = self._node_summary(inst, True)
        details["Placement"] = {"AvailabilityZone": inst.zone}
        return {"NodeDetails": details}

    def _op_CreateCluster(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"ClusterArn": self.create_cluster({**p, "NodeProvisioningMode": p.get("NodeProvisioningMode")})}


_ACTIVE: list[HyperPodEmulator] = []
OPERATIONS = (
    "CreateCluster",
    "DescribeCluster",
    "UpdateCluster",
    "BatchAddClusterNodes",
    "BatchDeleteClusterNodes",
    "ListClusterNodes",
    "DescribeClusterNode",
)


def _snake(op: str) -> str:
    out = ""
    for ch in op:
        out += ("_" + ch.lower()) if ch.isupper() and out else ch.lower()
    return out


def install(emulator: HyperPodEmulator) -> None:
    """Serve the HyperPod operations of moto's SageMaker endpoint from ``emulator`` (this process's moto server)."""
    from moto.sagemaker.responses import SageMakerResponse

    _ACTIVE[:] = [emulator]

    def make(op: str) -> Callable[[Any], Any]:
        def method(self: Any) -> Any:
            params = json.loads(self.body or "{}")
            try:
                result = _ACTIVE[0].handle(op, params)
            except HyperPodError as exc:
                return json.dumps({"__type": exc.code, "message": exc.message}), {"status": exc.status}
            return json.dumps(result, default=str), {"status": 200}

        method.__name__ = _snake(op)
        return method

    for op in OPERATIONS:
        setattr(SageMakerResponse, _snake(op), make(op))
