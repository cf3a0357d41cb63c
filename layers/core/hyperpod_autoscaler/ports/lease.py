"""The reconcile lease: at most one invocation decides at a time, and a trigger that arrives while another invocation holds
the lease is never lost.

Overlapping alarm, schedule, HyperPod-event and manual invocations are normal (EventBridge delivers at least once, alarms
and schedules are independent). Only the holder of the lease plans and provisions; the others leave a *pass request* on the
lease and return at once. The holder releases the lease only if no pass was requested after its last pass started, so a
trigger that came in while it was deciding always gets a decision that saw it. The lease expires on its own (``ttl``) so that
a crashed holder blocks nobody for longer than that.
"""

from __future__ import annotations

from typing import Protocol


class LeasePort(Protocol):
    def acquire(self, name: str, holder: str, ttl_seconds: float) -> bool:
        """Take the lease if it is free or expired (or already ours); True when ``holder`` now holds it."""
        ...

    def renew(self, name: str, holder: str, ttl_seconds: float) -> bool:
        """Extend our lease; False when it is no longer ours (it expired and someone else took it)."""
        ...

    def request_pass(self, name: str) -> bool:
        """Ask the current holder for one more pass. False when nobody holds the lease (the caller should acquire it)."""
        ...

    def pass_requested(self, name: str, since: float) -> bool:
        """Whether a pass was requested after ``since`` (a sleeping holder polls this to react within a second)."""
        ...

    def release(self, name: str, holder: str, since: float) -> bool:
        """Give the lease up unless a pass was requested after ``since`` (the start of our last pass, epoch seconds).
        False means: a request is pending and we still hold the lease: do another pass, then release again."""
        ...

    def force_release(self, name: str, holder: str) -> None:
        """Give the lease up whatever was requested (out of time); a no-op when it is not ours."""
        ...
