"""Starting and following Step Functions executions, as the services see it.

Execution names are unique per attempt and idempotent per decision: the service derives a base from what the execution
is for (a claim, a disruption decision, a drill) and adds the attempt recorded for it in the state table under a
condition, so two deciders of the same decision start one execution, and the next decision after that execution closed
(Step Functions keeps a closed name for 90 days) starts attempt N+1 under a new name. A start that finds its name taken
says so (``started=False``) and reports the existing execution's status: a closed execution is never capacity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

ExecutionStatus = Literal["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE"]
CLOSED: tuple[ExecutionStatus, ...] = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
"""Statuses of an execution that will do nothing more (a redrive aside): never counted as in-flight work."""
LIVE: tuple[ExecutionStatus, ...] = ("RUNNING", "PENDING_REDRIVE")


@dataclass(frozen=True)
class Execution:
    arn: str
    name: str
    status: ExecutionStatus
    input: dict[str, Any]
    started_at: float
    """Epoch seconds."""
    output: dict[str, Any] | None = None
    """The result of a finished execution (``describe``), else None."""


@dataclass(frozen=True)
class StartResult:
    arn: str
    started: bool
    """False when an execution with that name already existed (nothing new was started)."""
    status: ExecutionStatus | None = None
    """The status of the execution under that name when it already existed (None when unknown): a closed one
    (``CLOSED``) is not running and does no work for the caller."""

    @property
    def live(self) -> bool:
        """An execution under that name is (or may be) running: just started, or found running."""
        return self.started or self.status is None or self.status in LIVE


class WorkflowPort(Protocol):
    def start(self, state_machine_arn: str, name: str, input: dict[str, Any]) -> StartResult:
        """Start an execution named ``name`` (<= 80 chars, [A-Za-z0-9-_]); idempotent on the name: when the name is taken,
        nothing starts and the result says so, with the existing execution's status."""
        ...

    def running(self, state_machine_arn: str) -> list[Execution]:
        """The executions of that state machine that are still running, with their input."""
        ...

    def describe(self, state_machine_arn: str, name: str) -> Execution | None:
        """The execution of that name (any status, with its output when finished), or None."""
        ...
