"""One invocation that keeps deciding while there is work, under the lease (``ports.lease``), shared by the reconcile and
pod-scaler functions.

Why a loop inside the invocation: EventBridge schedules fire at most once a minute and alarms fire only on transitions, so
an invocation that decided once and returned would leave pods pending for up to a minute after every decision. Instead the
holder of the lease runs a pass, and while the pass says there is more to do (pods still pending) it runs again every
``interval_seconds`` for at most ``budget_seconds`` (50 s by default, so that the next schedule tick takes over without a
gap). While it sleeps it polls the lease every ``poll_seconds``: a trigger that arrived in the meantime (an alarm, a HyperPod
event, a manual invoke) left a pass request there and the holder runs at once, so a trigger is answered within about a
second. When nothing is left to do, the holder releases the lease, unless a request came in after its last pass started,
in which case it runs once more. A holder that runs out of time hands over with the request still recorded for the next
trigger (the schedule comes within a minute).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Generic, TypeVar

from ..ports.lease import LeasePort

T = TypeVar("T")


@dataclass(frozen=True)
class LoopSettings:
    interval_seconds: float = 5.0
    """Pause between passes while there is more to do."""
    budget_seconds: float = 50.0
    """No new pass starts after this long (0: one pass only; the sandbox uses that, its schedule ticks every step)."""
    lease_seconds: float = 30.0
    """Lease expiry; renewed before every pass, so it only needs to exceed one pass plus one interval."""
    poll_seconds: float = 1.0
    """How often a sleeping holder looks for a pass request."""
    safety_margin_seconds: float = 10.0
    """Time kept free before the Lambda timeout (a pass must finish and release the lease)."""

    def __post_init__(self) -> None:
        for name in ("interval_seconds", "budget_seconds", "lease_seconds", "poll_seconds", "safety_margin_seconds"):
            value = getattr(self, name)
            if value < 0:
                raise ValueError(f"LoopSettings.{name}: must be >= 0, got {value}")
        if self.lease_seconds <= self.interval_seconds:
            raise ValueError(
                f"LoopSettings.lease_seconds ({self.lease_seconds}) must exceed interval_seconds ({self.interval_seconds})"
            )

    def single_pass(self) -> LoopSettings:
        """The same loop with no budget for a second pass (a dry run, an alarm going back to OK)."""
        return replace(self, budget_seconds=0.0)


@dataclass
class LoopOutcome(Generic[T]):
    held: bool
    """False: another invocation holds the lease; it was asked for a pass and this invocation did nothing."""
    holder: str
    passes: list[T] = field(default_factory=list)
    stopped: str = ""
    """Why the loop ended: done | budget | lease-lost | error | contended."""


def new_holder(prefix: str = "", context: object = None) -> str:
    """A holder id unique to this invocation: ``<prefix>:<Lambda request id>`` when the context has one, else
    ``<prefix>:<random>``. Never the prefix alone: the lease admits its own holder again (a renewal), so a holder id
    shared by two invocations would let both hold the lease at once."""
    request_id = getattr(context, "aws_request_id", None)
    unique = request_id if isinstance(request_id, str) and request_id else uuid.uuid4().hex
    return f"{prefix}:{unique}" if prefix else unique


def run_leased_loop(
    lease: LeasePort,
    name: str,
    holder: str,
    one_pass: Callable[[], tuple[T, bool]],
    settings: LoopSettings,
    *,
    remaining_seconds: Callable[[], float] | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> LoopOutcome[T]:
    """Run ``one_pass`` (returns (result, more_to_do)) under the lease named ``name``. See the module docstring."""
    for _ in range(3):
        if lease.acquire(name, holder, settings.lease_seconds):
            break
        if lease.request_pass(name):
            return LoopOutcome(held=False, holder=holder, stopped="contended")
        # Released between our two calls: try to take it again.
    else:
        return LoopOutcome(held=False, holder=holder, stopped="contended")

    started = clock()
    outcome: LoopOutcome[T] = LoopOutcome(held=True, holder=holder)

    def time_left() -> float:
        left = started + settings.budget_seconds - clock()
        if remaining_seconds is not None:
            left = min(left, remaining_seconds() - settings.safety_margin_seconds)
        return left

    released = False
    try:
        while True:
            pass_started = clock()
            result, more = one_pass()
            outcome.passes.append(result)
            if not more:
                if lease.release(name, holder, pass_started):
                    released = True
                    outcome.stopped = "done"
                    return outcome
                # A trigger came in after this pass started: it has not been answered yet.
                if time_left() <= 0:
                    outcome.stopped = "budget"
                    return outcome
            else:
                if time_left() <= settings.interval_seconds:
                    outcome.stopped = "budget"
                    return outcome
                waited = 0.0
                while waited < settings.interval_seconds:
                    step = min(settings.poll_seconds or settings.interval_seconds, settings.interval_seconds - waited)
                    sleep(step)
                    waited += step
                    if lease.pass_requested(name, pass_started):
                        break
            if not lease.renew(name, holder, settings.lease_seconds):
                outcome.stopped = "lease-lost"
                released = True  # not ours any more: nothing to release
                return outcome
    except BaseException:
        outcome.stopped = "error"
        raise
    finally:
        if not released:
            lease.force_release(name, holder)
