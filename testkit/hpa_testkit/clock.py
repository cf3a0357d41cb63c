"""Clocks for the emulators: ``SimClock`` is virtual time for tests (a sleep advances it at once and is recorded), so that
Step Functions Waits, Retry intervals and HyperPod's node life cycle play instantly and deterministically."""

from __future__ import annotations

import heapq
import threading
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SimClock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._t = start
        self.start = start
        self.sleeps: list[float] = []
        self._lock = threading.Lock()
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = 0

    def now(self) -> float:
        with self._lock:
            return self._t

    __call__ = now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self._t += max(0.0, seconds)
        self._fire()

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._t += seconds
        self._fire()

    def call_at(self, delay: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` once virtual time has passed ``now + delay`` (a test's way to change the world mid-execution)."""
        with self._lock:
            self._seq += 1
            heapq.heappush(self._timers, (self._t + delay, self._seq, fn))

    def _fire(self) -> None:
        while True:
            with self._lock:
                if not self._timers or self._timers[0][0] > self._t:
                    return
                _, _, fn = heapq.heappop(self._timers)
            fn()

    @property
    def elapsed(self) -> float:
        return self.now() - self.start
