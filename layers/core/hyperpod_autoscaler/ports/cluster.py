"""The Kubernetes side as the services see it. The adapter (``adapters.kube``) implements it with the official client;
tests run it against the Kubernetes API emulator."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from ..domain.k8s import Node, Pod, Taint
from ..domain.objects import ClusterObjects

EvictionResult = Literal["evicted", "blocked", "gone", "conflict"]
"""``blocked``: a PodDisruptionBudget refused it (429); ``gone``: no such pod (404); ``conflict``: the API server answered
409, the pod is still there, the next round tries again."""
"""evicted: the API accepted the eviction; blocked: 429, a PodDisruptionBudget refused it (retry later); gone: 404/409."""


@dataclass(frozen=True)
class ObjectRef:
    """What an Event is about."""

    kind: str
    name: str
    namespace: str | None = None
    uid: str | None = None
    api_version: str = "v1"


class ClusterPort(Protocol):
    def snapshot(self) -> ClusterObjects:
        """One consistent view for a decision: nodes read BEFORE pending pods (err toward under-provisioning); pods are the
        provisionable pending pods plus the pods bound to nodes; bad objects are skipped into ``errors``."""
        ...

    def list_scaled_objects(self) -> list[dict[str, Any]]: ...

    def get_node(self, name: str) -> Node | None: ...

    def list_pods_on_node(self, node_name: str) -> list[Pod]: ...

    def taint_node(self, node_name: str, taint: Taint) -> None:
        """Add the taint if absent (idempotent)."""
        ...

    def remove_taint(self, node_name: str, key: str) -> None:
        """Remove every taint with this key (idempotent; a missing node is not an error)."""
        ...

    def cordon(self, node_name: str) -> None: ...

    def uncordon(self, node_name: str) -> None: ...

    def evict(self, namespace: str, name: str) -> EvictionResult:
        """policy/v1 Eviction: 429 -> "blocked", 404/409 -> "gone"."""
        ...

    def delete_pod(self, namespace: str, name: str, grace_period_seconds: int | None = None) -> None: ...

    def record_event(self, ref: ObjectRef, reason: str, message: str, type_: str = "Normal") -> None:
        """Create a Kubernetes Event (deduplicated by ref + reason + message within a short window)."""
        ...

    def set_nodepool_conditions(self, name: str, conditions: list[dict[str, Any]]) -> None:
        """Write status.conditions of a NodePool through the status subresource (merge by type; idempotent)."""
        ...

    def set_nodeclass_status(self, name: str, status: dict[str, Any]) -> None:
        """Write status (conditions, instanceGroups) of a HyperpodNodeClass through the status subresource."""
        ...

    def set_scaled_object_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        """Write status of a ScaledObject through the status subresource (conditions merged by type, the other fields
        replaced; idempotent)."""
        ...

    def label_node(self, node_name: str, labels: dict[str, str]) -> None:
        """Merge ``labels`` into a node's labels (idempotent; a missing node is ignored)."""
        ...

    def annotate_node_once(self, node_name: str, key: str, value: str) -> str | None:
        """Set annotation ``key`` on a node unless it has one; the value in effect afterwards (None: no such node)."""
        ...

    def remove_node_annotation(self, node_name: str, key: str) -> None:
        """Remove annotation ``key`` from a node (idempotent; a missing node is ignored)."""
        ...

    def get_scale(self, kind: str, namespace: str, name: str) -> tuple[int, int]:
        """(spec.replicas, status.replicas) of a Deployment or StatefulSet's scale subresource."""
        ...

    def set_scale(self, kind: str, namespace: str, name: str, replicas: int) -> None: ...

    def set_provisioning_request_status(
        self, namespace: str, name: str, conditions: list[dict[str, Any]], details: dict[str, str] | None = None
    ) -> None:
        """Write status.conditions of a ProvisioningRequest through the status subresource (merged by type;
        ``lastTransitionTime`` changes only when a condition's status does; idempotent), and merge ``details`` into
        status.provisioningClassDetails."""
        ...
