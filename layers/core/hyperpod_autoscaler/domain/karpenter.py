"""Karpenter NodePool (karpenter.sh/v1) and HyperPod's HyperpodNodeClass (karpenter.sagemaker.amazonaws.com/v1).

Read unmodified from the cluster. Defaults are Karpenter's CRD defaults (what the API server fills in on a cluster with
Karpenter's CRDs), so an object behaves the same whether or not the defaults were written out.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from .base import NULL_AS_EMPTY_LIST, NULL_AS_EMPTY_OBJECT, Condition, ObjectMeta, WireModel
from .duration import parse_duration
from .k8s import NodeSelectorRequirement, Taint
from .resources import Resources

NODEPOOL_GROUP = "karpenter.sh"
HYPERPOD_NODECLASS_GROUP = "karpenter.sagemaker.amazonaws.com"
HYPERPOD_NODECLASS_KIND = "HyperpodNodeClass"
DISRUPTION_REASONS = ("Empty", "Drifted", "Underutilized")
MAX_REQUIREMENTS = 100
MAX_BUDGETS = 50


class NodeClassRef(WireModel):
    group: str = ""
    kind: str = ""
    name: str

    @property
    def is_hyperpod(self) -> bool:
        return self.group == HYPERPOD_NODECLASS_GROUP and self.kind == HYPERPOD_NODECLASS_KIND


class NodePoolRequirement(NodeSelectorRequirement):
    min_values: int | None = Field(default=None, ge=1, le=50)


class NodeClaimTemplateSpec(WireModel):
    node_class_ref: NodeClassRef
    taints: Annotated[list[Taint], NULL_AS_EMPTY_LIST] = Field(default_factory=list)
    startup_taints: Annotated[list[Taint], NULL_AS_EMPTY_LIST] = Field(default_factory=list)
    requirements: Annotated[list[NodePoolRequirement], NULL_AS_EMPTY_LIST] = Field(
        default_factory=list, max_length=MAX_REQUIREMENTS
    )
    expire_after: str = "720h"
    termination_grace_period: str | None = None

    @field_validator("expire_after", "termination_grace_period", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if value is None:
            return value
        parse_duration(value)
        return str(value)

    @property
    def expire_after_seconds(self) -> float | None:
        return parse_duration(self.expire_after)

    @property
    def termination_grace_period_seconds(self) -> float | None:
        return parse_duration(self.termination_grace_period) if self.termination_grace_period else None


class NodeClaimTemplate(WireModel):
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: NodeClaimTemplateSpec


class Budget(WireModel):
    nodes: str = "10%"
    schedule: str | None = None
    duration: str | None = None
    reasons: list[Literal["Empty", "Drifted", "Underutilized"]] | None = None

    @field_validator("nodes", mode="before")
    @classmethod
    def _nodes(cls, value: Any) -> Any:
        text = str(value).strip()
        body = text[:-1] if text.endswith("%") else text
        if not body.isdigit() or (text.endswith("%") and int(body) > 100):
            raise ValueError(f"{value!r} is not a node count or a percentage like '10%'")
        return text

    @field_validator("duration", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if value is None:
            return value
        if parse_duration(value) is None:
            raise ValueError("duration cannot be Never")
        return str(value)

    @model_validator(mode="after")
    def _schedule_needs_duration(self) -> Budget:
        if (self.schedule is None) != (self.duration is None):
            raise ValueError("schedule and duration must be set together")
        if self.schedule is not None and len(self.schedule.split()) != 5 and not self.schedule.startswith("@"):
            raise ValueError(f"schedule {self.schedule!r} is not a 5-field cron expression")
        return self


class Disruption(WireModel):
    consolidation_policy: Literal["WhenEmpty", "WhenEmptyOrUnderutilized", "Balanced"] = "WhenEmptyOrUnderutilized"
    consolidate_after: str = "0s"
    budgets: list[Budget] = Field(default_factory=lambda: [Budget()], max_length=MAX_BUDGETS)

    @field_validator("consolidate_after", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if value is None:
            return "0s"
        parse_duration(value)
        return str(value)

    @field_validator("budgets", mode="before")
    @classmethod
    def _none(cls, value: Any) -> Any:
        return [Budget()] if value is None else value

    @property
    def consolidate_after_seconds(self) -> float | None:
        return parse_duration(self.consolidate_after)


class NodePoolSpec(WireModel):
    template: NodeClaimTemplate
    disruption: Annotated[Disruption, NULL_AS_EMPTY_OBJECT] = Field(default_factory=Disruption)
    limits: dict[str, Any] = Field(default_factory=dict)
    weight: int | None = Field(default=None, ge=1, le=100)

    @field_validator("limits", mode="before")
    @classmethod
    def _limits(cls, value: Any) -> Any:
        if value is None:
            return {}
        Resources.parse(value)  # validate quantities early, naming the resource
        return value


class NodePoolStatus(WireModel):
    conditions: list[Condition] = Field(default_factory=list)
    resources: dict[str, Any] = Field(default_factory=dict)


class NodePool(WireModel):
    api_version: str = "karpenter.sh/v1"
    kind: str = "NodePool"
    metadata: ObjectMeta
    spec: NodePoolSpec
    status: NodePoolStatus | None = None

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def limits(self) -> Resources:
        """Limits as a resource vector; ``nodes`` is a count of nodes."""
        return Resources.parse(self.spec.limits)

    @property
    def weight(self) -> int:
        return self.spec.weight or 0


class SubnetStatus(WireModel):
    id: str = ""
    zone: str = ""
    zone_id: str | None = None


class InstanceGroupStatus(WireModel):
    name: str
    instance_types: Annotated[list[str], NULL_AS_EMPTY_LIST] = Field(default_factory=list)
    subnets: Annotated[list[SubnetStatus], NULL_AS_EMPTY_LIST] = Field(default_factory=list)

    @property
    def zones(self) -> list[str]:
        return sorted({s.zone for s in self.subnets if s.zone})


class HyperpodNodeClassSpec(WireModel):
    instance_groups: Annotated[list[str], NULL_AS_EMPTY_LIST] = Field(default_factory=list, max_length=10)


class HyperpodNodeClassStatus(WireModel):
    instance_groups: Annotated[list[InstanceGroupStatus], NULL_AS_EMPTY_LIST] = Field(default_factory=list)
    conditions: Annotated[list[Condition], NULL_AS_EMPTY_LIST] = Field(default_factory=list)


class HyperpodNodeClass(WireModel):
    api_version: str = "karpenter.sagemaker.amazonaws.com/v1"
    kind: str = "HyperpodNodeClass"
    metadata: ObjectMeta
    spec: HyperpodNodeClassSpec = Field(default_factory=HyperpodNodeClassSpec)
    status: HyperpodNodeClassStatus | None = None

    @property
    def name(self) -> str:
        return self.metadata.name

    def group_status(self, group: str) -> InstanceGroupStatus | None:
        for item in self.status.instance_groups if self.status else []:
            if item.name == group:
                return item
        return None
