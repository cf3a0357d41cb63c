"""How far the packer is from the best plan, and how tight the bench's LP bound is (issue 14). Slow: minutes per trace.

    python -m benchmarks.packing_optimum [--trace default] [--sample 2000] [--seconds 600]

For one Alibaba trace (whole, or a seeded sample as ``bench_packing`` draws it) it prints:

- the assignment LP bound (``packing_baselines.lp_lower_bound``, what ``make bench`` divides by);
- the configuration LP (Gilmore-Gomory) by column generation: a column is one node of one instance type with integral
  pod counts per class, priced by an exact integer knapsack per type (HiGHS); its lower bound is Farley's (the master's
  value over the largest ratio of a column's dual worth to its price), valid at any iteration and equal to the LP at the
  end;
- the integer master over the columns generated (a near-optimal plan: its cost is an upper bound on the optimum, the
  configuration LP a lower one);
- our plan's cost, and the node patterns of both plans (pods as ``(cores, GPUs, count)``), so that the gap can be read.

Same allocatable model as the bench (``bench_packing.ALLOCATABLE_MODEL``); instance types dominated by a cheaper one
(no smaller in any resource) are left out of the columns, which cannot raise the optimum.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from typing import Any

from .bench_packing import SAMPLE_SEED, improvement_budget


def _undominated(caps: list[tuple[int, ...]], prices: list[float]) -> list[int]:
    def dominates(i: int, j: int) -> bool:
        bigger = all(a >= b for a, b in zip(caps[i], caps[j], strict=True))
        return bigger and (prices[i] < prices[j] or (prices[i] == prices[j] and i < j))

    return [j for j in range(len(caps)) if not any(i != j and dominates(i, j) for i in range(len(caps)))]


def configuration_lp(
    shapes: list[tuple[int, ...]], counts: list[int], caps: list[tuple[int, ...]], prices: list[float], seconds: float
) -> dict[str, Any]:
    """Column generation for min sum price_k x_k s.t. sum_k a_ck x_k >= n_c, x >= 0, then the integer master."""
    import numpy as np
    from scipy.optimize import Bounds, LinearConstraint, linprog, milp

    n = np.array(counts, dtype=float)
    req = np.array(shapes, dtype=float).T  # resources x classes
    types = _undominated(caps, prices)
    cols: list[tuple[int, Any]] = []
    for c, shape in enumerate(shapes):  # start: each class alone on the type cheapest per pod
        best: tuple[float, int, int] | None = None
        for j in types:
            k = min(int(cap // s) if s else 10**9 for cap, s in zip(caps[j], shape, strict=True))
            k = min(k, counts[c])
            if k > 0 and (best is None or prices[j] / k < best[0]):
                best = (prices[j] / k, j, k)
        if best is None:
            raise ValueError(f"pod shape {shape} fits no instance type")
        column = np.zeros(len(shapes))
        column[c] = best[2]
        cols.append((best[1], column))
    started = time.perf_counter()
    lower, value, iterations, converged = 0.0, float("inf"), 0, False
    while time.perf_counter() - started < seconds:
        iterations += 1
        a = np.array([col for _, col in cols]).T
        cost = np.array([prices[j] for j, _ in cols])
        master = linprog(cost, A_ub=-a, b_ub=-n, bounds=(0, None), method="highs")
        value = float(master.fun)
        duals = -master.ineqlin.marginals
        ratio, added = 1.0, 0
        for j in types:
            knap = milp(
                -duals,
                constraints=[LinearConstraint(req, -np.inf, np.array(caps[j], dtype=float))],
                integrality=np.ones(len(shapes)),
                bounds=Bounds(0, n),
                options={"mip_rel_gap": 1e-6},
            )
            worth = -float(knap.fun)
            ratio = max(ratio, worth / prices[j] * (1 + 1e-6))
            if worth > prices[j] * (1 + 1e-7):
                cols.append((j, np.round(knap.x)))
                added += 1
        lower = max(lower, value / ratio)
        if not added:
            converged = True
            break
    a = np.array([col for _, col in cols]).T
    cost = np.array([prices[j] for j, _ in cols])
    integer = milp(
        cost,
        constraints=[LinearConstraint(a, n, np.inf)],
        integrality=np.ones(len(cols)),
        bounds=Bounds(0, np.inf),
        options={"time_limit": 120, "mip_rel_gap": 1e-4},
    )
    plan = Counter[tuple[int, tuple[tuple[int, int], ...]]]()
    if integer.x is not None:
        for (j, col), x in zip(cols, np.round(integer.x), strict=True):
            if x > 0:
                plan[(j, tuple((int(c), int(col[c])) for c in np.nonzero(col)[0]))] += int(x)
    return {
        "lowerBound": lower,
        "masterValue": value,
        "converged": converged,
        "iterations": iterations,
        "columns": len(cols),
        "seconds": time.perf_counter() - started,
        "integerCost": float(integer.fun) if integer.x is not None else None,
        "integerPlan": plan,
    }


def main(argv: list[str] | None = None) -> int:
    from hpa_testkit.packing import vec
    from hyperpod_autoscaler.domain.plan import PlanOptions
    from hyperpod_autoscaler.domain.scheduling import schedule

    from .packing_baselines import lp_lower_bound, placeable
    from .packing_workloads import trace_files, trace_input, trace_rows

    parser = argparse.ArgumentParser(prog="packing_optimum")
    parser.add_argument("--trace", default="default", help="the trace whose file name contains this (default: default)")
    parser.add_argument(
        "--sample", type=int, default=2000, help="pods sampled as bench_packing does; 0: the whole trace"
    )
    parser.add_argument("--seconds", type=float, default=600.0, help="column generation's time limit")
    args = parser.parse_args(argv)
    path = next((p for p in trace_files() if args.trace in p.name), None)
    if path is None:
        print(f"no trace matching {args.trace!r}", file=sys.stderr)
        return 2
    rows = trace_rows(path)
    if args.sample:
        rows = random.Random(SAMPLE_SEED).sample(rows, min(args.sample, len(rows)))
    inp = trace_input(path, rows)
    types = [inp.catalog[inp.cluster.group(g.name).instance_type] for g in inp.cluster.instance_groups]  # type: ignore[union-attr]
    pods = placeable(inp.pods, types)
    classes = Counter(vec(p.requests) for p in pods)
    shapes = sorted(classes)
    caps = [vec(t.allocatable) for t in types]
    prices = [t.price for t in types]
    plan = schedule(inp, PlanOptions(time_budget_seconds=improvement_budget(len(inp.pods))))
    assignment = lp_lower_bound(pods, types)
    found = configuration_lp(shapes, [classes[s] for s in shapes], caps, prices, args.seconds)
    print(f"trace {path.name}, {len(pods)} pods in {len(shapes)} classes, {len(types)} instance types")
    print(f"  assignment LP bound          {assignment:10.2f}")
    print(
        f"  configuration LP bound       {found['lowerBound']:10.2f}  (master {found['masterValue']:.2f}, "
        f"{'converged' if found['converged'] else 'NOT converged'} in {found['iterations']} iterations, "
        f"{found['columns']} columns, {found['seconds']:.0f} s)"
    )
    if found["integerCost"] is not None:
        print(f"  integer master (a plan)      {found['integerCost']:10.2f}")
    print(
        f"  our plan                     {plan.hourly_cost:10.2f}  ({plan.hourly_cost / assignment:.4f} x assignment LP)"
    )

    def pattern(items: Counter[tuple[int, int]]) -> str:
        return " ".join(f"({shapes[c][0] // 1000},{shapes[c][2]})x{k}" for c, k in sorted(items.items()))

    best = Counter[tuple[str, str]]()
    for (j, content), count in found["integerPlan"].items():
        best[(types[j].name, pattern(Counter(dict(content))))] += count
    print("\nbest plan's nodes (pods as (cores, GPUs) x count):")
    for (name, content), count in best.most_common(12):
        print(f"  {count:4d} x {name:16s} {content}")
    ours = Counter[tuple[str, str]]()
    index = {s: c for c, s in enumerate(shapes)}
    by_key = {p.key: p for p in pods}
    for claim in plan.node_claims:
        content = Counter(index[vec(by_key[k].requests)] for k in claim.pods if k in by_key)
        ours[(claim.instance_type, pattern(content))] += 1
    print("\nour plan's nodes:")
    for (name, content), count in ours.most_common(12):
        print(f"  {count:4d} x {name:16s} {content}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
