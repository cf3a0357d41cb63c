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


# --- one role per function, with exactly what its code calls -----------------------------------------------------------

# What the Lambda runtime does for every function (its log stream, its traces), whatever the code calls.
RUNTIME_ACTIONS = {"logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments", "xray:PutTelemetryRecords"}
# AutoscalerMetrics calls PutMetricData only with METRICS_SINK=api (the sandbox); deployed, it writes EMF log lines.
API_SINK_ONLY = {"cloudwatch:PutMetricData"}


def _branches(value: Any) -> list[Any]:
    """Every value a property can take: both branches of an Fn::If, without AWS::NoValue."""
    if isinstance(value, dict) and "Fn::If" in value:
        return [v for branch in value["Fn::If"][1:] for v in _branches(branch)]
    if value == {"Ref": "AWS::NoValue"}:
        return []
    return [value]


def _ref_name(value: Any) -> str:
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"])
    att = value.get("Fn::GetAtt") if isinstance(value, dict) else None
    if att:
        return str(att[0] if isinstance(att, list) else att.split(".")[0])
    return ""


def role_statements(role: str) -> list[dict[str, Any]]:
    """The statements a role's principal gets: inline policies, template managed policies, attached AWS::IAM::Policy."""
    props = RESOURCES[role]["Properties"]
    docs = [p["PolicyDocument"] for p in props.get("Policies") or []]
    for arns in _branches(props.get("ManagedPolicyArns")):
        for arn in arns:
            if _ref_name(arn) in RESOURCES:
                docs.append(RESOURCES[_ref_name(arn)]["Properties"]["PolicyDocument"])
    for res in RESOURCES.values():
        attached = [_ref_name(r) for r in (res.get("Properties") or {}).get("Roles") or []]
        if res["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy") and role in attached:
            docs.append(res["Properties"]["PolicyDocument"])
    return [st for doc in docs for item in doc["Statement"] for st in _branches(item) if st.get("Effect") == "Allow"]


def function_role(name: str) -> str:
    role = _ref_name(FUNCTIONS[name]["Properties"].get("Role"))
    assert role in RESOURCES and RESOURCES[role]["Type"] == "AWS::IAM::Role", f"{name}: Role is not a role of the stack"
    return role


def needed_actions(name: str) -> set[str]:
    from hpa_testkit.iam_scan import operations

    props = FUNCTIONS[name]["Properties"]
    needed = operations(ROOT / props["CodeUri"] / "app.py") - API_SINK_ONLY
    if (props.get("EventInvokeConfig") or {}).get("DestinationConfig", {}).get("OnFailure", {}).get("Type") == "SQS":
        needed.add("sqs:SendMessage")  # the asynchronous invocation's failure destination
    if "sagemaker:UpdateCluster" in needed:
        needed.add("iam:PassRole")  # UpdateCluster echoes the instance groups' ExecutionRole
    return needed


def test_functions_publish_metrics_as_emf() -> None:
    assert TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]["METRICS_SINK"] == "emf"


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_each_function_role_allows_exactly_what_its_code_calls(name: str) -> None:
    role = function_role(name)
    others = [function_role(n) for n in FUNCTIONS if n != name]
    assert role not in others, f"{name} shares its role {role}"
    allowed = {a for st in role_statements(role) for a in actions(st)}
    needed = needed_actions(name)
    assert allowed - RUNTIME_ACTIONS == needed, (
        f"{name} ({role}): allowed but not called {sorted(allowed - RUNTIME_ACTIONS - needed)}, "
        f"called but not allowed {sorted(needed - allowed)}"
    )


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_each_function_writes_only_its_own_log_group(name: str) -> None:
    group = _ref_name(FUNCTIONS[name]["Properties"]["LoggingConfig"]["LogGroup"])
    logs = [st for st in role_statements(function_role(name)) if "logs:PutLogEvents" in actions(st)]
    assert logs and all(json.dumps(st["Resource"]) == json.dumps({"Fn::Sub": f"${{{group}.Arn}}:*"}) for st in logs)


def test_pod_scaler_cannot_touch_hyperpod_or_pass_roles() -> None:
    allowed = {a for st in role_statements(function_role("PodScalerFunction")) for a in actions(st)}
    assert not {a for a in allowed if a.startswith(("sagemaker:", "iam:", "states:"))}, sorted(allowed)


def test_pod_scaler_reads_only_the_queues_and_metrics_the_parameters_allow() -> None:
    role = RESOURCES[function_role("PodScalerFunction")]["Properties"]
    items = [item for p in role["Policies"] for item in p["PolicyDocument"]["Statement"]]
    by_action = {}
    for item in items:
        for st in _branches(item):
            for act in actions(st):
                by_action[act] = (item, st)
    queue_item, queue = by_action["sqs:GetQueueAttributes"]
    assert queue["Resource"] == {"Ref": "ScaledObjectQueueArns"}
    assert queue_item["Fn::If"][0] == "HasScaledObjectQueues"
    metrics_item, _ = by_action["cloudwatch:GetMetricData"]
    assert metrics_item["Fn::If"][0] == "ReadsCloudWatchMetrics"
    conditions = TEMPLATE["Conditions"]
    assert "ScaledObjectQueueArns" in json.dumps(conditions["HasScaledObjectQueues"])
    assert "ScaledObjectCloudWatchTriggers" in json.dumps(conditions["ReadsCloudWatchMetrics"])
    readme = (ROOT / "README.md").read_text()
    assert "`ScaledObjectQueueArns`" in readme and "`ScaledObjectCloudWatchTriggers`" in readme


def test_every_function_role_reaches_kubernetes() -> None:
    entries = {
        _ref_name(r["Properties"]["PrincipalArn"]) for r in RESOURCES.values() if r["Type"] == "AWS::EKS::AccessEntry"
    }
    assert entries == {function_role(n) for n in FUNCTIONS}


def test_log_delivery_is_granted_once_for_every_state_machine() -> None:
    delivery = [name for name, st in statements() if "logs:CreateLogDelivery" in actions(st)]
    assert delivery == ["WorkflowLogDeliveryPolicy"], delivery
    for name, res in STATE_MACHINES.items():
        if res["Properties"].get("Logging"):
            assert {"Ref": "WorkflowLogDeliveryPolicy"} in res["Properties"]["Policies"], name


def _tasks(definition: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for state in definition.get("States", {}).values():
        if state.get("Type") == "Task":
            yield state
        for branch in state.get("Branches", []) + ([state["ItemProcessor"]] if "ItemProcessor" in state else []):
            yield from _tasks(branch)


@pytest.mark.parametrize("name", sorted(STATE_MACHINES))
def test_each_state_machine_role_allows_exactly_the_tasks_it_runs(name: str) -> None:
    """A state machine invokes the functions its Task states name and starts (.sync:2) the machines they name: its
    policies grant exactly those (plus, for .sync:2, following and stopping the child and the managed rule)."""
    props = STATE_MACHINES[name]["Properties"]
    subs = props.get("DefinitionSubstitutions") or {}
    text = (ROOT / props["DefinitionUri"]).read_text()
    definition = json.loads(re.sub(r'(?<!")\$\{\w+\}(?!")', "0", text))  # a number substituted outside quotes
    invoked, started = set(), set()
    for task in _tasks(definition):
        if task["Resource"].startswith("arn:aws:states:::states:startExecution"):
            started.add(_ref_name(subs[task["Parameters"]["StateMachineArn"].strip("${}")]))
        else:
            invoked.add(_ref_name(subs[task["Resource"].strip("${}")]))
    policies = props.get("Policies") or []
    granted_invoke = {_ref_name(p["LambdaInvokePolicy"]["FunctionName"]) for p in policies if "LambdaInvokePolicy" in p}
    granted_start = {
        p["StepFunctionsExecutionPolicy"]["StateMachineName"]["Fn::GetAtt"][0]
        for p in policies
        if "StepFunctionsExecutionPolicy" in p
    }
    assert (granted_invoke, granted_start) == (invoked, started)
    inline = {a for p in policies if "Statement" in p for st in p["Statement"] for a in actions(st)}
    sync = {
        "states:DescribeExecution",
        "states:StopExecution",
        "events:PutTargets",
        "events:PutRule",
        "events:DescribeRule",
    }
    assert inline == (sync if started else set()), sorted(inline)
