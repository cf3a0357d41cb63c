"""The Kubernetes HPA controller's replica arithmetic for external metrics, pure (no I/O).

A port of ``pkg/controller/podautoscaler`` (``replica_calculator.go`` and ``horizontal.go``), which is what a KEDA
ScaledObject delegates to above one replica:

* **Per metric** (``GetExternalMetricReplicas`` / ``GetExternalPerPodMetricReplicas``): values are milli-quantities as
  KEDA reports them (``int64(value * 1000)``). ``Value``: ``ratio = usage / target``, ``ceil(ratio * current)``;
  ``AverageValue``: ``ratio = usage / (target * current)``, ``ceil(usage / target)``. No change while
  ``|1 - ratio| <= 0.1``.
* **Several metrics** (``computeReplicasForMetrics``): the largest proposal; when every metric is invalid, or some is
  invalid and the valid ones would scale down, the HPA does not scale at all.
* **Without a behavior** (``normalizeDesiredReplicas``, what KEDA produces when the ScaledObject has no
  ``advanced.horizontalPodAutoscalerConfig.behavior``): the largest recommendation of the last 300 s
  (``--horizontal-pod-autoscaler-downscale-stabilization``), at most ``max(2 * current, 4)``, clamped to [min, max].
* **With a behavior** (``normalizeDesiredReplicasWithBehaviors``): stabilization windows (up: the lowest recent
  recommendation, down: the highest), then the rate policies, whose period starts at
  ``current - added + removed`` (events in both directions count); Percent scale-up rounds up, scale-down truncates.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

TOLERANCE = 0.1
SCALE_UP_LIMIT_FACTOR = 2.0
SCALE_UP_LIMIT_MINIMUM = 4.0
DOWNSCALE_STABILISATION_SECONDS = 300


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

    @property
    def longest_period(self) -> int:
        return max((p.period_seconds for p in self.policies), default=0)


# ``GenerateHPAScaleUpRules`` / ``GenerateHPAScaleDownRules``: what the API server fills into a behavior that is given
DEFAULT_SCALE_UP = Rules(0, (Policy("Pods", 4, 15), Policy("Percent", 100, 15)), "Max")
DEFAULT_SCALE_DOWN = Rules(DOWNSCALE_STABILISATION_SECONDS, (Policy("Percent", 100, 15),), "Max")


@dataclass(frozen=True)
class Behavior:
    scale_up: Rules = DEFAULT_SCALE_UP
    scale_down: Rules = DEFAULT_SCALE_DOWN


@dataclass
class ScaleEvent:
    change: int
    time: float
    outdated: bool = False


@dataclass
class HpaMemory:
    """What the HPA controller keeps per object between reconciles (its ``recommendations``, ``scaleUpEvents`` and
    ``scaleDownEvents`` maps)."""

    recommendations: list[tuple[float, int]] = field(default_factory=list)
    up_events: list[ScaleEvent] = field(default_factory=list)
    down_events: list[ScaleEvent] = field(default_factory=list)
    initialized: bool = False
    """``recordInitialRecommendation`` ran: the first reconcile records the current count as a recommendation, so a
    new HPA does not scale down within its first stabilization window."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "initialized": self.initialized,
            "recommendations": [list(r) for r in self.recommendations],
            "scaleUpEvents": [[e.change, e.time, e.outdated] for e in self.up_events],
            "scaleDownEvents": [[e.change, e.time, e.outdated] for e in self.down_events],
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> HpaMemory:
        def events(key: str) -> list[ScaleEvent]:
            return [ScaleEvent(int(c), float(t), bool(o)) for c, t, o in raw.get(key) or []]

        return cls(
            [(float(t), int(r)) for t, r in raw.get("recommendations") or []],
            events("scaleUpEvents"),
            events("scaleDownEvents"),
            bool(raw.get("initialized")),
        )


def milli(value: float) -> int:
    """KEDA's ``int64(value * 1000)`` (the float noise of the product is rounded away before truncating)."""
    return int(round(value * 1000, 6))


def external_replicas(metric_type: str, value: float, target: float, current: int) -> int:
    """One external metric's proposal at ``current`` (>= 1) replicas, tolerance included."""
    usage, goal = milli(value), milli(target)
    if metric_type == "Value":
        ratio = usage / goal
        if abs(1.0 - ratio) <= TOLERANCE:
            return current
        return math.ceil(ratio * current)
    ratio = usage / (goal * current)
    if abs(1.0 - ratio) > TOLERANCE:
        return math.ceil(usage / goal)
    return current


def replicas_for_metrics(proposals: list[int | None], current: int) -> int | None:
    """The largest proposal, or None (the HPA does not scale) when every metric is invalid or some is invalid and the
    valid ones would scale down."""
    valid = [p for p in proposals if p is not None]
    invalid = len(proposals) - len(valid)
    replicas = max(valid, default=0)
    if invalid >= len(proposals) or (invalid > 0 and replicas < current):
        return None
    return replicas


def _record(memory: HpaMemory, desired: int, now: float, is_old: Callable[[float], bool]) -> None:
    """Reuse the last obsolete slot, else append (``a.recommendations[key]`` as upstream keeps it)."""
    old = [i for i, (t, _) in enumerate(memory.recommendations) if is_old(t)]
    if old:
        memory.recommendations[old[-1]] = (now, desired)
    else:
        memory.recommendations.append((now, desired))


def stabilize_legacy(memory: HpaMemory, desired: int, now: float, window: int = DOWNSCALE_STABILISATION_SECONDS) -> int:
    """``stabilizeRecommendation``: the largest recommendation not older than ``window``, this one included."""
    cutoff = now - window
    best = max([desired, *(r for t, r in memory.recommendations if t >= cutoff)])
    _record(memory, desired, now, lambda t: t < cutoff)
    return best


def stabilize_with_behavior(memory: HpaMemory, behavior: Behavior, desired: int, current: int, now: float) -> int:
    """``stabilizeRecommendationWithBehaviors``: current, raised to the lowest recent recommendation of the scale-up
    window and lowered to the highest of the scale-down window."""
    up_cut = now - behavior.scale_up.stabilization_window_seconds
    down_cut = now - behavior.scale_down.stabilization_window_seconds
    up_rec = down_rec = desired
    for t, r in memory.recommendations:
        if t > up_cut:
            up_rec = min(r, up_rec)
        if t > down_cut:
            down_rec = max(r, down_rec)
    _record(memory, desired, now, lambda t: t < up_cut and t < down_cut)
    return min(max(current, up_rec), down_rec)


def changed_in_period(events: list[ScaleEvent], period: int, now: float) -> int:
    """``getReplicasChangePerPeriod``: the replicas changed by the events strictly within the last ``period``."""
    return sum(e.change for e in events if e.time > now - period)


def _period_start(memory: HpaMemory, current: int, period: int, now: float) -> int:
    added = changed_in_period(memory.up_events, period, now)
    removed = changed_in_period(memory.down_events, period, now)
    return current - added + removed


def scale_up_limit(memory: HpaMemory, rules: Rules, current: int, now: float) -> int:
    """``calculateScaleUpLimitWithScalingRules``."""
    if rules.select_policy == "Disabled":
        return current
    proposed = []
    for p in rules.policies:
        start = _period_start(memory, current, p.period_seconds, now)
        proposed.append(start + p.value if p.type == "Pods" else math.ceil(start * (1 + p.value / 100)))
    return min(proposed) if rules.select_policy == "Min" else max(proposed)


def scale_down_limit(memory: HpaMemory, rules: Rules, current: int, now: float) -> int:
    """``calculateScaleDownLimitWithBehaviors`` (Percent truncates toward zero, as Go's ``int32(float64)``)."""
    if rules.select_policy == "Disabled":
        return current
    proposed = []
    for p in rules.policies:
        start = _period_start(memory, current, p.period_seconds, now)
        proposed.append(start - p.value if p.type == "Pods" else int(start * (1 - p.value / 100)))
    return max(proposed) if rules.select_policy == "Min" else min(proposed)


def limit_with_behavior(
    memory: HpaMemory, behavior: Behavior, current: int, desired: int, low: int, high: int, now: float
) -> tuple[int, str]:
    """``convertDesiredReplicasWithBehaviorRate``: (replicas, ScalingLimited reason)."""
    if desired > current:
        up = max(scale_up_limit(memory, behavior.scale_up, current, now), current)
        maximum, reason = (up, "ScaleUpLimit") if high > up else (high, "TooManyReplicas")
        if desired > maximum:
            return maximum, reason
    elif desired < current:
        down = min(scale_down_limit(memory, behavior.scale_down, current, now), current)
        minimum, reason = (down, "ScaleDownLimit") if low < down else (low, "TooFewReplicas")
        if desired < minimum:
            return minimum, reason
    return desired, "DesiredWithinRange"


def limit_legacy(current: int, desired: int, low: int, high: int) -> tuple[int, str]:
    """``convertDesiredReplicasWithRules``: at most ``max(2 * current, 4)`` up, nothing but ``low`` down."""
    up = int(max(SCALE_UP_LIMIT_FACTOR * current, SCALE_UP_LIMIT_MINIMUM))
    maximum, reason = (up, "ScaleUpLimit") if high > up else (high, "TooManyReplicas")
    if desired < low:
        return low, "TooFewReplicas"
    if desired > maximum:
        return maximum, reason
    return desired, "DesiredWithinRange"


def store_scale_event(memory: HpaMemory, behavior: Behavior | None, before: int, after: int, now: float) -> None:
    """``storeScaleEvent``: nothing without a behavior; events older than the direction's longest policy period are
    marked outdated and the last of them is reused."""
    if behavior is None or before == after:
        return
    up = after > before
    events = memory.up_events if up else memory.down_events
    longest = (behavior.scale_up if up else behavior.scale_down).longest_period
    for e in events:
        if e.time < now - longest:
            e.outdated = True
    new = ScaleEvent(abs(after - before), now)
    outdated = [i for i, e in enumerate(events) if e.outdated]
    if outdated:
        events[outdated[-1]] = new
    else:
        events.append(new)


@dataclass(frozen=True)
class HpaOutcome:
    replicas: int
    reason: str
    """AbleToScale / ScalingActive / ScalingLimited reason the HPA would report."""
    metric_replicas: int | None = None


def record_initial(memory: HpaMemory, current: int, now: float) -> None:
    """``recordInitialRecommendation``: the first time the HPA sees the object, the current count is a
    recommendation."""
    if not memory.initialized:
        memory.initialized = True
        memory.recommendations = [(now, current)]


def reconcile(
    memory: HpaMemory,
    behavior: Behavior | None,
    current: int,
    proposals: list[int | None],
    low: int,
    high: int,
    now: float,
) -> HpaOutcome:
    """``reconcileAutoscaler`` for one object whose HPA has ``minReplicas`` ``low`` (>= 1) and ``maxReplicas``
    ``high``; ``proposals`` holds each metric's ``external_replicas`` or None when it could not be read."""
    record_initial(memory, current, now)
    if current == 0:
        return HpaOutcome(0, "ScalingDisabled")
    if current > high:
        return HpaOutcome(high, "TooManyReplicas")
    if current < low:
        return HpaOutcome(low, "TooFewReplicas")
    wanted = replicas_for_metrics(proposals, current)
    if wanted is None:
        return HpaOutcome(current, "FailedGetExternalMetric")
    if behavior is None:
        stabilized = stabilize_legacy(memory, wanted, now)
        replicas, reason = limit_legacy(current, stabilized, low, high)
    else:
        stabilized = stabilize_with_behavior(memory, behavior, wanted, current, now)
        replicas, reason = limit_with_behavior(memory, behavior, current, stabilized, low, high, now)
    if replicas == current and stabilized != wanted:
        reason = "ScaleDownStabilized" if wanted < current else "ScaleUpStabilized"
    return HpaOutcome(replicas, reason, wanted)
