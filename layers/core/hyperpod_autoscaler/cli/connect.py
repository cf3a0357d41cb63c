"""How the operator commands (``status``, ``drill``) reach a stack: AWS with the caller's credentials and the stack's
environment variables, or a running sandbox (``--sandbox``), which publishes its endpoints in a connection file."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

SANDBOX_FILE_ENV = "HPA_SANDBOX_FILE"


def sandbox_file() -> Path:
    return Path(os.environ.get(SANDBOX_FILE_ENV) or Path(tempfile.gettempdir()) / "hyperpod-autoscaler-sandbox.json")


def use_sandbox() -> dict[str, str]:
    """Point this process at the running sandbox (its emulators' endpoints, kubeconfig and the stack's names)."""
    path = sandbox_file()
    if not path.exists():
        raise FileNotFoundError(
            f"no running sandbox ({path} does not exist): start `hyperpod-autoscaler sandbox` first"
        )
    env = json.loads(path.read_text())
    os.environ.update({k: str(v) for k, v in env.items()})
    return env
