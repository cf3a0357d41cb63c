"""The Kubernetes adapter (official client over HTTP) against the emulator: every read and write of the cluster port."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hpa_testkit.kube import KubeEmulator
from hpa_testkit.nodes import node_object
from hpa_testkit.pods import resource_list
from hyperpod_autoscaler.adapters.kube import KubeCluster
from hyperpod_autoscaler.cli import main
from hyperpod_autoscaler.domain.k8s import Taint
from hyperpod_autoscaler.ports.cluster import ObjectRef

ROOT = Path(__file__).resolve().parents[2]


def pod(name: str, node: str | None = None, unschedulable: bool = True, **meta: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "web"}, **meta},
        "spec": {
            "containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "1", "memory": "256Mi"}}}]
        },
        "status": {"phase": "Pending"},
    }
    if node:
        body["spec"]["nodeName"] = node
        body["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    elif unschedulable:
        body["status"]["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]
    return body


def node(name: str) -> dict[str, Any]:
    return node_object(name, {"kubernetes.io/hostname": name}, resource_list("4", "16Gi", pods="110"))


def seed(kube: KubeEmulator) -> None:
    for name in ("nodeclass.yaml", "nodepool.yaml"):
        kube.apply(yaml.safe_load((ROOT / "examples" / "seed" / name).read_text()))


@pytest.fixture
def cluster(kube: KubeEmulator, kubeconfig: str) -> KubeCluster:
    return KubeCluster.from_kubeconfig(kubeconfig)


def test_snapshot_reads_every_kind_and_only_provisionable_pending_pods(
    kube: KubeEmulator, cluster: KubeCluster
) -> None:
    seed(kube)
    kube.apply(node("n1"))
    kube.apply(pod("pending"))
    kube.apply(pod("not-yet-seen-by-the-scheduler", unschedulable=False))
    nominated = pod("nominated")
    nominated["status"]["nominatedNodeName"] = "n1"
    kube.apply(nominated)
    ds_pod = pod("agent")
    ds_pod["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "a", "uid": "u"}]
    kube.apply(ds_pod)
    kube.apply(pod("running", node="n1"))
    done = pod("done", node="n1")
    done["status"]["phase"] = "Succeeded"
    kube.apply(done)
    kube.apply(
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}},
        }
    )
    snap = cluster.snapshot()
    assert [n.name for n in snap.nodes] == ["n1"]
    assert [p.name for p in snap.pending_pods] == ["pending"]
    assert [p.name for p in snap.bound_pods] == ["running"]
    assert [np.name for np in snap.nodepools] == ["gpunodepool"]
    assert [nc.name for nc in snap.nodeclasses] == ["multiazg6"]
    assert len(snap.pdbs) == 1 and snap.errors == []


def test_a_malformed_pod_is_skipped_with_its_name_and_the_others_are_read(
    kube: KubeEmulator, cluster: KubeCluster, caplog: pytest.LogCaptureFixture
) -> None:
    bad = pod("bad")
    bad["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "lots"
    kube.apply(bad)
    kube.apply(pod("good"))
    snap = cluster.snapshot()
    assert [p.name for p in snap.pending_pods] == ["good"]
    assert len(snap.errors) == 1 and "default/bad" in str(snap.errors[0])
    assert "default/bad" in caplog.text


def test_snapshot_pages_through_5000_pods(kube: KubeEmulator, cluster: KubeCluster) -> None:
    for i in range(5000):
        kube.apply(pod(f"p-{i:05d}"))
    before = kube.request_count
    snap = cluster.snapshot()
    assert len(snap.pending_pods) == 5000
    assert kube.request_count - before < 25, "paged lists, no per-pod requests"


def test_taint_cordon_and_their_removal_are_idempotent(kube: KubeEmulator, cluster: KubeCluster) -> None:
    kube.apply(node("n1"))
    taint = Taint(key="karpenter.sh/disrupted", effect="NoSchedule")
    for _ in range(2):
        cluster.taint_node("n1", taint)
        cluster.cordon("n1")
    raw = kube.get("v1", "Node", "n1")
    assert raw is not None
    assert raw["spec"]["taints"] == [{"key": "karpenter.sh/disrupted", "effect": "NoSchedule"}]
    assert raw["spec"]["unschedulable"] is True
    for _ in range(2):
        cluster.remove_taint("n1", "karpenter.sh/disrupted")
        cluster.uncordon("n1")
    raw = kube.get("v1", "Node", "n1")
    assert raw is not None and raw["spec"]["taints"] == [] and raw["spec"]["unschedulable"] is False
    cluster.taint_node("gone", taint)  # a missing node is not an error


def test_a_concurrent_modification_409_is_retried(kube: KubeEmulator, cluster: KubeCluster) -> None:
    kube.apply(node("n1"))
    original = cluster._call
    raced = {"done": False}

    def racing(method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        if method == "PUT" and not raced["done"]:
            raced["done"] = True
            kube.store.patch(kube.store.type_of("", "nodes"), None, "n1", {"metadata": {"labels": {"x": "y"}}}, "merge")
        return original(method, path, *args, **kwargs)

    cluster._call = racing  # type: ignore[method-assign]
    cluster.cordon("n1")
    raw = kube.get("v1", "Node", "n1")
    assert raced["done"] and raw is not None
    assert raw["spec"]["unschedulable"] is True and raw["metadata"]["labels"]["x"] == "y", "both writes kept"


def test_eviction_results(kube: KubeEmulator, cluster: KubeCluster) -> None:
    kube.apply(pod("a", node="n1"))
    kube.apply(
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}},
        }
    )
    assert cluster.evict("default", "a") == "blocked"
    kube.apply(pod("b", node="n1"))
    assert cluster.evict("default", "a") == "evicted"
    assert cluster.evict("default", "a") == "gone"
    cluster.delete_pod("default", "b", grace_period_seconds=0)
    cluster.delete_pod("default", "b")  # already gone: no error
    assert kube.get("v1", "Pod", "b", "default") is None


def test_events_conditions_and_nodeclass_status(kube: KubeEmulator, cluster: KubeCluster) -> None:
    seed(kube)
    cluster.record_event(ObjectRef("Pod", "p1", "default", "uid-1"), "Nominated", "Pod should schedule on: x")
    cluster.record_event(ObjectRef("Pod", "p1", "default", "uid-1"), "Nominated", "Pod should schedule on: x")
    events = kube.list("v1", "Event", "default")
    assert len(events) == 1 and events[0]["reason"] == "Nominated" and events[0]["involvedObject"]["name"] == "p1"
    cluster.set_nodepool_conditions(
        "gpunodepool", [{"type": "ValidationSucceeded", "status": "True", "reason": "Valid"}]
    )
    cluster.set_nodepool_conditions("gpunodepool", [{"type": "Ready", "status": "True", "reason": "Ready"}])
    np = kube.get("karpenter.sh/v1", "NodePool", "gpunodepool")
    assert np is not None
    assert {c["type"] for c in np["status"]["conditions"]} == {"ValidationSucceeded", "Ready"}
    cluster.set_nodeclass_status(
        "multiazg6", {"conditions": [{"type": "InstanceGroupReady", "status": "False", "reason": "UnknownGroup"}]}
    )
    nc = kube.get("karpenter.sagemaker.amazonaws.com/v1", "HyperpodNodeClass", "multiazg6")
    assert nc is not None
    assert nc["status"]["instanceGroups"], "the resolved groups are kept"
    ready = {c["type"]: c["status"] for c in nc["status"]["conditions"]}
    assert ready["InstanceGroupReady"] == "False" and ready["SubnetsReady"] == "True"


def test_events_and_conditions_keep_the_runtimes_clock(kube: KubeEmulator, kubeconfig: str) -> None:
    """Event times, their one-minute de-duplication and a condition's lastTransitionTime follow the clock the adapter
    is given (the runtime's: the cluster clock in the sandbox), not the machine's: a minute of that clock later, the
    same event is sent again."""
    seed(kube)
    t = [1_800_000_000.0]  # 2027-01-15T08:00:00Z
    cluster = KubeCluster.from_kubeconfig(kubeconfig, now=lambda: t[0])
    ref = ObjectRef("Pod", "p1", "default", "uid-1")
    cluster.record_event(ref, "Nominated", "Pod should schedule on: x")
    t[0] += 30
    cluster.record_event(ref, "Nominated", "Pod should schedule on: x")
    assert len(kube.list("v1", "Event", "default")) == 1
    t[0] += 31
    cluster.record_event(ref, "Nominated", "Pod should schedule on: x")
    events = kube.list("v1", "Event", "default")
    assert len(events) == 2
    assert sorted(e["lastTimestamp"] for e in events) == ["2027-01-15T08:00:00Z", "2027-01-15T08:01:01Z"]
    cluster.set_nodepool_conditions("gpunodepool", [{"type": "Ready", "status": "True", "reason": "Ready"}])
    np = kube.get("karpenter.sh/v1", "NodePool", "gpunodepool")
    assert np is not None
    assert [c["lastTransitionTime"] for c in np["status"]["conditions"]] == ["2027-01-15T08:01:01Z"]


def test_scale_subresource_and_scaled_objects(kube: KubeEmulator, cluster: KubeCluster) -> None:
    kube.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "llm", "namespace": "default"},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "llm"}}, "template": {"spec": {}}},
        }
    )
    assert cluster.get_scale("Deployment", "default", "llm") == (0, 0)
    cluster.set_scale("Deployment", "default", "llm", 3)
    assert cluster.get_scale("Deployment", "default", "llm")[0] == 3
    kube.apply(
        {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": {"name": "s", "namespace": "default"},
            "spec": {"scaleTargetRef": {"name": "llm"}, "triggers": [{"type": "aws-sqs-queue", "metadata": {}}]},
        }
    )
    assert [o["metadata"]["name"] for o in cluster.list_scaled_objects()] == ["s"]


def test_plan_kubeconfig_matches_plan_files(
    kube: KubeEmulator, kubeconfig: str, capsys: pytest.CaptureFixture[str]
) -> None:
    files = [str(ROOT / "examples" / "seed" / n) for n in ("nodeclass.yaml", "nodepool.yaml", "pods.yaml")]
    args = ["plan", "--cluster", str(ROOT / "examples" / "cluster.json")]
    assert main([*args, *[x for f in files for x in ("-f", f)]]) == 0
    from_files = json.loads(capsys.readouterr().out)
    for f in files:
        docs = yaml.safe_load(Path(f).read_text())
        for obj in docs.get("items", [docs]) if docs.get("kind") == "List" else [docs]:
            kube.apply(obj)
    assert main([*args, "--kubeconfig", kubeconfig]) == 0
    from_api = json.loads(capsys.readouterr().out)
    assert from_api == from_files


def test_bad_nodepools_get_false_conditions_with_the_reason_and_good_ones_ready(
    kube: KubeEmulator, cluster: KubeCluster
) -> None:
    from hyperpod_autoscaler.domain.hyperpod import ClusterView
    from hyperpod_autoscaler.services.validation import validate_and_report

    seed(kube)
    bad = yaml.safe_load((ROOT / "examples" / "seed" / "nodepool.yaml").read_text())
    bad["metadata"]["name"] = "bad-requirement"
    bad["spec"]["template"]["spec"]["requirements"] = [{"key": "x", "operator": "Between", "values": ["1"]}]
    unknown = yaml.safe_load((ROOT / "examples" / "seed" / "nodepool.yaml").read_text())
    unknown["metadata"]["name"] = "unknown-class"
    unknown["spec"]["template"]["spec"]["nodeClassRef"]["name"] = "nope"
    ec2 = yaml.safe_load((ROOT / "examples" / "seed" / "nodepool.yaml").read_text())
    ec2["metadata"]["name"] = "ec2"
    ec2["spec"]["template"]["spec"]["nodeClassRef"] = {
        "group": "karpenter.k8s.aws",
        "kind": "EC2NodeClass",
        "name": "d",
    }
    for obj in (bad, unknown, ec2):
        kube.apply(obj)
    view = ClusterView.from_describe_cluster(json.loads((ROOT / "examples" / "cluster.json").read_text()))
    snap = cluster.snapshot()
    result = validate_and_report(cluster, snap, view)
    assert result.failures == []

    def conditions(name: str) -> dict[str, tuple[str, str]]:
        np = kube.get("karpenter.sh/v1", "NodePool", name)
        assert np is not None
        return {c["type"]: (c["status"], c.get("reason", "")) for c in np["status"]["conditions"]}

    assert conditions("gpunodepool")["Ready"][0] == "True"
    assert conditions("bad-requirement")["ValidationSucceeded"] == ("False", "ValidationFailed")
    assert conditions("unknown-class")["NodeClassReady"] == ("False", "NodeClassNotFound")
    assert conditions("ec2")["NodeClassReady"] == ("False", "UnsupportedNodeClass")
    nc = kube.get("karpenter.sagemaker.amazonaws.com/v1", "HyperpodNodeClass", "multiazg6")
    assert nc is not None
    assert {c["type"]: c["status"] for c in nc["status"]["conditions"]}["Ready"] == "True"
    assert [g["name"] for g in nc["status"]["instanceGroups"]] == ["auto-g6-az1", "auto-g6-4xaz2"]
