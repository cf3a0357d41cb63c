"""Stand-ins for the cluster's own controllers, for the sandbox and the end-to-end tests (the emulator has none).

- ``SchedulerStandIn``: kube-scheduler's part: binds each pending pod to a Ready, schedulable node it fits (the core's fit
  rules: resources, taints, selectors, affinity, spread), else marks it ``PodScheduled=False`` reason ``Unschedulable``
  with the message, which is what makes a pod provisionable for the autoscaler.
- ``ReplicaController``: the Deployment/StatefulSet and Job controllers' part: pods to match ``spec.replicas`` (and the
  status replicas counts), Job pods that finish after the ``hpa-testkit/run-seconds`` annotation, and pods of nodes that
  disappeared deleted (a Deployment's are then re-created).
"""

from __future__ import annotations

import copy
import hashlib
import time
from collections.abc import Callable
from typing import Any

from hyperpod_autoscaler.domain.errors import InvalidObject
from hyperpod_autoscaler.domain.k8s import Node, Pod
from hyperpod_autoscaler.domain.objects import parse_object
from hyperpod_autoscaler.domain.scheduling.fit import pod_fits_node

from .kube import KubeEmulator
from .kube.store import now_iso

RUN_SECONDS = "hpa-testkit/run-seconds"
GANG_ANNOTATION = "hpa-testkit/gang"
"""On a Job: a distributed training job, which starts only once all of its pods run (their run time counts from then)."""


class SchedulerStandIn:
    def __init__(self, kube: KubeEmulator) -> None:
        self.kube = kube
        self.bound_total = 0
        self._arrival: dict[str, int] = {}

    def step(self) -> tuple[int, int]:
        """One scheduling round; returns (bound, unschedulable)."""
        nodes: list[Node] = []
        for raw in self.kube.list("v1", "Node"):
            try:
                node = parse_object(raw)
            except InvalidObject:
                continue
            if isinstance(node, Node) and node.is_ready and not node.spec.unschedulable:
                nodes.append(node)
        pods_raw = self.kube.list("v1", "Pod")
        bound: list[Pod] = []
        pending: list[tuple[dict[str, Any], Pod]] = []
        for raw in pods_raw:
            try:
                pod = parse_object(raw)
            except InvalidObject:
                continue
            if not isinstance(pod, Pod) or pod.is_terminal:
                continue
            if pod.spec.node_name:
                bound.append(pod)
            elif pod.metadata.deletion_timestamp is None:
                pending.append((raw, pod))
        on_node: dict[str, list[Pod]] = {}
        for p in bound:
            on_node.setdefault(p.spec.node_name or "", []).append(p)
        n_bound = n_unsched = 0
        # kube-scheduler's active queue: higher priority first, then the pod that has waited longest
        for _raw, pod in pending:
            self._arrival.setdefault(pod.metadata.uid or pod.key, len(self._arrival))
        waiting = {pod.metadata.uid or pod.key for _raw, pod in pending}
        self._arrival = {k: v for k, v in self._arrival.items() if k in waiting}
        queue = sorted(
            pending, key=lambda x: (-(x[1].spec.priority or 0), self._arrival[x[1].metadata.uid or x[1].key])
        )
        for raw, pod in queue:
            reasons = []
            chosen = None
            for node in sorted(nodes, key=lambda n: n.name):
                reason = pod_fits_node(pod, node, on_node.get(node.name, []), bound, nodes)
                if reason is None:
                    chosen = node
                    break
                reasons.append(reason)
            if chosen is not None:
                self._bind(raw, chosen.name)
                placed = pod.model_copy(update={"spec": pod.spec.model_copy(update={"node_name": chosen.name})})
                on_node.setdefault(chosen.name, []).append(placed)
                bound.append(placed)
                n_bound += 1
            else:
                self._unschedulable(raw, nodes, reasons)
                n_unsched += 1
        self.bound_total += n_bound
        return n_bound, n_unsched

    def _bind(self, raw: dict[str, Any], node: str) -> None:
        meta = raw["metadata"]
        t = self.kube.store.type_of("", "pods")
        self.kube.store.bind(meta["namespace"], meta["name"], {"target": {"kind": "Node", "name": node}})
        clock = self.kube.store.now
        stamp = now_iso(clock() if clock is not None else None)  # the cluster's clock, as creationTimestamp
        status = {
            "phase": "Running",
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": stamp},
                {"type": "Ready", "status": "True", "lastTransitionTime": stamp},
            ],
        }
        self.kube.store.patch(t, meta["namespace"], meta["name"], {"status": status}, "merge", "status")

    def _unschedulable(self, raw: dict[str, Any], nodes: list[Node], reasons: list[str]) -> None:
        conds = (raw.get("status") or {}).get("conditions") or []
        if any(c.get("type") == "PodScheduled" and c.get("reason") == "Unschedulable" for c in conds):
            return  # already marked: no write, no new resourceVersion
        message = f"0/{len(nodes)} nodes are available" + (f": {reasons[0]}" if reasons else "")
        meta = raw["metadata"]
        t = self.kube.store.type_of("", "pods")
        status = {
            "phase": "Pending",
            "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message[:500]}
            ],
        }
        self.kube.store.patch(t, meta["namespace"], meta["name"], {"status": status}, "merge", "status")


def _pod_name(owner: str, index: int) -> str:
    digest = hashlib.sha256(f"{owner}-{index}".encode()).hexdigest()[:5]
    return f"{owner}-{digest}"


class ReplicaController:
    def __init__(self, kube: KubeEmulator, now: Callable[[], float] = time.time) -> None:
        self.kube = kube
        self.now = now
        self._job_started: dict[str, float] = {}
        self._job_done: dict[str, set[str]] = {}
        self._serial: dict[str, int] = {}

    def step(self) -> None:
        pods = self.kube.list("v1", "Pod")
        nodes = {n["metadata"]["name"] for n in self.kube.list("v1", "Node")}
        # pods of nodes that went away are gone with them
        for p in pods:
            node = (p.get("spec") or {}).get("nodeName")
            if node and node not in nodes:
                self.kube.delete("v1", "Pod", p["metadata"]["name"], p["metadata"]["namespace"])
        pods = self.kube.list("v1", "Pod")
        owned: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        for p in pods:
            for ref in (p.get("metadata") or {}).get("ownerReferences") or []:
                owned.setdefault((ref.get("kind", ""), p["metadata"]["namespace"], ref.get("name", "")), []).append(p)
        for kind, owner_kind in (("Deployment", "ReplicaSet"), ("StatefulSet", "StatefulSet")):
            for d in self.kube.list("apps/v1", kind):
                self._reconcile_replicas(d, kind, owner_kind, owned)
        for job in self.kube.list("batch/v1", "Job"):
            self._reconcile_job(job, owned)

    def _template_pod(self, owner: dict[str, Any], owner_kind: str, owner_name: str, name: str) -> dict[str, Any]:
        template = copy.deepcopy((owner.get("spec") or {}).get("template") or {})
        meta = template.get("metadata") or {}
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": owner["metadata"]["namespace"],
                "labels": dict(meta.get("labels") or {}),
                "annotations": dict(meta.get("annotations") or {}),
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1" if owner_kind != "Job" else "batch/v1",
                        "kind": owner_kind,
                        "name": owner_name,
                        "uid": owner["metadata"].get("uid", ""),
                        "controller": True,
                    }
                ],
            },
            "spec": template.get("spec") or {},
            "status": {"phase": "Pending"},
        }

    def _reconcile_replicas(
        self, d: dict[str, Any], kind: str, owner_kind: str, owned: dict[tuple[str, str, str], list[dict[str, Any]]]
    ) -> None:
        ns, name = d["metadata"]["namespace"], d["metadata"]["name"]
        owner_name = name if owner_kind == "StatefulSet" else f"{name}-rs"
        mine = [
            p
            for p in owned.get((owner_kind, ns, owner_name), [])
            if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        ]
        want = int((d.get("spec") or {}).get("replicas", 1))
        if len(mine) < want:
            for _ in range(want - len(mine)):
                key = f"{ns}/{name}"
                self._serial[key] = self._serial.get(key, 0) + 1
                self.kube.apply(self._template_pod(d, owner_kind, owner_name, _pod_name(name, self._serial[key])))
        elif len(mine) > want:
            # scale down: pending pods first, then the newest (the ReplicaSet controller's preference)
            victims = sorted(
                mine,
                key=lambda p: (
                    bool((p.get("spec") or {}).get("nodeName")),
                    -(int(p["metadata"].get("resourceVersion", "0"))),
                ),
            )[: len(mine) - want]
            for p in victims:
                self.kube.delete("v1", "Pod", p["metadata"]["name"], ns, scale_down=True)
        ready = sum(1 for p in mine if (p.get("status") or {}).get("phase") == "Running")
        status = {"replicas": min(len(mine), want) if len(mine) > want else len(mine), "readyReplicas": ready}
        if (d.get("status") or {}).get("replicas") != status["replicas"] or (d.get("status") or {}).get(
            "readyReplicas"
        ) != ready:
            self.kube.patch_status("apps/v1", kind, name, status, ns)

    def _reconcile_job(self, job: dict[str, Any], owned: dict[tuple[str, str, str], list[dict[str, Any]]]) -> None:
        ns, name = job["metadata"]["namespace"], job["metadata"]["name"]
        mine = owned.get(("Job", ns, name), [])
        spec = job.get("spec") or {}
        completions = int(spec.get("completions") or spec.get("parallelism") or 1)
        run_seconds = float(((job.get("metadata") or {}).get("annotations") or {}).get(RUN_SECONDS, "0") or 0)
        # Completions are remembered, as the Job controller keeps them in status.succeeded: a finished pod that goes
        # away with its node afterwards must not be run again.
        done = self._job_done.setdefault(f"{ns}/{name}", set())
        done.update(p["metadata"]["name"] for p in mine if (p.get("status") or {}).get("phase") == "Succeeded")
        succeeded = len(done)
        active = [p for p in mine if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
        missing = completions - succeeded - len(active)
        serial_key = f"Job/{ns}/{name}"
        for _ in range(max(0, missing)):
            index = self._serial.get(serial_key, 0)
            self._serial[serial_key] = index + 1
            self.kube.apply(self._template_pod(job, "Job", name, f"{name}-{index}"))
        if int((job.get("status") or {}).get("succeeded") or 0) != succeeded:
            self.kube.patch_status("batch/v1", "Job", name, {"succeeded": succeeded}, ns)
        now = self.now()
        gang = ((job.get("metadata") or {}).get("annotations") or {}).get(GANG_ANNOTATION) == "true"
        running = sum(1 for p in active if (p.get("status") or {}).get("phase") == "Running")
        if gang and running < completions - succeeded:
            return  # the job cannot start until every worker runs: no pod's run time counts yet
        for p in active:
            if (p.get("status") or {}).get("phase") != "Running":
                continue
            key = f"{ns}/{p['metadata']['name']}"
            started = self._job_started.setdefault(key, now)
            if run_seconds and now - started >= run_seconds:
                self.kube.patch_status("v1", "Pod", p["metadata"]["name"], {"phase": "Succeeded", "conditions": []}, ns)
