"""The sandbox's scheduler and controller stand-ins on the emulator."""

from __future__ import annotations

from typing import Any

from hpa_testkit.kube import KubeEmulator
from hpa_testkit.nodes import node_object
from hpa_testkit.pods import resource_list
from hpa_testkit.scheduler import ReplicaController, SchedulerStandIn


def node(name: str, cpu: str = "4", ready: bool = True) -> dict[str, Any]:
    labels = {"kubernetes.io/hostname": name}
    return node_object(name, labels, resource_list(cpu, "16Gi", pods="110"), ready={"status": str(ready).title()})


def deployment(replicas: int, cpu: str = "1") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": "1Gi"}}}]},
            },
        },
    }


def test_replicas_are_created_bound_where_they_fit_and_marked_unschedulable_elsewhere(kube: KubeEmulator) -> None:
    kube.apply(node("n1", cpu="2"))
    kube.apply(node("n2", ready=False))
    kube.apply(deployment(3))
    controller, scheduler = ReplicaController(kube), SchedulerStandIn(kube)
    controller.step()
    assert scheduler.step() == (2, 1), "two 1-CPU pods fit n1's 2 CPUs; n2 is not Ready"
    pods = kube.list("v1", "Pod", "default")
    bound = [p for p in pods if p["spec"].get("nodeName")]
    pending = [p for p in pods if not p["spec"].get("nodeName")]
    assert [p["spec"]["nodeName"] for p in bound] == ["n1", "n1"] and bound[0]["status"]["phase"] == "Running"
    for p in pending:
        cond = p["status"]["conditions"][0]
        assert (cond["type"], cond["status"], cond["reason"]) == ("PodScheduled", "False", "Unschedulable")
    kube.apply(deployment(1))
    controller.step()
    assert len(kube.list("v1", "Pod", "default")) == 1, "scale-down removes the pending pods first"
    assert kube.list("v1", "Pod", "default")[0]["spec"]["nodeName"] == "n1"


def test_pods_of_a_vanished_node_are_recreated_and_jobs_finish() -> None:
    clock = [0.0]
    with KubeEmulator() as kube:
        kube.apply(node("n1"))
        kube.apply(deployment(1))
        kube.apply(
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"name": "train", "namespace": "default", "annotations": {"hpa-testkit/run-seconds": "60"}},
                "spec": {"parallelism": 1, "completions": 1, "template": {"spec": {"containers": [{"name": "c"}]}}},
            }
        )
        controller, scheduler = ReplicaController(kube, now=lambda: clock[0]), SchedulerStandIn(kube)
        controller.step()
        scheduler.step()
        controller.step()
        clock[0] = 61
        controller.step()
        phases = {p["metadata"]["name"]: p["status"]["phase"] for p in kube.list("v1", "Pod", "default")}
        assert phases["train-0"] == "Succeeded"
        old = {
            p["metadata"]["name"] for p in kube.list("v1", "Pod", "default") if p["metadata"]["name"].startswith("web")
        }
        kube.delete("v1", "Node", "n1")
        controller.step()
        web = [p for p in kube.list("v1", "Pod", "default") if p["metadata"]["name"].startswith("web")]
        assert len(web) == 1 and {web[0]["metadata"]["name"]} != old and not web[0]["spec"].get("nodeName")
