"""Kubernetes objects the autoscaler reads: Pod, Node, DaemonSet, PodDisruptionBudget, and the selector/taint rules on them.

Only the fields the autoscaler uses are modelled; everything else is ignored. Semantics follow Kubernetes exactly where they
decide whether a pod may run on a node (taints and tolerations, label selectors, effective requests).
"""

from __future__ import annotations

import math
from datetime import datetime
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from .base import NULL_AS_EMPTY_LIST, NULL_AS_EMPTY_OBJECT, Condition, ObjectMeta, WireModel
from .quantity import QuantityError
from .resources import PODS, Resources

DO_NOT_DISRUPT = "karpenter.sh/do-not-disrupt"
NODEPOOL_LABEL = "karpenter.sh/nodepool"
DISRUPTED_TAINT_KEY = "karpenter.sh/disrupted"
HOSTNAME_LABEL = "kubernetes.io/hostname"
ZONE_LABEL = "topology.kubernetes.io/zone"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
ARCH_LABEL = "kubernetes.io/arch"
OS_LABEL = "kubernetes.io/os"
HP_COMPUTE_TYPE = "sagemaker.amazonaws.com/compute-type"
HP_GROUP_LABEL = "sagemaker.amazonaws.com/instance-group-name"
HP_CLUSTER_LABEL = "sagemaker.amazonaws.com/cluster-name"
HP_HEALTH_LABEL = "sagemaker.amazonaws.com/node-health-status"
HP_DEEP_HEALTH_LABEL = "sagemaker.amazonaws.com/deep-health-check-status"

TaintEffect = Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]
SelectorOperator = Literal["In", "NotIn", "Exists", "DoesNotExist"]
NodeSelectorOperator = Literal["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt", "Gte", "Lte"]


# --- taints and tolerations -------------------------------------------------------------------------------------------


class Taint(WireModel):
    key: str
    value: str | None = None
    effect: TaintEffect

    def __hash__(self) -> int:
        return hash((self.key, self.value or "", self.effect))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Taint) and (self.key, self.value or "", self.effect) == (
            other.key,
            other.value or "",
            other.effect,
        )


class Toleration(WireModel):
    key: str | None = None
    operator: Literal["Exists", "Equal"] | None = None
    value: str | None = None
    effect: TaintEffect | Literal[""] | None = None
    toleration_seconds: int | None = None

    def tolerates(self, taint: Taint) -> bool:
        """Kubernetes' ToleratesTaint: effect must match unless empty; an empty key with Exists matches every taint."""
        if self.effect and self.effect != taint.effect:
            return False
        operator = self.operator or "Equal"
        if not self.key:
            return operator == "Exists"
        if self.key != taint.key:
            return False
        if operator == "Exists":
            return True
        return (self.value or "") == (taint.value or "")


def tolerates_all(tolerations: list[Toleration], taints: list[Taint], effects: tuple[str, ...]) -> Taint | None:
    """The first taint with one of ``effects`` that no toleration tolerates, or None when all are tolerated."""
    for taint in taints:
        if taint.effect in effects and not any(t.tolerates(taint) for t in tolerations):
            return taint
    return None


# --- selectors ------------------------------------------------------------------------------------------------------


#: A requirement's values: null reads as none, and YAML's numbers and booleans as the strings the API server keeps.
STRING_VALUES = BeforeValidator(lambda value: [] if value is None else [str(v) for v in value])


def check_operator_values(operator: str, values: list[str]) -> None:
    """``In`` and ``NotIn`` need values, ``Exists`` and ``DoesNotExist`` take none (as the API server validates a label
    or node selector requirement)."""
    if operator in ("In", "NotIn") and not values:
        raise ValueError(f"operator {operator} needs at least one value")
    if operator in ("Exists", "DoesNotExist") and values:
        raise ValueError(f"operator {operator} takes no values")


class LabelSelectorRequirement(WireModel):
    key: str
    operator: SelectorOperator
    values: Annotated[list[str], STRING_VALUES] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> LabelSelectorRequirement:
        check_operator_values(self.operator, self.values)
        return self

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        if self.operator == "In":
            return present and labels[self.key] in self.values
        if self.operator == "NotIn":
            return not present or labels[self.key] not in self.values
        if self.operator == "Exists":
            return present
        return not present


class LabelSelector(WireModel):
    match_labels: dict[str, str] = Field(default_factory=dict)
    match_expressions: Annotated[list[LabelSelectorRequirement], NULL_AS_EMPTY_LIST] = Field(default_factory=list)

    @field_validator("match_labels", mode="before")
    @classmethod
    def _labels(cls, value: Any) -> Any:
        return {} if value is None else {str(k): str(v) for k, v in value.items()}

    def matches(self, labels: dict[str, str]) -> bool:
        """An empty selector matches everything (as in PDBs and spread constraints)."""
        for key, value in self.match_labels.items():
            if labels.get(key) != value:
                return False
        return all(expr.matches(labels) for expr in self.match_expressions)

    def is_empty(self) -> bool:
        return not self.match_labels and not self.match_expressions


class NodeSelectorRequirement(WireModel):
    key: str
    operator: NodeSelectorOperator
    values: Annotated[list[str], STRING_VALUES] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> NodeSelectorRequirement:
        check_operator_values(self.operator, self.values)
        if self.operator in ("Gt", "Lt", "Gte", "Lte"):
            if len(self.values) != 1:
                raise ValueError(f"operator {self.operator} takes exactly one integer value")
            try:
                int(self.values[0])
            except ValueError:
                raise ValueError(f"operator {self.operator} needs an integer, got {self.values[0]!r}") from None
        return self

    def matches(self, labels: dict[str, str]) -> bool:
        """Concrete match against a node's labels (Kubernetes rules; Gt/Lt parse the label as an integer)."""
        present = self.key in labels
        op = self.operator
        if op == "In":
            return present and labels[self.key] in self.values
        if op == "NotIn":
            return not present or labels[self.key] not in self.values
        if op == "Exists":
            return present
        if op == "DoesNotExist":
            return not present
        if not present:
            return False
        try:
            actual = int(labels[self.key])
        except ValueError:
            return False
        bound = int(self.values[0])
        return {"Gt": actual > bound, "Lt": actual < bound, "Gte": actual >= bound, "Lte": actual <= bound}[op]


class NodeSelectorTerm(WireModel):
    match_expressions: Annotated[list[NodeSelectorRequirement], NULL_AS_EMPTY_LIST] = Field(default_factory=list)
    match_fields: Annotated[list[NodeSelectorRequirement], NULL_AS_EMPTY_LIST] = Field(default_factory=list)

    def matches(self, labels: dict[str, str], node_name: str = "") -> bool:
        if not self.match_expressions and not self.match_fields:
            return False  # Kubernetes: an empty term matches nothing
        fields = {"metadata.name": node_name} if node_name else {}
        return all(r.matches(labels) for r in self.match_expressions) and all(
            r.matches(fields) for r in self.match_fields
        )


class NodeSelector(WireModel):
    node_selector_terms: list[NodeSelectorTerm] = Field(default_factory=list)


class PreferredSchedulingTerm(WireModel):
    weight: int = Field(ge=1, le=100)
    preference: NodeSelectorTerm


class NodeAffinity(WireModel):
    required_during_scheduling_ignored_during_execution: NodeSelector | None = None
    preferred_during_scheduling_ignored_during_execution: Annotated[
        list[PreferredSchedulingTerm], NULL_AS_EMPTY_LIST
    ] = Field(default_factory=list)


class PodAffinityTerm(WireModel):
    label_selector: LabelSelector | None = None
    namespaces: Annotated[list[str], NULL_AS_EMPTY_LIST] = Field(default_factory=list)
    namespace_selector: LabelSelector | None = None
    topology_key: str

    def selects(self, pod: Pod, owner_namespace: str) -> bool:
        """Whether ``pod`` is one of the pods this term refers to (namespace rules simplified: listed or own namespace)."""
        if self.label_selector is None:
            return False
        namespaces = self.namespaces or ([] if self.namespace_selector is not None else [owner_namespace])
        if namespaces and pod.namespace not in namespaces:
            return False
        return self.label_selector.matches(pod.metadata.labels)


class WeightedPodAffinityTerm(WireModel):
    weight: int = Field(ge=1, le=100)
    pod_affinity_term: PodAffinityTerm


class PodAffinity(WireModel):
    required_during_scheduling_ignored_during_execution: Annotated[list[PodAffinityTerm], NULL_AS_EMPTY_LIST] = Field(
        default_factory=list
    )
    preferred_during_scheduling_ignored_during_execution: Annotated[
        list[WeightedPodAffinityTerm], NULL_AS_EMPTY_LIST
    ] = Field(default_factory=list)


class Affinity(WireModel):
    node_affinity: NodeAffinity | None = None
    pod_affinity: PodAffinity | None = None
    pod_anti_affinity: PodAffinity | None = None


class TopologySpreadConstraint(WireModel):
    max_skew: int = Field(ge=1)
    topology_key: str
    when_unsatisfiable: Literal["DoNotSchedule", "ScheduleAnyway"]
    label_selector: LabelSelector | None = None
    min_domains: int | None = Field(default=None, ge=1)
    node_affinity_policy: Literal["Honor", "Ignore"] | None = None
    node_taints_policy: Literal["Honor", "Ignore"] | None = None
    match_label_keys: Annotated[list[str], NULL_AS_EMPTY_LIST] = Field(default_factory=list)


# --- pods ----------------------------------------------------------------------------------------------------------


class ResourceRequirements(WireModel):
    requests: dict[str, Any] = Field(default_factory=dict)
    limits: dict[str, Any] = Field(default_factory=dict)

    @field_validator("requests", "limits", mode="before")
    @classmethod
    def _quantities(cls, value: Any) -> Any:
        if value is None:
            return {}
        Resources.parse(value)  # reject bad quantities at parse time, naming the resource
        return value

    def effective_requests(self) -> Resources:
        """Requests, with limits standing in for requests that are not set (the API server's defaulting)."""
        merged = dict(self.limits)
        merged.update(self.requests)
        return Resources.parse(merged)


class ContainerPort(WireModel):
    container_port: int = 0
    host_port: int | None = None
    protocol: str = "TCP"
    host_ip: str = Field(default="", alias="hostIP")

    @field_validator("protocol", "host_ip", mode="before")
    @classmethod
    def _none(cls, value: Any) -> Any:
        return "" if value is None else value


class Container(WireModel):
    name: str = ""
    image: str | None = None
    resources: Annotated[ResourceRequirements, NULL_AS_EMPTY_OBJECT] = Field(default_factory=ResourceRequirements)
    restart_policy: str | None = None  # "Always" on an init container makes it a sidecar
    ports: Annotated[list[ContainerPort], NULL_AS_EMPTY_LIST] = Field(default_factory=list)


class PodSpec(WireModel):
    node_name: str | None = None
    node_selector: dict[str, str] = Field(default_factory=dict)
    affinity: Affinity | None = None
    tolerations: Annotated[list[Toleration], NULL_AS_EMPTY_LIST] = Field(default_factory=list)
    topology_spread_constraints: Annotated[list[TopologySpreadConstraint], NULL_AS_EMPTY_LIST] = Field(
        default_factory=list
    )
    containers: Annotated[list[Container], NULL_AS_EMPTY_LIST] = Field(default_factory=list)
    init_containers: Annotated[list[Container], NULL_AS_EMPTY_LIST] = Field(default_factory=list)
    overhead: dict[str, Any] = Field(default_factory=dict)
    priority: int | None = None
    priority_class_name: str | None = None
    preemption_policy: str | None = None
    scheduler_name: str | None = None
    termination_grace_period_seconds: int | None = None
    restart_policy: str | None = None

    @field_validator("node_selector", mode="before")
    @classmethod
    def _selector(cls, value: Any) -> Any:
        return {} if value is None else {str(k): str(v) for k, v in value.items()}

    @field_validator("overhead", mode="before")
    @classmethod
    def _none_map(cls, value: Any) -> Any:
        if value is None:
            return {}
        Resources.parse(value)
        return value

    def effective_requests(self) -> Resources:
        """Kubernetes' rule: max(largest init container (plus the sidecars started before it), sum of containers plus all
        sidecars) + spec.overhead. One pod slot (``pods: 1``) is always added."""
        sidecars = Resources()
        init_peak = Resources()
        for c in self.init_containers:
            req = c.resources.effective_requests()
            if c.restart_policy == "Always":
                sidecars = sidecars + req
                init_peak = init_peak.max(sidecars)
            else:
                init_peak = init_peak.max(req + sidecars)
        regular = Resources.sum(c.resources.effective_requests() for c in self.containers) + sidecars
        total = regular.max(init_peak) + Resources.parse(self.overhead)
        return total + {PODS: 1}


class PodCondition(Condition):
    pass


class PodStatus(WireModel):
    phase: str | None = None
    start_time: datetime | None = None
    conditions: Annotated[list[PodCondition], NULL_AS_EMPTY_LIST] = Field(default_factory=list)
    nominated_node_name: str | None = None


class Pod(WireModel):
    api_version: str = "v1"
    kind: str = "Pod"
    metadata: ObjectMeta
    spec: PodSpec = Field(default_factory=PodSpec)
    status: PodStatus = Field(default_factory=PodStatus)

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        return self.metadata.namespace or "default"

    @property
    def key(self) -> str:
        """``namespace/name``, the id used in plans and events."""
        return f"{self.namespace}/{self.metadata.name}"

    @cached_property
    def requests(self) -> Resources:
        return self.spec.effective_requests()

    @property
    def owner_kind(self) -> str | None:
        for ref in self.metadata.owner_references:
            if ref.controller:
                return ref.kind
        return self.metadata.owner_references[0].kind if self.metadata.owner_references else None

    @property
    def has_controller(self) -> bool:
        return any(ref.controller for ref in self.metadata.owner_references) or bool(self.metadata.owner_references)

    @property
    def is_daemonset_pod(self) -> bool:
        return self.owner_kind == "DaemonSet"

    @property
    def is_terminal(self) -> bool:
        return self.status.phase in ("Succeeded", "Failed")

    @property
    def is_pending(self) -> bool:
        """Pending for planning: not bound, not terminal, not a DaemonSet's (the ``plan -f`` contract)."""
        return not self.spec.node_name and not self.is_terminal and not self.is_daemonset_pod

    @property
    def is_provisionable(self) -> bool:
        """Karpenter's definition: PodScheduled=False with reason Unschedulable, not owned by a DaemonSet or a Node, not
        preempting (no nominated node), not bound, not terminal."""
        if self.spec.node_name or self.is_terminal or self.owner_kind in ("DaemonSet", "Node"):
            return False
        if self.status.nominated_node_name:
            return False
        if self.metadata.deletion_timestamp is not None:
            return False
        return any(
            c.type == "PodScheduled" and c.status == "False" and c.reason == "Unschedulable"
            for c in self.status.conditions
        )

    @property
    def do_not_disrupt(self) -> str | None:
        """The raw value of the karpenter.sh/do-not-disrupt annotation, if any."""
        return self.metadata.annotations.get(DO_NOT_DISRUPT)

    @property
    def is_ready(self) -> bool:
        if self.status.phase != "Running":
            return False
        ready = [c for c in self.status.conditions if c.type == "Ready"]
        return not ready or ready[0].status == "True"

    def required_node_terms(self) -> list[NodeSelectorTerm]:
        aff = self.spec.affinity
        if aff and aff.node_affinity and aff.node_affinity.required_during_scheduling_ignored_during_execution:
            return aff.node_affinity.required_during_scheduling_ignored_during_execution.node_selector_terms
        return []

    def preferred_node_terms(self) -> list[PreferredSchedulingTerm]:
        aff = self.spec.affinity
        if aff and aff.node_affinity:
            return aff.node_affinity.preferred_during_scheduling_ignored_during_execution
        return []


# --- nodes ---------------------------------------------------------------------------------------------------------


class NodeSpec(WireModel):
    unschedulable: bool = False
    taints: Annotated[list[Taint], NULL_AS_EMPTY_LIST] = Field(default_factory=list)
    provider_id: str | None = Field(default=None, alias="providerID")

    @field_validator("unschedulable", mode="before")
    @classmethod
    def _none_false(cls, value: Any) -> Any:
        return False if value is None else value


class NodeStatus(WireModel):
    capacity: dict[str, Any] = Field(default_factory=dict)
    allocatable: dict[str, Any] = Field(default_factory=dict)
    conditions: Annotated[list[Condition], NULL_AS_EMPTY_LIST] = Field(default_factory=list)

    @field_validator("capacity", "allocatable", mode="before")
    @classmethod
    def _none(cls, value: Any) -> Any:
        if value is None:
            return {}
        Resources.parse(value)
        return value


HYPERPOD_UNSCHEDULABLE_HEALTH = ("Unschedulable", "UnschedulablePendingReplacement", "UnschedulablePendingReboot")


class Node(WireModel):
    api_version: str = "v1"
    kind: str = "Node"
    metadata: ObjectMeta
    spec: NodeSpec = Field(default_factory=NodeSpec)
    status: NodeStatus = Field(default_factory=NodeStatus)

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def labels(self) -> dict[str, str]:
        return self.metadata.labels

    @cached_property
    def allocatable(self) -> Resources:
        return Resources.parse(self.status.allocatable or self.status.capacity)

    @property
    def is_ready(self) -> bool:
        return any(c.type == "Ready" and c.status == "True" for c in self.status.conditions)

    @property
    def instance_group(self) -> str | None:
        return self.labels.get(HP_GROUP_LABEL)

    @property
    def instance_type(self) -> str | None:
        return self.labels.get(INSTANCE_TYPE_LABEL)

    @property
    def zone(self) -> str | None:
        return self.labels.get(ZONE_LABEL)

    @property
    def hyperpod_instance_id(self) -> str | None:
        """HyperPod node ``hyperpod-i-0abc`` -> ``i-0abc`` (the NodeId that BatchDeleteClusterNodes takes)."""
        if self.name.startswith("hyperpod-"):
            return self.name[len("hyperpod-") :]
        return None

    @property
    def hyperpod_unhealthy(self) -> str | None:
        """Why HyperPod says this node must not take pods (health label or health taint), or None."""
        health = self.labels.get(HP_HEALTH_LABEL)
        if health in HYPERPOD_UNSCHEDULABLE_HEALTH:
            return f"{HP_HEALTH_LABEL}={health}"
        if self.labels.get(HP_DEEP_HEALTH_LABEL) == "InProgress":
            return f"{HP_DEEP_HEALTH_LABEL}=InProgress"
        for taint in self.spec.taints:
            if taint.key == HP_HEALTH_LABEL and taint.effect in ("NoSchedule", "NoExecute"):
                return f"taint {HP_HEALTH_LABEL}={taint.value}:{taint.effect}"
        return None

    @property
    def is_deleting(self) -> bool:
        return self.metadata.deletion_timestamp is not None or any(
            t.key == DISRUPTED_TAINT_KEY for t in self.spec.taints
        )

    def unusable_reason(self) -> str | None:
        """Why this node is not capacity for new pods (cordoned, HyperPod health, deleting), or None."""
        if self.spec.unschedulable:
            return "cordoned (spec.unschedulable)"
        unhealthy = self.hyperpod_unhealthy
        if unhealthy:
            return f"HyperPod marks it unschedulable ({unhealthy})"
        if self.metadata.deletion_timestamp is not None:
            return "being deleted"
        return None


# --- daemonsets and PDBs --------------------------------------------------------------------------------------------


class PodTemplate(WireModel):
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: PodSpec = Field(default_factory=PodSpec)


class DaemonSetSpec(WireModel):
    selector: LabelSelector | None = None
    template: PodTemplate = Field(default_factory=PodTemplate)


class DaemonSet(WireModel):
    api_version: str = "apps/v1"
    kind: str = "DaemonSet"
    metadata: ObjectMeta
    spec: DaemonSetSpec = Field(default_factory=DaemonSetSpec)

    @property
    def key(self) -> str:
        return f"{self.metadata.namespace or 'default'}/{self.metadata.name}"

    @cached_property
    def requests(self) -> Resources:
        return self.spec.template.spec.effective_requests()


IntOrPercent = int | str


def _check_int_or_percent(value: Any) -> Any:
    if value is None or isinstance(value, int):
        if isinstance(value, int) and value < 0:
            raise ValueError("must not be negative")
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("%") and text[:-1].isdigit():
            return text
        if text.isdigit():
            return int(text)
    raise ValueError(f"{value!r} is neither an integer nor a percentage like '50%'")


def resolve_int_or_percent(value: IntOrPercent, total: int, round_up: bool) -> int:
    """Kubernetes' GetScaledValueFromIntOrPercent."""
    if isinstance(value, int):
        return value
    percent = int(value[:-1])
    scaled = percent * total / 100
    return math.ceil(scaled) if round_up else math.floor(scaled)


class PodDisruptionBudgetSpec(WireModel):
    min_available: IntOrPercent | None = None
    max_unavailable: IntOrPercent | None = None
    selector: LabelSelector | None = None

    @field_validator("min_available", "max_unavailable", mode="before")
    @classmethod
    def _int_or_percent(cls, value: Any) -> Any:
        return _check_int_or_percent(value)


class PodDisruptionBudgetStatus(WireModel):
    current_healthy: int = 0
    desired_healthy: int = 0
    disruptions_allowed: int = 0
    expected_pods: int = 0


class PodDisruptionBudget(WireModel):
    api_version: str = "policy/v1"
    kind: str = "PodDisruptionBudget"
    metadata: ObjectMeta
    spec: PodDisruptionBudgetSpec = Field(default_factory=PodDisruptionBudgetSpec)
    status: PodDisruptionBudgetStatus | None = None

    @property
    def key(self) -> str:
        return f"{self.metadata.namespace or 'default'}/{self.metadata.name}"

    def selects(self, pod: Pod) -> bool:
        """policy/v1: an empty selector selects every pod in the namespace; a missing selector selects none."""
        if pod.namespace != (self.metadata.namespace or "default"):
            return False
        if self.spec.selector is None:
            return False
        return self.spec.selector.matches(pod.metadata.labels)

    def allowed_disruptions(self, pods: list[Pod]) -> int:
        """How many of the selected pods may be evicted now, computed from the pods (as the disruption controller does)."""
        selected = [p for p in pods if self.selects(p) and not p.is_terminal]
        expected = len(selected)
        healthy = sum(1 for p in selected if p.is_ready)
        if self.spec.max_unavailable is not None:
            max_unavailable = resolve_int_or_percent(self.spec.max_unavailable, expected, round_up=True)
            desired = max(0, expected - max_unavailable)
        elif self.spec.min_available is not None:
            desired = resolve_int_or_percent(self.spec.min_available, expected, round_up=True)
        else:
            desired = 0  # neither field: the disruption controller's desiredHealthy stays 0, so nothing is protected
        return max(0, healthy - desired)


__all__ = [
    "DO_NOT_DISRUPT",
    "Affinity",
    "Container",
    "DaemonSet",
    "LabelSelector",
    "Node",
    "NodeSelectorRequirement",
    "NodeSelectorTerm",
    "Pod",
    "PodDisruptionBudget",
    "QuantityError",
    "Taint",
    "Toleration",
    "TopologySpreadConstraint",
]
