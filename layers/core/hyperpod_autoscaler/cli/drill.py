"""``hyperpod-autoscaler drill NAME``: start a drill on the stack's Drill state machine and follow it to the end.

Drills: ``scale-group`` (``--group G --count N``: add N nodes, wait until Ready, remove them), ``replace-node``
(``--node X``: add one node in X's group, then drain and delete X), ``drain-group`` (``--group G``: drain and delete
every node of G, to zero). ``--dry-run`` only reports what the drill would do. The state machine ARN comes from
``--state-machine-arn`` or ``$DRILL_STATE_MACHINE_ARN`` (the stack's ``DrillStateMachineArn`` output).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from typing import Any

from .connect import add_sandbox_argument

DRILLS = ("scale-group", "replace-node", "drain-group")


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", choices=DRILLS)
    parser.add_argument("--group", help="instance group (scale-group, drain-group)")
    parser.add_argument("--count", type=int, default=1, help="nodes to add (scale-group)")
    parser.add_argument("--node", help="node to replace (replace-node)")
    parser.add_argument("--dry-run", action="store_true", help="only report what the drill would do")
    parser.add_argument("--state-machine-arn", default=None, help="default: $DRILL_STATE_MACHINE_ARN")
    add_sandbox_argument(parser, "run the drill")
    parser.add_argument("--no-wait", action="store_true", help="print the execution ARN and return")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds to follow the execution")


def drill_input(args: argparse.Namespace) -> dict[str, Any]:
    if args.name in ("scale-group", "drain-group") and not args.group:
        raise ValueError(f"{args.name} needs --group")
    if args.name == "replace-node" and not args.node:
        raise ValueError("replace-node needs --node")
    if args.count < 1:
        raise ValueError("--count must be >= 1")
    out: dict[str, Any] = {"drill": args.name, "dryRun": bool(args.dry_run)}
    if args.group:
        out["group"] = args.group
    if args.name == "scale-group":
        out["count"] = args.count
    if args.node:
        out["node"] = args.node
    return out


def run(args: argparse.Namespace) -> int:
    import boto3

    try:
        payload = drill_input(args)
    except ValueError as exc:
        print(f"drill: {exc}", file=sys.stderr)
        return 2
    if args.sandbox:
        from .connect import use_sandbox

        try:
            use_sandbox(args.sandbox)
        except FileNotFoundError as exc:
            print(f"drill: {exc}", file=sys.stderr)
            return 2
    args.state_machine_arn = args.state_machine_arn or os.environ.get("DRILL_STATE_MACHINE_ARN")
    if not args.state_machine_arn:
        print("drill: give --state-machine-arn or set DRILL_STATE_MACHINE_ARN", file=sys.stderr)
        return 2
    sfn = boto3.client("stepfunctions")
    name = f"drill-{args.name}-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
    arn = sfn.start_execution(stateMachineArn=args.state_machine_arn, name=name, input=json.dumps(payload))[
        "executionArn"
    ]
    print(f"started {arn}", file=sys.stderr)
    if args.no_wait:
        print(arn)
        return 0
    deadline = time.monotonic() + args.timeout
    while True:
        desc = sfn.describe_execution(executionArn=arn)
        if desc["status"] != "RUNNING":
            break
        if time.monotonic() > deadline:
            print(f"drill: still running after {args.timeout}s: {arn}", file=sys.stderr)
            return 1
        time.sleep(2.0)
    if desc["status"] == "SUCCEEDED":
        json.dump(json.loads(desc.get("output") or "null"), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    print(f"drill: {desc['status']}: {desc.get('error', '')} {desc.get('cause', '')}", file=sys.stderr)
    return 1
