"""In-flight node claims as reconcile and the provision workflow see them (``adapters.dynamo_claims`` keeps them on the
state table, one attempt at a time, with conditional writes so that concurrent deciders agree on one attempt)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..domain.plan import InflightClaim


@dataclass(frozen=True)
class RecordedClaim:
    claim: InflightClaim
    execution_name: str
    recorded_at: float
    attempt: int = 1
    closed_at: float | None = None
    """When the attempt's workflow ended (it forgot the claim); None while it may still run."""


class ClaimStore(Protocol):
    """What reconcile needs: record an attempt before its execution starts, and read what is recorded."""

    def recorded_claims(self) -> list[RecordedClaim]:
        """Claims recorded and not yet forgotten (the adapter is ``adapters.dynamo_claims``)."""
        ...

    def record_claim(
        self,
        claim: InflightClaim,
        execution_name: str,
        ttl_seconds: int,
        *,
        attempt: int = 1,
        replacing: str | None = None,
    ) -> bool:
        """Record an attempt of a claim before its execution starts (conditional: over no record, or over exactly the
        attempt named ``replacing``); False when another decider recorded one first."""
        ...

    def get(self, claim_id: str) -> RecordedClaim | None:
        """The claim's current attempt, read consistently."""
        ...


class ClaimForgetter(Protocol):
    """What the provision workflow needs: forget a claim once its nodes are Ready or given back, and say how many of
    its launches it dropped meanwhile."""

    def forget(self, claim_id: str) -> None: ...

    def drop(self, claim_id: str, attempt_token: str, dropped: int) -> None:
        """The claim's attempt whose execution name contains ``attempt_token`` gave up ``dropped`` of its nodes in all:
        they no longer count as capacity coming (a later attempt's record is left alone)."""
        ...


class ClaimsPort(ClaimStore, ClaimForgetter, Protocol):
    """Both sides, as the state table's adapter implements them (the composition root builds one for both)."""
