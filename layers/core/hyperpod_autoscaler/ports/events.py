"""Events the autoscaler puts on the event bus for its own rules, as the services see them (``adapters.eventbridge``
puts them on the default EventBridge bus)."""

from __future__ import annotations

from typing import Protocol


class Announcer(Protocol):
    def replicas_increased(self, scaled_object: str, target: str, before: int, after: int) -> None:
        """Tell the node tier that pods are coming (an EventBridge event the reconcile rule matches)."""
        ...
