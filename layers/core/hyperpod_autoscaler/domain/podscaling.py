"""Pod-tier scaling math: KEDA's ScaledObject semantics over the HPA algorithm, pure (no I/O).

What it reproduces (``shared/reference/keda-hpa.md``, KEDA 2.x and the Kubernetes HPA controller):

* **Activation** (KEDA) decides 0 <-> 1 only: a trigger is active when its metric is strictly above its activation value.
  From zero (or ``idleReplicaCount``) an active object goes to ``max(minReplicaCount, 1)``; an inactive object goes to
  ``idleReplicaCount`` or to 0 (only when ``minReplicaCount`` is 0) once ``cooldownPeriod`` has passed since it was last
  active (and ``initialCooldownPeriod`` since it was created).
* **Fallback**: after ``failureThreshold`` consecutive failed reads of every trigger, the replicas follow
  ``fallback.replicas`` (behavior static, currentReplicas, currentReplicasIfHigher, currentReplicasIfLower).
* **HPA** above one replica: ``AverageValue`` targets (KEDA's default for these scalers) give
  ``desired = ceil(metric / target)``, ``Value`` targets ``ceil(current * metric / target)``; no change while the usage
  ratio is within the tolerance (0.1) of 1; several triggers: the largest desired wins; then the behavior:
  stabilization windows (up: the smallest recommendation of the window, down: the largest) and the rate policies
  (Pods / Percent per period, selectPolicy Max / Min / Disabled), finally clamped to [max(min, 1), max].
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .duration import parse_duration
from .errors import InvalidObject

TOLERANCE = 0.1
SUPPORTED_TRIGGERS = ("aws-sqs-queue", "aws-cloudwatch")
MAX_PERIOD_SECONDS = 1800
MAX_WINDOW_SECONDS = 3600


# --- the ScaledObject ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    type: Literal["Pods", "Percent"]
    value: int
    period_seconds: int


@dataclass(frozen=True)
class Rules:
    stabilization_window_seconds: int
    policies: tuple[Policy, ...]
    select_policy: Literal["Max", "Min", "Disabled"] = "Max"


DEFAULT_SCALE_UP = Rules(0, (Policy("Pods", 4, 15), Policy("Percent", 100, 15)), "Max")
DEFAULT_SCALE_DOWN = Rules(300, (Policy("Percent", 100, 15),), "Max")


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
    scale_up: Rules = DEFAULT_SCALE_UP
    scale_down: Rules = DEFAULT_SCALE_DOWN
    triggers: tuple[TriggerSpec, ...] = ()
    paused_replicas: int | None = None

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
            _int(fb.get("failureThreshold"), "spec.fallback.failureThreshold", obj, 0, minimum=1),
            _int(fb.get("replicas"), "spec.fallback.replicas", obj, 0),
            behavior,  # type: ignore[arg-type]
        )
    hpa = (
        ((spec.get("advanced") or {}).get("horizontalPodAutoscalerConfig") or {})
        if isinstance(spec.get("advanced"), Mapping)
        else {}
    )
    behavior_raw = hpa.get("behavior") if isinstance(hpa, Mapping) else None
    behavior_raw = behavior_raw if isinstance(behavior_raw, Mapping) else {}
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
        scale_up=_rules(behavior_raw.get("scaleUp"), f"{where_b}.scaleUp", obj, DEFAULT_SCALE_UP),
        scale_down=_rules(behavior_raw.get("scaleDown"), f"{where_b}.scaleDown", obj, DEFAULT_SCALE_DOWN),
        triggers=tuple(_trigger(t, i, obj) for i, t in enumerate(triggers_raw)),
        paused_replicas=None if paused is None else _int(paused, "metadata.annotations[paused-replicas]", obj, 0),
    )


def duration_seconds(value: str | None, default: float) -> float:
    if value is None:
        return default
    parsed = parse_duration(value)
    return default if parsed is None else parsed


# --- state kept between invocations ------------------------------------------------------------------------------------


@dataclass
class ScalerState:
    created_at: float | None = None
    last_active: float | None = None
    failures: int = 0
    recommendations: list[tuple[float, int]] = field(default_factory=list)
    """(time, replicas) the HPA recommended: the stabilization windows look back over these."""
    scale_events: list[tuple[float, int]] = field(default_factory=list)
    """(time, change in replicas) this scaler made: the rate policies count what was already added or removed."""
    last_poll: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "createdAt": self.created_at,
            "lastActive": self.last_active,
            "failures": self.failures,
            "recommendations": [list(r) for r in self.recommendations],
            "scaleEvents": [list(e) for e in self.scale_events],
            "lastPoll": self.last_poll,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> ScalerState:
        if not raw:
            return cls()
        return cls(
            created_at=raw.get("createdAt"),
            last_active=raw.get("lastActive"),
            failures=int(raw.get("failures") or 0),
            recommendations=[(float(t), int(r)) for t, r in raw.get("recommendations") or []],
            scale_events=[(float(t), int(d)) for t, d in raw.get("scaleEvents") or []],
            last_poll=raw.get("lastPoll"),
        )


# --- the decision ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """One trigger's metric: its value, or the error that prevented reading it."""

    trigger: str
    value: float | None
    error: str | None = None


@dataclass
class Decision:
    replicas: int
    reason: str
    active: bool
    per_trigger: dict[str, int] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        return f"{self.replicas} ({self.reason})"


def hpa_desired(trigger: TriggerSpec, value: float, current: int) -> int:
    """One metric's desired replicas with the HPA's tolerance (``current`` >= 1)."""
    if trigger.metric_type == "Value":
        ratio = value / trigger.target
        if abs(ratio - 1.0) <= TOLERANCE:
            return current
        return math.ceil(current * ratio)
    ratio = value / (trigger.target * current)
    if abs(ratio - 1.0) <= TOLERANCE:
        return current
    return math.ceil(value / trigger.target)


def _stabilize(spec: ScaledObjectSpec, state: ScalerState, desired: int, current: int, now: float) -> int:
    state.recommendations.append((now, desired))
    up_cut = now - spec.scale_up.stabilization_window_seconds
    down_cut = now - spec.scale_down.stabilization_window_seconds
    up_rec = desired
    down_rec = desired
    for t, rec in state.recommendations:
        if t >= up_cut:
            up_rec = min(up_rec, rec)
        if t >= down_cut:
            down_rec = max(down_rec, rec)
    keep = max(spec.scale_up.stabilization_window_seconds, spec.scale_down.stabilization_window_seconds)
    state.recommendations = [(t, r) for t, r in state.recommendations if t >= now - keep]
    out = current
    if out < up_rec:
        out = up_rec
    if out > down_rec:
        out = down_rec
    return out


def _changed_in(state: ScalerState, now: float, period: int, up: bool) -> int:
    return sum(d for t, d in state.scale_events if t > now - period and ((d > 0) if up else (d < 0)))


def _up_limit(spec: ScaledObjectSpec, state: ScalerState, current: int, now: float) -> int:
    rules = spec.scale_up
    if rules.select_policy == "Disabled":
        return current
    limits = []
    for p in rules.policies:
        start = current - _changed_in(state, now, p.period_seconds, up=True)
        limits.append(start + p.value if p.type == "Pods" else math.ceil(start * (1 + p.value / 100)))
    limit = max(limits) if rules.select_policy == "Max" else min(limits)
    return max(limit, current)


def _down_limit(spec: ScaledObjectSpec, state: ScalerState, current: int, now: float) -> int:
    rules = spec.scale_down
    if rules.select_policy == "Disabled":
        return current
    limits = []
    for p in rules.policies:
        start = current - _changed_in(state, now, p.period_seconds, up=False)  # adds back what was removed
        limits.append(start - p.value if p.type == "Pods" else math.ceil(start * (1 - p.value / 100)))
    # "Max" selects the policy that allows the biggest change, i.e. the lowest limit
    limit = min(limits) if rules.select_policy == "Max" else max(limits)
    return min(limit, current)


def decide(spec: ScaledObjectSpec, current: int, readings: list[Reading], state: ScalerState, now: float) -> Decision:
    """The replicas ``spec``'s target should have now. Mutates ``state`` (recommendations, activity, failures); the
    caller records the scale event with ``record_scale`` once the change is written."""
    if state.created_at is None:
        state.created_at = now
    if spec.paused_replicas is not None:
        return Decision(spec.paused_replicas, "paused", False)
    ok = [r for r in readings if r.error is None and r.value is not None]
    triggers = {t.name: t for t in spec.triggers}
    if not ok:
        state.failures += 1
        if spec.fallback and state.failures >= spec.fallback.failure_threshold:
            fb, n = spec.fallback, spec.fallback.replicas
            replicas = {
                "static": n,
                "currentReplicas": current,
                "currentReplicasIfHigher": max(current, n),
                "currentReplicasIfLower": min(current, n),
            }[fb.behavior]
            return Decision(replicas, f"fallback after {state.failures} failed reads", False)
        return Decision(current, f"metrics unavailable ({state.failures} failed reads): unchanged", False)
    state.failures = 0
    active = any(r.value is not None and r.value > triggers[r.trigger].activation for r in ok if r.trigger in triggers)
    if active:
        state.last_active = now
    idle = spec.idle_replicas if spec.idle_replicas is not None else 0
    if spec.min_replicas > 0 and spec.idle_replicas is None and current < spec.min_replicas:
        return Decision(spec.min_replicas, "below minReplicaCount", active)
    at_rest = current == 0 or (spec.idle_replicas is not None and current == spec.idle_replicas)
    if not active:
        may_rest = spec.min_replicas == 0 or spec.idle_replicas is not None
        if at_rest:
            return Decision(current, "inactive", False)
        since_active = now - (state.last_active if state.last_active is not None else state.created_at)
        in_initial = now - state.created_at < spec.initial_cooldown_period
        if may_rest and since_active >= spec.cooldown_period and not in_initial:
            state.recommendations.clear()
            return Decision(idle, f"inactive for {int(since_active)}s >= cooldownPeriod", False)
        if may_rest and current <= spec.floor:
            return Decision(current, "inactive, waiting for the cooldown", False)
    if at_rest:
        # activation (``active`` is True here): 0 -> max(min, 1) first; the HPA takes over from the next poll
        state.recommendations = [(now, spec.floor)]
        return Decision(spec.floor, "activated", True)
    per_trigger = {}
    for r in ok:
        t = triggers.get(r.trigger)
        if t is None or r.value is None:
            continue
        per_trigger[t.name] = hpa_desired(t, r.value, current)
    desired = max(per_trigger.values()) if per_trigger else current
    desired = max(spec.floor, min(spec.max_replicas, desired))
    stabilized = _stabilize(spec, state, desired, current, now)
    if stabilized > current:
        final = min(_up_limit(spec, state, current, now), stabilized, spec.max_replicas)
    elif stabilized < current:
        final = max(_down_limit(spec, state, current, now), stabilized, spec.floor)
    else:
        final = current
    final = max(spec.floor, min(spec.max_replicas, final))
    reason = "within tolerance" if final == current else ("scale up" if final > current else "scale down")
    return Decision(final, reason, active, per_trigger)


def record_scale(state: ScalerState, now: float, change: int, keep_seconds: int = MAX_PERIOD_SECONDS) -> None:
    if change:
        state.scale_events.append((now, change))
    state.scale_events = [(t, d) for t, d in state.scale_events if t > now - keep_seconds]
