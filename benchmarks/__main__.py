"""Run every benchmark module (``benchmarks/bench_*.py``, each with ``main() -> None``), or those named on the command
line; options after the names (``--runs 1000``) go to the chosen modules' ``main(argv)``."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    first_option = next((i for i, a in enumerate(argv) if a.startswith("-")), len(argv))
    wanted, options = argv[:first_option], argv[first_option:]
    exact = [n for n in names if n.removeprefix("bench_") in wanted]  # `soak` is bench_soak, not bench_system_soak
    chosen = exact or [n for n in names if not wanted or any(a in n for a in wanted)]
    for name in chosen:
        print(f"\n=== {name} ===", flush=True)
        module = importlib.import_module(f"benchmarks.{name}")
        module.main(options) if options else module.main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
