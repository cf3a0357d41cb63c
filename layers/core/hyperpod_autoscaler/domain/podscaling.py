"""Pod-tier scaling: KEDA's ScaledObject semantics in front of the HPA algorithm (``domain.hpa``), pure (no I/O).

What it reproduces (``docs/pod-scaling.md``, ``tests/conformance/podscaling/``; KEDA 2.x and the Kubernetes HPA):

* **Metrics** (KEDA's scale handler and ``pkg/fallback``): each trigger's read is its metric; a failed read counts a
  failure for that trigger, and once its failures are strictly more than ``fallback.failureThreshold`` (0 is valid)
  the trigger reports ``target * fallback replicas`` instead (behavior static, currentReplicas,
  currentReplicasIfHigher, currentReplicasIfLower) and counts as active. A failed read without fallback leaves the
  metric invalid.
* **KEDA's executor** (``RequestScale``) decides 0 <-> active only: an active object at 0 (or below minReplicaCount
  with ``idleReplicaCount``) goes to ``max(minReplicaCount, 1)``; an inactive object goes to ``idleReplicaCount`` or 0
  once ``cooldownPeriod`` has passed since it was last active, or ``initialCooldownPeriod`` since creation if it was
  never active. An invalid metric keeps KEDA from deactivating, and from refreshing the last active time.
* **The HPA** (``domain.hpa``) does everything else above one replica: per-metric proposals with the tolerance, the
  largest wins, no scale-down while any metric is invalid; then the behavior, or without one the legacy
  normalization (300 s scale-down stabilization, scale-up at most ``max(2 * current, 4)``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from . import hpa
from .duration import parse_duration
from .errors import InvalidObject
from .hpa import DEFAULT_SCALE_DOWN, DEFAULT_SCALE_UP, Behavior, HpaMemory, Policy, Rules

SUPPORTED_TRIGGERS = ("aws-sqs-queue", "aws-cloudwatch")
MAX_PERIOD_SECONDS = 1800
MAX_WINDOW_SECONDS = 3600


# --- the ScaledObject ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TriggerSpec:
    type: str
    name: str
    metric_type: Literal["AverageValue", "Value"]
    target: float
    activation: float
    metadata: Mapping[str, str]


@dataclass(frozen=True)
class Fallback:
    failure_threshold: int
    replicas: int
    behavior: Literal["static", "currentReplicas", "currentReplicasIfHigher", "currentReplicasIfLower"] = "static"


@dataclass(frozen=True)
class ScaledObjectSpec:
    namespace: str
    name: str
    target_kind: str
    target_name: str
    polling_interval: int = 30
    cooldown_period: int = 300
    initial_cooldown_period: int = 0
    min_replicas: int = 0
    max_replicas: int = 100
    idle_replicas: int | None = None
    fallback: Fallback | None = None
    behavior: Behavior | None = None
    """``advanced.horizontalPodAutoscalerConfig.behavior`` with the API server's defaults filled in; None when absent
    (KEDA then creates its HPA without a behavior, and the HPA's legacy normalization applies)."""
    triggers: tuple[TriggerSpec, ...] = ()
    paused_replicas: int | None = None
    created_at: float | None = None
    """``metadata.creationTimestamp`` (epoch seconds): ``initialCooldownPeriod`` counts from it."""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def floor(self) -> int:
        """The HPA's minReplicas: KEDA never lets the HPA go below one; zero is KEDA's own business."""
        return max(self.min_replicas, 1)


def _num(raw: Any, where: str, obj: str, default: float | None = None, integer: bool = False) -> float:
    if raw is None or raw == "":
        if default is None:
            raise InvalidObject("ScaledObject", obj, where, "required field is missing")
        return default
    try:
        value = float(str(raw).strip())
    except ValueError:
        raise InvalidObject("ScaledObject", obj, where, f"{raw!r} is not a number") from None
    if math.isnan(value) or math.isinf(value):
        raise InvalidObject("ScaledObject", obj, where, f"{raw!r} is not a finite number")
    if integer and value != int(value):
        raise InvalidObject("ScaledObject", obj, where, f"{raw!r} is not an integer")
    return value


def _int(raw: Any, where: str, obj: str, default: int, minimum: int = 0) -> int:
    value = int(_num(raw, where, obj, float(default), integer=True))
    if value < minimum:
        raise InvalidObject("ScaledObject", obj, where, f"must be >= {minimum}, got {value}")
    return value


def _rules(raw: Any, where: str, obj: str, default: Rules) -> Rules:
    if raw is None:
        return default
    if not isinstance(raw, Mapping):
        raise InvalidObject("ScaledObject", obj, where, "must be an object")
    window = raw.get("stabilizationWindowSeconds")
    window_s = (
        default.stabilization_window_seconds
        if window is None
        else _int(window, f"{where}.stabilizationWindowSeconds", obj, 0)
    )
    if window_s > MAX_WINDOW_SECONDS:
        raise InvalidObject("ScaledObject", obj, f"{where}.stabilizationWindowSeconds", "must be <= 3600")
    select = raw.get("selectPolicy", "Max")
    if select not in ("Max", "Min", "Disabled"):
        raise InvalidObject("ScaledObject", obj, f"{where}.selectPolicy", f"{select!r} is not Max, Min or Disabled")
    policies = default.policies
    if raw.get("policies") is not None:
        if not isinstance(raw["policies"], list) or not raw["policies"]:
            raise InvalidObject("ScaledObject", obj, f"{where}.policies", "must be a non-empty list")
        out = []
        for i, p in enumerate(raw["policies"]):
            here = f"{where}.policies[{i}]"
            if not isinstance(p, Mapping) or p.get("type") not in ("Pods", "Percent"):
                raise InvalidObject("ScaledObject", obj, f"{here}.type", "must be Pods or Percent")
            value = _int(p.get("value"), f"{here}.value", obj, 0, minimum=1)
            period = _int(p.get("periodSeconds"), f"{here}.periodSeconds", obj, 0, minimum=1)
            if period > MAX_PERIOD_SECONDS:
                raise InvalidObject("ScaledObject", obj, f"{here}.periodSeconds", "must be <= 1800")
            out.append(Policy(p["type"], value, period))
        policies = tuple(out)
    return Rules(window_s, policies, select)


def _trigger(raw: Any, i: int, obj: str) -> TriggerSpec:
    where = f"spec.triggers[{i}]"
    if not isinstance(raw, Mapping):
        raise InvalidObject("ScaledObject", obj, where, "must be an object")
    typ = str(raw.get("type") or "")
    if typ not in SUPPORTED_TRIGGERS:
        raise InvalidObject(
            "ScaledObject", obj, f"{where}.type", f"{typ!r} is not supported ({', '.join(SUPPORTED_TRIGGERS)})"
        )
    meta_raw = raw.get("metadata")
    if not isinstance(meta_raw, Mapping):
        raise InvalidObject("ScaledObject", obj, f"{where}.metadata", "required field is missing")
    meta = {str(k): str(v) for k, v in meta_raw.items() if v is not None}
    metric_type = raw.get("metricType") or "AverageValue"
    if metric_type not in ("AverageValue", "Value"):
        raise InvalidObject("ScaledObject", obj, f"{where}.metricType", f"{metric_type!r} is not AverageValue or Value")
    if typ == "aws-sqs-queue":
        if not meta.get("queueURL") and not meta.get("queueURLFromEnv"):
            raise InvalidObject("ScaledObject", obj, f"{where}.metadata.queueURL", "required field is missing")
        target = _num(meta.get("queueLength"), f"{where}.metadata.queueLength", obj, 5.0)
        activation = _num(meta.get("activationQueueLength"), f"{where}.metadata.activationQueueLength", obj, 0.0)
    else:
        if not meta.get("expression"):
            for key in ("namespace", "metricName"):
                if not meta.get(key):
                    raise InvalidObject("ScaledObject", obj, f"{where}.metadata.{key}", "required field is missing")
        # older field names (the seed's ``threshold`` / ``statistic``) are accepted
        target_raw = meta.get("targetMetricValue", meta.get("threshold"))
        field_name = "targetMetricValue" if "targetMetricValue" in meta else "threshold"
        target = _num(target_raw, f"{where}.metadata.{field_name}", obj)
        activation = _num(
            meta.get("activationTargetMetricValue"), f"{where}.metadata.activationTargetMetricValue", obj, 0.0
        )
    if target <= 0:
        raise InvalidObject(
            "ScaledObject", obj, f"{where}.metadata", f"the target per replica must be > 0, got {target}"
        )
    return TriggerSpec(typ, str(raw.get("name") or f"s{i}-{typ}"), metric_type, target, activation, meta)  # type: ignore[arg-type]


def parse_scaled_object(doc: Mapping[str, Any]) -> ScaledObjectSpec:
    """A ``keda.sh/v1alpha1`` ScaledObject as ``kubectl get -o yaml`` prints it. Unknown fields are ignored; a bad
    value raises InvalidObject naming the field."""
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), Mapping) else {}
    assert isinstance(meta, Mapping)
    name = str(meta.get("name") or "")
    namespace = str(meta.get("namespace") or "default")
    obj = f"{namespace}/{name}"
    if not name:
        raise InvalidObject("ScaledObject", obj, "metadata.name", "required field is missing")
    spec = doc.get("spec")
    if not isinstance(spec, Mapping):
        raise InvalidObject("ScaledObject", obj, "spec", "required field is missing")
    ref = spec.get("scaleTargetRef")
    if not isinstance(ref, Mapping) or not ref.get("name"):
        raise InvalidObject("ScaledObject", obj, "spec.scaleTargetRef.name", "required field is missing")
    min_r = _int(spec.get("minReplicaCount"), "spec.minReplicaCount", obj, 0)
    max_r = _int(spec.get("maxReplicaCount"), "spec.maxReplicaCount", obj, 100, minimum=1)
    if max_r < min_r:
        raise InvalidObject("ScaledObject", obj, "spec.maxReplicaCount", f"{max_r} is below minReplicaCount {min_r}")
    idle = spec.get("idleReplicaCount")
    idle_r = None if idle is None else _int(idle, "spec.idleReplicaCount", obj, 0)
    if idle_r is not None and idle_r >= max(min_r, 1):
        raise InvalidObject("ScaledObject", obj, "spec.idleReplicaCount", "must be below minReplicaCount")
    fallback = None
    fb = spec.get("fallback")
    if isinstance(fb, Mapping):
        behavior = fb.get("behavior") or "static"
        if behavior not in ("static", "currentReplicas", "currentReplicasIfHigher", "currentReplicasIfLower"):
            raise InvalidObject(
                "ScaledObject", obj, "spec.fallback.behavior", f"{behavior!r} is not a fallback behavior"
            )
        fallback = Fallback(
            _int(fb.get("failureThreshold"), "spec.fallback.failureThreshold", obj, 0),
            _int(fb.get("replicas"), "spec.fallback.replicas", obj, 0),
            behavior,  # type: ignore[arg-type]
        )
    hpa = (
        ((spec.get("advanced") or {}).get("horizontalPodAutoscalerConfig") or {})
        if isinstance(spec.get("advanced"), Mapping)
        else {}
    )
    behavior_raw = hpa.get("behavior") if isinstance(hpa, Mapping) else None
    behavior_raw = behavior_raw if isinstance(behavior_raw, Mapping) else None
    where_b = "spec.advanced.horizontalPodAutoscalerConfig.behavior"
    triggers_raw = spec.get("triggers")
    if not isinstance(triggers_raw, list) or not triggers_raw:
        raise InvalidObject("ScaledObject", obj, "spec.triggers", "must be a non-empty list")
    annotations = meta.get("annotations") if isinstance(meta.get("annotations"), Mapping) else {}
    assert isinstance(annotations, Mapping)
    paused = annotations.get("autoscaling.keda.sh/paused-replicas")
    return ScaledObjectSpec(
        namespace=namespace,
        name=name,
        target_kind=str(ref.get("kind") or "Deployment"),
        target_name=str(ref["name"]),
        polling_interval=_int(spec.get("pollingInterval"), "spec.pollingInterval", obj, 30, minimum=1),
        cooldown_period=_int(spec.get("cooldownPeriod"), "spec.cooldownPeriod", obj, 300),
        initial_cooldown_period=_int(spec.get("initialCooldownPeriod"), "spec.initialCooldownPeriod", obj, 0),
        min_replicas=min_r,
        max_replicas=max_r,
        idle_replicas=idle_r,
        fallback=fallback,
        behavior=None
        if behavior_raw is None
        else Behavior(
            _rules(behavior_raw.get("scaleUp"), f"{where_b}.scaleUp", obj, DEFAULT_SCALE_UP),
            _rules(behavior_raw.get("scaleDown"), f"{where_b}.scaleDown", obj, DEFAULT_SCALE_DOWN),
        ),
        triggers=tuple(_trigger(t, i, obj) for i, t in enumerate(triggers_raw)),
        paused_replicas=None if paused is None else _int(paused, "metadata.annotations[paused-replicas]", obj, 0),
        created_at=_timestamp(meta.get("creationTimestamp")),
    )


def _timestamp(raw: Any) -> float | None:
    if not raw:
        return None
    try:
        return datetime.fromisoformat(str(raw).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def duration_seconds(value: str | None, default: float) -> float:
    """KEDA's integer seconds (``metricCollectionTime: "60"``); a duration such as ``5m`` is accepted too."""
    if value is None:
        return default
    try:
        return float(value)
    except ValueError:
        parsed = parse_duration(value)
        return default if parsed is None else parsed


# --- state kept between invocations ------------------------------------------------------------------------------------


@dataclass
class ScalerState:
    created_at: float | None = None
    """When this scaler first saw the object (``initialCooldownPeriod`` counts from it when the object carries no
    ``creationTimestamp``)."""
    last_active: float | None = None
    """KEDA's ``status.lastActiveTime``: None while the object was never active."""
    failures: dict[str, int] = field(default_factory=dict)
    """Consecutive failed reads per trigger (KEDA's ``status.health[*].numberOfFailures``)."""
    hpa: HpaMemory = field(default_factory=HpaMemory)
    last_poll: float | None = None
    original_replicas: int | None = None
    """The target's replicas when this scaler first saw the object (KEDA's ``status.originalReplicaCount``)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "createdAt": self.created_at,
            "lastActive": self.last_active,
            "triggerFailures": dict(self.failures),
            "hpa": self.hpa.to_dict(),
            "lastPoll": self.last_poll,
            "originalReplicas": self.original_replicas,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> ScalerState:
        if not raw:
            return cls()
        return cls(
            created_at=raw.get("createdAt"),
            last_active=raw.get("lastActive"),
            failures={str(k): int(v) for k, v in (raw.get("triggerFailures") or {}).items()},
            hpa=HpaMemory.from_dict(raw.get("hpa") or {}),
            last_poll=raw.get("lastPoll"),
            original_replicas=raw.get("originalReplicas"),
        )


# --- the decision ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """One trigger's metric: its value, or the error that prevented reading it."""

    trigger: str
    value: float | None
    error: str | None = None


@dataclass(frozen=True)
class TriggerMetric:
    """A trigger's metric as KEDA hands it to the HPA: the value read, the fallback value, or invalid (None)."""

    trigger: TriggerSpec
    value: float | None
    active: bool
    fallback: bool = False
    error: str | None = None
    failures: int = 0


@dataclass
class Decision:
    replicas: int
    reason: str
    active: bool
    per_trigger: dict[str, int] = field(default_factory=dict)
    source: Literal["keda", "hpa", "paused"] = "hpa"
    """Who set the count: KEDA's executor (activation, deactivation, minReplicaCount) or the HPA."""
    metrics: list[TriggerMetric] = field(default_factory=list)

    @property
    def error(self) -> bool:
        return any(m.value is None for m in self.metrics)

    @property
    def fallback(self) -> bool:
        return any(m.fallback for m in self.metrics)

    @property
    def summary(self) -> str:
        return f"{self.replicas} ({self.reason})"


def fallback_value(fb: Fallback, trigger: TriggerSpec, current: int) -> float | None:
    """KEDA's ``doFallback``: the metric value that makes the HPA ask for the fallback replicas (``target *
    replicas``; for ``Value`` targets divided by the ready replicas, here the current ones). None when it cannot."""
    replicas = {
        "static": fb.replicas,
        "currentReplicas": current,
        "currentReplicasIfHigher": max(current, fb.replicas),
        "currentReplicasIfLower": min(current, fb.replicas),
    }[fb.behavior]
    per: float = replicas
    if trigger.metric_type == "Value":
        if current == 0:
            return None
        per = replicas / current
    return int(trigger.target * 1000 * per) / 1000


def trigger_metrics(
    spec: ScaledObjectSpec, current: int, readings: list[Reading], state: ScalerState
) -> list[TriggerMetric]:
    """Each trigger's metric after KEDA's fallback (``GetMetricsWithFallback``): a failed read counts a failure; once
    the failures are strictly more than ``failureThreshold`` the fallback value stands in, and counts as active."""
    by_name = {r.trigger: r for r in readings}
    out = []
    for t in spec.triggers:
        r = by_name.get(t.name)
        if r is not None and r.error is None and r.value is not None:
            state.failures[t.name] = 0
            out.append(TriggerMetric(t, r.value, r.value > t.activation))
            continue
        error = r.error if r is not None and r.error else "no metric value"
        failures = state.failures[t.name] = state.failures.get(t.name, 0) + 1
        fb = spec.fallback
        value = fallback_value(fb, t, current) if fb is not None and failures > fb.failure_threshold else None
        out.append(TriggerMetric(t, value, value is not None, value is not None, error, failures))
    return out


def _cooled_down(spec: ScaledObjectSpec, state: ScalerState, now: float) -> bool:
    """``scaleToZeroOrIdle``: never active -> ``initialCooldownPeriod`` after creation; else ``cooldownPeriod`` after
    the last active time (both strictly before now)."""
    if state.last_active is None:
        created = spec.created_at if spec.created_at is not None else state.created_at
        return created is None or created + spec.initial_cooldown_period < now
    return state.last_active + spec.cooldown_period < now


def _executor(
    spec: ScaledObjectSpec, state: ScalerState, current: int, active: bool, error: bool, now: float
) -> tuple[int, str] | None:
    """KEDA's ``RequestScale``: the count KEDA itself writes (0 <-> active, minReplicaCount), or None to leave the
    target to the HPA."""
    idle = spec.idle_replicas
    if active:
        if (idle is not None and current < spec.min_replicas) or current == 0:
            state.last_active = now
            return spec.floor, "KEDAScaleTargetActivated"
        if not error:
            state.last_active = now
        return None
    if error and (spec.fallback is None or spec.fallback.replicas != 0):
        return None  # a failing trigger never lets KEDA deactivate
    if (idle is not None and current > idle) or (current > 0 and spec.min_replicas == 0):
        if _cooled_down(spec, state, now):
            return (idle if idle is not None else spec.min_replicas), "KEDAScaleTargetDeactivated"
        return None
    if idle is None and current < spec.min_replicas:
        return spec.min_replicas, "below minReplicaCount"
    return None


def decide(spec: ScaledObjectSpec, current: int, readings: list[Reading], state: ScalerState, now: float) -> Decision:
    """The replicas ``spec``'s target should have now: KEDA's executor first, then the HPA. Mutates ``state``
    (failures, activity, the HPA's memory); the caller stores the scale event with ``record_scale`` once the change is
    written."""
    if state.created_at is None:
        state.created_at = now
    if spec.paused_replicas is not None:
        return Decision(spec.paused_replicas, "paused", False, source="paused")
    hpa.record_initial(state.hpa, current, now)  # the HPA exists from the ScaledObject's creation on
    metrics = trigger_metrics(spec, current, readings, state)
    active = any(m.active for m in metrics)
    error = any(m.value is None for m in metrics)
    executed = _executor(spec, state, current, active, error, now)
    if executed is not None:
        return Decision(executed[0], executed[1], active, source="keda", metrics=metrics)
    per_trigger = {
        m.trigger.name: hpa.external_replicas(m.trigger.metric_type, m.value, m.trigger.target, current)
        for m in metrics
        if m.value is not None and current > 0
    }
    proposals = [per_trigger.get(m.trigger.name) for m in metrics]
    out = hpa.reconcile(state.hpa, spec.behavior, current, proposals, spec.floor, spec.max_replicas, now)
    return Decision(out.replicas, out.reason, active, per_trigger, "hpa", metrics)


def record_scale(spec: ScaledObjectSpec, state: ScalerState, decision: Decision, before: int, now: float) -> None:
    """After the count was written: the HPA remembers its own scale events (only with a behavior, as upstream)."""
    if decision.source == "hpa":
        hpa.store_scale_event(state.hpa, spec.behavior, before, decision.replicas, now)
