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

    def scale_up(self, group: str, count: int, client_token: str) -> ScaleResult: ...

    def list_nodes(self, group: str | None = None) -> list[ClusterNode]: ...

    def delete_nodes(self, node_ids: list[str] = ..., logical_ids: list[str] = ...) -> DeleteResult: ...
