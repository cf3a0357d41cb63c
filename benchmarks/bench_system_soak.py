"""The whole-system fault soak of issue 11: the whole loop on the sandbox (reconcile, pod scaler, disruption, provision,
deprovision and drills through the real handlers, state machines, lease and DynamoDB) on randomized workloads, with
concurrent and redelivered triggers and injected faults. Prints the report as JSON: runs, faults by kind, violations by
invariant with the seed of each failing run (``--seed S --runs 1`` replays run S), seconds per run.

    python -m benchmarks system_soak --runs 1000 --seed 2026 --workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def main(argv: list[str] | None = None) -> int:
    from hpa_testkit.system_soak import RunResult, dumps, soak

    parser = argparse.ArgumentParser(prog="python -m benchmarks system_soak")
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", help="also write the report to this file")
    parser.add_argument("--runs-log", help="append each run's result to this file (JSON lines) as it ends")
    args = parser.parse_args(argv or [])

    def log_run(result: RunResult) -> None:
        if args.runs_log:
            with open(args.runs_log, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(result.to_dict()) + "\n")

    report = soak(runs=args.runs, seed=args.seed, workers=args.workers, on_result=log_run)
    text = dumps(report)
    print(f"== whole-system soak: {args.runs} runs from seed {args.seed}, {args.workers} workers ==")
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            handle.write(text)
    return 1 if report["runsWithViolations"] or report["harnessErrors"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
