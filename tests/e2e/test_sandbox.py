"""The whole product on the embedded sandbox: the real handlers and state machines wired from template.yaml, scaling the
HyperPod emulator under queue traffic, with a capacity outage, down to zero."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml
from hpa_testkit.sandbox.runner import Sandbox, SandboxOptions
from hpa_testkit.sandbox.scenario import load_scenario
from hpa_testkit.sandbox.template import CfnLoader

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "testkit" / "hpa_testkit" / "scenarios"
PRICE_4XL = 1.654  # ml.g6.4xlarge, the fallback group's type (the dearest the scenario can use)


@pytest.fixture(scope="module")
def short_run() -> dict[str, Any]:
    scenario = load_scenario(SCENARIOS / "short.yaml")
    with Sandbox(scenario, SandboxOptions(speed=100_000, live=False)) as sandbox:
        summary = sandbox.run()
        summary["_invoked"] = sorted({i.function for i in sandbox.functions.invocations})
        summary["_peak_pods"] = max(s.running_pods + s.pending_pods for s in sandbox.timeline.samples)
        summary["_samples"] = [(s.t, s.pending_pods, s.running_pods) for s in sandbox.timeline.samples]
    return summary


def test_every_pod_served_and_scale_to_zero(short_run: dict[str, Any]) -> None:
    assert short_run["podsUnserved"] == [] and short_run["podsServed"] >= 4
    assert short_run["scaleToZero"] is True and short_run["nodesAtEnd"] == {}
    assert short_run["invocationErrors"] == []


def test_scaled_objects_carry_keda_status_and_events(short_run: dict[str, Any]) -> None:
    assert short_run["scaledObjects"], "the scenario's ScaledObjects"
    for key, so in short_run["scaledObjects"].items():
        assert so["conditions"]["Ready"] == "True (ScaledObjectReady)", key
        assert so["conditions"]["Active"].startswith("False"), f"{key}: traffic is over at the end"
        assert so["lastActiveTime"] and so["events"].get("KEDAScaleTargetActivated", 0) >= 1, key


def test_no_pdb_or_do_not_disrupt_violation(short_run: dict[str, Any]) -> None:
    assert short_run["pdbViolations"] == 0 and short_run["doNotDisruptViolations"] == 0


def test_capacity_outage_fallback_taken(short_run: dict[str, Any]) -> None:
    assert [f["kind"] for f in short_run["faultsInjected"]] == ["capacity-outage"]
    assert short_run["fallbackNodesDuringOutage"] >= 1
    assert short_run["nodeHours"].get("auto-g6-4xaz2", 0) > 0, "the fallback group served while az1 had no capacity"


def test_cost_below_a_static_cluster_sized_for_the_peak(short_run: dict[str, Any]) -> None:
    hours = short_run["clusterSeconds"] / 3600
    static = short_run["_peak_pods"] * PRICE_4XL * hours  # one fallback node per pod for the whole run
    assert 0 < short_run["cost"] < 0.6 * static, (short_run["cost"], static)


PRICE_XL = 0.8048 * 1.25  # ml.g6.xlarge: EC2 price x 1.25, the catalog's SageMaker estimate


def test_the_verdict_comes_first_with_its_units(short_run: dict[str, Any]) -> None:
    """Issue 15. Every short-scenario pod asks 1 GPU, and ml.g6.xlarge and ml.g6.4xlarge have one GPU each: any packing
    is one node per pod, of the cheaper type (ml.g6.xlarge). So the static cluster for the peak is one ml.g6.xlarge per
    pod present at the busiest minute, for the whole run; the Karpenter-style packing is one per pod present, minute by
    minute; pending pod-minutes are the pending curve's area."""
    assert next(iter(short_run)) == "verdict"
    v = short_run["verdict"]
    duration = short_run["clusterSeconds"]
    minutes = [(t, pending + running) for t, pending, running in short_run["_samples"] if t % 60 == 0]
    peak = max(n for _, n in minutes)
    assert v["staticBaselineNodes"] == peak
    assert v["staticBaselineCost"] == pytest.approx(peak * PRICE_XL * duration / 3600, abs=0.001)
    ends = [t for t, _ in minutes[1:]] + [duration]
    karpenter = sum(n * PRICE_XL * (end - t) / 3600 for (t, n), end in zip(minutes, ends, strict=True))
    assert v["karpenterStyleCost"] == pytest.approx(karpenter, abs=0.001)
    samples = short_run["_samples"]
    area = sum(a[1] * (b[0] - a[0]) for a, b in itertools.pairwise(samples)) / 60
    assert v["pendingPodMinutes"] == pytest.approx(area, abs=0.01) and area > 0
    assert v["cost"] == short_run["cost"]
    beyond = short_run["timeToCapacityBeyondProvisioning"]
    assert v["timeToCapacityBeyondBootSeconds"] == {k: beyond[k] for k in ("p50", "p95", "max")}
    assert sum(v["nodesCreatedByReason"].values()) == short_run["nodesCreated"]
    assert set(v["nodesCreatedByReason"]) <= {"PendingPods", "Replacement"}, v["nodesCreatedByReason"]
    removed = v["nodesRemovedByReason"]
    assert sum(removed.values()) == short_run["nodesCreated"], "scale to zero removes every node"
    assert set(removed) <= {"Empty", "Underutilized"}, removed
    assert v["violations"] == {"pdb": 0, "doNotDisrupt": 0}
    assert v["unservedPods"] == [] and v["drills"] == []


def test_wiring_comes_from_the_template(tmp_path: Path) -> None:
    """Remove the reconcile function's triggers from a copy of the template: nothing decides, no node comes up."""
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=CfnLoader)
    template["Resources"]["ReconcileFunction"]["Properties"]["Events"] = {}
    copy = tmp_path / "template.yaml"
    copy.write_text(yaml.safe_dump(template, sort_keys=False))
    scenario = load_scenario(SCENARIOS / "short.yaml").model_copy(update={"duration": 300.0, "faults": []})
    with Sandbox(scenario, SandboxOptions(template=copy, speed=100_000, live=False)) as sandbox:
        summary = sandbox.run()
        invoked = {i.function for i in sandbox.functions.invocations}
    assert "PodScalerFunction" in invoked and "ReconcileFunction" not in invoked
    assert summary["nodesCreated"] == 0 and summary["podsServed"] == 0


def test_a_real_drill_runs_to_success() -> None:
    """The drill machine starts the provision and deprovision machines: their ARNs must exist when it is created."""
    from hpa_testkit.sandbox.scenario import Drill

    drill = Drill(at=10, name="scale-group", input={"group": "auto-g6-4xaz2", "count": 1})
    scenario = load_scenario(SCENARIOS / "short.yaml").model_copy(
        update={"duration": 600.0, "traffic": [], "faults": [], "drills": [drill]}
    )
    with Sandbox(scenario, SandboxOptions(speed=100_000, live=False)) as sandbox:
        summary = sandbox.run()
    assert [(d["name"], d["status"]) for d in summary["drills"]] == [("scale-group", "SUCCEEDED")], summary["drills"]
    assert summary["drills"][0]["seconds"] >= 60, "the drill waits for its node to boot (60 s of cluster time)"
    assert summary["nodesCreated"] == 1 and summary["nodesAtEnd"] == {}
    assert summary["invocationErrors"] == []


UNSCHEDULABLE = """
import sys
import itertools
from pathlib import Path
from hpa_testkit.sandbox.runner import Sandbox, SandboxOptions
from hpa_testkit.sandbox.scenario import load_scenario
scenario = load_scenario(Path(sys.argv[1])).model_copy(update={"duration": 120.0, "traffic": [], "faults": []})
with Sandbox(scenario, SandboxOptions(speed=100_000, live=False)) as sandbox:
    summary = sandbox.run()
print("unserved", len(summary["podsUnserved"]))
"""


def test_the_sandbox_exits_when_a_pod_can_never_be_scheduled(tmp_path: Path) -> None:
    """A pod no group can hold keeps the reconcile function re-checking on the cluster clock; once the run is over the
    clock stops and those sleepers end, so the process exits (it used to print the report and hang)."""
    import subprocess
    import sys

    scenario = yaml.safe_load((SCENARIOS / "short.yaml").read_text())
    scenario["deployments"] = [{"name": "too-big", "replicas": 1, "cpu": "1000", "memory": "1Gi", "gpus": 0}]
    scenario["objects"] = []
    path = tmp_path / "unschedulable.yaml"
    path.write_text(yaml.safe_dump(scenario))
    out = subprocess.run(
        [sys.executable, "-c", UNSCHEDULABLE, str(path)], capture_output=True, text=True, timeout=150, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "unserved 1" in out.stdout


STATUS = "import sys; from hyperpod_autoscaler.cli import main; sys.exit(main(sys.argv[1:]))"


def test_each_sandbox_has_its_own_connection_file(tmp_path: Path) -> None:
    """``status --sandbox DIR`` finds the sandbox whose report directory is DIR; a sandbox that stops removes its own
    connection file only (they all shared one in the temp directory, and any sandbox that stopped deleted it)."""
    import json
    import subprocess
    import sys

    from hyperpod_autoscaler.cli.connect import sandbox_file

    other = sandbox_file(tmp_path / "other")
    other.parent.mkdir()
    other.write_text(json.dumps({"AWS_ENDPOINT_URL": "http://127.0.0.1:1"}))
    mine = tmp_path / "mine"
    scenario = load_scenario(SCENARIOS / "short.yaml").model_copy(update={"duration": 30.0})
    options = SandboxOptions(speed=100_000, live=False, connection_file=sandbox_file(mine))
    with Sandbox(scenario, options) as sandbox:
        assert json.loads((mine / "sandbox.json").read_text())["AWS_ENDPOINT_URL"] == sandbox.aws.endpoint_url
        status = subprocess.run(
            [sys.executable, "-c", STATUS, "status", "--sandbox", str(mine), "-o", "json"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert status.returncode == 0, status.stderr[-2000:]
        assert isinstance(json.loads(status.stdout), dict)
    assert not (mine / "sandbox.json").exists()
    assert other.exists(), "another sandbox's connection file survives this one stopping"


def test_sandbox_option_names_the_report_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hyperpod_autoscaler.cli import main
    from hyperpod_autoscaler.cli.connect import DEFAULT_SANDBOX_DIR, SANDBOX_FILE_ENV, sandbox_file

    monkeypatch.delenv(SANDBOX_FILE_ENV, raising=False)
    assert sandbox_file(tmp_path) == tmp_path / "sandbox.json"
    assert sandbox_file(None) == Path(DEFAULT_SANDBOX_DIR) / "sandbox.json"
    assert (
        main(["status", "--sandbox", str(tmp_path / "none")]) == 2
    )  # no sandbox there: a clear error, not a traceback


def test_a_stopped_sandbox_leaves_no_logger_on_its_closed_log_file() -> None:
    """The functions' Powertools loggers outlive a sandbox (shared by name in the process): the next sandbox's first task
    failed with "I/O operation on closed file" when it pointed them at its own log file."""
    scenario = load_scenario(SCENARIOS / "short.yaml").model_copy(update={"duration": 10.0, "traffic": []})
    with Sandbox(scenario, SandboxOptions(speed=100_000, live=False)) as sandbox:
        sandbox.functions.handler("ProvisionFunction")  # loads the handler module, as the first provision task does
        module_logger = sandbox.functions.modules["ProvisionFunction"].logger
    handler = module_logger.registered_handler
    assert not getattr(handler.stream, "closed", False)


def _played(scenario: Any, deterministic: bool) -> tuple[dict[str, Any], list[tuple[float, str, str]]]:
    with Sandbox(scenario, SandboxOptions(speed=100_000, live=False, deterministic=deterministic)) as sandbox:
        summary = sandbox.run()
        events = [(e.t, e.kind, e.text) for e in sandbox.timeline.events]
    return summary, events


def test_a_scenario_gives_the_same_figures_twice() -> None:
    """Issue 15: "identical figures on two runs". Queue traffic, throttling, a capacity outage and a real drill that
    replaces a node: the summary (every figure of the report) and the timeline of decisions, events and faults are the
    same on two runs, however the threads were scheduled."""
    from hpa_testkit.sandbox.scenario import Drill, Fault

    base = load_scenario(SCENARIOS / "short.yaml")
    scenario = base.model_copy(
        update={
            "duration": 900.0,
            "faults": [*base.faults, Fault(at=100, kind="throttling", rate=0.3, duration=200)],
            "drills": [Drill(at=400, name="replace-node")],
        }
    )
    first, first_events = _played(scenario, deterministic=True)
    second, second_events = _played(scenario, deterministic=True)
    assert first["slowTicks"] == 0 and first["drills"][0]["status"] == "SUCCEEDED", first["drills"]
    assert first["nodesCreated"] >= 2 and first["podsServed"] >= 4
    assert second == first
    assert second_events == first_events
