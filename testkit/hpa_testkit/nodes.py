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


def node_manifest(record: Any, catalog: Catalog | None = None) -> dict[str, Any]:
    itype = (catalog or Catalog.builtin())[record.instance_type]
    name = f"hyperpod-{record.instance_id}"
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/os": "linux",
                "node.kubernetes.io/instance-type": record.instance_type,
                "topology.kubernetes.io/zone": record.zone,
                "sagemaker.amazonaws.com/compute-type": "hyperpod",
                "sagemaker.amazonaws.com/instance-group-name": record.group,
                "sagemaker.amazonaws.com/cluster-name": record.cluster,
                "sagemaker.amazonaws.com/node-health-status": "Schedulable",
            },
        },
        "spec": {"providerID": f"aws:///{record.zone}/{record.instance_id}"},
        "status": {
            "capacity": _quantities(itype.capacity),
            "allocatable": _quantities(itype.allocatable),
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
        },
    }


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
