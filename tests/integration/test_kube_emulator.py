"""The Kubernetes API emulator through the official client over HTTP (no client mocks)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hpa_testkit.kube import KubeEmulator
from kubernetes import client
from kubernetes.client.rest import ApiException


def pod(
    name: str, labels: dict[str, str] | None = None, node: str | None = None, phase: str = "Pending"
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": labels or {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "pause"}]},
        "status": {"phase": phase},
    }
    if node:
        body["spec"]["nodeName"] = node
    if phase == "Running":
        body["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    return body


@pytest.fixture
def core(kube: KubeEmulator) -> client.CoreV1Api:
    return client.CoreV1Api(kube.api_client())


def test_create_answers_201_with_uid_and_resource_version(kube: KubeEmulator, core: client.CoreV1Api) -> None:
    _, status, _ = core.create_namespaced_pod_with_http_info("default", pod("a"))
    assert status == 201
    got = core.read_namespaced_pod("a", "default")
    assert got.metadata.uid and got.metadata.resource_version and got.metadata.creation_timestamp
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_pod("default", pod("a"))
    assert exc.value.status == 409


def test_custom_objects_create_201_and_status_subresource(kube: KubeEmulator) -> None:
    co = client.CustomObjectsApi(kube.api_client())
    body = {"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "np"}, "spec": {"weight": 1}}
    _, status, _ = co.create_cluster_custom_object_with_http_info("karpenter.sh", "v1", "nodepools", body)
    assert status == 201
    co.patch_cluster_custom_object_status(
        "karpenter.sh", "v1", "nodepools", "np", {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    )
    # a write of the main resource keeps the status (status subresource semantics)
    co.patch_cluster_custom_object("karpenter.sh", "v1", "nodepools", "np", {"spec": {"weight": 5}, "status": {}})
    got = co.get_cluster_custom_object("karpenter.sh", "v1", "nodepools", "np")
    assert got["spec"]["weight"] == 5 and got["status"]["conditions"][0]["type"] == "Ready"
    assert got["metadata"]["generation"] == 2


def test_stale_put_is_a_409_conflict(kube: KubeEmulator, core: client.CoreV1Api) -> None:
    core.create_node({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}, "spec": {}})
    first = core.read_node("n1")
    core.patch_node("n1", {"metadata": {"labels": {"a": "b"}}})
    first.spec.unschedulable = True
    with pytest.raises(ApiException) as exc:
        core.replace_node("n1", first)
    assert exc.value.status == 409
    fresh = core.read_node("n1")
    fresh.spec.unschedulable = True
    assert core.replace_node("n1", fresh).spec.unschedulable is True


def test_label_and_field_selectors(kube: KubeEmulator, core: client.CoreV1Api) -> None:
    kube.apply(pod("a", {"app": "web", "tier": "1"}))
    kube.apply(pod("b", {"app": "db"}, node="n1", phase="Running"))
    kube.apply(pod("c", {"app": "web"}, node="n1", phase="Succeeded"))

    def names(**kw: Any) -> list[str]:
        return sorted(p.metadata.name for p in core.list_namespaced_pod("default", **kw).items)

    assert names(label_selector="app=web") == ["a", "c"]
    assert names(label_selector="app in (web,db),tier") == ["a"]
    assert names(label_selector="app!=web") == ["b"]
    assert names(label_selector="!tier") == ["b", "c"]
    assert names(field_selector="spec.nodeName=") == ["a"]
    assert names(field_selector="spec.nodeName=n1,status.phase!=Succeeded") == ["b"]


def test_paging_5000_pods(kube: KubeEmulator, core: client.CoreV1Api) -> None:
    for i in range(5000):
        kube.apply(pod(f"p-{i:05d}"))
    seen: list[str] = []
    token = None
    pages = 0
    started = time.perf_counter()
    while True:
        page = core.list_namespaced_pod("default", limit=500, _continue=token)
        seen.extend(p.metadata.name for p in page.items)
        pages += 1
        token = page.metadata._continue
        if not token:
            break
    assert pages == 10 and len(seen) == 5000 and len(set(seen)) == 5000
    assert time.perf_counter() - started < 30


def test_eviction_honours_pdbs(kube: KubeEmulator, core: client.CoreV1Api) -> None:
    for name in ("a", "b"):
        kube.apply(pod(name, {"app": "web"}, node="n1", phase="Running"))
    kube.apply(
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}},
        }
    )
    eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "a", "namespace": "default"}}
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_pod_eviction("a", "default", eviction)
    assert exc.value.status == 429
    kube.apply(pod("c", {"app": "web"}, node="n1", phase="Running"))
    core.create_namespaced_pod_eviction("a", "default", eviction)
    assert kube.get("v1", "Pod", "a", "default") is None
    with pytest.raises(ApiException) as gone:
        core.create_namespaced_pod_eviction("a", "default", eviction)
    assert gone.value.status == 404


def test_scale_subresource(kube: KubeEmulator) -> None:
    apps = client.AppsV1Api(kube.api_client())
    kube.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": {"spec": {}}},
        }
    )
    scale = apps.read_namespaced_deployment_scale("web", "default")
    assert scale.spec.replicas == 1 and scale.status.selector == "app=web"
    apps.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 4}})
    assert kube.get("apps/v1", "Deployment", "web", "default")["spec"]["replicas"] == 4  # type: ignore[index]


def test_watch_ends_after_its_timeout(kube: KubeEmulator, core: client.CoreV1Api) -> None:
    from kubernetes import watch

    kube.apply(pod("a"))
    started = time.perf_counter()
    events = list(watch.Watch().stream(core.list_namespaced_pod, "default", timeout_seconds=1))
    assert time.perf_counter() - started < 5
    assert [(e["type"], e["object"].metadata.name) for e in events] == [("ADDED", "a")]


def test_binding(kube: KubeEmulator, core: client.CoreV1Api) -> None:
    kube.apply(pod("a"))
    body = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "a"}, "target": {"kind": "Node", "name": "n1"}}
    core.create_namespaced_binding("default", body, _preload_content=False)
    assert kube.get("v1", "Pod", "a", "default")["spec"]["nodeName"] == "n1"  # type: ignore[index]
