"""The HyperPod side as the services see it (``adapters.hyperpod`` implements it with boto3)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ..domain.hyperpod import ClusterView


@dataclass(frozen=True)
class ClusterNode:
    instance_id: str
    group: str
    instance_type: str
    status: str
    """Running | Pending | Failure | ShuttingDown | SystemUpdating | DeepHealthCheckInProgress | NotFound"""
    logical_id: str | None = None
    message: str = ""
    launch_time: float = 0.0

    @property
    def node_name(self) -> str:
        """The Kubernetes Node HyperPod registers for the instance."""
        return f"hyperpod-{self.instance_id}"


@dataclass
class ScaleResult:
    mode: str
    """"add" (BatchAddClusterNodes, continuous mode) or "update" (UpdateCluster with an absolute count)."""
    logical_ids: list[str] = field(default_factory=list)
    target_count: int = 0
    started_at: float | None = None
    """When the write was made, if not now: a retried task that finds its own earlier write (the nodes launched since
    then are the claim's)."""


@dataclass(frozen=True)
class ScaleIntent:
    """An ``UpdateCluster`` write a scale task is about to make: the group's target it read (``base``) and the one it
    writes; ``at`` is when it was recorded (epoch seconds, set by the store)."""

    group: str
    base: int
    target: int
    at: float = 0.0


class ScaleIntents(Protocol):
    """Where a scale in ``UpdateCluster`` mode records its write just before making it. ``UpdateCluster`` takes no
    idempotency token, and a task whose Lambda timed out after the write is retried: the retry finds the intent of its
    attempt (by the attempt's client token) and, when the group's target has moved past the base it read, knows the
    write went through instead of adding the claim's count a second time. A write HyperPod answered with a refusal
    (a 4xx: a concurrent update, throttling) is forgotten at once: another claim's write may raise the target before
    the retry, and must not be taken for this one."""

    def recorded(self, token: str) -> ScaleIntent | None: ...

    def record(self, token: str, intent: ScaleIntent) -> None: ...

    def forget(self, token: str) -> None: ...


@dataclass
class DeleteResult:
    deleted: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    """node id -> "Code: message" for the nodes HyperPod did not delete."""


class HyperPodReader(Protocol):
    """The read-only part reconcile needs (it decides; the provision workflow changes the cluster)."""

    def describe_cluster(self) -> ClusterView:
        """The instance-group view, zones filled in."""
        ...


class HyperPodPort(Protocol):
    def describe_cluster(self) -> ClusterView: ...

    def scale_up(
        self, group: str, count: int, client_token: str, intents: ScaleIntents | None = None
    ) -> ScaleResult: ...

    def list_nodes(self, group: str | None = None) -> list[ClusterNode]: ...

    def delete_nodes(self, node_ids: list[str] = ..., logical_ids: list[str] = ...) -> DeleteResult: ...
