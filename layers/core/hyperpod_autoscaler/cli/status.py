"""``hyperpod-autoscaler status``: what the autoscaler sees now and why, read-only.

Pending pods and the instance groups the engine would plan for them, the provision and deprovision executions in flight,
the instance groups in launch backoff, and the disruption decisions with the reason each other node stays; first of all, that
it changes nothing while HyperPod's own autoscaler is enabled on the cluster. It runs the
same services as the functions (a dry-run pass of reconcile and of disruption) with the functions' configuration:
the environment variables the template sets (``HYPERPOD_CLUSTER_NAME``, ``TABLE_NAME``, the state machine ARNs, and
``KUBECONFIG`` or ``EKS_CLUSTER_NAME``), or ``--sandbox`` for a running sandbox.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .connect import add_sandbox_argument


def register(parser: argparse.ArgumentParser) -> None:
    add_sandbox_argument(parser, "look")
    parser.add_argument("--output", "-o", choices=["json", "text"], default="text")


def collect() -> dict[str, Any]:
    from .. import runtime
    from ..services.disruption import disrupt_once
    from ..services.reconcile import reconcile_once

    rdeps = runtime.reconcile_deps("status")
    settings = runtime.reconcile_settings()
    decision = reconcile_once(rdeps, settings, dry_run=True)
    workflows = runtime.workflows()
    inflight: dict[str, list[dict[str, Any]]] = {}
    for label, env_name in (
        ("provision", "PROVISION_STATE_MACHINE_ARN"),
        ("deprovision", "DEPROVISION_STATE_MACHINE_ARN"),
    ):
        arn = runtime.env(env_name)
        inflight[label] = [
            {"name": e.name, "startedAt": e.started_at, "input": e.input} for e in workflows.running(arn)
        ]
    disruption = disrupt_once(runtime.disruption_deps("status"), runtime.disruption_config(), dry_run=True)
    return {
        "pending": decision.to_dict(),
        "inflight": inflight,
        "backoffs": runtime.backoff().unavailable_groups(),
        "disruption": disruption.to_dict(),
    }


def print_text(status: dict[str, Any]) -> None:
    p = status["pending"]
    conflict = p.get("conflict") or status["disruption"].get("conflict")
    if conflict:
        print(f"NOT ACTING: {conflict}")
        print("  disable it (UpdateCluster AutoScaling.Mode=Disable) or remove this autoscaler: two must never fight")
    print(f"pending pods: {p['pending']} ({p['unschedulable']} unschedulable), nodes in flight: {p['inflightNodes']}")
    for c in p["claims"]:
        print(
            f"  would add {c['count']} x {c['instanceType']} in {c['instanceGroup']} ({c['zone']}) for {c['pods']} pod(s), NodePool {c['nodePool']}"
        )
    for label, items in status["inflight"].items():
        print(f"{label} executions running: {len(items)}")
        for e in items:
            target = e["input"].get("instanceGroup") or ", ".join(e["input"].get("nodes") or [])
            print(f"  {e['name']}  {target}")
    if status["backoffs"]:
        print("instance groups in backoff: " + ", ".join(f"{g} ({why})" for g, why in status["backoffs"].items()))
    d = status["disruption"]
    print(f"disruption decisions: {len(d['decisions'])}")
    for dec in d["decisions"]:
        print(f"  {dec['reason']}: {', '.join(dec['nodes'])}  {dec['message']}")
    for node, why in sorted(d["kept"].items()):
        print(f"  kept {node}: {why}")


def run(args: argparse.Namespace) -> int:
    if args.sandbox:
        from .connect import use_sandbox

        try:
            use_sandbox(args.sandbox)
        except FileNotFoundError as exc:
            print(f"status: {exc}", file=sys.stderr)
            return 2
    from ..domain.errors import InvalidObject

    try:
        status = collect()
    except InvalidObject as exc:
        print(f"status: {exc}", file=sys.stderr)
        return 2
    if args.output == "json":
        json.dump(status, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        print_text(status)
    return 0
