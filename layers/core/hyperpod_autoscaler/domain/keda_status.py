"""What KEDA's operator writes on a ScaledObject and emits as Events, from a pod-scaling decision; pure (no I/O).

So that ``kubectl get scaledobject`` (READY / ACTIVE / FALLBACK columns) and ``kubectl describe`` answer "why this many
replicas" as they do with KEDA:

* ``status.conditions``: Ready (``ScaledObjectReady``; False ``TriggerError`` when triggers fail without fallback;
  Unknown ``PartialTriggerError`` when some fail while others are active; False ``ScaledObjectCheckFailed`` for a bad
  object, naming the field), Active (``ScalerActive`` / ``ScalerNotActive`` / ``ScalerCooldown``), Fallback
  (``FallbackExists`` / ``NoFallbackFound``), Paused.
* ``status.health``: per trigger, ``numberOfFailures`` and ``Happy`` / ``Failing``.
* ``status.lastActiveTime``, ``status.originalReplicaCount``, ``status.scaleTargetKind``, ``status.scaleTargetGVKR``.
* Events: ``KEDAScaleTargetActivated`` / ``KEDAScaleTargetDeactivated`` (KEDA's executor), ``SuccessfulRescale`` (the
  HPA's, with its reason), ``KEDAScalerFailed`` per failing trigger, ``ScaledObjectCheckFailed`` for a bad object.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .podscaling import Decision, ScaledObjectSpec, ScalerState

PLURALS = {"Deployment": "deployments", "StatefulSet": "statefulsets"}


def _time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _condition(type_: str, status: str, reason: str, message: str) -> dict[str, str]:
    return {"type": type_, "status": status, "reason": reason, "message": message}


def _ready(decision: Decision) -> dict[str, str]:
    if decision.error and decision.active:
        return _condition(
            "Ready", "Unknown", "PartialTriggerError", "Some triggers defined in ScaledObject are not working correctly"
        )
    if decision.error:
        return _condition(
            "Ready", "False", "TriggerError", "Triggers defined in ScaledObject are not working correctly"
        )
    return _condition(
        "Ready", "True", "ScaledObjectReady", "ScaledObject is defined correctly and is ready for scaling"
    )


def _active(spec: ScaledObjectSpec, decision: Decision, current: int) -> dict[str, str]:
    if decision.active:
        return _condition("Active", "True", "ScalerActive", "Scaling is performed because triggers are active")
    resting = spec.idle_replicas if spec.idle_replicas is not None else 0
    if decision.replicas > resting and (spec.min_replicas == 0 or spec.idle_replicas is not None) and current > 0:
        return _condition("Active", "False", "ScalerCooldown", "Scaler cooling down because triggers are not active")
    return _condition("Active", "False", "ScalerNotActive", "Scaling is not performed because triggers are not active")


def _fallback(decision: Decision) -> dict[str, str]:
    if decision.fallback:
        return _condition(
            "Fallback", "True", "FallbackExists", "At least one trigger is falling back on this scaled object"
        )
    return _condition("Fallback", "False", "NoFallbackFound", "No fallbacks are active on this scaled object")


def scaled_object_status(
    spec: ScaledObjectSpec, decision: Decision, state: ScalerState, current: int, original: int | None
) -> dict[str, Any]:
    """The status KEDA's operator would write after this decision (conditions without transition times: the writer
    keeps a condition's ``lastTransitionTime`` while its status does not change)."""
    paused = decision.source == "paused"
    conditions = [
        _ready(decision),
        _active(spec, decision, current),
        _fallback(decision),
        _condition(
            "Paused",
            "True" if paused else "False",
            "ScaledObjectPaused" if paused else "ScaledObjectUnpaused",
            "ScaledObject is paused" if paused else "ScaledObject is not paused",
        ),
    ]
    out: dict[str, Any] = {
        "conditions": conditions,
        "scaleTargetKind": f"apps/v1.{spec.target_kind}",
        "scaleTargetGVKR": {
            "group": "apps",
            "version": "v1",
            "kind": spec.target_kind,
            "resource": PLURALS.get(spec.target_kind, spec.target_kind.lower() + "s"),
        },
        "health": {
            m.trigger.name: {
                "numberOfFailures": state.failures.get(m.trigger.name, 0),
                "status": "Happy" if m.error is None else "Failing",
            }
            for m in decision.metrics
        },
    }
    if state.last_active is not None:
        out["lastActiveTime"] = _time(state.last_active)
    if original is not None:
        out["originalReplicaCount"] = original
    return out


def invalid_status(message: str) -> dict[str, Any]:
    """A ScaledObject that does not parse: Ready False naming the field (KEDA's ``ScaledObjectCheckFailed``)."""
    return {"conditions": [_condition("Ready", "False", "ScaledObjectCheckFailed", message)]}


def scale_events(spec: ScaledObjectSpec, decision: Decision, current: int) -> list[tuple[str, str, str]]:
    """(type, reason, message) of the Events KEDA and the HPA would emit for this decision."""
    target = f"{spec.target_kind} {spec.namespace}/{spec.target_name}"
    out = [
        ("Warning", "KEDAScalerFailed", f"trigger {m.trigger.name}: {m.error}")
        for m in decision.metrics
        if m.error is not None
    ]
    if decision.replicas == current or decision.source == "paused":
        return out
    if decision.reason == "KEDAScaleTargetActivated":
        active = ";".join(m.trigger.name for m in decision.metrics if m.active)
        message = f"Scaled {target} from {current} to {decision.replicas}, triggered by {active}"
        out.append(("Normal", "KEDAScaleTargetActivated", message))
    elif decision.reason == "KEDAScaleTargetDeactivated":
        out.append(
            ("Normal", "KEDAScaleTargetDeactivated", f"Deactivated {target} from {current} to {decision.replicas}")
        )
    else:
        per = ", ".join(f"{name}: {n}" for name, n in sorted(decision.per_trigger.items()))
        detail = f"{decision.reason}" + (f" (per trigger {per})" if per else "")
        out.append(("Normal", "SuccessfulRescale", f"New size: {decision.replicas}; reason: {detail}"))
    return out
