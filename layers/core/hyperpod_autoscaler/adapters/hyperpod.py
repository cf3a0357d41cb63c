"""The HyperPod port on boto3's ``sagemaker`` client.

botocore's own retries are limited to one attempt (``client(...)`` below): throttling, conflicts, 5xx answers and
timeouts surface at once as the project's ``Throttled`` / ``ClusterBusy`` / ``Unavailable`` (``adapters.errors``) and
the Step Functions Retry (exponential backoff, full jitter, capped) owns the waiting, visibly, the same in AWS and in
tests. Connect and read timeouts are short: a hung call fails in seconds, well inside the function's own timeout.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..domain.errors import ClusterBusy, InvalidRequest, NotFound, Throttled, Unavailable
from ..domain.hyperpod import ClusterView
from ..ports.hyperpod import ClusterNode, DeleteResult, ScaleIntent, ScaleIntents, ScaleResult
from .errors import to_project_error

log = logging.getLogger(__name__)

DELETE_BATCH = 50
SUBNET_CACHE_SECONDS = 3600.0
READ_ATTEMPTS = 4
READ_BACKOFF_SECONDS = 0.2
CONNECT_TIMEOUT_SECONDS = 3.0
READ_TIMEOUT_SECONDS = 10.0
READ_BUDGET_SECONDS = 12.0
"""No read retry starts after this much real time: hung calls (a read timeout each) must not eat the function's time."""


def translate(exc: ClientError | BotoCoreError, what: str) -> Exception:
    """A boto3 error as the project's own error type (Step Functions matches these names)."""
    return to_project_error(exc, what) or InvalidRequest(f"{what}: {exc}")


def sagemaker_config() -> Any:
    """One attempt (the state machines retry), and timeouts that end a hung call in seconds."""
    from botocore.config import Config

    return Config(
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
    )


DESIRED_STATE = {
    "MinCount": "MinInstanceCount",
    "DesiredImageId": "ImageId",
    "DesiredImageReleaseVersion": "ImageReleaseVersion",
    "DesiredLabels": "Labels",
    "DesiredTaints": "Taints",
}
"""DescribeCluster names of a group's declared state and the UpdateCluster members that declare it: echoing the spec
keeps them as they are."""


def shaped(value: Any, shape: Any) -> Any:
    """``value`` cut down to what botocore's ``shape`` accepts: structure members it does not have are dropped (after
    renaming ``DESIRED_STATE`` names), recursively through structures and lists."""
    if shape.type_name == "structure" and isinstance(value, dict):
        renamed = {DESIRED_STATE.get(k, k): v for k, v in value.items()}
        return {k: shaped(v, shape.members[k]) for k, v in renamed.items() if k in shape.members and v is not None}
    if shape.type_name == "list" and isinstance(value, list):
        return [shaped(v, shape.member) for v in value]
    return value


def update_group_item(sagemaker: Any, spec: dict[str, Any], count: int) -> dict[str, Any]:
    """One ``UpdateCluster`` InstanceGroups item: the group's DescribeCluster spec, reduced to the members of botocore's
    ClusterInstanceGroupSpecification (DescribeCluster-only fields such as CurrentCount or CurrentImageId would fail
    botocore's parameter validation), with ``InstanceCount`` set to ``count``."""
    operation = sagemaker.meta.service_model.operation_model("UpdateCluster")
    item: dict[str, Any] = shaped(spec, operation.input_shape.members["InstanceGroups"].member)
    item["InstanceCount"] = count
    return item


class HyperPodAdapter:
    def __init__(
        self,
        sagemaker: Any,
        ec2: Any,
        cluster_name: str,
        now: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._sleep = sleep
        self.sm = sagemaker
        self.ec2 = ec2
        self.cluster_name = cluster_name
        self._now = now
        self._zones: dict[str, str] = {}
        self._zones_at = 0.0

    def _call(self, what: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
        try:
            return fn(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, what) from None

    def _read(self, what: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
        """A read retried on throttling and 5xx answers (full jitter, ~1.5 s at most): a decision should not fail on a
        busy API. Writes are not retried here; the state machines retry them with their own backoff."""
        began = time.monotonic()
        for attempt in range(READ_ATTEMPTS):
            try:
                return self._call(what, fn, **kwargs)
            except (Throttled, Unavailable):
                if attempt == READ_ATTEMPTS - 1 or time.monotonic() - began > READ_BUDGET_SECONDS:
                    raise
                self._sleep(random.uniform(0, READ_BACKOFF_SECONDS * 2**attempt))
        raise AssertionError("unreachable")

    # --- reads -----------------------------------------------------------------------------------------------------------

    def raw_describe(self) -> dict[str, Any]:
        return dict(self._read("DescribeCluster", self.sm.describe_cluster, ClusterName=self.cluster_name))

    def subnet_zones(self, subnet_ids: list[str]) -> dict[str, str]:
        """Zones of the groups' subnets (ec2:DescribeSubnets), cached for an hour: subnets do not move."""
        if self._now() - self._zones_at > SUBNET_CACHE_SECONDS:
            self._zones = {}
        missing = sorted(set(subnet_ids) - set(self._zones))
        if missing:
            resp = self._read("DescribeSubnets", self.ec2.describe_subnets, SubnetIds=missing)
            for sub in resp.get("Subnets", []):
                self._zones[sub["SubnetId"]] = sub["AvailabilityZone"]
            self._zones_at = self._now()
        return {s: self._zones[s] for s in subnet_ids if s in self._zones}

    def describe_cluster(self) -> ClusterView:
        raw = self.raw_describe()
        subnets = [
            s
            for g in raw.get("InstanceGroups") or []
            for s in ((g.get("OverrideVpcConfig") or {}).get("Subnets") or [])
        ]
        return ClusterView.from_describe_cluster(raw, self.subnet_zones(subnets) if subnets else {})

    def list_nodes(self, group: str | None = None) -> list[ClusterNode]:
        out: list[ClusterNode] = []
        kwargs: dict[str, Any] = {"ClusterName": self.cluster_name, "MaxResults": 100, "IncludeNodeLogicalIds": True}
        if group:
            kwargs["InstanceGroupNameContains"] = group
        while True:
            page = self._read("ListClusterNodes", self.sm.list_cluster_nodes, **kwargs)
            for n in page.get("ClusterNodeSummaries", []):
                if group and n.get("InstanceGroupName") != group:
                    continue  # "contains" also matches longer names
                status = n.get("InstanceStatus") or {}
                launch = n.get("LaunchTime")
                out.append(
                    ClusterNode(
                        instance_id=n["InstanceId"],
                        group=n.get("InstanceGroupName", ""),
                        instance_type=n.get("InstanceType", ""),
                        status=status.get("Status", ""),
                        logical_id=n.get("NodeLogicalId"),
                        message=status.get("Message", ""),
                        launch_time=launch.timestamp() if hasattr(launch, "timestamp") else float(launch or 0),
                    )
                )
            token = page.get("NextToken")
            if not token:
                return out
            kwargs["NextToken"] = token

    # --- writes ----------------------------------------------------------------------------------------------------------

    def scale_up(self, group: str, count: int, client_token: str, intents: ScaleIntents | None = None) -> ScaleResult:
        """Continuous mode: BatchAddClusterNodes, idempotent through the ClientToken. Otherwise UpdateCluster echoing the
        group's spec (as ``update_group_item`` shapes it) with the current TargetCount + count, then a read to verify the
        new target. The count is absolute, so claims on one group are serialized: none writes while the cluster or the
        group is updating (``ClusterBusy``, retried by the state machine, which then re-reads) and HyperPod refuses a
        concurrent UpdateCluster (``ConflictException``, also ``ClusterBusy``). Once accepted the write is never
        repeated: a different target read back is a later change (a node deleted meanwhile), not a lost write.

        UpdateCluster takes no token. With ``intents`` the write is recorded under ``client_token`` just before it is
        made; a retry of the same attempt (its Lambda timed out after the write) finds the record and, if the group's
        target has moved past the base it read, returns the recorded write instead of writing the count again. A
        target at or below that base means the write never took effect (or as many nodes went since): it is written."""
        if count < 1:
            raise InvalidRequest(f"scale_up {group}: count must be >= 1, got {count}")
        raw = self.raw_describe()
        spec = next((g for g in raw.get("InstanceGroups") or [] if g.get("InstanceGroupName") == group), None)
        if spec is None:
            raise NotFound(f"instance group {group} is not in HyperPod cluster {self.cluster_name}")
        if raw.get("NodeProvisioningMode") != "Continuous" and intents is not None:
            prior = intents.recorded(client_token)
            current = int(spec.get("TargetCount", spec.get("CurrentCount", 0)))
            if prior is not None and prior.group == group and current > prior.base:
                log.info(
                    "UpdateCluster %s: the write of attempt %s (target %d -> %d) went through (target now %d); "
                    "not written again",
                    group,
                    client_token,
                    prior.base,
                    prior.target,
                    current,
                )
                return ScaleResult("update", target_count=prior.target, started_at=prior.at)
        if raw.get("NodeProvisioningMode") != "Continuous" and (
            raw.get("ClusterStatus") in ("Updating", "SystemUpdating") or spec.get("Status") == "Updating"
        ):  # an update in progress: its count is not in the view yet, so a count written now could undo it
            raise ClusterBusy(f"cluster {self.cluster_name} is {raw.get('ClusterStatus')}, group {group} is updating")
        if raw.get("NodeProvisioningMode") == "Continuous":
            logical: list[str] = []
            remaining = count
            while remaining > 0:
                n = min(50, remaining)
                resp = self._call(
                    "BatchAddClusterNodes",
                    self.sm.batch_add_cluster_nodes,
                    ClusterName=self.cluster_name,
                    ClientToken=f"{client_token[:56]}-{remaining}",
                    NodesToAdd=[{"InstanceGroupName": group, "IncrementTargetCountBy": n}],
                )
                for failure in resp.get("Failed", []):
                    code = failure.get("ErrorCode", "")
                    text = f"BatchAddClusterNodes {group}: {code}: {failure.get('Message', '')}"
                    if code == "InstanceGroupNotFound":
                        raise NotFound(text)
                    if code == "InvalidInstanceGroupStatus":
                        raise ClusterBusy(text)
                    raise InvalidRequest(text)
                logical.extend(s["NodeLogicalId"] for s in resp.get("Successful", []) if s.get("NodeLogicalId"))
                remaining -= n
            return ScaleResult("add", logical_ids=logical, target_count=int(spec.get("TargetCount", 0)) + count)
        base = int(spec.get("TargetCount", spec.get("CurrentCount", 0)))
        target = base + count  # this view plus this claim
        item = update_group_item(self.sm, spec, target)
        if intents is not None:
            intents.record(client_token, ScaleIntent(group, base, target))
        try:
            self.sm.update_cluster(ClusterName=self.cluster_name, InstanceGroups=[item])
        except ClientError as exc:
            status = int((exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0)
            if intents is not None and 400 <= status < 500:  # refused: nothing written (a 5xx or no answer may have)
                intents.forget(client_token)
            raise translate(exc, "UpdateCluster") from None
        except BotoCoreError as exc:
            raise translate(exc, "UpdateCluster") from None
        after = self.raw_describe()
        now_target = next(
            (
                int(g.get("TargetCount", 0))
                for g in after.get("InstanceGroups") or []
                if g.get("InstanceGroupName") == group
            ),
            -1,
        )
        if now_target != target:  # accepted, so our count is in: writing it again would scale the claim twice
            log.warning(
                "UpdateCluster %s: TargetCount is %d after writing %d (a later change)", group, now_target, target
            )
        return ScaleResult("update", target_count=target)

    def delete_nodes(self, node_ids: list[str] | None = None, logical_ids: list[str] | None = None) -> DeleteResult:
        """BatchDeleteClusterNodes in batches of at most 50, reading ``Failed`` per id (a partial failure is HTTP 200)."""
        result = DeleteResult()
        for key, ids in (("NodeIds", list(node_ids or [])), ("NodeLogicalIds", list(logical_ids or []))):
            for i in range(0, len(ids), DELETE_BATCH):
                batch = ids[i : i + DELETE_BATCH]
                resp = self._call(
                    "BatchDeleteClusterNodes",
                    self.sm.batch_delete_cluster_nodes,
                    ClusterName=self.cluster_name,
                    **{key: batch},
                )
                if key == "NodeIds":
                    result.deleted.extend(resp.get("Successful", []))
                    for f in resp.get("Failed", []):
                        result.failed[f.get("NodeId", "")] = f"{f.get('Code')}: {f.get('Message', '')}"
                else:
                    result.deleted.extend(resp.get("SuccessfulNodeLogicalIds", []))
                    for f in resp.get("FailedNodeLogicalIds", []):
                        result.failed[f.get("NodeLogicalId", "")] = f"{f.get('Code')}: {f.get('Message', '')}"
        return result
