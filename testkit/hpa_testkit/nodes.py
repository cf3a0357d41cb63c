"""The Kubernetes Node that HyperPod registers for an instance: ``hyperpod-<InstanceId>``, HyperPod's labels, and the
catalog's capacity and allocatable (the same overhead model the engine plans with)."""

from __future__ import annotations

from typing import Any

from hyperpod_autoscaler.domain.catalog import Catalog
from hyperpod_autoscaler.domain.quantity import format_bytes, format_cpu
from hyperpod_autoscaler.domain.resources import CPU, GPU, MEMORY, NEURON, PODS


def _quantities(resources: Any) -> dict[str, str]:
    out = {
        "cpu": format_cpu(resources.get(CPU, 0)),
        "memory": format_bytes(resources.get(MEMORY, 0)),
        "pods": str(resources.get(PODS, 110)),
    }
    if resources.get(GPU, 0):
        out["nvidia.com/gpu"] = str(resources[GPU])
    if resources.get(NEURON, 0):
        out["aws.amazon.com/neuron"] = str(resources[NEURON])
    return out


def hyperpod_labels(name: str, instance_type: str, zone: str, group: str) -> dict[str, str]:
    """The labels a Schedulable HyperPod node carries (the cluster's name aside)."""
    return {
        "kubernetes.io/hostname": name,
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": instance_type,
        "topology.kubernetes.io/zone": zone,
        "sagemaker.amazonaws.com/compute-type": "hyperpod",
        "sagemaker.amazonaws.com/instance-group-name": group,
        "sagemaker.amazonaws.com/node-health-status": "Schedulable",
    }


def node_object(
    name: str,
    labels: dict[str, str],
    allocatable: dict[str, str],
    spec: dict[str, Any] | None = None,
    capacity: dict[str, str] | None = None,
    ready: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A Node: its labels, spec, allocatable (and capacity) and, when given, its ``Ready`` condition."""
    status: dict[str, Any] = {"allocatable": allocatable}
    if capacity is not None:
        status["capacity"] = capacity
    if ready is not None:
        status["conditions"] = [{"type": "Ready", **ready}]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": spec or {},
        "status": status,
    }


def node_manifest(record: Any, catalog: Catalog | None = None) -> dict[str, Any]:
    itype = (catalog or Catalog.builtin())[record.instance_type]
    name = f"hyperpod-{record.instance_id}"
    labels = hyperpod_labels(name, record.instance_type, record.zone, record.group)
    return node_object(
        name,
        {**labels, "sagemaker.amazonaws.com/cluster-name": record.cluster},
        _quantities(itype.allocatable),
        spec={"providerID": f"aws:///{record.zone}/{record.instance_id}"},
        capacity=_quantities(itype.capacity),
        ready={"status": "True", "reason": "KubeletReady"},
    )


UNREACHABLE = "node.kubernetes.io/unreachable"


def node_failed(kube: Any, name: str) -> None:
    """What the cluster shows when a Ready node's instance fails: the node lifecycle controller sets ``Ready`` Unknown,
    taints the node ``unreachable:NoExecute`` and evicts its pods (the taint's default toleration is modelled as spent at
    once), and HyperPod's health agent labels it ``Unschedulable``. The pods' controllers re-create them elsewhere."""
    node = kube.get("v1", "Node", name)
    if node is None:
        return
    labels = {**node["metadata"].get("labels", {}), "sagemaker.amazonaws.com/node-health-status": "Unschedulable"}
    taints = [t for t in (node.get("spec") or {}).get("taints") or [] if t.get("key") != UNREACHABLE]
    taints.append({"key": UNREACHABLE, "effect": "NoExecute"})
    kube.apply(
        {
            **node,
            "metadata": {k: v for k, v in {**node["metadata"], "labels": labels}.items() if k != "resourceVersion"},
            "spec": {**(node.get("spec") or {}), "taints": taints},
            "status": {
                **(node.get("status") or {}),
                "conditions": [{"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown"}],
            },
        }
    )
    for pod in kube.list("v1", "Pod"):
        if (pod.get("spec") or {}).get("nodeName") == name:
            # involuntary (the node is gone from under them): PDBs do not govern it, as for a controller's scale-down
            kube.delete("v1", "Pod", pod["metadata"]["name"], pod["metadata"]["namespace"], scale_down=True)
