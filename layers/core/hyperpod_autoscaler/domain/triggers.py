"""What woke a function, whatever carried it (an alarm, a schedule, a HyperPod event, the pod scaler's announcement, a
manual invoke): the services decide on this, never on a Lambda event (``adapters.lambda_events`` parses those)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

OWN_SOURCE = "hyperpod-autoscaler"
REPLICAS_INCREASED = "Replicas Increased"
"""What the pod scaler puts on the default event bus after it raises a Deployment's replicas: pods are about to go
pending, and reconcile (a rule on this detail-type) should be looking when they do."""

TriggerKind = Literal["alarm", "schedule", "hyperpod", "manual", "event"]


@dataclass(frozen=True)
class Trigger:
    kind: TriggerKind
    event_id: str | None
    """The EventBridge event id (deduplication key), or None when the event carries none."""
    source: str
    description: str
    alarm_name: str | None = None
    alarm_state: str | None = None
    instance_group: str | None = None
    dry_run: bool = False
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def announces_pods(self) -> bool:
        """Pods are about to be created (not pending yet): keep looking for a short while even if none are pending."""
        return self.kind == "event" and self.source == OWN_SOURCE

    @property
    def wants_recheck(self) -> bool:
        """Whether the invocation should keep re-checking while pods are pending. Every trigger does except an alarm going
        back to OK (nothing is pending any more by the alarm's own reckoning)."""
        return not (self.kind == "alarm" and self.alarm_state != "ALARM")
