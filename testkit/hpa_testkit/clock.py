"""Clocks for the emulators: ``SimClock`` is virtual time for tests (a sleep advances it at once and is recorded), so that
Step Functions Waits, Retry intervals and HyperPod's node life cycle play instantly and deterministically."""

from __future__ import annotations

import threading
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

    def now(self) -> float:
        with self._lock:
            return self._t

    __call__ = now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self._t += max(0.0, seconds)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._t += seconds

    @property
    def elapsed(self) -> float:
        return self.now() - self.start
