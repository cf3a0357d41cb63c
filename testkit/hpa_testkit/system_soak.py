"""The whole-system fault soak: the whole loop on the sandbox (reconcile, pod scaler, disruption, provision, deprovision
and drills through the real handlers, state machines, lease and DynamoDB, wired from template.yaml) on a randomized
workload, with concurrent and overlapping triggers, redelivered and out-of-order events and injected faults.

``hpa_testkit.soak`` starts the state machines directly with fresh names; here nothing is started by hand but the
drills: the decision loop runs on its schedules and events, so the lease, execution names reused across attempts and
concurrent invocations run under faults too. Each run is a sandbox ``Scenario`` (``random_scenario``) played by
``SoakSandbox``, which adds the trigger chaos to the sandbox and an ``Observer`` that checks the invariants from the
emulators' own records (HyperPod's instances, the Kubernetes objects, its PDB and deletion records, Step Functions'
executions), never from what the autoscaler says about itself:

* liveness: ``podNotRunning`` (a pod some group can hold is not running ``POD_BOUND`` after its creation or the last
  fault's end), ``idleNodeKept`` (a node idle past consolidateAfter + ``NODE_BOUND`` after the faults), ``notScaledToZero``
  (instances left when the work has been over for longer than that);
* safety: ``overProvisioned`` (a pod claimed by two running provisions, or instances booting beyond what the running
  provisions asked for), ``doNotDisruptEvicted``
  (a do-not-disrupt pod deleted, evicted or lost with its node by the autoscaler before its NodePool's grace period),
  ``pdbViolated`` (a pod taken while its PDB allowed no disruption, outside a forceful expiry past the grace period),
  ``strandedNode`` (cordoned or tainted disrupted with no running execution, for ``STRANDED_BOUND``),
  ``executionOverBound`` (an execution running longer than ``EXECUTION_BOUND``).
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .sandbox.runner import PROJECT, SandboxOptions, load_yaml_objects
from .sandbox.scenario import FaultKind, Scenario

POD_BOUND = 480.0
NODE_BOUND = 360.0
STRANDED_BOUND = 180.0
EXECUTION_BOUND = 1200.0 + 4 * 15.0
"""The product's longest own bound (a provision's registration timeout, 1200 s) and a minute for its last checks."""
WORK_END = 700.0
"""Deployments are scaled to zero here; jobs start before it."""
FAULT_END = 450.0
DURATION = 1800.0
TICK = 15.0

SETTLE = 240.0
"""A run ends early once it has been settled this long (four passes of each schedule): every job, drill and fault has
come and gone, and no pod, node, instance, running execution or pending event is left (see ``SoakSandbox.settled``)."""

FAULT_KINDS = typing.get_args(FaultKind)
INVARIANTS = (
    "podNotRunning",
    "idleNodeKept",
    "notScaledToZero",
    "overProvisioned",
    "doNotDisruptEvicted",
    "pdbViolated",
    "strandedNode",
    "executionOverBound",
)
GROUPS = ("auto-g6-az1", "auto-g6-4xaz2")
TRIGGER_CHAOS = {"concurrent": 0.25, "duplicate": 0.15, "delay": 0.15}
"""Per tick: a burst of concurrent reconciles; per delivered event: a redelivery later, or a late (out-of-order) one."""


# --- the randomized workload ------------------------------------------------------------------------------------------


def _nodepools(rng: random.Random) -> tuple[list[dict[str, Any]], dict[str, dict[str, float]]]:
    """The seed's NodeClass and two NodePools (one a group type) with randomized disruption: consolidateAfter, and an
    expireAfter with or without a terminationGracePeriod. Returns the objects and, per pool, its timings in seconds."""
    objects = [o for o in load_yaml_objects(PROJECT / "examples" / "seed" / "nodeclass.yaml")]
    pools: dict[str, dict[str, float]] = {}
    for name, itype, zone in (("gpunodepool", "ml.g6.xlarge", "us-west-2a"), ("gpu-fallback", "ml.g6.4xlarge", None)):
        consolidate = rng.choice([0, 30, 60, 120])
        expire = rng.choice([None, None, 300, 600])
        grace = rng.choice([None, 120, 300]) if expire else None
        requirements: list[dict[str, Any]] = [
            {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": [itype]}
        ]
        if zone:
            requirements.append({"key": "topology.kubernetes.io/zone", "operator": "In", "values": [zone]})
        template: dict[str, Any] = {
            "nodeClassRef": {
                "group": "karpenter.sagemaker.amazonaws.com",
                "kind": "HyperpodNodeClass",
                "name": "multiazg6",
            },
            "expireAfter": f"{expire}s" if expire else "Never",
            "requirements": requirements,
        }
        if grace:
            template["terminationGracePeriod"] = f"{grace}s"
        objects.append(
            {
                "apiVersion": "karpenter.sh/v1",
                "kind": "NodePool",
                "metadata": {"name": name},
                "spec": {
                    "template": {"spec": template},
                    "disruption": {
                        "consolidationPolicy": "WhenEmptyOrUnderutilized",
                        "consolidateAfter": f"{consolidate}s",
                    },
                },
            }
        )
        pools[name] = {"consolidateAfter": consolidate, "grace": float(grace or 0), "expire": float(expire or 0)}
    return objects, pools


def _jobs(rng: random.Random) -> list[dict[str, Any]]:
    """1-3 GPU Jobs of 1-3 pods (each GPU pod needs a node of its own: both groups have one GPU a node); some need the
    bigger type (12 vCPU), some are do-not-disrupt."""
    out = []
    for i in range(rng.randint(1, 3)):
        big = rng.random() < 0.25
        out.append(
            {
                "at": float(rng.randrange(0, int(WORK_END) - 200, 15)),
                "name": f"job-{i}",
                "count": rng.randint(1, 3),
                "cpu": "12" if big else "2",
                "memory": "48Gi" if big else "8Gi",
                "gpus": 1,
                "duration": float(rng.randrange(60, 301, 30)),
                "doNotDisrupt": rng.random() < 0.5,
            }
        )
    return out


def _deployments(rng: random.Random) -> list[dict[str, Any]]:
    if rng.random() < 0.5:
        return []
    replicas = rng.randint(1, 2)
    pdb = rng.choice([None, 1, replicas])
    return [{"name": "svc", "replicas": replicas, "cpu": "1", "memory": "4Gi", "gpus": 1, "pdbMinAvailable": pdb}]


def _scaled_service(seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Half the runs: an inference Deployment at 0 replicas behind a KEDA ScaledObject on an SQS queue, fed constant
    traffic for a while, so the pod scaler (its polling, state, announcements and scale to zero) runs in the loop too.
    Returns (objects, deployments, traffic). Drawn from a generator of its own: the other draws of a seed stay as
    they were before the service existed."""
    rng = random.Random(seed * 31 + 17)
    if rng.random() < 0.5:
        return [], [], []
    start = float(rng.randrange(0, int(WORK_END) - 300, 15))
    end = min(WORK_END, start + rng.randrange(120, 421, 30))
    scaled_object = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "llm-scaler", "namespace": "default"},
        "spec": {
            "scaleTargetRef": {"name": "llm"},
            "minReplicaCount": 0,
            "maxReplicaCount": rng.randint(1, 3),
            "pollingInterval": 30,
            "cooldownPeriod": rng.choice([60, 120]),
            "triggers": [
                {
                    "type": "aws-sqs-queue",
                    "metadata": {"queueURL": "{{queue:soak-requests}}", "queueLength": "10", "awsRegion": "us-west-2"},
                }
            ],
        },
    }
    deployment = {"name": "llm", "replicas": 0, "cpu": "2", "memory": "8Gi", "gpus": 1, "labels": {"app": "llm"}}
    deployment["pdbMinAvailable"] = rng.choice([None, 1])
    traffic = {
        "source": "constant",
        "as": "sqs",
        "queue": "soak-requests",
        "deployment": "llm",
        "start": start,
        "end": end,
        "rate": float(rng.choice([2, 4, 6])),
        "perReplicaPerSecond": 3.0,
    }
    return [scaled_object], [deployment], [traffic]


def _faults(rng: random.Random) -> list[dict[str, Any]]:
    out = []
    for kind in rng.sample(FAULT_KINDS, rng.randint(2, 5)):
        at = float(rng.randrange(0, int(FAULT_END) - 60, 15))
        fault: dict[str, Any] = {
            "at": at,
            "kind": kind,
            "duration": float(min(FAULT_END - at, rng.randrange(60, 301, 15))),
            "rate": round(rng.uniform(0.1, 0.4), 2),
        }
        if kind == "capacity-outage":
            fault["group"] = rng.choice(GROUPS)
        elif kind == "partial-capacity":
            fault.update(group=rng.choice(GROUPS), count=rng.randint(1, 3))
        elif kind == "conflicts":
            fault["rate"] = float(rng.randint(1, 4)) / 10
        elif kind == "kube-errors":
            fault.update(hangRate=rng.choice([0.0, 0.02]), hangSeconds=0.3)
        elif kind == "node-failure":
            fault["count"] = 1
        out.append(fault)
    return out


def _drills(rng: random.Random) -> list[dict[str, Any]]:
    drills: list[dict[str, Any]] = []
    if rng.random() < 0.2:
        drills.append({"at": float(rng.randrange(150, int(WORK_END), 15)), "name": "replace-node"})
    if rng.random() < 0.15:
        group = rng.choice(GROUPS)
        drills.append(
            {
                "at": float(rng.randrange(0, int(WORK_END), 15)),
                "name": "scale-group",
                "input": {"group": group, "count": 1},
            }
        )
    return drills


@dataclass
class SoakPlan:
    seed: int
    scenario: Scenario
    pools: dict[str, dict[str, float]]
    last_fault_end: float
    script_end: float = DURATION
    """When the last scripted event (a job, a drill, a fault's end, the work's end) has happened."""


def random_scenario(seed: int) -> SoakPlan:
    rng = random.Random(seed)
    objects, pools = _nodepools(rng)
    faults = _faults(rng)
    service_objects, service, traffic = _scaled_service(seed)
    scenario = Scenario.model_validate(
        {
            "name": f"system-soak-{seed}",
            "duration": DURATION,
            "tick": TICK,
            "speed": 1e9,
            "provisioningDelay": float(rng.choice([45, 60, 90])),
            "seed": False,
            "objects": objects + service_objects,
            "deployments": _deployments(rng) + service,
            "traffic": traffic,
            "jobs": _jobs(rng),
            "faults": faults,
            "drills": _drills(rng),
        }
    )
    last = max((f["at"] + (f["duration"] if f["kind"] != "node-failure" else 0) for f in faults), default=0.0)
    scripted = [WORK_END, *(f["at"] + f["duration"] for f in faults)]
    scripted += [j.at for j in scenario.jobs] + [d.at for d in scenario.drills]
    return SoakPlan(seed, scenario, pools, last, max(scripted) + TICK)


# --- the run ------------------------------------------------------------------------------------------------------------


@dataclass
class RunResult:
    seed: int
    seconds: float
    faults: dict[str, int]
    violations: dict[str, list[str]]
    stats: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "seconds": round(self.seconds, 2),
            "faults": self.faults,
            "violations": self.violations,
            "stats": self.stats,
            "error": self.error,
        }


def run_one(seed: int) -> RunResult:
    """One randomized run; a crash of the harness itself is reported as ``error`` (never as a pass). With
    ``HPA_SOAK_LOGS=DIR`` the functions' log of each failing run is kept as ``DIR/seed-S.log``."""
    from .system_soak_run import SoakSandbox

    plan = random_scenario(seed)
    started = time.monotonic()
    logs = os.environ.get("HPA_SOAK_LOGS")
    log = Path(logs) / f"seed-{seed}.log" if logs else None
    if log is None:
        logging.disable(logging.WARNING)  # the handlers' own log lines would drown the report
    logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
    options = SandboxOptions(
        speed=1e9, live=False, workers=16, quiet_timeout=1.0, function_log=log, deterministic=False
    )
    try:
        with SoakSandbox(plan, options) as sandbox:
            sandbox.run()
            result = sandbox.result()
        if log is not None and not result.violations:
            log.unlink(missing_ok=True)  # keep the functions' log of the failing runs only
    except Exception as exc:  # the harness broke: report it with the seed
        return RunResult(seed, time.monotonic() - started, {}, {}, error=f"{type(exc).__name__}: {exc}")
    finally:
        logging.disable(logging.NOTSET)
    result.seconds = time.monotonic() - started
    return result


def soak(
    runs: int, seed: int, workers: int = 1, on_result: typing.Callable[[RunResult], None] | None = None
) -> dict[str, Any]:
    """``runs`` runs with seeds ``seed``, ``seed + 1``, ...; ``workers`` processes (one sandbox each at a time).
    ``on_result`` sees each run's result as it ends (in seed order), e.g. to keep a partial record of a long soak."""
    seeds = [seed + i for i in range(runs)]
    started = time.monotonic()
    results: list[RunResult] = []
    if workers <= 1:
        for s in seeds:
            results.append(run_one(s))
            if on_result is not None:
                on_result(results[-1])
    else:
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(workers, maxtasksperchild=50) as pool:
            for result in pool.imap(run_one, seeds, chunksize=1):
                results.append(result)
                if on_result is not None:
                    on_result(result)
    return report(results, time.monotonic() - started, workers)


def report(results: list[RunResult], wall: float, workers: int) -> dict[str, Any]:
    faults: dict[str, int] = {}
    violations: dict[str, dict[str, Any]] = {
        k: {"runs": 0, "count": 0, "seeds": [], "examples": []} for k in INVARIANTS
    }
    for r in results:
        for kind, n in r.faults.items():
            faults[kind] = faults.get(kind, 0) + n
        for kind, items in r.violations.items():
            bucket = violations[kind]
            bucket["runs"] += 1
            bucket["count"] += len(items)
            bucket["seeds"].append(r.seed)
            if len(bucket["examples"]) < 3:
                bucket["examples"].append({"seed": r.seed, "detail": items[0]})
    for bucket in violations.values():
        bucket["seeds"] = bucket["seeds"][:50]
    return {
        "runs": len(results),
        "workers": workers,
        "wallSeconds": round(wall, 1),
        "secondsPerRun": round(sum(r.seconds for r in results) / max(1, len(results)), 2),
        "faultsInjected": dict(sorted(faults.items())),
        "violations": violations,
        "runsWithViolations": sum(1 for r in results if r.violations),
        "harnessErrors": [{"seed": r.seed, "error": r.error} for r in results if r.error][:20],
    }


def dumps(report_: dict[str, Any]) -> str:
    return json.dumps(report_, indent=2, sort_keys=False)
