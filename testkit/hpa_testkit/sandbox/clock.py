"""The sandbox's cluster clock: simulated time that the runner advances tick by tick.

Everything that waits in the sandbox (Step Functions Wait states and retry intervals, the reconcile function's re-check
loop, the HyperPod emulator's node life cycle) waits on this clock, so an hour of cluster time plays in about a minute and
the order of events is the one the cluster would see. A sleeper blocks until the runner has advanced the clock past its
wake-up time; the runner never advances while a sleeper that is due has not yet had a chance to run (it yields briefly).

**Turns** (``SteppedClock(turns=True)``, the sandbox's default) make a run deterministic: the same scenario gives the
same figures twice. A *worker* is one unit of product work (an asynchronous invocation, a Step Functions execution, the
runner itself). Exactly one worker runs at a time; it gives its turn up only when it sleeps on this clock or ends. Turns
go in a fixed order: a worker is queued when it is created (by the worker that holds the turn, so in that worker's
order), a sleeper is queued again when the runner advances past its wake-up time (by wake-up time, then by when it
fell asleep), and the runner advances the clock only when no worker is queued or running. What threads the operating
system happens to run first then changes nothing. What turns give up: two invocations never interleave between two of
their sleeps, so races that need them to (the whole-system soak looks for those) do not happen in a deterministic run.
"""

from __future__ import annotations

import contextlib
import threading
import time
from types import TracebackType

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
    def __init__(self, start: float = 1_800_000_000.0, real_seconds_per_tick: float = 0.0, turns: bool = False) -> None:
        self._t = start
        self.start = start
        self._cond = threading.Condition()
        self._sleepers = 0
        self._busy = 0
        self._stopped = False
        """Function invocations running real code (not waiting on this clock): the runner does not advance past them."""
        self.real_seconds_per_tick = real_seconds_per_tick
        self.turns = turns
        self._seq = 0
        self._holder: Worker | None = None
        self._ready: list[Worker] = []
        """Workers waiting for their turn, in the order they get it."""
        self._asleep: list[tuple[float, int, Worker]] = []
        """Workers asleep on the clock: (wake-up time, when they fell asleep, worker)."""
        self.runner = Worker("runner")

    # --- turns -------------------------------------------------------------------------------------------------------

    def new_worker(self, name: str) -> Worker:
        """A worker created now (queued for its turn): call in the creating thread, then ``run_as`` in the new one."""
        worker = Worker(name)
        if self.turns:
            with self._cond:
                self._ready.append(worker)
                self._cond.notify_all()
        return worker

    @staticmethod
    def current_worker() -> Worker | None:
        return getattr(_worker, "turn", None)

    @staticmethod
    def adopt(worker: Worker | None) -> None:
        """This thread works for ``worker``, whose turn it already holds (a thread the worker started and waits for)."""
        _worker.turn = worker

    def run_as(self, worker: Worker) -> _Turn:
        """``with clock.run_as(worker):`` the worker's code, in its own thread, in its turn."""
        return _Turn(self, worker)

    def _take(self, worker: Worker) -> None:
        """Block until it is ``worker``'s turn (caller holds ``_cond``)."""
        while not (self._holder is None and self._ready and self._ready[0] is worker):
            if self._stopped:
                with contextlib.suppress(ValueError):
                    self._ready.remove(worker)
                raise ClockStopped(f"cluster clock stopped at {self._t - self.start:.0f}s")
            self._cond.wait(timeout=5.0)
        self._ready.pop(0)
        self._holder = worker

    def _give_up(self, worker: Worker) -> None:
        """``worker`` ends or sleeps: the next one may run (caller holds ``_cond``)."""
        if self._holder is worker:
            self._holder = None
            self._cond.notify_all()

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
        Then advancing the clock cannot outrun work that a real Lambda would have finished in that time. With turns,
        the runner gives its turn up, lets every queued worker have its turn, and takes the turn back."""
        deadline = time.monotonic() + timeout
        if self.turns:
            with self._cond:
                self._give_up(self.runner)
                while self._holder is not None or self._ready:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False  # a worker ran past the timeout: the runner goes on beside it (a slow tick)
                    self._cond.wait(timeout=min(left, 0.05))
                self._holder = self.runner
                return True
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
        worker = getattr(_worker, "turn", None)
        if self.turns and worker is not None:
            self._sleep_turn(worker, seconds)
            return
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

    def _sleep_turn(self, worker: Worker, seconds: float) -> None:
        """A worker sleeps: its turn goes to the next; it is queued again once the runner advances past its wake-up."""
        with self._cond:
            if self._stopped:
                raise ClockStopped(f"cluster clock stopped at {self._t - self.start:.0f}s")
            self._seq += 1
            self._asleep.append((self._t + max(0.0, seconds), self._seq, worker))
            self._give_up(worker)
            self._take(worker)

    def stop(self) -> None:
        """The run is over: every sleeper, now and later, raises ``ClockStopped``."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def advance(self, seconds: float) -> None:
        with self._cond:
            self._t += seconds
            if self.turns:
                due = sorted((e for e in self._asleep if e[0] <= self._t), key=lambda e: (e[0], e[1]))
                self._asleep = [e for e in self._asleep if e[0] > self._t]
                self._ready.extend(w for _, _, w in due)
            self._cond.notify_all()
        if self.turns:
            return  # the woken sleepers run in their turns, when the runner next waits for quiet
        # Let the woken threads run before the runner looks at the world again.
        time.sleep(self.real_seconds_per_tick or 0.001)


class Worker:
    """One unit of product work that takes turns (see the module's docstring): a name, for debugging."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Worker({self.name!r})"


class _Turn:
    def __init__(self, clock: SteppedClock, worker: Worker) -> None:
        self.clock = clock
        self.worker = worker
        self._before: Worker | None = None

    def __enter__(self) -> Worker:
        self._before = SteppedClock.current_worker()
        SteppedClock.adopt(self.worker)
        if self.clock.turns:
            with self.clock._cond:
                self.clock._take(self.worker)
        return self.worker

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.clock.turns:
            with self.clock._cond:
                self.clock._give_up(self.worker)
        SteppedClock.adopt(self._before)
