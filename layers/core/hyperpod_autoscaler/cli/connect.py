"""How the operator commands (``status``, ``drill``) reach a stack: AWS with the caller's credentials and the stack's
environment variables, or a running sandbox (``--sandbox [DIR]``), which publishes its endpoints in a connection file in
its report directory (``DIR/sandbox.json``): two sandboxes with two report directories never share one."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

SANDBOX_FILE_ENV = "HPA_SANDBOX_FILE"
SANDBOX_FILE_NAME = "sandbox.json"
DEFAULT_SANDBOX_DIR = "reports/sandbox"
"""The sandbox's default report directory (``hyperpod-autoscaler sandbox --report``), where ``--sandbox`` looks first."""


def sandbox_file(report_dir: str | Path | None = None) -> Path:
    """The connection file of the sandbox whose report directory is ``report_dir`` (a path to the file itself also
    works); ``$HPA_SANDBOX_FILE`` when no directory is given and it is set; else the default report directory's."""
    if report_dir is None and os.environ.get(SANDBOX_FILE_ENV):
        return Path(os.environ[SANDBOX_FILE_ENV])
    path = Path(report_dir if report_dir is not None else DEFAULT_SANDBOX_DIR)
    return path if path.suffix == ".json" else path / SANDBOX_FILE_NAME


def add_sandbox_argument(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--sandbox",
        nargs="?",
        const=DEFAULT_SANDBOX_DIR,
        default=None,
        metavar="DIR",
        help=f"{what} in the running sandbox whose report directory is DIR (default: {DEFAULT_SANDBOX_DIR})",
    )


def use_sandbox(report_dir: str | Path | None = None) -> dict[str, str]:
    """Point this process at the running sandbox (its emulators' endpoints, kubeconfig and the stack's names)."""
    path = sandbox_file(report_dir)
    if not path.exists():
        raise FileNotFoundError(
            f"no running sandbox ({path} does not exist): start `hyperpod-autoscaler sandbox --report "
            f"{path.parent}` first, or give the report directory of the one that runs (--sandbox DIR)"
        )
    env = json.loads(path.read_text())
    os.environ.update({k: str(v) for k, v in env.items()})
    return env
