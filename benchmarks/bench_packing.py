"""Packing benchmarks (issue 2): throughput on Karpenter's benchmark setup, and cost quality on the Alibaba GPU traces.

    python -m benchmarks.bench_packing [--quick] [--json PATH]

(a) pods/s and peak RSS at 100 / 1,000 / 5,000 / 10,000 "diverse" pods and 10,000 generic pods on 400 synthetic instance
    types x 3 zones; each size runs in a fresh subprocess so that its peak RSS is its own.
(b) for every trace in ../shared/data/alibaba_gpu_v2023/, whole and as a 2,000-pod sample (seeded, without replacement):
    the hourly cost of our plan, of a Karpenter-style FFD baseline and the LP lower bound, with the ratios, and the time
    to plan (the feasible solve plus the improvement pass, whose budget is ``improvement_budget``: 1 s at 1,000 pods,
    3 s at 10,000). The bound uses the engine's own allocatable model (``ALLOCATABLE_MODEL``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

from .rss import peak_rss_mb

SAMPLE_PODS = 2000
SAMPLE_SEED = 1
ALLOCATABLE_MODEL = (
    "LP bound on the engine's own allocatable model (domain/catalog.py): Karpenter's kube-reserved CPU and memory "
    "(11 MiB x max pods + 255 MiB), 7.5% of memory to the VM, the 100 MiB eviction threshold, no DaemonSet in these "
    "traces; assignment LP (fractional nodes and pods)"
)
THROUGHPUT_CASES = [("diverse", 100), ("diverse", 1000), ("diverse", 5000), ("diverse", 10000), ("generic", 10000)]


def _one_throughput(kind: str, n: int) -> dict[str, Any]:
    from hyperpod_autoscaler.domain.plan import PlanOptions
    from hyperpod_autoscaler.domain.scheduling import schedule

    from .packing_workloads import diverse_pods, generic_pods, karpenter_input

    pods = diverse_pods(n) if kind == "diverse" else generic_pods(n)
    inp = karpenter_input(pods)
    started = time.perf_counter()
    # The improvement pass is a time budget on top: the throughput figure is the feasible solve, as Karpenter's is.
    plan = schedule(inp, PlanOptions(improve=False))
    seconds = time.perf_counter() - started
    placed = sum(len(c.pods) for c in plan.node_claims)
    return {
        "kind": kind,
        "pods": n,
        "seconds": round(seconds, 3),
        "podsPerSecond": round(n / seconds, 1),
        "placed": placed,
        "nodes": len(plan.node_claims),
        "peakRssMB": peak_rss_mb(),
    }


def throughput(quick: bool) -> list[dict[str, Any]]:
    rows = []
    cases = THROUGHPUT_CASES[:2] if quick else THROUGHPUT_CASES
    for kind, n in cases:
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.bench_packing", "--one", kind, str(n)],
            check=True,
            capture_output=True,
            text=True,
        )
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return rows


def cost_quality(quick: bool) -> list[dict[str, Any]]:
    from hyperpod_autoscaler.domain.plan import PlanOptions
    from hyperpod_autoscaler.domain.scheduling import schedule

    from .packing_baselines import karpenter_ffd, lp_lower_bound, placeable
    from .packing_workloads import trace_files, trace_input, trace_rows

    rows = []
    cases = [(path, sample, records) for path in trace_files() for sample, records in _samples(trace_rows(path), quick)]
    for path, sample, records in cases:
        inp = trace_input(path, records)
        types = [inp.catalog[inp.cluster.group(g.name).instance_type] for g in inp.cluster.instance_groups]  # type: ignore[union-attr]
        started = time.perf_counter()
        budget = improvement_budget(len(inp.pods))
        plan = schedule(inp, PlanOptions(time_budget_seconds=budget))
        seconds = time.perf_counter() - started
        ours = plan.hourly_cost
        pods = placeable(inp.pods, types)
        ffd_cost, ffd_nodes, _ = karpenter_ffd(pods, types)
        bound = lp_lower_bound(pods, types)
        rows.append(
            {
                "trace": path.name,
                "sample": sample,
                "pods": len(inp.pods),
                "unschedulable": len(plan.unschedulable),
                "budgetSeconds": round(budget, 2),
                "planSeconds": round(seconds, 2),
                "nodes": len(plan.node_claims),
                "ourCost": round(ours, 2),
                "ffdCost": round(ffd_cost, 2),
                "ffdNodes": ffd_nodes,
                "lpBound": round(bound, 2),
                "oursOverLp": round(ours / bound, 4) if bound else None,
                "ffdOverOurs": round(ffd_cost / ours, 4) if ours else None,
            }
        )
    return rows


def improvement_budget(pods: int) -> float:
    """The improvement pass's budget for a decision over ``pods`` pending pods (issue 14's decision budget): 1 s at
    1,000 pods or fewer, 3 s at 10,000 or more, linear between."""
    return min(3.0, max(1.0, 1.0 + 2.0 * (pods - 1000) / 9000))


def _samples(records: list[dict[str, str]], quick: bool) -> list[tuple[str, list[dict[str, str]]]]:
    """The whole trace and a seeded 2,000-pod sample of it (``--quick``: the first 800 rows only)."""
    import random

    if quick:
        return [("first800", records[:800])]
    sample = random.Random(SAMPLE_SEED).sample(records, min(SAMPLE_PODS, len(records)))
    return [("full", records), (f"sample{SAMPLE_PODS}", sample)]


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    widths = [max(len(c), *(len(str(r.get(c))) for r in rows)) for c in columns]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True))]
    for r in rows:
        lines.append("  ".join(str(r.get(c)).rjust(w) for c, w in zip(columns, widths, strict=True)))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_packing")
    parser.add_argument("--quick", action="store_true", help="small sizes only (a smoke run)")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--one", nargs=2, metavar=("KIND", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv if argv is not None else [])
    if args.one:
        print(json.dumps(_one_throughput(args.one[0], int(args.one[1]))))
        return 0
    print("== packing throughput (Karpenter's benchmark setup: 400 synthetic types x 3 zones) ==")
    tp = throughput(args.quick)
    print(_table(tp, ["kind", "pods", "seconds", "podsPerSecond", "placed", "nodes", "peakRssMB"]))
    print("\n== cost quality on the Alibaba GPU traces (ml.c5/m5/g5/g6/g6e/p4d/p5 groups) ==")
    print(ALLOCATABLE_MODEL)
    cq = cost_quality(args.quick)
    print(
        _table(
            cq,
            [
                "trace",
                "sample",
                "pods",
                "unschedulable",
                "budgetSeconds",
                "planSeconds",
                "nodes",
                "ourCost",
                "ffdCost",
                "lpBound",
                "oursOverLp",
                "ffdOverOurs",
            ],
        )
    )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"throughput": tp, "costQuality": cq}, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
