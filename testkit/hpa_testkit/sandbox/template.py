"""Read the stack's wiring from template.yaml, so that what the sandbox runs is what ``sam deploy`` deploys.

Understands the CloudFormation short-form tags (!Ref, !Sub, !GetAtt, ...) and resolves the few intrinsics the wiring needs
(Ref/GetAtt of a function or state machine -> its logical id, Sub with parameters). Everything else is kept as data.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class _Tag:
    """A CloudFormation intrinsic written in short form, kept as ``{"Fn::X": value}`` / ``{"Ref": value}``."""


def _construct(tag: str):
    def build(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        if tag == "Ref":
            return {"Ref": value}
        if tag == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
        return {f"Fn::{tag}": value}

    return build


class CfnLoader(yaml.SafeLoader):
    pass


for _name in (
    "Ref",
    "Sub",
    "GetAtt",
    "Join",
    "If",
    "Equals",
    "Not",
    "And",
    "Or",
    "Select",
    "Split",
    "FindInMap",
    "ImportValue",
    "GetAZs",
    "Base64",
    "Condition",
    "Cidr",
    "ToJsonString",
    "Length",
):
    CfnLoader.add_constructor(f"!{_name}", _construct(_name))


_parsed: dict[tuple[str, str], dict[str, Any]] = {}


def load_template(path: str | Path) -> dict[str, Any]:
    """The template as data, a copy of its own for each caller. PyYAML's pure-Python parser takes about a second for
    template.yaml, and every sandbox run reads it, so the parse is kept per file content."""
    text = Path(path).read_text()
    key = (str(path), text)
    if key not in _parsed:
        _parsed.clear()
        _parsed[key] = yaml.load(text, Loader=CfnLoader)
    return copy.deepcopy(_parsed[key])


def ref_target(value: Any) -> str | None:
    """The logical id a Ref / GetAtt / Sub("${X.Arn}") points at, or None."""
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
        if "Fn::Sub" in value:
            text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
            match = re.fullmatch(r"\$\{([A-Za-z0-9]+)(?:\.[A-Za-z]+)?\}", text)
            return match.group(1) if match else None
    return None


@dataclass
class FunctionSpec:
    logical_id: str
    code_uri: str
    handler: str
    environment: dict[str, Any] = field(default_factory=dict)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def module_path(self) -> Path:
        """``functions/reconcile`` + ``app.handler`` -> ``functions/reconcile/app.py``."""
        module = self.handler.rsplit(".", 1)[0]
        return Path(self.code_uri) / (module.replace(".", "/") + ".py")

    @property
    def handler_name(self) -> str:
        return self.handler.rsplit(".", 1)[1]


@dataclass
class StateMachineSpec:
    logical_id: str
    definition_uri: str
    substitutions: dict[str, Any] = field(default_factory=dict)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class RuleSpec:
    """An EventBridge rule: a pattern or a schedule, delivering to targets (logical ids of functions or state machines)."""

    logical_id: str
    pattern: dict[str, Any] | None
    schedule: str | None
    targets: list[str]
    input: str | None = None
    enabled: bool = True


@dataclass
class AlarmSpec:
    logical_id: str
    properties: dict[str, Any]


@dataclass
class Wiring:
    parameters: dict[str, Any]
    functions: dict[str, FunctionSpec]
    state_machines: dict[str, StateMachineSpec]
    rules: list[RuleSpec]
    alarms: dict[str, AlarmSpec]
    resources: dict[str, Any]

    def rules_for(self, target: str) -> list[RuleSpec]:
        return [r for r in self.rules if target in r.targets]


def read_wiring(path: str | Path, parameter_overrides: dict[str, Any] | None = None) -> Wiring:
    """Functions, state machines, rules (AWS::Events::Rule and SAM function/state-machine events) and alarms."""
    template = load_template(path)
    globals_fn = (template.get("Globals") or {}).get("Function") or {}
    params = {k: v.get("Default") for k, v in (template.get("Parameters") or {}).items()}
    params.update(parameter_overrides or {})
    resources = template.get("Resources") or {}
    functions: dict[str, FunctionSpec] = {}
    machines: dict[str, StateMachineSpec] = {}
    rules: list[RuleSpec] = []
    alarms: dict[str, AlarmSpec] = {}
    for logical_id, resource in resources.items():
        kind = resource.get("Type")
        props = resource.get("Properties") or {}
        if kind == "AWS::Serverless::Function":
            env = dict((globals_fn.get("Environment") or {}).get("Variables") or {})
            env.update((props.get("Environment") or {}).get("Variables") or {})
            functions[logical_id] = FunctionSpec(
                logical_id,
                str(props.get("CodeUri") or globals_fn.get("CodeUri") or "."),
                str(props.get("Handler") or globals_fn.get("Handler") or "app.handler"),
                env,
                dict(props.get("Events") or {}),
            )
            rules.extend(_sam_event_rules(logical_id, props.get("Events") or {}))
        elif kind == "AWS::Serverless::StateMachine":
            machines[logical_id] = StateMachineSpec(
                logical_id,
                str(props.get("DefinitionUri") or ""),
                dict(props.get("DefinitionSubstitutions") or {}),
                dict(props.get("Events") or {}),
            )
            rules.extend(_sam_event_rules(logical_id, props.get("Events") or {}))
        elif kind == "AWS::Events::Rule":
            targets = [t for t in (ref_target(x.get("Arn")) for x in props.get("Targets") or []) if t]
            rules.append(
                RuleSpec(
                    logical_id,
                    props.get("EventPattern"),
                    props.get("ScheduleExpression"),
                    targets,
                    enabled=props.get("State", "ENABLED") == "ENABLED",
                )
            )
        elif kind == "AWS::CloudWatch::Alarm":
            alarms[logical_id] = AlarmSpec(logical_id, props)
    return Wiring(params, functions, machines, rules, alarms, resources)


def _sam_event_rules(target: str, events: dict[str, Any]) -> list[RuleSpec]:
    out = []
    for name, event in events.items():
        kind = event.get("Type")
        props = event.get("Properties") or {}
        enabled = props.get("Enabled", True) is not False and props.get("State", "ENABLED") == "ENABLED"
        if kind in ("EventBridgeRule", "CloudWatchEvent"):
            out.append(RuleSpec(f"{target}.{name}", props.get("Pattern"), None, [target], props.get("Input"), enabled))
        elif kind in ("Schedule", "ScheduleV2"):
            out.append(
                RuleSpec(
                    f"{target}.{name}",
                    None,
                    props.get("Schedule") or props.get("ScheduleExpression"),
                    [target],
                    props.get("Input"),
                    enabled,
                )
            )
    return out
