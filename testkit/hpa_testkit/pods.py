"""Small manifests for tests: a running pod bound to a node, a PodDisruptionBudget."""

from __future__ import annotations

from typing import Any


def resource_list(cpu: str, memory: str, gpu: int = 0, pods: str | None = None) -> dict[str, str]:
    """A Kubernetes resource list (a container's requests, a node's allocatable): cpu, memory, then pods and
    ``nvidia.com/gpu`` when given."""
    out = {"cpu": cpu, "memory": memory}
    if pods is not None:
        out["pods"] = pods
    if gpu:
        out["nvidia.com/gpu"] = str(gpu)
    return out


def running_pod(
    name: str,
    node: str,
    labels: dict[str, str] | None = None,
    namespace: str = "default",
    annotations: dict[str, str] | None = None,
    owner_kind: str = "ReplicaSet",
    cpu: str = "1",
    gpu: int = 0,
) -> dict[str, Any]:
    requests = resource_list(cpu, "1Gi", gpu)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": dict(labels or {}),
            "annotations": dict(annotations or {}),
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": owner_kind, "name": f"{name}-owner", "uid": "u"}],
        },
        "spec": {
            "nodeName": node,
            "containers": [{"name": "main", "image": "busybox", "resources": {"requests": requests}}],
        },
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }


def pdb(name: str, selector: dict[str, str], min_available: int | str, namespace: str = "default") -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"minAvailable": min_available, "selector": {"matchLabels": selector}},
    }


def pending_pod(
    name: str, cpu: str = "1", namespace: str = "default", owner_kind: str = "ReplicaSet"
) -> dict[str, Any]:
    """A pod kube-scheduler could not place: not bound, ``PodScheduled=False`` reason ``Unschedulable``."""
    pod = running_pod(name, "", namespace=namespace, owner_kind=owner_kind, cpu=cpu)
    del pod["spec"]["nodeName"]
    pod["status"] = {
        "phase": "Pending",
        "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "no node"}],
    }
    return pod
