"""``hyperpod-autoscaler disruption``: the disruption decisions the autoscaler would make now, and why each other node
stays. Same inputs as ``plan`` (``-f`` files or ``--kubeconfig``, a DescribeCluster response), read-only.

``--output json`` prints ``{"decisions": [{reason, nodePool, nodes, replacement, savingsPerHour, pods, message}],
"kept": {node: why}, "allowedDisruptions": {nodePool: {reason: n}}, "eligible": {reason: n}}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TextIO

from ..domain.catalog import Catalog
from ..domain.disruption import (
    DEFAULT_MIN_SAVINGS_FRACTION,
    DisruptionInput,
    DisruptionPlan,
    DisruptionSettings,
    last_pod_change_from_pods,
    plan_disruptions,
)
from ..domain.errors import InvalidObject
from .plan import add_snapshot_arguments, input_limit, load_cluster, load_objects


def register(parser: argparse.ArgumentParser) -> None:
    add_snapshot_arguments(parser, output="text")
    parser.add_argument(
        "--min-savings",
        type=float,
        default=DEFAULT_MIN_SAVINGS_FRACTION,
        help=f"fraction a replacement must save (default {DEFAULT_MIN_SAVINGS_FRACTION})",
    )
    parser.add_argument("--now", type=float, help="evaluate at this epoch time (default: now)")


def make(args: argparse.Namespace) -> DisruptionPlan:
    cluster = load_cluster(args.cluster, input_limit(args))
    catalog = Catalog.load(args.catalog) if args.catalog else Catalog.builtin()
    if args.kubeconfig:
        from ..adapters.kube import read_cluster_objects

        objects = read_cluster_objects(args.kubeconfig, args.context)
    elif args.filename:
        objects = load_objects(args.filename, input_limit(args))
    else:
        raise InvalidObject("arguments", "disruption", "-f", "give at least one -f OBJECTS.yaml, or --kubeconfig")
    return plan_disruptions(
        DisruptionInput(
            objects=objects,
            cluster=cluster,
            catalog=catalog,
            now=args.now if args.now is not None else time.time(),
            last_pod_change=last_pod_change_from_pods(objects),
        ),
        DisruptionSettings(min_savings_fraction=args.min_savings),
    )


def print_text(plan: DisruptionPlan, out: TextIO) -> None:
    if not plan.decisions:
        out.write("no disruption now\n")
    for d in plan.decisions:
        out.write(f"{d.reason:<14} {', '.join(d.nodes)}  [{d.nodepool}]  {d.message}\n")
    if plan.kept:
        out.write("\nkept:\n")
        width = max(len(n) for n in plan.kept)
        for node, why in sorted(plan.kept.items()):
            out.write(f"  {node:<{width}}  {why}\n")
    for pool, reasons in sorted(plan.allowed.items()):
        allowed = ", ".join(f"{r} {n}" for r, n in reasons.items())
        out.write(f"\nNodePool {pool}: budgets allow {allowed}\n")


def run(args: argparse.Namespace) -> int:
    try:
        plan = make(args)
    except InvalidObject as exc:
        print(f"disruption: {exc}", file=sys.stderr)
        return 2
    if args.output == "json":
        json.dump(plan.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_text(plan, sys.stdout)
    return 0
