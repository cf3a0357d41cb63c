"""Workloads for the packing benchmarks: Karpenter's scheduling-benchmark setup, and the Alibaba GPU cluster traces."""

from __future__ import annotations

import csv
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hyperpod_autoscaler.domain.catalog import Catalog
from hyperpod_autoscaler.domain.hyperpod import ClusterView
from hyperpod_autoscaler.domain.k8s import Pod
from hyperpod_autoscaler.domain.karpenter import HyperpodNodeClass, NodePool
from hyperpod_autoscaler.domain.objects import parse_object
from hyperpod_autoscaler.domain.plan import PlanInput

SHARED = Path(__file__).resolve().parents[2] / "shared"
ALIBABA = SHARED / "data" / "alibaba_gpu_v2023"
ZONES = ["us-west-2a", "us-west-2b", "us-west-2c"]
#: The HyperPod catalog of the cost benchmark: every ml.c5/m5/g5/g6/g6e/p4d/p5 type of the built-in catalog.
TRACE_FAMILIES = ("ml.c5.", "ml.m5.", "ml.g5.", "ml.g6.", "ml.g6e.", "ml.p4d.", "ml.p5.")


def _pod(name: str, requests: dict[str, Any], labels: dict[str, str], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": name,
            "labels": labels,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "rs"}],
        },
        "spec": {"containers": [{"name": "c", "resources": {"requests": requests}}], **spec},
        "status": {
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}],
        },
    }


def describe_cluster(groups: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """A DescribeCluster response with one empty instance group per ``name -> (instance type, zone)``."""
    return {
        "ClusterName": "bench",
        "ClusterArn": "arn:aws:sagemaker:us-west-2:123456789012:cluster/benchbenchben",
        "ClusterStatus": "InService",
        "NodeProvisioningMode": "Continuous",
        "InstanceGroups": [
            {
                "InstanceGroupName": g,
                "InstanceType": t,
                "CurrentCount": 0,
                "TargetCount": 0,
                "Status": "InService",
                "OverrideVpcConfig": {"SecurityGroupIds": ["sg-1"], "Subnets": [f"subnet-{z}"]},
            }
            for g, (t, z) in groups.items()
        ],
    }


def hyperpod_objects(
    groups: dict[str, tuple[str, str]],
) -> tuple[ClusterView, list[HyperpodNodeClass], list[NodePool]]:
    """A cluster view, HyperpodNodeClasses listing the groups (10 each), and one unconstrained NodePool per class."""
    view = ClusterView.from_describe_cluster(describe_cluster(groups))
    # A HyperpodNodeClass lists at most 10 instance groups: one class (and one NodePool on it) per 10 groups.
    names = list(groups)
    nodeclasses: list[HyperpodNodeClass] = []
    nodepools: list[NodePool] = []
    for k in range(0, len(names), 10):
        chunk = names[k : k + 10]
        cls_name = f"bench-{k // 10}"
        nodeclasses.append(
            parse_object(  # type: ignore[arg-type]
                {
                    "apiVersion": "karpenter.sagemaker.amazonaws.com/v1",
                    "kind": "HyperpodNodeClass",
                    "metadata": {"name": cls_name},
                    "spec": {"instanceGroups": chunk},
                    "status": {
                        "instanceGroups": [
                            {
                                "name": g,
                                "instanceTypes": [groups[g][0]],
                                "subnets": [{"id": f"subnet-{groups[g][1]}", "zone": groups[g][1]}],
                            }
                            for g in chunk
                        ]
                    },
                }
            )
        )
        nodepools.append(
            parse_object(  # type: ignore[arg-type]
                {
                    "apiVersion": "karpenter.sh/v1",
                    "kind": "NodePool",
                    "metadata": {"name": cls_name},
                    "spec": {
                        "template": {
                            "spec": {
                                "nodeClassRef": {
                                    "group": "karpenter.sagemaker.amazonaws.com",
                                    "kind": "HyperpodNodeClass",
                                    "name": cls_name,
                                },
                                "requirements": [],
                            }
                        }
                    },
                }
            )
        )
    return view, nodeclasses, nodepools


# --- Karpenter's benchmark setup -------------------------------------------------------------------------------------


def synthetic_catalog(count: int = 400) -> tuple[Catalog, dict[str, tuple[str, str]]]:
    """Type i: i+1 vCPU, 2(i+1) GiB, 10(i+1) pods, in 3 zones (one HyperPod group per type and zone). HyperPod has no spot:
    the on-demand half of Karpenter's offerings. Price grows with size (a fixed per-vCPU and per-GiB rate)."""
    entries = []
    groups: dict[str, tuple[str, str]] = {}
    for i in range(count):
        name = f"ml.syn{i + 1}.x"
        entries.append(
            {
                "name": name,
                "vcpu": i + 1,
                "memoryGiB": 2 * (i + 1),
                "gpus": 0,
                "maxPods": 10 * (i + 1),
                "pricePerHour": round(0.04 * (i + 1) + 0.005 * 2 * (i + 1), 4),
            }
        )
        for z, zone in enumerate(ZONES):
            groups[f"syn{i + 1}-z{z}"] = (name, zone)
    return Catalog.builtin().with_overrides({"instanceTypes": entries}, source="synthetic"), groups


CPUS = ["100m", "250m", "500m", "1", "1500m"]
MEMS = ["100Mi", "256Mi", "512Mi", "1Gi", "2Gi", "4Gi"]


def diverse_pods(n: int, seed: int = 1) -> list[Pod]:
    """1/5 each: generic, zonal spread, hostname spread, zonal self-affinity, hostname anti-affinity (Karpenter's mix)."""
    rng = random.Random(seed)
    out: list[Pod] = []
    for i in range(n):
        kind = i % 5
        app = f"app-{kind}-{i % 50}"
        labels = {"app": app}
        req = {"cpu": rng.choice(CPUS), "memory": rng.choice(MEMS)}
        sel = {"matchLabels": labels}
        spec: dict[str, Any] = {}
        if kind == 1:
            spec["topologySpreadConstraints"] = [
                {
                    "maxSkew": 1,
                    "topologyKey": "topology.kubernetes.io/zone",
                    "whenUnsatisfiable": "DoNotSchedule",
                    "labelSelector": sel,
                }
            ]
        elif kind == 2:
            spec["topologySpreadConstraints"] = [
                {
                    "maxSkew": 1,
                    "topologyKey": "kubernetes.io/hostname",
                    "whenUnsatisfiable": "DoNotSchedule",
                    "labelSelector": sel,
                }
            ]
        elif kind == 3:
            spec["affinity"] = {
                "podAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [
                        {"topologyKey": "topology.kubernetes.io/zone", "labelSelector": sel}
                    ]
                }
            }
        elif kind == 4:
            spec["affinity"] = {
                "podAntiAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [
                        {"topologyKey": "kubernetes.io/hostname", "labelSelector": sel}
                    ]
                }
            }
        out.append(parse_object(_pod(f"p-{i}", req, labels, **spec)))  # type: ignore[arg-type]
    return out


def generic_pods(n: int, seed: int = 2) -> list[Pod]:
    rng = random.Random(seed)
    return [
        parse_object(_pod(f"g-{i}", {"cpu": rng.choice(CPUS), "memory": rng.choice(MEMS)}, {"app": "generic"}))  # type: ignore[misc]
        for i in range(n)
    ]


def karpenter_input(pods: list[Pod]) -> PlanInput:
    catalog, groups = synthetic_catalog()
    view, nodeclasses, nodepools = hyperpod_objects(groups)
    return PlanInput(pods, [], [], nodepools, nodeclasses, view, catalog)


# --- Alibaba traces ------------------------------------------------------------------------------------------------------


def trace_files() -> list[Path]:
    return sorted(ALIBABA.glob("openb_pod_list_*.csv"))


def trace_rows(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def trace_pod(row: dict[str, str]) -> dict[str, Any]:
    """A trace task as a pod: a pod sharing a GPU (gpu_milli < 1000) asks a whole one."""
    requests: dict[str, Any] = {"cpu": f"{int(row['cpu_milli'])}m", "memory": f"{int(row['memory_mib'])}Mi"}
    gpus = int(row["num_gpu"] or 0)
    if gpus:
        requests["nvidia.com/gpu"] = str(gpus)
    return _pod(row["name"], requests, {"app": "trace"})


def trace_catalog_groups(catalog: Catalog) -> dict[str, tuple[str, str]]:
    names = sorted(n for n in catalog if n.startswith(TRACE_FAMILIES))
    return {n.replace("ml.", "").replace(".", "-"): (n, ZONES[0]) for n in names}


def trace_input(path: Path, rows: Iterable[dict[str, str]] | None = None) -> PlanInput:
    catalog = Catalog.builtin()
    groups = trace_catalog_groups(catalog)
    view, nodeclasses, nodepools = hyperpod_objects(groups)
    pods = [parse_object(trace_pod(r)) for r in (rows if rows is not None else trace_rows(path))]
    return PlanInput(pods, [], [], nodepools, nodeclasses, view, catalog)  # type: ignore[arg-type]
