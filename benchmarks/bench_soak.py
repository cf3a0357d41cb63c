"""The fault soak of issue 4: randomized provisioning and deprovisioning runs of the real state machines (moto's ASL
interpreter, Lambda tasks routed to the real handlers) against the HyperPod and Kubernetes emulators, each run with
injected faults. Prints what must be zero (over-provisioned nodes, stuck executions, PDB-violating evictions, lost pods,
stranded nodes), the outcomes, the faults injected and the run time.

    python -m benchmarks soak            # 200 runs
    python -m benchmarks.bench_soak 500 7   # runs, seed
"""

from __future__ import annotations

import json
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    from hpa_testkit.soak import soak

    args = list(argv or [])
    runs = int(args[0]) if args else 200
    seed = int(args[1]) if len(args) > 1 else 2026
    logging.disable(logging.WARNING)  # the handlers' own log lines would drown the figures
    # moto's interpreter logs an error for every IsPresent Choice on a path that is absent: expected here
    logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
    report = soak(runs=runs, seed=seed).to_dict()
    logging.disable(logging.NOTSET)
    print(f"== fault soak: {runs} runs, seed {seed} ==")
    for key in ("overProvisionedNodes", "stuckExecutions", "pdbViolatingEvictions", "lostPods", "strandedNodes"):
        print(f"{key:>24}: {report[key]}")
    print(f"{'forcedAfterGracePeriod':>24}: {report['forcedAfterGracePeriod']}  (expiries past terminationGracePeriod)")
    print(f"{'seconds':>24}: {report['seconds']}")
    print(json.dumps(report))
    bad = sum(report[k] for k in ("overProvisionedNodes", "stuckExecutions", "pdbViolatingEvictions", "lostPods"))
    return 1 if bad or report["strandedNodes"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
