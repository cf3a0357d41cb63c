"""Small builders of Kubernetes / Karpenter / HyperPod objects for the engine's tests (plain dicts, parsed by the core)."""

from __future__ import annotations

import copy
from typing import Any

from hpa_testkit.nodes import hyperpod_labels, node_object
from hpa_testkit.pods import resource_list
from hyperpod_autoscaler.domain.catalog import Catalog
from hyperpod_autoscaler.domain.hyperpod import ClusterView
from hyperpod_autoscaler.domain.objects import parse_objects
from hyperpod_autoscaler.domain.plan import InflightClaim, Plan, PlanInput, PlanOptions
from hyperpod_autoscaler.domain.scheduling import schedule

#: group -> (instance type, zone)
GROUPS: dict[str, tuple[str, str]] = {
    "auto-g6-az1": ("ml.g6.xlarge", "us-west-2a"),
    "auto-g6-4xaz2": ("ml.g6.4xlarge", "us-west-2b"),
    "cpu-m5-az1": ("ml.m5.2xlarge", "us-west-2a"),
    "cpu-m5-az2": ("ml.m5.2xlarge", "us-west-2b"),
    "cpu-c5-az3": ("ml.c5.xlarge", "us-west-2c"),
    "g5-12x-az1": ("ml.g5.12xlarge", "us-west-2a"),
    "g6-48x-az2": ("ml.g6.48xlarge", "us-west-2b"),
}


def pod(
    name: str,
    cpu: str = "1",
    memory: str = "256Mi",
    gpu: int = 0,
    ns: str = "default",
    labels: dict[str, str] | None = None,
    node: str | None = None,
    **spec: Any,
) -> dict[str, Any]:
    requests = resource_list(cpu, memory, gpu)
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": f"uid-{ns}-{name}",
            "labels": labels or {"app": name.rsplit("-", 1)[0]},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "rs-1"}],
        },
        "spec": {"containers": [{"name": "c", "resources": {"requests": requests}}], **spec},
        "status": {"phase": "Running" if node else "Pending"},
    }
    if node:
        body["spec"]["nodeName"] = node
    else:
        body["status"]["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]
    return body


def nodeclass(name: str = "hp", groups: list[str] | None = None) -> dict[str, Any]:
    groups = groups or list(GROUPS)
    return {
        "apiVersion": "karpenter.sagemaker.amazonaws.com/v1",
        "kind": "HyperpodNodeClass",
        "metadata": {"name": name},
        "spec": {"instanceGroups": groups},
        "status": {
            "instanceGroups": [
                {
                    "name": g,
                    "instanceTypes": [GROUPS[g][0]],
                    "subnets": [{"id": f"subnet-{g}", "zone": GROUPS[g][1]}],
                }
                for g in groups
            ]
        },
    }


def nodepool(
    name: str = "default",
    requirements: list[dict[str, Any]] | None = None,
    nodeclass_name: str = "hp",
    weight: int | None = None,
    limits: dict[str, Any] | None = None,
    taints: list[dict[str, Any]] | None = None,
    labels: dict[str, str] | None = None,
    kind: str = "HyperpodNodeClass",
    group: str = "karpenter.sagemaker.amazonaws.com",
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "template": {
            "metadata": {"labels": labels or {}},
            "spec": {
                "nodeClassRef": {"group": group, "kind": kind, "name": nodeclass_name},
                "requirements": requirements or [],
                "taints": taints or [],
            },
        }
    }
    if weight is not None:
        spec["weight"] = weight
    if limits is not None:
        spec["limits"] = limits
    return {"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": name}, "spec": spec}


def node(
    name: str,
    group: str = "cpu-m5-az1",
    cpu: str = "8",
    memory: str = "32Gi",
    gpu: int = 0,
    labels: dict[str, str] | None = None,
    taints: list[dict[str, Any]] | None = None,
    unschedulable: bool = False,
    ready: bool = True,
) -> dict[str, Any]:
    itype, zone = GROUPS[group]
    alloc = resource_list(cpu, memory, gpu, pods="110")
    return node_object(
        name,
        {**hyperpod_labels(name, itype, zone, group), **(labels or {})},
        alloc,
        spec={"taints": taints or [], "unschedulable": unschedulable},
        capacity=alloc,
        ready={"status": "True" if ready else "False"},
    )


def daemonset(cpu: str, memory: str = "128Mi", name: str = "ds", **spec: Any) -> dict[str, Any]:
    """A DaemonSet in kube-system whose pods request ``cpu`` and ``memory`` (``spec``: more of its pod spec)."""
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": "kube-system"},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": memory}}}],
                    **spec,
                },
            },
        },
    }


def cluster(groups: list[str] | None = None) -> ClusterView:
    groups = groups or list(GROUPS)
    return ClusterView.from_describe_cluster(
        {
            "ClusterName": "c",
            "ClusterArn": "arn:aws:sagemaker:us-west-2:123456789012:cluster/abcd1234efgh",
            "ClusterStatus": "InService",
            "NodeProvisioningMode": "Continuous",
            "InstanceGroups": [
                {
                    "InstanceGroupName": g,
                    "InstanceType": GROUPS[g][0],
                    "CurrentCount": 0,
                    "TargetCount": 0,
                    "Status": "InService",
                    "ExecutionRole": "arn:aws:iam::123456789012:role/r",
                    "LifeCycleConfig": {"SourceS3Uri": "s3://b/", "OnCreate": "x.sh"},
                    "ThreadsPerCore": 1,
                    "OverrideVpcConfig": {"SecurityGroupIds": ["sg-1"], "Subnets": [f"subnet-{g}"]},
                }
                for g in groups
            ],
        }
    )


def plan_input(
    objects: list[dict[str, Any]],
    inflight: list[InflightClaim] | None = None,
    unavailable: dict[str, str] | None = None,
    catalog: Catalog | None = None,
) -> PlanInput:
    """The engine's input for these objects, on ``cluster()`` and the builtin catalog."""
    parsed = parse_objects(copy.deepcopy(objects))
    return PlanInput(
        pods=parsed.pending_pods,
        nodes=parsed.nodes,
        bound_pods=parsed.bound_pods,
        nodepools=parsed.nodepools,
        nodeclasses=parsed.nodeclasses,
        cluster=cluster(),
        catalog=catalog or Catalog.builtin(),
        daemonsets=parsed.daemonsets,
        inflight=inflight or [],
        unavailable_groups=unavailable or {},
    )


def plan(
    objects: list[dict[str, Any]],
    inflight: list[InflightClaim] | None = None,
    unavailable: dict[str, str] | None = None,
    options: PlanOptions | None = None,
    catalog: Catalog | None = None,
) -> Plan:
    return schedule(
        plan_input(objects, inflight, unavailable, catalog), options or PlanOptions(time_budget_seconds=0.2)
    )


def groups_of(p: Plan) -> dict[str, str]:
    """pod key -> instance group of the claim it went to (or the node name for existing nodes)."""
    out: dict[str, str] = {}
    for c in p.node_claims:
        for k in c.pods:
            out[k] = c.instance_group
    for n, pods in p.existing_nodes.items():
        for k in pods:
            out[k] = n
    return out
