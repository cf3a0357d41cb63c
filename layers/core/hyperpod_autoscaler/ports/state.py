"""Per-instance-group launch backoff: after a capacity failure or a registration timeout the group is not launched into
for a while, growing on repeats, so that the next decision picks another group instead of a create/delete loop."""

from __future__ import annotations

from typing import Protocol


class BackoffPort(Protocol):
    def mark_unavailable(self, group: str, reason: str) -> float:
        """Record a failure; returns how long the group is now unavailable (seconds)."""
        ...

    def unavailable_groups(self) -> dict[str, str]:
        """Group -> reason, for the groups still in backoff."""
        ...

    def clear(self, group: str, since: float | None = None) -> bool:
        """A launch into the group that started at ``since`` succeeded: reset its backoff, unless a failure was recorded
        after that launch started. True when the backoff is gone."""
        ...
