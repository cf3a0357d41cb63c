"""What the services keep on the stack's state table between invocations (``adapters.dynamo_state`` and
``adapters.dynamo_disruption`` keep it in DynamoDB).

Per-instance-group launch backoff: after a capacity failure or a registration timeout the group is not launched into
for a while, growing on repeats, so that the next decision picks another group instead of a create/delete loop."""

from __future__ import annotations

from typing import Any, Protocol


class BackoffPort(Protocol):
    def mark_unavailable(self, group: str, reason: str, cause: str = "") -> float:
        """Record a failure; returns how long the group is now unavailable (seconds). A failure marked again with the
        same non-empty ``cause`` (a retried give-back of one claim) is the same strike, not a new one."""
        ...

    def unavailable_groups(self) -> dict[str, str]:
        """Group -> reason, for the groups still in backoff."""
        ...

    def clear(self, group: str, since: float | None = None) -> bool:
        """A launch into the group that started at ``since`` succeeded: reset its backoff, unless a failure was recorded
        after that launch started. True when the backoff is gone."""
        ...


class BackoffReader(Protocol):
    """The read-only part of the backoff reconcile needs."""

    def unavailable_groups(self) -> dict[str, str]:
        """Instance group -> why it must not be launched into now (capacity backoff, kept by the provision workflow)."""
        ...


class ScalerStates(Protocol):
    """The pod scaler's per-ScaledObject state (activation, stabilization windows), keyed by namespace/name."""

    def get(self, key: str) -> dict[str, Any] | None: ...

    def put(self, key: str, state: dict[str, Any]) -> None: ...


class DisruptionState(Protocol):
    """Node activity, disruption decisions and replacements, each write conditional so two passes agree."""

    def activity_versioned(self) -> tuple[dict[str, dict[str, Any]], int]: ...

    def save_activity(self, nodes: dict[str, dict[str, Any]], version: int | None = None) -> bool: ...

    def decision(self, decision_id: str) -> dict[str, Any] | None: ...

    def record_decision(self, decision_id: str, record: dict[str, Any], replacing: str | None) -> bool: ...

    def replacements(self) -> dict[str, dict[str, Any]]: ...

    def put_replacement(self, decision_id: str, record: dict[str, Any]) -> bool: ...

    def start_draining(self, decision_id: str, record: dict[str, Any]) -> bool: ...

    def delete_replacement(self, decision_id: str, provision_name: str | None = None) -> bool: ...
