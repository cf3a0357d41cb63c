"""Lambda's own faults for the sandbox's function host: invocations killed at their timeout part-way through the handler,
and throttling.

A real Lambda that times out is frozen where it stands: nothing after that point reaches AWS or Kubernetes, not even a
``finally`` that would release a lease. The host models that at the only place a handler has effects, its outbound HTTP
calls (botocore and the Kubernetes client both go through urllib3): an invocation chosen to time out is allowed ``k``
calls, and every call after those raises ``LambdaTimedOut`` in that thread, so the cleanup code that still runs in Python
has no effect outside. The caller then sees what Lambda reports: ``Sandbox.Timedout`` (a Step Functions task error) after
the function's timeout. A throttled invocation never starts: ``Lambda.TooManyRequestsException`` for a synchronous invoke;
an asynchronous event is kept by Lambda and retried later.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Any

_state = threading.local()
_patched = [False]
_patch_lock = threading.Lock()


class LambdaTimedOut(BaseException):
    """The runtime froze this invocation (a BaseException, so the handler's ``except Exception`` cannot swallow it)."""


#: What a Step Functions Retry/Catch sees: Lambda's error names (``errorType``), as classes named exactly so.
SandboxTimedout = type("Sandbox.Timedout", (Exception,), {"__doc__": "The function timed out (Lambda's error name)."})
TooManyRequests = type(
    "Lambda.TooManyRequestsException", (Exception,), {"__doc__": "Lambda throttled the invoke (rate or concurrency)."}
)


@dataclass
class LambdaFaults:
    timeout_rate: float = 0.0
    """Probability that an invocation is killed part-way (after 0 to ``max_calls_before_kill`` outbound calls)."""
    throttle_rate: float = 0.0
    max_calls_before_kill: int = 12
    rng: random.Random = field(default_factory=lambda: random.Random(13))
    injected: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _hit(self, rate: float, kind: str) -> bool:
        with self._lock:
            if not rate or self.rng.random() >= rate:
                return False
            self.injected[kind] = self.injected.get(kind, 0) + 1
            return True

    def throttled(self) -> bool:
        return self._hit(self.throttle_rate, "throttled")

    def calls_before_kill(self) -> int | None:
        """None: this invocation runs to its end; else how many outbound calls it makes before it is frozen."""
        if not self._hit(self.timeout_rate, "timedOut"):
            return None
        with self._lock:
            return self.rng.randint(0, self.max_calls_before_kill)


def arm(calls: int | None) -> Any:
    """Arm (or, with None, disarm) the kill for the invocation on this thread; returns the previous state to restore."""
    _install()
    previous = getattr(_state, "left", None)
    _state.left = calls
    return previous


def restore(previous: Any) -> None:
    _state.left = previous


def _install() -> None:
    with _patch_lock:
        if _patched[0]:
            return
        from urllib3.connectionpool import HTTPConnectionPool

        original = HTTPConnectionPool.urlopen

        def urlopen(self: Any, *args: Any, **kwargs: Any) -> Any:
            left = getattr(_state, "left", None)
            if left is not None:
                if left <= 0:
                    raise LambdaTimedOut("the invocation was frozen at its timeout")
                _state.left = left - 1
            return original(self, *args, **kwargs)

        HTTPConnectionPool.urlopen = urlopen  # type: ignore[method-assign]
        _patched[0] = True
