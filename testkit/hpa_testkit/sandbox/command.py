"""``hyperpod-autoscaler sandbox [--scenario FILE] [--speed X] [--report DIR] [--parameter-overrides K=V ...]``: the whole autoscaler on an embedded
HyperPod + EKS sandbox (the test kit's emulators), playing a scenario on a simulated clock, with a live view and a report.

The command lives in the test kit, which registers it with the product's CLI as a plugin (the entry point
``sandbox`` in the ``hyperpod_autoscaler.commands`` group, pyproject.toml): the product never imports the test kit, and
an install without the test kit has no ``sandbox`` command rather than one that fails."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hyperpod_autoscaler.cli.connect import sandbox_file

HELP = "run the autoscaler on an embedded HyperPod + EKS sandbox"

EXIT_INTERRUPTED = 130
"""Ctrl-C (SIGINT) stopped the sandbox: 128 + the signal's number, as shells report it. The partial report is written."""


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scenario", default="default", help="a scenario YAML file, or a bundled name (default, short, ...)"
    )
    parser.add_argument(
        "--speed", type=float, default=None, help="cluster seconds per real second (default: the scenario's)"
    )
    parser.add_argument("--report", default="reports/sandbox", help="directory for the HTML report and summary.json")
    parser.add_argument("--template", default=None, help="the SAM template to wire from (default: the project's)")
    parser.add_argument("--plain", action="store_true", help="plain progress lines instead of the live view")
    parser.add_argument(
        "--parameter-overrides",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="template parameters for this run, as sam deploy takes them (AtomicPodGroups=false)",
    )


def run(args: argparse.Namespace) -> int:
    from .live import LiveView
    from .report import write_report
    from .runner import Sandbox, SandboxOptions
    from .scenario import load_scenario

    path = Path(args.scenario)
    if not path.exists():
        bundled = Path(__file__).resolve().parents[1] / "scenarios" / f"{args.scenario}.yaml"
        if not bundled.exists():
            print(f"sandbox: no scenario file {args.scenario} and no bundled scenario of that name", file=sys.stderr)
            return 2
        path = bundled
    scenario = load_scenario(path)
    overrides = {}
    for item in args.parameter_overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            print(f"sandbox: --parameter-overrides {item!r} is not KEY=VALUE", file=sys.stderr)
            return 2
        overrides[key] = value
    options = SandboxOptions(
        parameter_overrides=overrides,
        speed=args.speed,
        function_log=Path(args.report) / "functions.log",
        connection_file=sandbox_file(args.report),
    )
    if args.template:
        options.template = Path(args.template).resolve()
    try:
        with Sandbox(scenario, options) as sandbox:
            print(f"sandbox: from another terminal, hyperpod-autoscaler status --sandbox {args.report}", flush=True)
            live_view = LiveView(f"sandbox: {scenario.name}", scenario.duration, enabled=False if args.plain else None)
            with live_view as live:
                summary = sandbox.run(live=live)  # Ctrl-C ends the run early: the summary covers what was played
            title = f"hyperpod-autoscaler sandbox: {scenario.name}"
            if sandbox.interrupted_at is not None:
                title += f" (interrupted at {sandbox.interrupted_at / 60:.1f} min of cluster time: partial)"
            page = write_report(args.report, title, sandbox.timeline, summary)
    except KeyboardInterrupt:  # before the scenario started, or a second Ctrl-C while the report was being written
        print("sandbox: interrupted, no report written", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(json.dumps(summary, indent=2))
    print(f"report: {page}")
    print(f"function logs: {options.function_log}")
    if sandbox.interrupted_at is not None:
        print(
            f"sandbox: interrupted at {sandbox.interrupted_at:.0f} s of {scenario.duration:.0f} s of cluster time: "
            "the report and summary.json cover the part played",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    return 0
