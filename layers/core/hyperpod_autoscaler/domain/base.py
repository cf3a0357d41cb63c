"""Base of the typed Kubernetes-style models: camelCase on the wire, unknown fields ignored, values validated."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel


def _null_as(empty: type[list[Any]] | type[dict[str, Any]]) -> BeforeValidator:
    return BeforeValidator(lambda value: empty() if value is None else value)


#: ``null`` in a manifest reads as the empty list (or object, which a model field reads as its defaults), as the API
#: server reads it: ``Annotated[list[Taint], NULL_AS_EMPTY_LIST]``.
NULL_AS_EMPTY_LIST = _null_as(list)
NULL_AS_EMPTY_OBJECT = _null_as(dict)


class WireModel(BaseModel):
    """Parses objects as ``kubectl get -o yaml`` prints them (camelCase); also accepts snake_case names from Python."""

    model_config = ConfigDict(
        extra="ignore",
        populate_by_name=True,
        alias_generator=to_camel,
        validate_default=False,
        arbitrary_types_allowed=True,
    )

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class OwnerReference(WireModel):
    api_version: str = ""
    kind: str
    name: str
    uid: str = ""
    controller: bool | None = None


class ObjectMeta(WireModel):
    name: str = ""
    generate_name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    owner_references: Annotated[list[OwnerReference], NULL_AS_EMPTY_LIST] = Field(default_factory=list)
    creation_timestamp: datetime | None = None
    deletion_timestamp: datetime | None = None
    finalizers: Annotated[list[str], NULL_AS_EMPTY_LIST] = Field(default_factory=list)

    @field_validator("labels", "annotations", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        if value is None:
            return {}
        if isinstance(value, dict):
            # YAML turns `true`/`1` into non-strings; the API server keeps strings.
            return {str(k): v if isinstance(v, str) else _yaml_scalar(v) for k, v in value.items()}
        return value


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Condition(WireModel):
    type: str
    status: str = "Unknown"
    reason: str | None = None
    message: str | None = None
    last_transition_time: datetime | None = None
    observed_generation: int | None = None
