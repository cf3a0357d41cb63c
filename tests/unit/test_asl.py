"""The state machine linter catches what it claims to, and the project's definitions pass it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hpa_testkit.lint_asl import check_definition, lint

ROOT = Path(__file__).resolve().parents[2]
MACHINES = sorted((ROOT / "statemachines").glob("*.asl.json"))


def _machine(**overrides: object) -> dict:
    m: dict = {
        "StartAt": "Scale",
        "States": {
            "Scale": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "${ProvisionFunctionArn}", "Payload.$": "$"},
                "Retry": [
                    {"ErrorEquals": ["Lambda.ServiceException"], "MaxAttempts": 3},
                    {"ErrorEquals": ["ClusterBusy"], "IntervalSeconds": 30, "BackoffRate": 2.0},
                ],
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Failed"}],
                "Next": "Done",
            },
            "Done": {"Type": "Succeed"},
            "Failed": {"Type": "Fail", "Error": "ProvisionFailed"},
        },
    }
    m.update(overrides)
    return m


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


def test_schema_check_rejects_a_broken_definition(tmp_path: Path) -> None:
    bad = _machine()
    bad["States"]["Done"] = {"Type": "Sucseed"}
    path = tmp_path / "bad.asl.json"
    path.write_text(json.dumps(bad))
    assert any("asl-validator" in p for p in lint([path]))
