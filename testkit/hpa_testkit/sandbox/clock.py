"""The sandbox's cluster clock: simulated time that the runner advances tick by tick.

Everything that waits in the sandbox (Step Functions Wait states and retry intervals, the reconcile function's re-check
loop, the HyperPod emulator's node life cycle) waits on this clock, so an hour of cluster time plays in about a minute and
the order of events is the one the cluster would see. A sleeper blocks until the runner has advanced the clock past its
wake-up time; the runner never advances while a sleeper that is due has not yet had a chance to run (it yields briefly).
"""

from __future__ import annotations

import threading
import time


class SteppedClock:
    def __init__(self, start: float = 1_800_000_000.0, real_seconds_per_tick: float = 0.0) -> None:
        self._t = start
        self.start = start
        self._cond = threading.Condition()
        self._sleepers = 0
        self.real_seconds_per_tick = real_seconds_per_tick

    def now(self) -> float:
        with self._cond:
            return self._t

    __call__ = now

    @property
    def elapsed(self) -> float:
        return self.now() - self.start

    def sleep(self, seconds: float) -> None:
        """Block until the cluster clock has advanced by ``seconds`` (at least until the runner's next tick)."""
        with self._cond:
            wake = self._t + max(0.0, seconds)
            self._sleepers += 1
            try:
                while self._t < wake:
                    self._cond.wait(timeout=5.0)
            finally:
                self._sleepers -= 1

    def advance(self, seconds: float) -> None:
        with self._cond:
            self._t += seconds
            self._cond.notify_all()
        # Let the woken threads run before the runner looks at the world again.
        time.sleep(self.real_seconds_per_tick or 0.001)
