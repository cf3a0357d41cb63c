"""The pod tier: ScaledObjects -> metric reads -> replicas on the scale subresource (``domain.podscaling`` decides).

One pass reads every ScaledObject; a bad object (or a failed read, or a missing target) is reported and skipped, the
others go on. Each object is polled at most once per ``pollingInterval``, except on the first pass of an invocation that
an alarm started (the alarm is news). The scaler's memory (last active time, recommendations, recent scale events,
failure count) lives in the state table between invocations. Passes run under the ``pod-scaler`` lease, so one writer
changes a Deployment's replicas at a time, and keep going within the invocation while some object is active or moving.
Each polled object gets KEDA's status (conditions, health, lastActiveTime, originalReplicaCount) through the status
subresource and KEDA's and the HPA's Events (``domain.keda_status``); a bad object gets Ready=False naming the field.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..domain.errors import InvalidObject
from ..domain.keda_status import invalid_status, scale_events, scaled_object_status
from ..domain.podscaling import (
    Reading,
    ScaledObjectSpec,
    ScalerState,
    decide,
    parse_scaled_object,
    record_scale,
)
from ..domain.triggers import Trigger
from ..ports import metrics as m
from ..ports.cluster import ClusterPort, ObjectRef
from ..ports.events import Announcer
from ..ports.lease import LeasePort
from ..ports.metrics import MetricsPort
from ..ports.state import ScalerStates
from ..ports.trigger_metrics import TriggerMetrics
from .leased_loop import LoopOutcome, LoopSettings, run_leased_loop

log = logging.getLogger(__name__)

LEASE_NAME = "pod-scaler"
SCALED_OBJECT_API = "keda.sh/v1alpha1"


@dataclass
class PodScalerDeps:
    cluster: ClusterPort
    metrics_reader: TriggerMetrics
    states: ScalerStates
    metrics: MetricsPort
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
        namespace, name = str(meta.get("namespace") or "default"), str(meta.get("name") or "?")
        key = f"{namespace}/{name}"
        try:
            result = _scale_object(deps, raw, force, dry_run)
            if result is None:
                out.skipped += 1
            else:
                out.results.append(result)
        except InvalidObject as exc:
            deps.metrics.count(m.POD_SCALER_ERRORS, 1, Reason="InvalidObject")
            log.warning("%s", exc)
            out.errors[key] = str(exc)
            if not dry_run:
                ref = ObjectRef("ScaledObject", name, namespace, meta.get("uid"), SCALED_OBJECT_API)
                _write_status(deps, ref, invalid_status(str(exc)), [("Warning", "ScaledObjectCheckFailed", str(exc))])
        except Exception as exc:  # one object's failure never stops the others
            deps.metrics.count(m.POD_SCALER_ERRORS, 1, Reason=type(exc).__name__)
            log.warning("ScaledObject %s: %s", key, exc)
            out.errors[key] = f"{type(exc).__name__}: {exc}"
    return out


def _read_triggers(deps: PodScalerDeps, spec: ScaledObjectSpec) -> list[Reading]:
    readings = []
    for t in spec.triggers:
        try:
            readings.append(Reading(t.name, deps.metrics_reader.read(t)))
        except Exception as exc:  # a failed read counts toward the fallback; it does not stop the object
            deps.metrics.count(m.POD_SCALER_ERRORS, 1, Reason="MetricRead", ScaledObject=spec.key)
            log.warning("ScaledObject %s: trigger %s: metric read failed: %s", spec.key, t.name, exc)
            readings.append(Reading(t.name, None, str(exc)))
    return readings


def _scale_object(deps: PodScalerDeps, raw: dict[str, Any], force: bool, dry_run: bool) -> ObjectResult | None:
    """Poll one ScaledObject if it is due: read, decide, write the scale, the status and the events."""
    spec = parse_scaled_object(raw)
    state = ScalerState.from_dict(deps.states.get(spec.key))
    now = deps.clock()
    if not force and state.last_poll is not None and now - state.last_poll < spec.polling_interval:
        return None
    current, _ = deps.cluster.get_scale(spec.target_kind, spec.namespace, spec.target_name)
    if state.original_replicas is None:
        state.original_replicas = current
    decision = decide(spec, current, _read_triggers(deps, spec), state, now)
    state.last_poll = now
    if decision.replicas != current and not dry_run:
        deps.cluster.set_scale(spec.target_kind, spec.namespace, spec.target_name, decision.replicas)
        record_scale(spec, state, decision, current, now)
        _announce(deps, spec, current, decision.replicas)
        deps.metrics.count(m.POD_SCALER_CHANGES, 1, Direction="up" if decision.replicas > current else "down")

    if not dry_run:
        deps.states.put(spec.key, state.to_dict())
        uid = (raw.get("metadata") or {}).get("uid")
        ref = ObjectRef("ScaledObject", spec.name, spec.namespace, uid, SCALED_OBJECT_API)
        status = scaled_object_status(spec, decision, state, current, state.original_replicas)
        _write_status(deps, ref, status, scale_events(spec, decision, current))
    deps.metrics.gauge(m.POD_SCALER_DESIRED, decision.replicas, ScaledObject=spec.key)
    target = f"{spec.target_kind}/{spec.target_name}"
    if decision.replicas != current or decision.active:
        # one line per change, and per poll that holds an active object where it is (the reason says why)
        log.info(
            {
                "decision": "pod-scale" if decision.replicas != current else "pod-scale-kept",
                "at": now,
                "scaledObject": spec.key,
                "target": target,
                "from": current,
                "to": decision.replicas,
                "active": decision.active,
                "why": decision.reason,
                "dryRun": dry_run,
            }
        )
    return ObjectResult(spec.key, target, current, decision.replicas, decision.reason, decision.active)


def _announce(deps: PodScalerDeps, spec: ScaledObjectSpec, before: int, after: int) -> None:
    if after <= before or deps.announcer is None:
        return
    try:
        target = f"{spec.target_kind}/{spec.namespace}/{spec.target_name}"
        deps.announcer.replicas_increased(spec.key, target, before, after)
    except Exception as exc:  # the schedule and the pending-pods alarm still catch the pods
        deps.metrics.count(m.POD_SCALER_ERRORS, 1, Reason="Announce")
        log.warning("could not announce the scale-up of %s: %s", spec.key, exc)


def _write_status(
    deps: PodScalerDeps, ref: ObjectRef, status: dict[str, Any], events: list[tuple[str, str, str]]
) -> None:
    """KEDA-style status and Events; a failed write is counted and logged, never stops the scaling."""
    assert ref.namespace is not None
    try:
        deps.cluster.set_scaled_object_status(ref.namespace, ref.name, status)
        for type_, reason, message in events:
            deps.cluster.record_event(ref, reason, message, type_)
    except Exception as exc:
        deps.metrics.count(m.POD_SCALER_ERRORS, 1, Reason="StatusWrite")
        log.warning("ScaledObject %s/%s: could not write status or events: %s", ref.namespace, ref.name, exc)


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
    effective = loop if not trigger.dry_run else loop.single_pass()

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
