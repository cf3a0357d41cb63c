"""Reading a 1,000-node / 10,000-pod cluster through the Kubernetes adapter (official client over HTTP, emulator),
and the import time the adapter adds to a cold start.

    python -m benchmarks.bench_kube_snapshot
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from typing import Any

from .rss import peak_rss_mb


def _node(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": f"hyperpod-i-{i:017x}", "labels": {"kubernetes.io/hostname": f"n{i}"}},
        "spec": {},
        "status": {
            "allocatable": {"cpu": "16", "memory": "64Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def _pod(i: int, node: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"p-{i:05d}", "namespace": "default", "labels": {"app": f"a{i % 40}"}},
        "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}]},
        "status": {
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}],
        },
    }
    if node:
        body["spec"]["nodeName"] = node
        body["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    return body


def snapshot_figures(nodes: int = 1000, pods: int = 10000) -> dict[str, Any]:
    from hpa_testkit.kube import KubeEmulator
    from hyperpod_autoscaler.adapters.kube import KubeCluster

    with KubeEmulator() as kube, tempfile.TemporaryDirectory() as tmp:
        for i in range(nodes):
            kube.apply(_node(i))
        for i in range(pods):
            kube.apply(_pod(i, f"hyperpod-i-{i % nodes:017x}" if i % 10 else None))
        cluster = KubeCluster.from_kubeconfig(kube.write_kubeconfig(f"{tmp}/kubeconfig"))
        rss_before = peak_rss_mb()
        started = time.perf_counter()
        snap = cluster.snapshot()
        seconds = time.perf_counter() - started
        rss_after = peak_rss_mb()
    return {
        "nodes": len(snap.nodes),
        "pods": len(snap.pods),
        "seconds": round(seconds, 3),
        "peakRssMB": rss_after,  # the process's peak: the emulator and its 11,000 objects live here too
        "rssGrowthMB": round(rss_after - rss_before, 1),  # what reading the snapshot added
    }


def import_ms(module: str) -> float:
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"], capture_output=True, text=True, check=True
    ).stderr
    total = 0
    for line in out.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \|\s?(\S.*)$", line)
        if m and not m.group(2).startswith(" "):
            total += int(m.group(1))
    return round(total / 1000, 1)


def main(argv: list[str] | None = None) -> int:
    if argv == ["--one"]:
        print(json.dumps(snapshot_figures()))
        return 0
    print("== Kubernetes adapter: snapshot through the emulator (a fresh process) ==")
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_kube_snapshot", "--one"], capture_output=True, text=True, check=True
    )
    print(out.stdout.strip().splitlines()[-1])
    print("== import time (cumulative ms, python -X importtime, fresh interpreter) ==")
    for module in ("hyperpod_autoscaler.adapters.kube", "kubernetes.client.api_client"):
        print(f"{module}: {import_ms(module)} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
