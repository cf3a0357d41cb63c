"""Execution names: unique per attempt, idempotent per decision.

Step Functions keeps a Standard execution's name for 90 days after it *closed*: a name derived only from the decision (a
claim, a disruption, a drill) would, after one give-back or failure, answer every later start of the same decision with
``ExecutionAlreadyExists`` and start nothing. So a name is ``<base>-<attempt>-<token>``: the base says what it is for, the
attempt counts the decision's executions, and the token (random, chosen by the decider whose conditional write recorded
the attempt) keeps names unique even when the attempt record was garbage-collected and counting restarts at 1. Deciders
never invent a name they did not record: a decider that loses the conditional write reads the winner's name.
"""

from __future__ import annotations

import re
import uuid

NAME_MAX = 80
TOKEN_LENGTH = 8


def new_token() -> str:
    return uuid.uuid4().hex[:TOKEN_LENGTH]


def safe(text: str) -> str:
    """Step Functions names allow [A-Za-z0-9-_]."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", text)


def attempt_name(base: str, attempt: int, token: str) -> str:
    """``<base>-<attempt>-<token>``, the base cut so that the whole fits in 80 characters (the suffix is never cut)."""
    suffix = f"-{attempt}-{safe(token)}"
    return safe(base)[: NAME_MAX - len(suffix)] + suffix
