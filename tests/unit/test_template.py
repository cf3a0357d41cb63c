"""template.yaml: least privilege where it matters, and the wiring the code relies on."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE, _ = decode(str(ROOT / "template.yaml"))
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]


def statements() -> Iterator[tuple[str, dict[str, Any]]]:
    for name, res in RESOURCES.items():
        props = res.get("Properties") or {}
        docs = []
        if res["Type"] in ("AWS::IAM::Role",):
            docs += [p["PolicyDocument"] for p in props.get("Policies") or []]
        if res["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            docs.append(props["PolicyDocument"])
        if res["Type"] in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
            docs += [p for p in props.get("Policies") or [] if isinstance(p, dict) and "Statement" in p]
        for doc in docs:
            for st in doc["Statement"]:
                yield name, st


def actions(st: dict[str, Any]) -> list[str]:
    a = st.get("Action", [])
    return [a] if isinstance(a, str) else list(a)


def test_no_wildcard_resource_for_sagemaker_or_passrole() -> None:
    seen = set()
    for name, st in statements():
        acts = actions(st)
        if not any(a.startswith("sagemaker:") or a == "iam:PassRole" or a.startswith("eks:") for a in acts):
            continue
        seen.update(acts)
        resource = json.dumps(st.get("Resource"))
        assert "*" not in resource, f"{name} {st.get('Sid')}: {acts} on {resource}"
        assert not any(a.endswith("*") for a in acts), f"{name}: wildcard action {acts}"
    assert {
        "sagemaker:UpdateCluster",
        "sagemaker:BatchDeleteClusterNodes",
        "iam:PassRole",
        "eks:DescribeCluster",
    } <= seen


def test_passrole_only_to_sagemaker() -> None:
    passes = [st for _, st in statements() if "iam:PassRole" in actions(st)]
    assert passes and all(
        st["Condition"]["StringEquals"]["iam:PassedToService"] == "sagemaker.amazonaws.com" for st in passes
    )


FUNCTIONS = {n: r for n, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::Function"}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_function_has_its_handler_and_runtime(name: str) -> None:
    props = FUNCTIONS[name]["Properties"]
    globals_ = TEMPLATE.get("Globals", {}).get("Function", {})
    code = ROOT / props["CodeUri"]
    handler = props.get("Handler", globals_.get("Handler", ""))
    module, func = handler.split(".")
    source = (code / f"{module}.py").read_text()
    assert f"def {func}(" in source
    assert props.get("Runtime", globals_.get("Runtime")) == "python3.12"
    assert "TODO" not in source and "NotImplementedError" not in source


STATE_MACHINES = {n: r for n, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::StateMachine"}


@pytest.mark.parametrize("name", sorted(STATE_MACHINES))
def test_state_machine_substitutions_are_all_provided(name: str) -> None:
    props = STATE_MACHINES[name]["Properties"]
    text = (ROOT / props["DefinitionUri"]).read_text()
    used = set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", text))
    given = set((props.get("DefinitionSubstitutions") or {}).keys())
    assert used == given, f"{name}: used {sorted(used)}, given {sorted(given)}"


@pytest.mark.parametrize("name", sorted(p.parent.name for p in (ROOT / "functions").glob("*/app.py")))
def test_handler_import_time(name: str) -> None:
    """A cold start imports the handler module: keep it light (aim <= 400 ms on the CI machine; asserted at 1.5 s)."""
    code = (
        "import importlib.util,time,sys;"
        f"sys.path.insert(0, {str(ROOT / 'layers' / 'core')!r});"
        "t=time.perf_counter();"
        f"s=importlib.util.spec_from_file_location('app', {str(ROOT / 'functions' / name / 'app.py')!r});"
        "m=importlib.util.module_from_spec(s);s.loader.exec_module(m);"
        "print(time.perf_counter()-t)"
    )
    env = {"POWERTOOLS_TRACE_DISABLED": "true", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert float(out.stdout.strip().splitlines()[-1]) < 1.5


def test_the_workflow_task_functions_reserve_concurrency() -> None:
    """A throttling storm in the account must not starve a running workflow (its rollback least of all); 0 reserves
    none, for accounts that cannot spare it."""
    param = TEMPLATE["Parameters"]["TaskFunctionReservedConcurrency"]
    assert param["Type"] == "Number" and int(param["Default"]) >= 2 and int(param["MinValue"]) == 0
    for name in ("ProvisionFunction", "DeprovisionFunction"):
        reserved = RESOURCES[name]["Properties"]["ReservedConcurrentExecutions"]
        assert reserved == {
            "Fn::If": ["ReserveTaskConcurrency", {"Ref": "TaskFunctionReservedConcurrency"}, {"Ref": "AWS::NoValue"}]
        }
    assert TEMPLATE["Conditions"]["ReserveTaskConcurrency"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "TaskFunctionReservedConcurrency"}, "0"]}]
    }


@pytest.mark.parametrize(
    "machine", sorted(n for n, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::StateMachine")
)
def test_every_lambda_task_outlives_its_function(machine: str) -> None:
    """A task's TimeoutSeconds longer than the function's Timeout: the function's own timeout ends a stuck invocation
    (Lambda reports it), and the task timeout only catches a Lambda service that never answers."""
    props = RESOURCES[machine]["Properties"]
    subs = props.get("DefinitionSubstitutions") or {}
    text = (ROOT / props["DefinitionUri"]).read_text()
    definition = json.loads(
        re.sub(r"\$\{([A-Za-z0-9_]+)\}", lambda m: "1" if "Seconds" in m.group(1) else m.group(1), text)
    )
    default = TEMPLATE["Globals"]["Function"].get("Timeout", 3)
    checked = 0
    for name, state in definition["States"].items():
        function = subs.get(str(state.get("Resource")))
        if state.get("Type") != "Task" or not isinstance(function, dict):
            continue
        fn = function["Fn::GetAtt"][0] if "Fn::GetAtt" in function else function["Ref"]
        limit = RESOURCES[fn]["Properties"].get("Timeout", default)
        assert state["TimeoutSeconds"] > limit, f"{machine}.{name}: TimeoutSeconds {state['TimeoutSeconds']} <= {limit}"
        checked += 1
    assert checked, f"{machine}: no Lambda task found"
