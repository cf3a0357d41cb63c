"""The whole-system fault soak of issue 11: the whole loop on the sandbox (reconcile, pod scaler, disruption, provision,
deprovision and drills through the real handlers, state machines, lease and DynamoDB) on randomized workloads, with
concurrent and redelivered triggers and injected faults. Prints the report as JSON: runs, faults by kind, violations by
invariant with the seed of each failing run (``--seed S --runs 1`` replays run S), seconds per run.

    python -m benchmarks system_soak --runs 1000 --seed 2026 --workers 2
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    from hpa_testkit.system_soak import dumps, soak

    parser = argparse.ArgumentParser(prog="python -m benchmarks system_soak")
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", help="also write the report to this file")
    args = parser.parse_args(argv or [])
    report = soak(runs=args.runs, seed=args.seed, workers=args.workers)
    text = dumps(report)
    print(f"== whole-system soak: {args.runs} runs from seed {args.seed}, {args.workers} workers ==")
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            handle.write(text)
    return 1 if report["runsWithViolations"] or report["harnessErrors"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
