"""Starting and following Step Functions executions, as the services see it.

Execution names are deterministic (derived from what the execution is for), so starting the same claim or the same
disruption twice yields one execution: the second start returns the first execution's ARN instead of starting another.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

ExecutionStatus = Literal["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE"]


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


class WorkflowPort(Protocol):
    def start(self, state_machine_arn: str, name: str, input: dict[str, Any]) -> StartResult:
        """Start an execution named ``name`` (<= 80 chars, [A-Za-z0-9-_]); idempotent on the name."""
        ...

    def running(self, state_machine_arn: str) -> list[Execution]:
        """The executions of that state machine that are still running, with their input."""
        ...

    def describe(self, state_machine_arn: str, name: str) -> Execution | None:
        """The execution of that name (any status, with its output when finished), or None."""
        ...
