"""The sandbox's cluster clock: simulated time that the runner advances tick by tick.

Everything that waits in the sandbox (Step Functions Wait states and retry intervals, the reconcile function's re-check
loop, the HyperPod emulator's node life cycle) waits on this clock, so an hour of cluster time plays in about a minute and
the order of events is the one the cluster would see. A sleeper blocks until the runner has advanced the clock past its
wake-up time; the runner never advances while a sleeper that is due has not yet had a chance to run (it yields briefly).
"""

from __future__ import annotations

import threading
import time

_worker = threading.local()


class ClockStopped(BaseException):
    """Raised in a thread that sleeps on a stopped clock: the run is over and cluster time will not advance again, so
    the sleeper (a re-check loop, a Wait state) ends instead of blocking its thread, and the process, forever. A
    BaseException, so that no handler's ``except Exception`` keeps the sleeper going."""


_quiet_installed = False


def quiet_stopped_threads() -> None:
    """Install (once per process) a ``threading.excepthook`` that drops how a stopped clock ends a thread: the
    ``ClockStopped`` of a sleeper, and moto's ``RuntimeWarning`` that an execution "ended with unsupported ProgramState
    ... ProgramRunning" (its worker thread was that sleeper). Both are the expected end of a run stopped with work in
    flight (Ctrl-C, the end of the scenario), not errors: without this each prints a traceback on stderr. Anything
    else goes to the hook that was there before."""
    global _quiet_installed
    if _quiet_installed:
        return
    previous = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is not None and issubclass(args.exc_type, ClockStopped):
            return
        if args.exc_type is RuntimeWarning and "ProgramRunning" in str(args.exc_value):
            return
        previous(args)

    threading.excepthook = hook
    _quiet_installed = True


class SteppedClock:
    def __init__(self, start: float = 1_800_000_000.0, real_seconds_per_tick: float = 0.0) -> None:
        self._t = start
        self.start = start
        self._cond = threading.Condition()
        self._sleepers = 0
        self._busy = 0
        self._stopped = False
        """Function invocations running real code (not waiting on this clock): the runner does not advance past them."""
        self.real_seconds_per_tick = real_seconds_per_tick

    def queued(self) -> None:
        """An asynchronous invocation was queued: busy until its worker thread finishes it (``enter_work(False)``)."""
        with self._cond:
            self._busy += 1

    def enter_work(self, count: bool = True) -> None:
        """A function invocation starts on this thread (nested calls count once; ``count=False``: already counted by
        ``queued``)."""
        depth = getattr(_worker, "depth", 0)
        _worker.depth = depth + 1
        if depth == 0 and count:
            with self._cond:
                self._busy += 1

    def exit_work(self) -> None:
        depth = getattr(_worker, "depth", 1) - 1
        _worker.depth = depth
        if depth == 0:
            with self._cond:
                self._busy -= 1
                self._cond.notify_all()

    def wait_quiet(self, timeout: float) -> bool:
        """Block until every function invocation is waiting on the clock (or done), at most ``timeout`` real seconds.
        Then advancing the clock cannot outrun work that a real Lambda would have finished in that time."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._busy > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(timeout=min(left, 0.05))
            return True

    def now(self) -> float:
        with self._cond:
            return self._t

    __call__ = now

    @property
    def elapsed(self) -> float:
        return self.now() - self.start

    def sleep(self, seconds: float) -> None:
        """Block until the cluster clock has advanced by ``seconds`` (at least until the runner's next tick). A function
        invocation that sleeps is not busy meanwhile."""
        working = getattr(_worker, "depth", 0) > 0
        with self._cond:
            wake = self._t + max(0.0, seconds)
            self._sleepers += 1
            if working:
                self._busy -= 1
                self._cond.notify_all()
            try:
                while self._t < wake:
                    if self._stopped:
                        raise ClockStopped(f"cluster clock stopped at {self._t - self.start:.0f}s")
                    self._cond.wait(timeout=5.0)
            finally:
                self._sleepers -= 1
                if working:
                    self._busy += 1

    def stop(self) -> None:
        """The run is over: every sleeper, now and later, raises ``ClockStopped``."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def advance(self, seconds: float) -> None:
        with self._cond:
            self._t += seconds
            self._cond.notify_all()
        # Let the woken threads run before the runner looks at the world again.
        time.sleep(self.real_seconds_per_tick or 0.001)
