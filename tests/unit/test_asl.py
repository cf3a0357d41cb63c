"""The state machine linter catches what it claims to, and the project's definitions pass it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hpa_testkit.lint_asl import check_definition, lint

ROOT = Path(__file__).resolve().parents[2]
MACHINES = sorted((ROOT / "statemachines").glob("*.asl.json"))


LAMBDA_ERRORS = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.ClientExecutionTimeoutException",
]


def _retry(names: list[str]) -> dict:
    return {"ErrorEquals": list(names), "BackoffRate": 2.0, "MaxDelaySeconds": 30, "JitterStrategy": "FULL"}


def _machine(**overrides: object) -> dict:
    m: dict = {
        "StartAt": "Scale",
        "TimeoutSeconds": 3600,
        "States": {
            "Scale": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "${ProvisionFunctionArn}", "Payload.$": "$"},
                "TimeoutSeconds": 90,
                "Retry": [_retry(LAMBDA_ERRORS), _retry(["ClusterBusy", "Throttled", "Unavailable"])],
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Failed"}],
                "Next": "Done",
            },
            "Done": {"Type": "Succeed"},
            "Failed": {"Type": "Fail", "Error": "ProvisionFailed"},
        },
    }
    m.update(overrides)
    return m


def _loop(m: dict, wait: int = 15) -> None:
    """Scale -> Ready? -> Wait -> Scale: a polling loop like the project's."""
    m["States"]["Scale"]["Next"] = "Ready"
    m["States"]["Ready"] = {
        "Type": "Choice",
        "Choices": [{"Variable": "$.ready", "BooleanEquals": True, "Next": "Done"}],
        "Default": "Again",
    }
    m["States"]["Again"] = {"Type": "Wait", "Seconds": wait, "Next": "Scale"}


def test_project_machines_pass_all_checks() -> None:
    assert MACHINES, "no state machines found"
    assert lint(MACHINES) == []


def test_clean_definition_passes() -> None:
    assert check_definition(json.dumps(_machine()), "m") == []


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda m: m["States"]["Scale"].update(Next="Nowhere"), "not a state"),
        (lambda m: m["States"].update(Orphan={"Type": "Pass", "End": True}), "unreachable"),
        (lambda m: m["States"]["Scale"]["Retry"].append({"ErrorEquals": ["Busy"]}), "neither States.* nor a project"),
        (
            lambda m: m["States"]["Scale"]["Catch"].insert(0, {"ErrorEquals": ["States.ALL"], "Next": "Failed"}),
            "alone and last",
        ),
        (lambda m: m["States"]["Scale"].update(Retry=[{"ErrorEquals": ["ClusterBusy"]}]), "transient"),
        (lambda m: m["States"]["Scale"]["Retry"][0]["ErrorEquals"].remove("Lambda.AWSLambdaException"), "transient"),
        (
            lambda m: m["States"]["Scale"]["Retry"][0]["ErrorEquals"].remove("Lambda.ClientExecutionTimeoutException"),
            "transient",
        ),
        (lambda m: m["States"]["Scale"]["Retry"][1]["ErrorEquals"].remove("Unavailable"), "Unavailable"),
        (lambda m: m["States"]["Scale"]["Retry"][1].pop("MaxDelaySeconds"), "MaxDelaySeconds"),
        (lambda m: m["States"]["Scale"]["Retry"][1].pop("JitterStrategy"), "JitterStrategy FULL"),
        (lambda m: m.pop("TimeoutSeconds"), "no TimeoutSeconds"),
        (lambda m: m["States"]["Scale"].pop("TimeoutSeconds"), "Task without TimeoutSeconds"),
        (
            lambda m: m["States"]["Scale"].update(Resource="arn:aws:states:::lambda:invoke.waitForTaskToken"),
            "HeartbeatSeconds",
        ),
        (lambda m: (_loop(m), m["States"]["Again"].update(Seconds=0)), "hot loop"),
        (lambda m: (_loop(m), m.update(TimeoutSeconds=86400)), "history events"),
        (
            lambda m: (_loop(m), m["States"]["Ready"].update(Choices=[], Default="Again")),
            "no Choice to leave it",
        ),
        (lambda m: m.update(QueryLanguage="JSONata"), "JSONPath"),
        (lambda m: m["States"]["Scale"].pop("Next"), "neither Next nor End"),
        (lambda m: m.update(StartAt="Missing"), "StartAt"),
    ],
)
def test_linter_catches(mutate, expected: str) -> None:
    m = _machine()
    mutate(m)
    problems = check_definition(json.dumps(m), "m")
    assert any(expected in p for p in problems), problems


def test_a_bounded_polling_loop_passes() -> None:
    m = _machine()
    _loop(m)
    assert check_definition(json.dumps(m), "m") == []


def test_project_machines_are_bounded() -> None:
    """Every machine has TimeoutSeconds and every loop in it is bounded (the rules without the schema validator)."""
    for path in MACHINES:
        assert check_definition(path.read_text(), str(path)) == []
        machine = json.loads(path.read_text().replace("${RegistrationTimeoutSeconds}", "1200"))
        assert isinstance(machine.get("TimeoutSeconds"), int)


def test_schema_check_rejects_a_broken_definition(tmp_path: Path) -> None:
    if shutil.which("node") is None:
        pytest.skip("Node.js is not installed: the schema check is skipped (test_lint_skips_the_schema_without_node)")
    bad = _machine()
    bad["States"]["Done"] = {"Type": "Sucseed"}
    path = tmp_path / "bad.asl.json"
    path.write_text(json.dumps(bad))
    assert any("asl-validator" in p for p in lint([path]))


def test_lint_skips_the_schema_without_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without Node.js the linter says it skipped the schema check and still applies the project's rules (it used to
    fail every definition with "asl-validator is not installed")."""
    from hpa_testkit import lint_asl

    real_which = shutil.which
    monkeypatch.setattr(lint_asl.shutil, "which", lambda name, *a, **k: None if name == "node" else real_which(name))
    good = tmp_path / "good.asl.json"
    good.write_text(json.dumps(_machine()))
    assert lint_asl.main([str(good)]) == 0
    err = capsys.readouterr().err
    assert "SKIPPED" in err and "Node.js" in err
    broken = _machine()
    broken["StartAt"] = "Missing"
    bad = tmp_path / "bad.asl.json"
    bad.write_text(json.dumps(broken))
    assert lint_asl.main([str(bad)]) == 1  # the project's own rules still run
