"""Lint the state machine definitions: ``python -m hpa_testkit.lint_asl statemachines/*.asl.json``.

Two layers of checks:

* the schema, by the ``asl-validator`` package from ``node_modules`` (the same validator the AWS toolkit
  uses), run on the definition with every ``${Name}`` substitution replaced by a well-formed placeholder;
* the project's own rules, which the schema cannot express: JSONPath only (no JSONata), every ``Next`` /
  ``Default`` / ``StartAt`` names a state that exists, every state is reachable, every Retry/Catch names
  ``States.*`` or one of the project's own error classes (so the same definition behaves the same in AWS and
  in the tests), ``States.ALL`` comes last, and every Task that invokes a Lambda retries AWS's transient Lambda
  service errors and the project's transient errors, with capped (``MaxDelaySeconds``) full-jitter backoff;
* bounds: every state machine has ``TimeoutSeconds``, every Task has ``TimeoutSeconds`` (and ``HeartbeatSeconds`` when
  it waits for a callback), and every loop (a cycle of states) waits in a Wait state, decides in a Task and can leave
  through a Choice; a loop's history, at its fastest for the whole ``TimeoutSeconds``, stays under ``HISTORY_BUDGET``
  events (a Standard execution fails, uncatchably, at 25,000).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hyperpod_autoscaler.domain import errors as project_errors

ROOT = Path(__file__).resolve().parents[2]
_SUB = re.compile(r"\$\{([A-Za-z0-9_]+)\}")

LAMBDA_TRANSIENT = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.ClientExecutionTimeoutException",
}
"""AWS's list of Lambda service errors a task should retry (Step Functions best practices, "Handle Lambda service
exceptions"), and the throttling error."""
LAMBDA_FUNCTION_ERRORS = {"Sandbox.Timedout"}
"""What Lambda reports for a function that timed out (its ``errorType``; Step Functions' docs also name it
``Lambda.Unknown``, with out-of-memory): a task whose step is idempotent retries it, since its effects may have
happened."""
HISTORY_LIMIT = 25_000
HISTORY_BUDGET = 20_000
EVENTS_PER_STATE = {"Task": 5, "Wait": 2, "Choice": 2, "Pass": 2, "Succeed": 2, "Fail": 1}
"""History events one visit adds: a Lambda Task is entered, scheduled, started, succeeded, exited."""
CALLBACK = (".waitForTaskToken", ":activity:")


def transient_error_names() -> set[str]:
    return {
        name for name in project_error_names() if getattr(getattr(project_errors, name), "transient", False) is True
    }


def project_error_names() -> set[str]:
    names = set()
    for name in dir(project_errors):
        obj = getattr(project_errors, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            names.add(name)
    return names


def placeholder(name: str) -> str:
    """A value of the right shape for a substitution, so the schema check sees a real-looking definition."""
    if name.endswith("FunctionArn"):
        return f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
    if name.endswith("StateMachineArn"):
        return f"arn:aws:states:us-east-1:123456789012:stateMachine:{name}"
    if name.endswith("TableName") or name.endswith("Name"):
        return name
    if name.endswith("Seconds") or name.endswith("Attempts") or name.endswith("Rate"):
        return "1"
    return name


def substitute(text: str) -> str:
    return _SUB.sub(lambda m: placeholder(m.group(1)), text)


def _walk(states: dict[str, Any], prefix: str = "") -> Iterable[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """Yield (path, name, state, sibling states) for every state, descending into Parallel and Map."""
    for name, state in states.items():
        yield f"{prefix}{name}", name, state, states
        for i, branch in enumerate(state.get("Branches", []) or []):
            yield from _walk(branch.get("States", {}), f"{prefix}{name}.Branches[{i}].")
        proc = state.get("ItemProcessor") or state.get("Iterator")
        if proc:
            yield from _walk(proc.get("States", {}), f"{prefix}{name}.ItemProcessor.")


def _check_machine(machine: dict[str, Any], where: str, known: set[str]) -> list[str]:
    problems: list[str] = []
    states: dict[str, Any] = machine.get("States", {})
    start = machine.get("StartAt")
    if start not in states:
        problems.append(f"{where}: StartAt {start!r} is not a state")
    edges: dict[str, set[str]] = {name: set() for name in states}
    for name, state in states.items():
        here = f"{where}.{name}"
        targets: list[str] = []
        if "Next" in state:
            targets.append(state["Next"])
        if "Default" in state:
            targets.append(state["Default"])
        for choice in state.get("Choices", []) or []:
            if "Next" in choice:
                targets.append(choice["Next"])
        for catch in state.get("Catch", []) or []:
            targets.append(catch.get("Next", ""))
        for t in targets:
            if t not in states:
                problems.append(f"{here}: transition to {t!r}, which is not a state")
            else:
                edges[name].add(t)
        if state.get("Type") not in ("Succeed", "Fail", "Choice") and "Next" not in state and not state.get("End"):
            problems.append(f"{here}: neither Next nor End")
        for kind in ("Retry", "Catch"):
            rules = state.get(kind, []) or []
            for i, rule in enumerate(rules):
                names = rule.get("ErrorEquals", [])
                for err in names:
                    if not (
                        err.startswith("States.")
                        or err.startswith("Lambda.")
                        or err in known
                        or err in LAMBDA_FUNCTION_ERRORS
                    ):
                        problems.append(
                            f"{here}.{kind}[{i}]: error {err!r} is neither States.* nor a project error (nor Lambda's)"
                        )
                if "States.ALL" in names and (len(names) > 1 or i != len(rules) - 1):
                    problems.append(f"{here}.{kind}[{i}]: States.ALL must be alone and last")
        resource = str(state.get("Resource", ""))
        if state.get("Type") == "Task" and ("lambda:invoke" in resource or ":function:" in resource):
            problems += _check_lambda_retry(state, here)
        if state.get("Type") == "Task":
            if "TimeoutSeconds" not in state and "TimeoutSecondsPath" not in state:
                problems.append(f"{here}: a Task without TimeoutSeconds")
            if any(c in resource for c in CALLBACK) and "HeartbeatSeconds" not in state:
                problems.append(f"{here}: a callback Task without HeartbeatSeconds")
        for i, branch in enumerate(state.get("Branches", []) or []):
            problems += _check_machine(branch, f"{here}.Branches[{i}]", known)
        proc = state.get("ItemProcessor") or state.get("Iterator")
        if proc:
            problems += _check_machine(proc, f"{here}.ItemProcessor", known)
    if start in states:
        seen = {start}
        todo = [start]
        while todo:
            for nxt in edges[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        for name in states:
            if name not in seen:
                problems.append(f"{where}.{name}: unreachable from StartAt")
    return problems


def _check_lambda_retry(state: dict[str, Any], here: str) -> list[str]:
    rules = state.get("Retry", []) or []
    retried = {e for r in rules for e in r.get("ErrorEquals", [])}
    if "States.ALL" in retried:
        return []
    problems = []
    missing = (LAMBDA_TRANSIENT | transient_error_names()) - retried
    if missing:
        problems.append(f"{here}: a Lambda task that does not retry the transient errors {sorted(missing)}")
    for i, rule in enumerate(rules):
        if float(rule.get("BackoffRate", 2.0)) > 1 and "MaxDelaySeconds" not in rule:
            problems.append(f"{here}.Retry[{i}]: exponential backoff without MaxDelaySeconds")
        if rule.get("JitterStrategy") != "FULL":
            problems.append(f"{here}.Retry[{i}]: without JitterStrategy FULL (retries of many executions align)")
    return problems


def _cycles(states: dict[str, Any]) -> list[set[str]]:
    """The strongly connected components that loop: every cycle of the state graph lies in one."""
    return loops({n: set(_targets(st)) & set(states) for n, st in states.items()})


def loops(edges: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of a graph that loop (more than one node, or a node that points at itself),
    by Tarjan's algorithm. ``edges`` maps every node to the nodes it points at."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1 or v in edges[v]:
                out.append(comp)

    for v in edges:
        if v not in index:
            visit(v)
    return out


def _targets(state: dict[str, Any]) -> list[str]:
    out = [state[k] for k in ("Next", "Default") if k in state]
    out += [c["Next"] for c in state.get("Choices", []) or [] if "Next" in c]
    out += [c["Next"] for c in state.get("Catch", []) or [] if "Next" in c]
    return out


def _check_bounds(machine: dict[str, Any], where: str) -> list[str]:
    problems = []
    timeout = machine.get("TimeoutSeconds")
    if not isinstance(timeout, int) or timeout <= 0:
        problems.append(f"{where}: no TimeoutSeconds: an execution may run (and loop) without end")
    states: dict[str, Any] = machine.get("States", {})
    for comp in _cycles(states):
        loop = " -> ".join(sorted(comp))
        kinds = {states[n].get("Type") for n in comp}
        waits = [states[n].get("Seconds") for n in comp if states[n].get("Type") == "Wait"]
        exits = [
            n for n in comp if states[n].get("Type") == "Choice" and any(t not in comp for t in _targets(states[n]))
        ]
        if not waits or not all(isinstance(w, int | float) and w > 0 for w in waits):
            problems.append(f"{where}: the loop {loop} has no Wait state with fixed Seconds (a hot loop)")
            continue
        if "Task" not in kinds or not exits:
            problems.append(f"{where}: the loop {loop} has no Task to carry its bound or no Choice to leave it")
        if isinstance(timeout, int):
            per_round = sum(EVENTS_PER_STATE.get(str(states[n].get("Type")), 2) for n in comp)
            events = timeout / min(waits) * per_round
            if events > HISTORY_BUDGET:
                problems.append(
                    f"{where}: the loop {loop} may write ~{int(events)} history events within TimeoutSeconds "
                    f"{timeout} (budget {HISTORY_BUDGET}; Step Functions fails the execution at {HISTORY_LIMIT})"
                )
    return problems


def check_definition(text: str, where: str) -> list[str]:
    """The project's own rules on one definition (text with ``${...}`` still in it)."""
    try:
        machine = json.loads(substitute(text))
    except json.JSONDecodeError as e:
        return [f"{where}: not JSON after substitution: {e}"]
    problems: list[str] = []
    if machine.get("QueryLanguage", "JSONPath") != "JSONPath":
        problems.append(f"{where}: QueryLanguage must be JSONPath")
    for path, _name, state, _ in _walk(machine.get("States", {})):
        if state.get("QueryLanguage", "JSONPath") != "JSONPath":
            problems.append(f"{where}.{path}: QueryLanguage must be JSONPath")
        if "Arguments" in state or "Output" in state:
            problems.append(f"{where}.{path}: JSONata fields (Arguments/Output) in a JSONPath machine")
    problems += _check_machine(machine, where, project_error_names())
    problems += _check_bounds(machine, where)
    return problems


def schema_skip_reason() -> str | None:
    """Why the schema check cannot run on this machine (Node.js is missing), or None. Only that skips it: with Node,
    a missing ``asl-validator`` is a problem to fix (``npm install``)."""
    if shutil.which("node") is None:
        return (
            "schema check SKIPPED: Node.js (node) is not on the PATH, so asl-validator cannot run; the project's own "
            "rules were checked (install Node.js and npm, then `npm install`, for the full check)"
        )
    return None


def schema_check(text: str, where: str) -> list[str]:
    """asl-validator on the substituted definition (``lint`` skips it when ``schema_skip_reason`` says so)."""
    exe = ROOT / "node_modules" / ".bin" / "asl-validator"
    if not exe.exists():
        return [f"{where}: asl-validator is not installed (run `npm install` in the project root)"]
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        f.write(substitute(text))
        tmp = f.name
    try:
        proc = subprocess.run([str(exe), "--json-path", tmp], capture_output=True, text=True, timeout=60)
    finally:
        Path(tmp).unlink(missing_ok=True)
    if proc.returncode != 0:
        out = (proc.stdout + proc.stderr).strip()
        return [f"{where}: asl-validator: {out}"]
    return []


def lint(paths: Iterable[str | Path], schema: bool = True) -> list[str]:
    problems: list[str] = []
    schema = schema and schema_skip_reason() is None
    for p in paths:
        text = Path(p).read_text()
        problems += check_definition(text, str(p))
        if schema:
            problems += schema_check(text, str(p))
    return problems


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m hpa_testkit.lint_asl FILE.asl.json...", file=sys.stderr)
        return 2
    problems = lint(args)
    skipped = schema_skip_reason()
    if skipped:
        print(f"lint_asl: {skipped}", file=sys.stderr)
    for p in problems:
        print(p, file=sys.stderr)
    if not problems:
        print(f"{len(args)} state machine definition(s) OK")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
