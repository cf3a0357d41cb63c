"""24-hour disruption simulation on the Alibaba GPU trace (issue 6): consolidation vs WhenEmpty vs a static cluster.

    python -m benchmarks.bench_disruption_sim [--window busiest|first] [--hours 24] [--fraction 1.0] [--step 60]
                                              [--provision-delay 0] [--consolidate-after 5m] [--json PATH]

Setup (the loop is ``benchmarks/disruption_sim.py``):

- Trace: ``openb_pod_list_default.csv``. The window is the 24 h with the most pod creations ("busiest"; the trace's first
  24 h hold one pod). Pods overlapping it arrive at max(creation, window start) and leave at min(deletion, window end);
  no deletion time: they stay to the end. Times are bucketed in ``--step`` seconds; a pod lives at least one step.
  ``--fraction`` keeps an evenly spread share of the pods (1.0: all of them, the default).
- Catalog: the HyperPod groups of the packing benchmark (every ml.c5/m5/g5/g6/g6e/p4d/p5 type, one zone), three NodePools
  of up to 10 groups each, every pool with the run's consolidationPolicy, consolidateAfter (5m) and budget (10%).
- Each step: pods leave, pods arrive, pending pods are placed by ``domain.scheduling.schedule`` (what the reconcile service
  calls; its decision cap too) over Ready nodes, in-flight claims and new claims; then ``domain.disruption.plan_disruptions``
  (what the disruption service calls) decides; removed nodes' pods go pending and are placed again in the same step.
- Provisioning is instant by default (a claimed node is Ready in the step it is claimed); ``--provision-delay`` makes it a
  fixed delay, paid from the claim, with replacements launched first and the old nodes drained once they are Ready.
- Static: a cluster that serves the peak, held Ready for the whole window (no scale-up, no disruption): per instance
  group the larger of both autoscaled runs' peak and what ``schedule`` launches for the pods alive at the busiest step
  (most GPUs, then CPUs, requested at once) packed from scratch; if pods are still never served (a static cluster never
  re-packs, so it fragments differently), it grows by the nodes ``schedule`` launches for those pods, until all are served.

Figures per run: node-hours, cost ($, catalog prices), node removals and pod evictions, pods never served, and flapping:
nodes launched in an instance group within consolidateAfter after a node of that group was disrupted (all of them; those
for pods that were already running then; those for pods that very disruption evicted, which must be 0).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from .disruption_sim import DEFAULT_TRACE, SimConfig, SimResult, compare, load_window

COLUMNS = [
    ("node-hours", lambda r: f"{r.node_hours:.1f}"),
    ("cost $", lambda r: f"{r.cost:.2f}"),
    ("nodes created", lambda r: str(r.nodes_created)),
    ("node removals", lambda r: str(r.removals)),
    ("  of which Empty", lambda r: str(r.node_removals.get("Empty", 0))),
    ("  of which Underutilized", lambda r: str(r.node_removals.get("Underutilized", 0))),
    ("replacements", lambda r: str(r.replacements)),
    ("pod evictions", lambda r: str(r.pod_evictions)),
    ("pods never served", lambda r: str(r.pods_never_served)),
    ("pending pod-minutes", lambda r: f"{r.pending_pod_seconds / 60:.0f}"),
    ("peak nodes", lambda r: str(r.peak_nodes)),
    ("re-creations <= consolidateAfter", lambda r: str(r.recreations_within_consolidate_after)),
    ("  for pods running then", lambda r: str(r.recreations_for_running_pods)),
    ("  for its evicted pods (flaps)", lambda r: str(r.flaps)),
    ("wall seconds", lambda r: f"{r.seconds:.1f}"),
]


def _table(runs: list[SimResult]) -> str:
    names = ["WhenEmptyOrUnderutilized", "WhenEmpty", "Static"]
    width = max(len(c) for c, _ in COLUMNS)
    lines = [" " * width + "".join(n.rjust(27) for n in names)]
    for label, fmt in COLUMNS:
        lines.append(label.ljust(width) + "".join(fmt(r).rjust(27) for r in runs))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_disruption_sim")
    parser.add_argument("--window", choices=["busiest", "first"], default="busiest")
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--fraction", type=float, default=1.0, help="share of the window's pods to simulate")
    parser.add_argument("--step", type=int, default=60, help="simulated seconds per step")
    parser.add_argument("--provision-delay", type=int, default=0, help="seconds from claim to Ready node (0: instant)")
    parser.add_argument("--consolidate-after", default="5m")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv if argv is not None else [])
    started = time.perf_counter()
    window = load_window(DEFAULT_TRACE, kind=args.window, seconds=int(args.hours * 3600), fraction=args.fraction)
    base = SimConfig(
        policy="WhenEmptyOrUnderutilized",
        consolidate_after=args.consolidate_after,
        step_seconds=args.step,
        provision_delay_seconds=args.provision_delay,
    )
    print("== disruption simulation on the Alibaba GPU trace ==")
    print(f"trace: {window.describe()}")
    delay = "instant" if base.provision_delay_seconds <= 0 else f"a fixed {base.provision_delay_seconds} s delay"
    print(
        f"steps of {base.step_seconds} s (times bucketed to the step, a pod lives >= 1 step); provisioning {delay}; "
        f"NodePools: consolidateAfter {base.consolidate_after}, budget {base.budgets[0]['nodes']}, "
        f"min replacement saving {int(base.min_savings_fraction * 100)}%"
    )
    cmp = compare(window, base)
    print(f"static cluster: {dict(cmp.static_groups)} ({sum(n for _, n in cmp.static_groups)} nodes), sized from ")
    print(f"  {cmp.static_sized_from}, held for the whole window")
    runs = [cmp.consolidation, cmp.when_empty, cmp.static]
    print()
    print(_table(runs))
    saving = 1 - cmp.consolidation.cost / cmp.static.cost if cmp.static.cost else 0.0
    saving_empty = 1 - cmp.consolidation.cost / cmp.when_empty.cost if cmp.when_empty.cost else 0.0
    print(
        f"\nconsolidation costs {saving:.1%} less than the static cluster and {saving_empty:.1%} less than WhenEmpty; "
        f"total {time.perf_counter() - started:.1f} s"
    )
    out: dict[str, Any] = {
        "benchmark": "disruption_sim",
        "trace": window.path.name,
        "window": window.kind,
        "windowStart": window.trace_start,
        "hours": window.seconds / 3600,
        "podsInWindow": window.in_window,
        "podsSimulated": len(window.pods),
        "fraction": window.fraction,
        "stepSeconds": base.step_seconds,
        "provisionDelaySeconds": base.provision_delay_seconds,
        "consolidateAfter": base.consolidate_after,
        "staticGroups": dict(cmp.static_groups),
        "staticSizedFrom": cmp.static_sized_from,
        "runs": {r.policy: r.to_dict() for r in runs},
    }
    print(json.dumps(out, sort_keys=True))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(out, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
