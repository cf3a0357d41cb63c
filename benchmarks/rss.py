"""Peak memory of the benchmark process itself."""

from __future__ import annotations

import resource


def peak_rss_mb() -> float:
    """This process's own peak RSS. Linux's ru_maxrss carries the parent's peak across fork and exec (it lives in the
    signal struct), so under ``python -m benchmarks`` every subprocess would report the benchmarks run before it:
    VmHWM belongs to this process's memory map alone."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
