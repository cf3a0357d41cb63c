"""The task functions' actions: one per Task state of the provision, drill and deprovision state machines, chosen by
the ``action`` the state passes. The tables are fixed when the module loads, and this module is the only one that knows
both the provision steps and the drill's (which run in the provision function and use its dependencies), so neither of
those modules imports the other."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, TypeVar

from ..domain.errors import InvalidRequest
from . import deprovision, drill, provision
from .deprovision import DeprovisionDeps
from .provision import ProvisionDeps

D = TypeVar("D")
Action = Callable[[D, dict[str, Any]], dict[str, Any]]

PROVISION_ACTIONS: Mapping[str, Action[ProvisionDeps]] = MappingProxyType(
    {
        "scale": provision.scale,
        "check": provision.check,
        "give_back": provision.give_back,
        "finish": provision.finish,
        "drill_plan": drill.plan,
        "drill_scale_back": drill.scale_back,
    }
)

DEPROVISION_ACTIONS: Mapping[str, Action[DeprovisionDeps]] = MappingProxyType(
    {
        "cordon": deprovision.cordon,
        "drain": deprovision.drain,
        "delete": deprovision.delete,
        "confirm": deprovision.confirm,
        "rollback": deprovision.rollback,
    }
)


def run_provision_action(deps: ProvisionDeps, event: dict[str, Any]) -> dict[str, Any]:
    return _run("provision", PROVISION_ACTIONS, deps, event)


def run_deprovision_action(deps: DeprovisionDeps, event: dict[str, Any]) -> dict[str, Any]:
    return _run("deprovision", DEPROVISION_ACTIONS, deps, event)


def _run(workflow: str, actions: Mapping[str, Action[D]], deps: D, event: dict[str, Any]) -> dict[str, Any]:
    """The state's ``input`` (or the event itself) over its ``defaults``: a Task state passes the execution's state and
    the definition's defaults apart, so a field the input omits still has its value. ``retryCount`` (the state's
    ``$$.State.RetryCount``, where the definition passes it) goes along: 0 on a task's first attempt."""
    action = event.get("action")
    if action not in actions:
        raise InvalidRequest(f"{workflow} task: field action is {action!r}, expected one of {sorted(actions)}")
    given = event.get("input")
    payload: dict[str, Any] = given if isinstance(given, dict) else event
    retry = {"retryCount": event["retryCount"]} if isinstance(event.get("retryCount"), int) else {}
    return actions[str(action)](deps, {**(event.get("defaults") or {}), **payload, **retry})
