"""The pod tier: ScaledObjects -> metric reads -> replicas on the scale subresource (``domain.podscaling`` decides).

One pass reads every ScaledObject; a bad object (or a failed read, or a missing target) is reported and skipped, the
others go on. Each object is polled at most once per ``pollingInterval``, except on the first pass of an invocation that
an alarm started (the alarm is news). The scaler's memory (last active time, recommendations, recent scale events,
failure count) lives in the state table between invocations. Passes run under the ``pod-scaler`` lease, so one writer
changes a Deployment's replicas at a time, and keep going within the invocation while some object is active or moving.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..adapters import metrics as m
from ..adapters.metrics import AutoscalerMetrics
from ..domain.errors import InvalidObject
from ..domain.podscaling import Reading, ScalerState, TriggerSpec, decide, parse_scaled_object, record_scale
from ..ports.cluster import ClusterPort
from ..ports.lease import LeasePort
from .leased_loop import LoopOutcome, LoopSettings, run_leased_loop
from .triggers import Trigger

log = logging.getLogger(__name__)

LEASE_NAME = "pod-scaler"


class TriggerMetrics(Protocol):
    def read(self, trigger: TriggerSpec) -> float: ...


class Announcer(Protocol):
    def replicas_increased(self, scaled_object: str, target: str, before: int, after: int) -> None:
        """Tell the node tier that pods are coming (an EventBridge event the reconcile rule matches)."""
        ...


class ScalerStates(Protocol):
    def get(self, key: str) -> dict[str, Any] | None: ...

    def put(self, key: str, state: dict[str, Any]) -> None: ...


@dataclass
class PodScalerDeps:
    cluster: ClusterPort
    metrics_reader: TriggerMetrics
    states: ScalerStates
    metrics: AutoscalerMetrics
    clock: Callable[[], float] = time.time
    announcer: Announcer | None = None


@dataclass
class ObjectResult:
    key: str
    target: str
    current: int
    replicas: int
    reason: str
    active: bool
    polled: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "scaledObject": self.key,
            "target": self.target,
            "current": self.current,
            "replicas": self.replicas,
            "reason": self.reason,
            "active": self.active,
        }


@dataclass
class ScalerPass:
    results: list[ObjectResult] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    skipped: int = 0

    @property
    def more(self) -> bool:
        """Keep polling within the invocation while something is active or just changed."""
        return any(r.active or r.replicas != r.current for r in self.results if r.polled)

    def to_dict(self) -> dict[str, Any]:
        return {
            "scaled": [r.to_dict() for r in self.results if r.polled],
            "errors": dict(self.errors),
            "notDue": self.skipped,
        }


def scale_once(deps: PodScalerDeps, force: bool = False, dry_run: bool = False) -> ScalerPass:
    out = ScalerPass()
    try:
        objects = deps.cluster.list_scaled_objects()
    except Exception as exc:
        deps.metrics.count(m.POD_SCALER_ERRORS, 1, Reason="ListFailed")
        out.errors["*"] = f"could not list ScaledObjects: {exc}"
        return out
    for raw in objects:
        meta = raw.get("metadata") or {}
        key = f"{meta.get('namespace') or 'default'}/{meta.get('name') or '?'}"
        try:
            spec = parse_scaled_object(raw)
            state = ScalerState.from_dict(deps.states.get(spec.key))
            now = deps.clock()
            if not force and state.last_poll is not None and now - state.last_poll < spec.polling_interval:
                out.skipped += 1
                continue
            current, _ = deps.cluster.get_scale(spec.target_kind, spec.namespace, spec.target_name)
            readings = []
            for t in spec.triggers:
                try:
                    readings.append(Reading(t.name, deps.metrics_reader.read(t)))
                except Exception as exc:  # a failed read counts toward the fallback; it does not stop the object
                    deps.metrics.count(m.POD_SCALER_ERRORS, 1, Reason="MetricRead", ScaledObject=spec.key)
                    log.warning("ScaledObject %s: trigger %s: metric read failed: %s", spec.key, t.name, exc)
                    readings.append(Reading(t.name, None, str(exc)))
            decision = decide(spec, current, readings, state, now)
            state.last_poll = now
            if decision.replicas != current and not dry_run:
                deps.cluster.set_scale(spec.target_kind, spec.namespace, spec.target_name, decision.replicas)
                record_scale(spec, state, decision, current, now)
                if decision.replicas > current and deps.announcer is not None:
                    try:
                        deps.announcer.replicas_increased(
                            spec.key,
                            f"{spec.target_kind}/{spec.namespace}/{spec.target_name}",
                            current,
                            decision.replicas,
                        )
                    except Exception as exc:  # the schedule and the pending-pods alarm still catch the pods
                        deps.metrics.count(m.POD_SCALER_ERRORS, 1, Reason="Announce")
                        log.warning("could not announce the scale-up of %s: %s", spec.key, exc)
                deps.metrics.count(m.POD_SCALER_CHANGES, 1, Direction="up" if decision.replicas > current else "down")
                log.info(
                    "ScaledObject %s: %s/%s %d -> %d (%s)",
                    spec.key,
                    spec.target_kind,
                    spec.target_name,
                    current,
                    decision.replicas,
                    decision.reason,
                )
            if not dry_run:
                deps.states.put(spec.key, state.to_dict())
            deps.metrics.gauge(m.POD_SCALER_DESIRED, decision.replicas, ScaledObject=spec.key)
            out.results.append(
                ObjectResult(
                    spec.key,
                    f"{spec.target_kind}/{spec.target_name}",
                    current,
                    decision.replicas,
                    decision.reason,
                    decision.active,
                )
            )
        except InvalidObject as exc:
            deps.metrics.count(m.POD_SCALER_ERRORS, 1, Reason="InvalidObject")
            log.warning("%s", exc)
            out.errors[key] = str(exc)
        except Exception as exc:  # one object's failure never stops the others
            deps.metrics.count(m.POD_SCALER_ERRORS, 1, Reason=type(exc).__name__)
            log.warning("ScaledObject %s: %s", key, exc)
            out.errors[key] = f"{type(exc).__name__}: {exc}"
    return out


@dataclass
class PodScalerResult:
    trigger: str
    held: bool
    stopped: str
    passes: list[ScalerPass]

    def to_dict(self) -> dict[str, Any]:
        return {
            "trigger": self.trigger,
            "held": self.held,
            "stopped": self.stopped,
            "passes": len(self.passes),
            "last": self.passes[-1].to_dict() if self.passes else None,
        }


def run_pod_scaler(
    deps: PodScalerDeps,
    lease: LeasePort,
    loop: LoopSettings,
    trigger: Trigger,
    holder: str,
    remaining_seconds: Callable[[], float] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> PodScalerResult:
    first = [trigger.kind in ("alarm", "manual")]
    effective = loop if not trigger.dry_run else LoopSettings(budget_seconds=0.0, lease_seconds=loop.lease_seconds)

    def one_pass() -> tuple[ScalerPass, bool]:
        force, first[0] = first[0], False
        result = scale_once(deps, force=force, dry_run=trigger.dry_run)
        return result, result.more

    outcome: LoopOutcome[ScalerPass] = run_leased_loop(
        lease,
        LEASE_NAME,
        holder,
        one_pass,
        effective,
        remaining_seconds=remaining_seconds,
        clock=deps.clock,
        sleep=sleep,
    )
    if not outcome.held:
        deps.metrics.count(m.LEASE_CONTENDED, 1, Lease=LEASE_NAME)
    return PodScalerResult(trigger.description, outcome.held, outcome.stopped, outcome.passes)
