"""What woke a function: the events EventBridge delivers (and a manual invoke), parsed into the domain's ``Trigger``.

An inbound adapter: it knows Lambda's event shapes (through Powertools' models), the services only the ``Trigger``.

Parsing uses Powertools' EventBridge envelope model with a typed ``detail`` per source, so a malformed event fails with an
error that names the event and the field instead of a KeyError deep in a service. Unknown EventBridge sources are accepted
as generic triggers (a rule added by an operator should still cause a decision, not a crash).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..domain.errors import InvalidObject
from ..domain.triggers import Trigger, TriggerKind

ALARM_DETAIL_TYPE = "CloudWatch Alarm State Change"
HYPERPOD_DETAIL_TYPE = "SageMaker HyperPod Cluster Event"
SCHEDULE_DETAIL_TYPE = "Scheduled Event"


class AlarmState(BaseModel):
    model_config = ConfigDict(extra="ignore")
    value: Literal["OK", "ALARM", "INSUFFICIENT_DATA"]
    reason: str = ""
    reason_data: str | None = Field(default=None, alias="reasonData")
    timestamp: str | None = None


class AlarmDetail(BaseModel):
    model_config = ConfigDict(extra="ignore")
    alarm_name: str = Field(alias="alarmName")
    state: AlarmState
    previous_state: AlarmState | None = Field(default=None, alias="previousState")
    configuration: dict[str, Any] = Field(default_factory=dict)


class AlarmStateChangeEvent(EventBridgeModel):
    detail: AlarmDetail  # type: ignore[assignment]


class HyperPodEventDetails(BaseModel):
    model_config = ConfigDict(extra="ignore")
    event_id: str | None = Field(default=None, alias="EventId")
    cluster_arn: str | None = Field(default=None, alias="ClusterArn")
    instance_group_name: str | None = Field(default=None, alias="InstanceGroupName")
    instance_id: str | None = Field(default=None, alias="InstanceId")
    resource_type: str | None = Field(default=None, alias="ResourceType")
    event_level: str | None = Field(default=None, alias="EventLevel")
    description: str | None = Field(default=None, alias="Description")


class HyperPodDetail(BaseModel):
    model_config = ConfigDict(extra="ignore")
    event_details: HyperPodEventDetails = Field(alias="EventDetails")


class HyperPodClusterEvent(EventBridgeModel):
    detail: HyperPodDetail  # type: ignore[assignment]


class ManualInvoke(BaseModel):
    """``{"source": "manual", "reason": "...", "id": "..."}``: an operator's ``aws lambda invoke`` (or ``sam local invoke``).
    ``source`` is required: an empty or stray payload (``{}``, a test event from the console) is an error naming the
    field, never a decision that starts real deprovisions. Without an ``id`` the invoke is not deduplicated: every manual
    invoke decides."""

    model_config = ConfigDict(extra="ignore")
    source: Literal["manual"]
    id: str | None = None
    reason: str = "manual invoke"
    dry_run: bool = Field(default=False, alias="dryRun")


def _fail(exc: ValidationError, what: str) -> InvalidObject:
    first = exc.errors()[0]
    path = ".".join(str(p) for p in first.get("loc", ()))
    message = "required field is missing" if first.get("type") == "missing" else str(first.get("msg", "invalid"))
    if what == "manual invoke" and path == "source":
        message += (
            ' (an event without "detail-type" is a manual invoke and must say so: {"source": "manual", "reason": ...})'
        )
    return InvalidObject("event", what, path, message)


def parse_trigger(event: Any) -> Trigger:
    """Classify and validate one Lambda event. Raises InvalidObject naming the field for malformed events."""
    if isinstance(event, str | bytes):
        try:
            event = json.loads(event)
        except ValueError:
            raise InvalidObject("event", "", "", "is not JSON") from None
    if not isinstance(event, dict):
        raise InvalidObject("event", "", "", f"is a {type(event).__name__}, not a JSON object")
    if "detail-type" not in event:
        try:
            manual = ManualInvoke.model_validate(event)
        except ValidationError as exc:
            raise _fail(exc, "manual invoke") from None
        return Trigger("manual", manual.id, "manual", manual.reason, dry_run=manual.dry_run, raw=event)
    detail_type = event.get("detail-type")
    try:
        if detail_type == ALARM_DETAIL_TYPE:
            alarm = AlarmStateChangeEvent.model_validate(event)
            return Trigger(
                "alarm",
                alarm.id,
                alarm.source,
                f"alarm {alarm.detail.alarm_name} -> {alarm.detail.state.value}",
                alarm_name=alarm.detail.alarm_name,
                alarm_state=alarm.detail.state.value,
                raw=event,
            )
        if detail_type == HYPERPOD_DETAIL_TYPE:
            hp = HyperPodClusterEvent.model_validate(event)
            details = hp.detail.event_details
            text = details.description or details.resource_type or "cluster event"
            return Trigger(
                "hyperpod",
                hp.id,
                hp.source,
                f"HyperPod {details.event_level or 'Info'}: {text}",
                instance_group=details.instance_group_name,
                raw=event,
            )
        envelope = EventBridgeModel.model_validate(event)
    except ValidationError as exc:
        raise _fail(exc, str(detail_type)) from None
    kind: TriggerKind = "schedule" if envelope.detail_type == SCHEDULE_DETAIL_TYPE else "event"
    return Trigger(kind, envelope.id, envelope.source, f"{envelope.detail_type} from {envelope.source}", raw=event)
