"""Ctrl-C in ``hyperpod-autoscaler sandbox`` (issue 15): the run stops where it is, the report and summary.json cover
the part played, the command exits 130 (128 + SIGINT, as a shell reports it) and prints no traceback, not even from
the threads whose executions were still waiting on the cluster clock."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

SHORT_DURATION = 1500  # testkit/hpa_testkit/scenarios/short.yaml


def test_ctrl_c_writes_a_partial_report_without_a_traceback(tmp_path: Path) -> None:
    report = tmp_path / "report"
    command = [
        str(Path(sys.executable).parent / "hyperpod-autoscaler"),
        "sandbox",
        "--scenario",
        "short",
        "--plain",
        "--speed",
        "30",
        "--report",
        str(report),
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("HPA_DEBUG", None)
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None and proc.stderr is not None
    stdout = proc.stdout

    def read_lines() -> None:
        for line in stdout:
            lines.put(line)

    threading.Thread(target=read_lines, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + 180
    try:
        # mid-run, with work in flight: a node has joined (provision executions ran) and the outage is on
        while not any("fault: capacity-outage" in line for line in seen):
            assert proc.poll() is None, "".join(seen) + proc.stderr.read()
            assert time.monotonic() < deadline, "".join(seen)
            with contextlib.suppress(queue.Empty):
                seen.append(lines.get(timeout=1))
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = proc.stderr.read()
    assert code == 130, err
    assert "Traceback" not in err, err
    assert "interrupted at" in err, err
    summary = json.loads((report / "summary.json").read_text())
    assert summary["interruptedAt"] is not None and 0 < summary["interruptedAt"] < SHORT_DURATION, summary
    assert summary["clusterSeconds"] == summary["interruptedAt"]
    assert next(iter(summary)) == "verdict" and summary["verdict"]["cost"] > 0
    assert (report / "index.html").exists() and "partial" in (report / "index.html").read_text()
