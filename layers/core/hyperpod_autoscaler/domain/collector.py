"""Pausing Python's cycle collector around work that allocates a great deal and leaves no cycles.

The cycle collector runs when container allocations outnumber deallocations by a threshold, and its older generations
walk every live container: work that builds hundreds of thousands of objects and keeps them (a YAML load, a scheduling
run) triggers it again and again over a growing heap. Loading a 4 MB manifest spent 5 of its 8 seconds there, and the
feasible solve of 10,000 pods a third of its time. Reference counting still frees everything that is not in a cycle,
so memory stays bounded by the work; the cycles there are (if any) are collected once the collector runs again.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cycle_collector_paused() -> Iterator[None]:
    """The cycle collector off for the block, back on after it (whatever happens) unless it was already off."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
