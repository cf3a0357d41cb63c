"""Lint the state machine definitions: ``python -m hpa_testkit.lint_asl statemachines/*.asl.json``.

Two layers of checks:

* the schema, by the ``asl-validator`` package from ``node_modules`` (the same validator the AWS toolkit
  uses), run on the definition with every ``${Name}`` substitution replaced by a well-formed placeholder;
* the project's own rules, which the schema cannot express: JSONPath only (no JSONata), every ``Next`` /
  ``Default`` / ``StartAt`` names a state that exists, every state is reachable, every Retry/Catch names
  ``States.*`` or one of the project's own error classes (so the same definition behaves the same in AWS and
  in the tests), ``States.ALL`` comes last, and every Task that invokes a Lambda retries transient Lambda
  service errors.
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
                    if not (err.startswith("States.") or err.startswith("Lambda.") or err in known):
                        problems.append(f"{here}.{kind}[{i}]: error {err!r} is neither States.* nor a project error")
                if "States.ALL" in names and (len(names) > 1 or i != len(rules) - 1):
                    problems.append(f"{here}.{kind}[{i}]: States.ALL must be alone and last")
        resource = str(state.get("Resource", ""))
        if state.get("Type") == "Task" and ("lambda:invoke" in resource or ":function:" in resource):
            retried = {e for r in state.get("Retry", []) or [] for e in r.get("ErrorEquals", [])}
            if not (LAMBDA_TRANSIENT & retried) and "States.ALL" not in retried:
                problems.append(f"{here}: a Lambda task without a Retry on Lambda's transient errors")
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
    return problems


def schema_check(text: str, where: str) -> list[str]:
    """asl-validator on the substituted definition; skipped (with a note) only when node is missing."""
    exe = ROOT / "node_modules" / ".bin" / "asl-validator"
    if not exe.exists() or shutil.which("node") is None:
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
    for p in problems:
        print(p, file=sys.stderr)
    if not problems:
        print(f"{len(args)} state machine definition(s) OK")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
