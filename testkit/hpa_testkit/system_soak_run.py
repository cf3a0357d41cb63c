"""One whole-system soak run: the sandbox with trigger chaos, and the observer that checks the invariants each tick from
the emulators' records (see ``system_soak`` for the invariants and their bounds)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from .aws import sfn
from .sandbox.runner import Sandbox, SandboxOptions
from .system_soak import TICK, TRIGGER_CHAOS, WORK_END, RunResult, SoakPlan

DO_NOT_DISRUPT = "karpenter.sh/do-not-disrupt"
POOL_OF_TYPE = {"ml.g6.xlarge": "gpunodepool", "ml.g6.4xlarge": "gpu-fallback"}
ACTIVE_DRILL_SLACK = 2
"""Instances a running drill may add beyond the pods' need (scale-group by one, replace-node's replacement)."""


@dataclass
class PodSeen:
    key: tuple[str, str]
    node: str | None
    protected: bool
    pending_since: float
    own_grace: float = 30.0
    """Its terminationGracePeriodSeconds (the API server's default 30 s when unset)."""


@dataclass
class NodeSeen:
    pool: str
    seen_at: float
    idle_since: float | None = None
    held_since: float | None = None
    disrupted_since: float | None = None
    idle_wait: float = 0.0
    """Seconds idle, after the last fault, while its NodePool's disruption budget had room."""
    removed_at: float | None = None


@dataclass
class Observer:
    plan: SoakPlan
    violations: dict[str, list[str]] = field(default_factory=dict)
    pods: dict[str, PodSeen] = field(default_factory=dict)
    nodes: dict[str, NodeSeen] = field(default_factory=dict)
    flagged: set[str] = field(default_factory=set)
    over_ticks: int = 0
    last_busy: float = 0.0
    seen_evictions: int = 0
    seen_deletes: int = 0
    seen_pdb: int = 0
    max_instances: int = 0
    last_tick: float | None = None
    budget_blocked: list[tuple[float, float]] = field(default_factory=list)
    """(tick, seconds) at which a NodePool's budget had no room for another disruption."""

    def flag(self, invariant: str, key: str, detail: str) -> None:
        """Record a violation once per (invariant, object)."""
        if (invariant, key) in self.flagged:
            return
        self.flagged.add((invariant, key))  # type: ignore[arg-type]
        self.violations.setdefault(invariant, []).append(detail)

    def grace_passed(self, node: str | None, t: float, own_grace: float) -> bool:
        """A forceful expiry may take protected and PDB-blocked pods once the pool's terminationGracePeriod is about to
        end since the node's disruption began: from the pod's own terminationGracePeriodSeconds before its end, so the
        pod is gone by then (Karpenter's terminator, ``DeleteExpiringPods``)."""
        seen = self.nodes.get(node or "")
        if seen is None or seen.disrupted_since is None:
            return False
        grace = self.plan.pools.get(seen.pool, {}).get("grace", 0.0)
        # the taint is seen up to a tick after it was set, the deletion up to a tick after it happened
        return bool(grace) and t - seen.disrupted_since >= grace - own_grace - TICK


class SoakSandbox(Sandbox):
    """The sandbox with concurrent reconciles, redelivered and late events, seeded emulators and the observer."""

    def __init__(self, plan: SoakPlan, options: SandboxOptions) -> None:
        super().__init__(plan.scenario, options)
        self.plan = plan
        self.rng = random.Random(plan.seed * 7919 + 1)
        self.observer = Observer(plan)
        self.quiet_since: float | None = None

    def start(self) -> None:
        super().start()
        self.aws.hyperpod.rng = random.Random(self.plan.seed)
        self.kube.random_faults.rng = random.Random(self.plan.seed + 1)
        self.functions.faults.rng = random.Random(self.plan.seed + 2)
        sfn.lost_start_responses.update(rate=0.0, lost=0)

    def stop(self) -> None:
        sfn.lost_start_responses["rate"] = 0.0
        super().stop()

    # --- the chaos in the triggers ---------------------------------------------------------------------------------------

    def _schedules(self, t: float) -> None:
        super()._schedules(t)
        if self.rng.random() < TRIGGER_CHAOS["concurrent"]:
            for _ in range(self.rng.randint(2, 4)):  # distinct triggers at once: the lease must admit one
                event = self.scheduled_event("ReconcileFunctionSchedule")
                self.functions.invoke_async("ReconcileFunction", event, "soak-concurrent")

    def _deliver(self, event: dict[str, Any], t: float) -> None:
        """EventBridge delivers at least once and in no particular order: an event is sometimes delivered again later
        (same id), sometimes only late, after events that followed it."""
        for rule, pattern in self.rules:
            from .sandbox.eventbus import matches

            if pattern is None or not matches(pattern, event):
                continue
            for target in (tg for tg in rule.targets if tg in self.wiring.functions):
                roll = self.rng.random()
                if roll < TRIGGER_CHAOS["delay"]:
                    self.functions.retry_later(target, event, "soak-late", self.rng.choice([30.0, 60.0, 120.0]), 2)
                    continue
                self.functions.invoke_async(target, event, rule.logical_id)
                self.decisions += 1
                if roll < TRIGGER_CHAOS["delay"] + TRIGGER_CHAOS["duplicate"]:
                    self.functions.retry_later(target, event, "soak-redelivery", self.rng.choice([0.0, 15.0, 60.0]), 2)

    def _jobs(self, t: float) -> None:
        super()._jobs(t)
        if WORK_END <= t < WORK_END + self.scenario.tick:
            scaled = {t.deployment for t in self.scenario.traffic}  # the pod scaler takes those to zero itself
            for d in (d for d in self.scenario.deployments if d.name not in scaled):  # the work ends: zero replicas
                obj = self.kube.get("apps/v1", "Deployment", d.name, d.namespace)
                if obj is not None:
                    meta = {k: v for k, v in obj["metadata"].items() if k != "resourceVersion"}
                    self.kube.apply({**obj, "metadata": meta, "spec": {**obj["spec"], "replicas": 0}})

    # --- the early end -----------------------------------------------------------------------------------------------

    def settled(self, t: float) -> bool:
        """Nothing is left to happen: after the last scripted event, no active pod, no node, no instance (not even one
        shutting down), no running execution, no running invocation and no event Lambda or EventBridge still holds
        for later, and so for ``SETTLE`` seconds (the schedules' passes meanwhile found nothing to do). From here every
        pass sees the same empty cluster until the scenario's end, so the run ends: the end checks see zero instances,
        which is what they would see at the end. Any activity (a launch with no pod to serve, a late event) resets it."""
        from .system_soak import SETTLE
        from .system_soak_checks import executions

        hp = self.aws.hyperpod
        with hp.lock:
            instances = any(c.instances for c in hp.clusters.values())
        quiet = (
            t >= self.plan.script_end
            and not instances
            and not self.functions.retries
            and all(inv.future.done() for inv in self.functions.invocations)
            and not self.kube.list("v1", "Node")
            and not any(
                (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed") for p in self.kube.list("v1", "Pod")
            )
            and not any(e.status == "RUNNING" for e in executions(self))
        )
        if not quiet:
            self.quiet_since = None
            return False
        if self.quiet_since is None:
            self.quiet_since = t
        return t - self.quiet_since >= SETTLE

    # --- the checks --------------------------------------------------------------------------------------------------------

    def _observe(self, t: float) -> None:
        super()._observe(t)
        from .system_soak_checks import check_tick

        check_tick(self, t)

    def result(self) -> RunResult:
        from .system_soak_checks import check_end

        check_end(self)
        faults: dict[str, int] = {}
        for f in self.faults_injected:
            faults[f["kind"]] = faults.get(f["kind"], 0) + 1
        if sfn.lost_start_responses["lost"]:
            faults["lostStartResponses"] = int(sfn.lost_start_responses["lost"])
        for source in (self.kube.random_faults.injected, self.functions.faults.injected):
            for kind, n in source.items():
                faults[f"injected:{kind}"] = faults.get(f"injected:{kind}", 0) + n
        executions = self._executions()
        stats = {
            "nodesCreated": len(self._nodes_seen),
            "maxInstances": self.observer.max_instances,
            "executions": executions,
            "invocations": len(self.functions.invocations),
            "invocationErrors": len(self.functions.errors),
            "slowTicks": self.slow_ticks,
            "endedAt": self.ended_at,
        }
        return RunResult(self.plan.seed, 0.0, faults, self.observer.violations, stats)
