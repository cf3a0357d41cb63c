"""The ``hyperpod-autoscaler`` console script: one sub-command per module in this package, imported only when used
(so ``plan`` does not pay for the sandbox's imports), plus the commands other installed packages register as plugins."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any

#: sub-command -> (module, one-line help). Each module has ``register(parser)`` and ``run(args) -> int``.
COMMANDS: dict[str, tuple[str, str]] = {
    "plan": ("hyperpod_autoscaler.cli.plan", "pack pending pods onto HyperPod instance groups and print the plan"),
    "disruption": ("hyperpod_autoscaler.cli.disruption", "print disruption decisions and why each node is kept"),
    "drill": ("hyperpod_autoscaler.cli.drill", "start a drill execution and follow it to the end"),
    "status": ("hyperpod_autoscaler.cli.status", "show what the autoscaler sees and why (read-only)"),
}

PLUGIN_GROUP = "hyperpod_autoscaler.commands"
"""Entry points in this group are more sub-commands: the name is the command, the value a module with ``HELP``,
``register(parser)`` and ``run(args) -> int``. The test kit registers ``sandbox`` this way (pyproject.toml), so the
product's CLI offers the sandbox where the test kit is installed without ever importing it."""


def plugins() -> dict[str, str]:
    """Command -> module of the plugin commands installed (a built-in name wins over a plugin's)."""
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group=PLUGIN_GROUP) if ep.name not in COMMANDS}


def version() -> str:
    """The installed distribution's version (``unknown`` where the package is not installed, e.g. a Lambda layer)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("hyperpod-autoscaler")
    except PackageNotFoundError:
        return "unknown"


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hyperpod-autoscaler", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        if only is None or only == name:
            _attach(sub_parser, importlib.import_module(module_name))
    for name, module_name in plugins().items():
        if only is None or only == name:
            module = importlib.import_module(module_name)
            _attach(sub.add_parser(name, help=module.HELP, description=module.HELP), module)
    return parser


def _attach(parser: argparse.ArgumentParser, module: Any) -> None:
    module.register(parser)
    parser.set_defaults(_run=module.run)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(only=command if command in COMMANDS or command in plugins() else None)
    args = parser.parse_args(argv)
    run = getattr(args, "_run", None)
    if run is None:
        parser.print_help()
        return 2
    try:
        return int(run(args) or 0)
    except Exception as exc:  # bad input is reported by each command; anything else gets one line, not a traceback
        if os.environ.get("HPA_DEBUG"):
            raise
        message = f"{args.command}: unexpected error: {type(exc).__name__}: {exc}"
        print(f"{message[:2000]} (set HPA_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
