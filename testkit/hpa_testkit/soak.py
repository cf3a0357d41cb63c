"""The fault soak: randomized provisioning and deprovisioning runs of the real state machines, each with injected faults
(throttling, conflicts, capacity failures, nodes that never register, partial delete failures, PDBs, do-not-disrupt pods).

After every run the soak checks what must hold whatever the faults were:

* **over-provisioned nodes**: instances HyperPod still has in a group beyond the Ready nodes the claims asked for (a
  give-back that left something behind, a double scale-up);
* **stuck executions**: runs not finished within the time limit;
* **PDB-violating evictions**: pods removed while their PDB allowed no disruption (the Kubernetes emulator records them)
  in a voluntary run (Underutilized, Empty, Drifted). An expiry is forceful: past the terminationGracePeriod Karpenter's
  rule lets it delete such pods, and the soak counts those apart (``forcedAfterGracePeriod``);
* **lost pods**: pods still bound to a node after the node was deleted (a drain that did not finish first);
* **stranded nodes**: nodes left tainted or cordoned after a deprovision run ended (a rollback that did not happen).
"""

from __future__ import annotations

import random
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpa_testkit.aws import AwsEmulator
from hpa_testkit.clock import SimClock
from hpa_testkit.kube import KubeEmulator
from hpa_testkit.pods import pdb, running_pod
from hpa_testkit.pytest_aws import Stack, open_stack

CLUSTER = "hyperpod-eks-demo"
GROUPS = ("auto-g6-az1", "auto-g6-4xaz2")


@dataclass
class SoakReport:
    runs: int = 0
    provision_runs: int = 0
    deprovision_runs: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    faults: dict[str, int] = field(default_factory=dict)
    over_provisioned_nodes: int = 0
    stuck_executions: int = 0
    pdb_violating_evictions: int = 0
    forced_after_grace: int = 0
    lost_pods: int = 0
    stranded_nodes: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)

    def count(self, bucket: dict[str, int], key: str) -> None:
        bucket[key] = bucket.get(key, 0) + 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "provisionRuns": self.provision_runs,
            "deprovisionRuns": self.deprovision_runs,
            "outcomes": dict(sorted(self.outcomes.items())),
            "faultsInjected": dict(sorted(self.faults.items())),
            "overProvisionedNodes": self.over_provisioned_nodes,
            "stuckExecutions": self.stuck_executions,
            "pdbViolatingEvictions": self.pdb_violating_evictions,
            "forcedAfterGracePeriod": self.forced_after_grace,
            "lostPods": self.lost_pods,
            "strandedNodes": self.stranded_nodes,
            "seconds": round(self.seconds, 1),
            "failures": self.failures[:20],
        }


def _ready_nodes(stack: Stack, group: str) -> list[str]:
    return [
        n["metadata"]["name"]
        for n in stack.kube.list("v1", "Node")
        if n["metadata"]["labels"].get("sagemaker.amazonaws.com/instance-group-name") == group
    ]


def _live_instances(stack: Stack, group: str) -> int:
    g = stack.aws.hyperpod.clusters[CLUSTER].groups[group]
    return int(g.target)


def _clear_faults(stack: Stack) -> None:
    hp = stack.aws.hyperpod
    hp.throttle(0.0, 0)
    hp.conflicts(0)
    hp.delete_failures(0.0)
    for g in GROUPS:
        hp.capacity_failure(g, times=0)
    hp.group_delays.clear()


def _stuck(report: SoakReport, out: dict[str, Any], what: str) -> bool:
    """An execution still running after the run's time limit is stuck."""
    if out["status"] != "RUNNING":
        return False
    report.stuck_executions += 1
    report.failures.append(f"{what}: stuck")
    return True


def _provision_run(stack: Stack, rng: random.Random, report: SoakReport, timeout: float) -> None:
    group = rng.choice(GROUPS)
    count = rng.randint(1, 3)
    hp = stack.aws.hyperpod
    if rng.random() < 0.4:
        n = rng.randint(1, 3)
        hp.throttle(next_n=n)
        report.count(report.faults, "throttling")
    if rng.random() < 0.3:
        hp.conflicts(rng.randint(1, 3))
        report.count(report.faults, "conflicts")
    if rng.random() < 0.2:
        hp.capacity_failure(group, times=1)
        report.count(report.faults, "capacity-failure")
    elif rng.random() < 0.1:
        hp.group_delays[group] = 5000.0  # never registers within the 20-minute timeout
        report.count(report.faults, "registration-timeout")
    before = len(_ready_nodes(stack, group))
    out = stack.run(
        "provision",
        {"cluster": CLUSTER, "instanceGroup": group, "count": count, "claimId": uuid.uuid4().hex[:12], "pods": []},
        timeout=timeout,
    )
    _clear_faults(stack)
    report.provision_runs += 1
    if _stuck(report, out, f"provision {group} x{count}"):
        return
    output = out.get("output") or {}
    result = output.get("status") if out["status"] == "SUCCEEDED" else out["status"]
    report.count(report.outcomes, f"provision:{result}")
    ready = len(_ready_nodes(stack, group))
    # a claim ends with its nodes Ready (less the failed launches it dropped), or gives back all but those that did
    # come up (it keeps and reports them)
    dropped = len(output.get("dropped") or [])
    expected = before + (count - dropped if result == "ready" else len(output.get("kept") or []))
    extra = _live_instances(stack, group) - expected
    if extra > 0 or ready != expected:
        report.over_provisioned_nodes += max(0, extra)
        report.failures.append(
            f"provision {group} x{count} -> {result}: {ready} Ready nodes, target {_live_instances(stack, group)}, "
            f"expected {expected}"
        )


def _place_if_running(stack: Stack, running: set[str], name: str, node: str, app: str) -> None:
    """A replica that becomes ready on another node mid-drain, as a scheduler would place it: only while the run lasts,
    and only on a node that still exists and is not cordoned."""
    if not running:
        return
    target = [n for n in stack.kube.list("v1", "Node") if n["metadata"]["name"] == node]
    if target and not (target[0].get("spec") or {}).get("unschedulable"):
        stack.kube.apply(running_pod(name, node, {"app": app}))


def _deprovision_run(stack: Stack, rng: random.Random, report: SoakReport, timeout: float) -> None:
    nodes = [n["metadata"]["name"] for n in stack.kube.list("v1", "Node")]
    if not nodes:
        return
    victims = rng.sample(nodes, rng.randint(1, min(3, len(nodes))))
    app = f"app-{uuid.uuid4().hex[:6]}"
    running = {"run"}  # emptied when the execution ends: a world event scheduled for later must not outlive its run
    replicas = rng.randint(1, 3)
    for i in range(replicas):
        stack.kube.apply(running_pod(f"{app}-{i}", rng.choice(nodes), {"app": app}))
    if rng.random() < 0.5:
        stack.kube.apply(pdb(app, {"app": app}, min_available=rng.randint(0, replicas)))
        report.count(report.faults, "pdb")
        # a replica elsewhere becomes ready a minute in, which may let a blocked drain proceed
        spare = [n for n in nodes if n not in victims]
        if spare:
            stack.clock.call_at(60, lambda: _place_if_running(stack, running, f"{app}-spare", spare[0], app))
    if rng.random() < 0.2:
        stack.kube.apply(
            running_pod(f"{app}-train", rng.choice(victims), annotations={"karpenter.sh/do-not-disrupt": "true"})
        )
        report.count(report.faults, "do-not-disrupt")
    if rng.random() < 0.25:
        victim = rng.choice(victims)
        stack.aws.hyperpod.delete_failures(ids={victim.removeprefix("hyperpod-")})
        report.count(report.faults, "delete-failure")
    if rng.random() < 0.3:
        stack.aws.hyperpod.throttle(next_n=rng.randint(1, 2))
        report.count(report.faults, "throttling")
    reason = rng.choice(["Underutilized", "Empty", "Drifted", "Expired"])
    violations_before = len(stack.kube.store.pdb_violations)
    out = stack.run(
        "deprovision",
        {"cluster": CLUSTER, "nodes": victims, "reason": reason, "terminationGracePeriodSeconds": 900},
        timeout=timeout,
    )
    running.clear()
    for ns, name in stack.kube.store.pdb_violations[violations_before:]:
        if reason == "Expired":
            report.forced_after_grace += 1  # Karpenter's rule for expiry: past terminationGracePeriod, PDBs yield
        else:
            report.pdb_violating_evictions += 1
            report.failures.append(f"deprovision {reason} {victims}: {ns}/{name} removed against its PDB")
    _clear_faults(stack)
    report.deprovision_runs += 1
    if _stuck(report, out, f"deprovision {victims}"):
        return
    report.count(report.outcomes, f"deprovision:{out['status']}")
    for n in stack.kube.list("v1", "Node"):
        spec = n.get("spec") or {}
        tainted = any(t.get("key") == "karpenter.sh/disrupted" for t in spec.get("taints") or [])
        if tainted or spec.get("unschedulable"):
            report.stranded_nodes += 1
            report.failures.append(f"node {n['metadata']['name']} left tainted/cordoned after {reason}")
    # a pod still bound to a node that is gone was never drained: lost with its node
    names = {n["metadata"]["name"] for n in stack.kube.list("v1", "Node")}
    for p in stack.kube.list("v1", "Pod"):
        if p["spec"].get("nodeName") not in names:
            report.lost_pods += 1
            report.failures.append(f"deprovision {reason}: pod {p['metadata']['name']} lost with its node")
            stack.kube.store.delete(
                stack.kube.store.type_of("", "pods"), p["metadata"]["namespace"], p["metadata"]["name"]
            )


def soak(runs: int = 200, seed: int = 2026, timeout: float = 120.0) -> SoakReport:
    report = SoakReport()
    rng = random.Random(seed)
    started = time.monotonic()
    clock = SimClock()
    kube = KubeEmulator().start()
    aws = AwsEmulator(clock=clock).start()
    try:
        aws.reset()
        with tempfile.TemporaryDirectory() as tmp:
            kubeconfig = kube.write_kubeconfig(str(Path(tmp) / "kubeconfig"))
            with open_stack(aws, kube, kubeconfig, clock) as stack:
                for i in range(runs):
                    try:
                        nodes = len(stack.kube.list("v1", "Node"))
                        if nodes < 2 or (nodes < 8 and rng.random() < 0.5):
                            _provision_run(stack, rng, report, timeout)
                        else:
                            _deprovision_run(stack, rng, report, timeout)
                    except Exception as exc:  # a harness error is reported, the soak goes on
                        report.failures.append(f"run {i}: {type(exc).__name__}: {exc}")
                    report.runs += 1
    finally:
        aws.stop()
        kube.stop()
    report.seconds = time.monotonic() - started
    return report
