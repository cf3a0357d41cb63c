"""``hyperpod-autoscaler plan`` end to end (start, parse, plan, print) on the largest Alibaba GPU trace, as a user runs it:
a ``kubectl get -o yaml``-style List of the trace's pods with the HyperpodNodeClasses and NodePools, the same objects as
one JSON document, and a DescribeCluster response. Reports wall time and peak RSS of the command for each input."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.packing_workloads import (
    ALIBABA,
    describe_cluster,
    hyperpod_objects,
    trace_catalog_groups,
    trace_pod,
    trace_rows,
)

TRACE = ALIBABA / "openb_pod_list_default.csv"


def write_inputs(directory: Path, trace: Path = TRACE) -> tuple[Path, Path, Path]:
    """(objects.yaml, objects.json, cluster.json) for ``trace``, the cluster and classes of the packing benchmark."""
    from hyperpod_autoscaler.domain.catalog import Catalog

    groups = trace_catalog_groups(Catalog.builtin())
    _view, nodeclasses, nodepools = hyperpod_objects(groups)
    items: list[dict[str, Any]] = [o.to_wire() for o in (*nodeclasses, *nodepools)]
    items += [trace_pod(row) for row in trace_rows(trace)]
    objects = {"apiVersion": "v1", "kind": "List", "items": items}
    as_yaml = directory / "objects.yaml"
    as_yaml.write_text(yaml.safe_dump(objects, sort_keys=False))
    as_json = directory / "objects.json"
    as_json.write_text(json.dumps(objects))
    cluster = directory / "cluster.json"
    cluster.write_text(json.dumps(describe_cluster(groups)))
    return as_yaml, as_json, cluster


def time_plan(objects: Path, cluster: Path) -> tuple[float, float, float, int]:
    """(wall seconds, CPU seconds, peak RSS MB, exit code) of one ``plan`` run, its output discarded. CPU time is the
    figure to compare on a shared machine; wall time is what a user waits."""
    entry = "import sys; from hyperpod_autoscaler.cli import main; sys.exit(main())"
    command = [sys.executable, "-c", entry, "plan", "--cluster", str(cluster), "-f", str(objects), "--output", "json"]
    wrapped = [sys.executable, "-c", _RUNNER, *command]
    started = time.perf_counter()
    done = subprocess.run(wrapped, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    cpu, peak = (float(x) for x in done.stderr.strip().splitlines()[-1].split())
    return seconds, cpu, peak, done.returncode


# Runs the command and prints its CPU seconds and peak RSS (wait4's rusage of the child alone) on stderr.
_RUNNER = """
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
_, status, usage = os.wait4(proc.pid, 0)
err = proc.stderr.read().decode()
cpu = usage.ru_utime + usage.ru_stime
sys.stderr.write(err[-2000:] + "\\n" + str(round(cpu, 2)) + " " + str(round(usage.ru_maxrss / 1024, 1)) + "\\n")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        as_yaml, as_json, cluster = write_inputs(Path(tmp))
        pods = len(trace_rows(TRACE))
        print(f"plan CLI end to end, {TRACE.name} ({pods} pods), default options:")
        for path in (as_yaml, as_json):
            seconds, cpu, peak, code = time_plan(path, cluster)
            size = path.stat().st_size / 2**20
            print(
                f"  {path.name:<13} {size:5.1f} MB  wall {seconds:6.2f} s  CPU {cpu:6.2f} s  "
                f"peak RSS {peak:6.1f} MB  exit {code}"
            )


if __name__ == "__main__":
    main()
