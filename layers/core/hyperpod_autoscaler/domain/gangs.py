"""Gangs: pods that get capacity all together or not at all.

Two sources, both read as their upstream projects define them:

- a **ProvisioningRequest** (``autoscaling.x-k8s.io/v1``, kubernetes/autoscaler
  ``cluster-autoscaler/apis/provisioningrequest/autoscaling.x-k8s.io/v1/types.go``): ``count`` pods of each pod set's
  ``PodTemplate`` (same namespace). The pods are made as Cluster Autoscaler makes them
  (``cluster-autoscaler/provisioningrequest/pods/pods.go``): named ``<request>-<pod set index>-<pod index>``, annotated
  with the request's name and class;
- a **Kueue pod group** (kubernetes-sigs/kueue ``site/content/en/docs/tasks/run/plain_pods.md``): pods labelled
  ``kueue.x-k8s.io/pod-group-name`` with the annotation ``kueue.x-k8s.io/pod-group-total-count``. Kueue builds the
  group's Workload only once the group has as many runnable pods as the total count ("group has fewer runnable pods
  than expected", ``docs/tasks/troubleshooting/troubleshooting_pods.md``), so a group with fewer pods is not planned at
  all: it is blocked, and nothing is launched for a part of it.

Pods that consume a request (annotation ``autoscaling.x-k8s.io/consume-provisioning-request``, or the older
``cluster-autoscaler.kubernetes.io/`` one) never trigger capacity of their own: Cluster Autoscaler's
``ProvisioningRequestPodsFilter`` drops them from scale-up, their capacity is the request's.

A malformed request, a missing PodTemplate or a bad total-count annotation blocks that gang only, with an error naming
the object and the field; every other gang and pod is planned.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .base import ObjectMeta, WireModel
from .errors import InvalidObject
from .k8s import Pod
from .parsing import parse_as

CHECK_CAPACITY = "check-capacity.autoscaling.x-k8s.io"
BEST_EFFORT_ATOMIC = "best-effort-atomic-scale-up.autoscaling.x-k8s.io"
CLASSES = (CHECK_CAPACITY, BEST_EFFORT_ATOMIC)
CONSUME_ANNOTATIONS = (
    "autoscaling.x-k8s.io/consume-provisioning-request",
    "cluster-autoscaler.kubernetes.io/consume-provisioning-request",
)
CLASS_ANNOTATION = "autoscaling.x-k8s.io/provisioning-class-name"
POD_GROUP_LABEL = "kueue.x-k8s.io/pod-group-name"
POD_GROUP_TOTAL = "kueue.x-k8s.io/pod-group-total-count"
MULTIPLE_GROUPS_PARAMETER = "allowMultipleInstanceGroups"
"""Our own request parameter: ``"true"`` lets an atomic request's new nodes come from several instance groups (and so
zones). Without it they come from one group, as a distributed training job wants its nodes close together."""
MAX_POD_SETS = 32
MAX_PARAMETER_CHARS = 255
MAX_REQUEST_PODS = 100_000
"""At most this many pods made from all the requests of one decision together (a request's ``count`` is an int32): a
request past it is blocked instead of costing memory and time, like the other input limits."""
#: Request conditions after which the request wants no capacity any more (types.go's meanings).
FINISHED_CONDITIONS = ("Failed", "BookingExpired", "CapacityRevoked")

PROVISIONING_REQUEST = "ProvisioningRequest"
POD_GROUP = "PodGroup"


class Namespaced(WireModel):
    """An object read by its metadata; the rest is checked where it is used."""

    metadata: ObjectMeta

    @property
    def namespace(self) -> str:
        return self.metadata.namespace or "default"

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.metadata.name}"


class ProvisioningRequest(Namespaced):
    """A request as read; its spec is checked when its gang is built, so a bad one blocks only itself."""

    api_version: str = ""
    spec: Any = None
    status: Any = None


class PodTemplate(Namespaced):
    """A ``v1/PodTemplate``; its ``template`` is parsed as a pod when a request uses it."""

    template: Any = None


@dataclass
class Gang:
    """Pods planned all or nothing. ``error`` set: the gang is blocked before any planning (bad or incomplete input)."""

    source: str
    """``ProvisioningRequest`` or ``PodGroup``."""
    namespace: str
    name: str
    provisioning_class: str
    pods: list[Pod] = field(default_factory=list)
    multiple_groups: bool = False
    error: str | None = None
    retryable: bool = False
    """The error is not the request's own (its pods would pass the decision's pod budget another time): it is blocked
    for now, not failed."""
    created: str = ""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def check_only(self) -> bool:
        """check-capacity: answered from existing and in-flight capacity, never a new node."""
        return self.provisioning_class == CHECK_CAPACITY

    @property
    def order(self) -> tuple[str, str, str, str]:
        """Oldest first (then by source and name): an earlier gang keeps the capacity it was given."""
        return (self.created, self.source, self.namespace, self.name)


@dataclass
class Reservation:
    """Capacity a Provisioned request books (Cluster Autoscaler's ``bookCapacity``, ``processors/provreq/processor.go``):
    stand-ins for its pods not yet scheduled, held on existing nodes so that no other pod is planned into that room."""

    key: str
    """``namespace/name`` of the request."""
    pods: list[Pod]
    nodes: tuple[str, ...] = ()
    """The nodes the request's status lists as holding its capacity (``bookedNodes``): tried first."""


@dataclass
class GangSplit:
    """The pods of a decision sorted out: gangs, pods planned one by one, pods that are a request's (never planned)."""

    gangs: list[Gang] = field(default_factory=list)
    individual: list[Pod] = field(default_factory=list)
    consumed: dict[str, str] = field(default_factory=dict)
    """Pod key -> why it is not planned on its own."""
    reservations: list[Reservation] = field(default_factory=list)
    """Capacity Provisioned requests hold: planned as used before anything else."""


def consumed_request(pod: Pod) -> str | None:
    """The name of the ProvisioningRequest a pod consumes, if any."""
    for key in CONSUME_ANNOTATIONS:
        value = pod.metadata.annotations.get(key)
        if value:
            return value
    return None


def _stamp(value: datetime | None) -> str:
    return value.isoformat() if value is not None else ""


# --- ProvisioningRequests ---------------------------------------------------------------------------------------------


def _pod_sets(pr: ProvisioningRequest) -> list[tuple[str, int]]:
    """``(template name, count)`` of each pod set, as types.go constrains them (1 to 32 sets, count >= 1)."""
    spec = pr.spec
    if not isinstance(spec, Mapping):
        raise InvalidObject(PROVISIONING_REQUEST, pr.key, "spec", "required field is missing")
    sets = spec.get("podSets")
    if not isinstance(sets, list) or not sets:
        raise InvalidObject(PROVISIONING_REQUEST, pr.key, "spec.podSets", "must list 1 to 32 pod sets")
    if len(sets) > MAX_POD_SETS:
        raise InvalidObject(PROVISIONING_REQUEST, pr.key, "spec.podSets", f"has {len(sets)} pod sets, at most 32")
    out = []
    for i, pod_set in enumerate(sets):
        where = f"spec.podSets[{i}]"
        ref = pod_set.get("podTemplateRef") if isinstance(pod_set, Mapping) else None
        name = ref.get("name") if isinstance(ref, Mapping) else None
        if not isinstance(name, str) or not name:
            raise InvalidObject(
                PROVISIONING_REQUEST, pr.key, f"{where}.podTemplateRef.name", "required field is missing"
            )
        count = pod_set.get("count")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise InvalidObject(
                PROVISIONING_REQUEST, pr.key, f"{where}.count", f"must be an integer >= 1, got {count!r}"
            )
        out.append((name, count))
    return out


def _parameters(pr: ProvisioningRequest) -> dict[str, str]:
    raw = pr.spec.get("parameters") if isinstance(pr.spec, Mapping) else None
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise InvalidObject(PROVISIONING_REQUEST, pr.key, "spec.parameters", "must be a map of strings")
    for k, v in raw.items():
        if not isinstance(v, str) or len(v) > MAX_PARAMETER_CHARS:
            raise InvalidObject(
                PROVISIONING_REQUEST, pr.key, f"spec.parameters.{k}", "must be a string of at most 255 characters"
            )
    return {str(k): v for k, v in raw.items()}


def _class_name(pr: ProvisioningRequest) -> str:
    name = pr.spec.get("provisioningClassName") if isinstance(pr.spec, Mapping) else None
    if not isinstance(name, str) or not name:
        raise InvalidObject(PROVISIONING_REQUEST, pr.key, "spec.provisioningClassName", "required field is missing")
    if name not in CLASSES:
        raise InvalidObject(
            PROVISIONING_REQUEST,
            pr.key,
            "spec.provisioningClassName",
            f"{name} is not served here (served: {', '.join(CLASSES)})",
        )
    return name


def finished(pr: ProvisioningRequest) -> bool:
    """Whether the request wants no capacity any more (Failed, BookingExpired or CapacityRevoked is True)."""
    status = pr.status if isinstance(pr.status, Mapping) else {}
    raw = status.get("conditions")
    conditions: list[Any] = raw if isinstance(raw, list) else []
    return any(
        isinstance(c, Mapping) and c.get("type") in FINISHED_CONDITIONS and c.get("status") == "True"
        for c in conditions
    )


def pod_count(pr: ProvisioningRequest) -> int:
    """How many pods the request stands for (0 when its pod sets are invalid: such a request books nothing)."""
    try:
        return sum(count for _, count in _pod_sets(pr))
    except InvalidObject:
        return 0


def provisioned(pr: ProvisioningRequest) -> bool:
    """Whether the request is Provisioned: its capacity is there and booked, it is not planned again (Cluster
    Autoscaler's ``ShouldCapacityBeBooked``, ``provisioningrequest/conditions/conditions.go``)."""
    status = pr.status if isinstance(pr.status, Mapping) else {}
    raw = status.get("conditions")
    conditions: list[Any] = raw if isinstance(raw, list) else []
    return any(
        isinstance(c, Mapping) and c.get("type") == "Provisioned" and c.get("status") == "True" for c in conditions
    )


BOOKED_NODES = "bookedNodes"
"""Ours, in ``status.provisioningClassDetails`` (types.go: "values custom provisioning classes may want to pass to end
users"): the comma-separated nodes that hold a Provisioned request's capacity, written with ``Provisioned=True``."""


def listed_nodes(pr: ProvisioningRequest) -> tuple[str, ...]:
    """The nodes a request's status says hold its capacity (``provisioningClassDetails.bookedNodes``)."""
    status = pr.status if isinstance(pr.status, Mapping) else {}
    details = status.get("provisioningClassDetails")
    listed = details.get(BOOKED_NODES) if isinstance(details, Mapping) else None
    return tuple(n.strip() for n in str(listed or "").split(",") if n.strip())


def books_capacity(pr: ProvisioningRequest) -> bool:
    """Whether the request's capacity is booked: Provisioned, of a class served here, and not Failed, BookingExpired
    or CapacityRevoked (``ShouldCapacityBeBooked``, ``provisioningrequest/conditions/conditions.go``)."""
    cls = pr.spec.get("provisioningClassName") if isinstance(pr.spec, Mapping) else None
    return cls in CLASSES and provisioned(pr) and not finished(pr)


def scheduled_per_request(pods: list[Pod]) -> dict[str, int]:
    """``namespace/request`` -> how many of the pods consuming that ProvisioningRequest are scheduled (bound to a node,
    not terminal)."""
    scheduled: dict[str, int] = {}
    for pod in pods:
        name = consumed_request(pod)
        if name and pod.spec.node_name and not pod.is_terminal:
            scheduled[f"{pod.namespace}/{name}"] = scheduled.get(f"{pod.namespace}/{name}", 0) + 1
    return scheduled


def reservations(
    pods: list[Pod], requests: list[ProvisioningRequest], templates: list[PodTemplate], budget: int = MAX_REQUEST_PODS
) -> list[Reservation]:
    """The capacity each booked request holds: as many of its pods as are not yet scheduled.

    Cluster Autoscaler injects every pod of a booked request into its simulation until all of them are scheduled
    (then the booking is consumed); we inject only the ones not yet scheduled, so a request half consumed does not hold
    its room twice. A request whose pods cannot be made (its template was deleted since) books nothing."""
    scheduled = scheduled_per_request(pods)
    by_template = {t.key: t for t in templates}
    out = []
    for pr in sorted(requests, key=lambda r: r.key):
        if not books_capacity(pr):
            continue
        left = pod_count(pr) - scheduled.get(pr.key, 0)
        if left <= 0 or left > budget:
            continue
        try:
            made = request_pods(pr, _pod_sets(pr), by_template)
        except InvalidObject:
            continue
        budget -= left
        out.append(Reservation(pr.key, made[:left], listed_nodes(pr)))
    return out


def template_pod(template: PodTemplate, name: str) -> Pod:
    """A pod of a PodTemplate, named ``name``; errors name the PodTemplate and the field under ``template``."""
    body = template.template if isinstance(template.template, Mapping) else None
    if body is None or not isinstance(body.get("spec"), Mapping):
        raise InvalidObject("PodTemplate", template.key, "template.spec", "required field is missing")
    raw_meta = body.get("metadata")
    meta = dict(raw_meta) if isinstance(raw_meta, Mapping) else {}
    meta.update(name=name, namespace=template.namespace)
    doc = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": body["spec"]}
    try:
        return parse_as(Pod, doc)
    except InvalidObject as exc:
        where = f"template.{exc.field}" if exc.field else "template"
        raise InvalidObject("PodTemplate", template.key, where, exc.message) from None


def request_pods(
    pr: ProvisioningRequest, pod_sets: list[tuple[str, int]], templates: dict[str, PodTemplate]
) -> list[Pod]:
    """The pods a request stands for, made as Cluster Autoscaler's ``PodsForProvisioningRequest`` makes them."""
    pods: list[Pod] = []
    for i, (template_name, count) in enumerate(pod_sets):
        template = templates.get(f"{pr.namespace}/{template_name}")
        if template is None:
            raise InvalidObject(
                PROVISIONING_REQUEST,
                pr.key,
                f"spec.podSets[{i}].podTemplateRef.name",
                f"PodTemplate {pr.namespace}/{template_name} does not exist",
            )
        first = template_pod(template, f"{pr.metadata.name}-{i}-0")
        for j in range(count):
            name = f"{pr.metadata.name}-{i}-{j}"
            meta = first.metadata.model_copy(
                update={
                    "name": name,
                    "uid": f"{pr.namespace}/{name}",
                    "annotations": {
                        **first.metadata.annotations,
                        CONSUME_ANNOTATIONS[0]: pr.metadata.name,
                        CLASS_ANNOTATION: str(pr.spec.get("provisioningClassName")),
                    },
                }
            )
            pods.append(first.model_copy(update={"metadata": meta}))
    return pods


def _within(pr: ProvisioningRequest, pod_sets: list[tuple[str, int]], budget: int) -> list[tuple[str, int]]:
    total = sum(count for _, count in pod_sets)
    if total > budget:
        why = f"asks for {total} pods; the requests of one decision may ask for {MAX_REQUEST_PODS} together"
        raise InvalidObject(PROVISIONING_REQUEST, pr.key, "spec.podSets", f"{why}, {budget} are left")
    return pod_sets


def request_gang(pr: ProvisioningRequest, templates: dict[str, PodTemplate], budget: int = MAX_REQUEST_PODS) -> Gang:
    """The gang of one request; a bad request or template, or more pods than ``budget``, gives a gang blocked with the
    error."""
    class_name = pr.spec.get("provisioningClassName") if isinstance(pr.spec, Mapping) else None
    gang = Gang(
        PROVISIONING_REQUEST,
        pr.namespace,
        pr.metadata.name,
        class_name if isinstance(class_name, str) else "",
        created=_stamp(pr.metadata.creation_timestamp),
    )
    try:
        if pr.api_version not in ("autoscaling.x-k8s.io/v1", "autoscaling.x-k8s.io/v1beta1"):
            raise InvalidObject(PROVISIONING_REQUEST, pr.key, "apiVersion", f"{pr.api_version} is not supported")
        gang.provisioning_class = _class_name(pr)
        gang.multiple_groups = _parameters(pr).get(MULTIPLE_GROUPS_PARAMETER) == "true"
        pod_sets = _pod_sets(pr)
        gang.retryable = budget < sum(count for _, count in pod_sets) <= MAX_REQUEST_PODS
        gang.pods = request_pods(pr, _within(pr, pod_sets, budget), templates)
    except InvalidObject as exc:
        gang.error = str(exc)
    return gang


# --- pod groups -------------------------------------------------------------------------------------------------------


def _total(pod: Pod) -> int:
    raw = pod.metadata.annotations.get(POD_GROUP_TOTAL)
    field_name = f"metadata.annotations[{POD_GROUP_TOTAL}]"
    if raw is None:
        raise InvalidObject("Pod", pod.key, field_name, "required with the pod-group-name label")
    try:
        total = int(raw)
    except ValueError:
        total = 0
    if total < 1 or str(total) != raw.strip():
        raise InvalidObject("Pod", pod.key, field_name, f"must be an integer >= 1, got {raw!r}")
    return total


def _group_total(members: list[Pod]) -> int:
    """The total count the group's pods agree on; the first pod (by name) that disagrees is the error."""
    totals = {p.key: _total(p) for p in members}
    first_key = min(totals)
    total = totals[first_key]
    for key, value in sorted(totals.items()):
        if value != total:
            raise InvalidObject(
                "Pod",
                key,
                f"metadata.annotations[{POD_GROUP_TOTAL}]",
                f"is {value}, but {first_key} says {total}: the group's pods must agree",
            )
    return total


def group_gang(namespace: str, name: str, members: list[Pod]) -> Gang | None:
    """The gang of one pod group (all its non-terminal pods, bound or not); None when none of them is pending."""
    pending = [p for p in members if p.is_pending]
    if not pending:
        return None
    created = min((_stamp(p.metadata.creation_timestamp) for p in members), default="")
    gang = Gang(POD_GROUP, namespace, name, BEST_EFFORT_ATOMIC, pods=pending, created=created)
    try:
        total = _group_total(members)
        if len(members) < total:
            why = f"group has fewer runnable pods than expected ({len(members)} of {total}); Kueue admits it only when"
            raise InvalidObject(POD_GROUP, gang.key, "", f"{why} all exist")
    except InvalidObject as exc:
        gang.error = str(exc)
    return gang


# --- all together -----------------------------------------------------------------------------------------------------


def split_gangs(
    pods: list[Pod], requests: list[ProvisioningRequest], templates: list[PodTemplate], atomic_pod_groups: bool = True
) -> GangSplit:
    """Sort the pods of a decision: pending pods that consume a request are the request's, pods of a pod group are
    their group's gang, the other pending pods are planned one by one. ``pods``: every pod read (bound ones count for
    a group's size). ``atomic_pod_groups=False`` plans a pod group's pods one by one, as Karpenter does (the template's
    ``AtomicPodGroups``; the sandbox compares the two)."""
    split = GangSplit()
    by_template = {t.key: t for t in templates}
    split.reservations = reservations(pods, requests, templates)
    budget = MAX_REQUEST_PODS - sum(len(r.pods) for r in split.reservations)
    for pr in sorted(requests, key=lambda r: r.key):
        if not finished(pr) and not provisioned(pr):
            split.gangs.append(request_gang(pr, by_template, budget))
            budget -= len(split.gangs[-1].pods)
    groups: dict[tuple[str, str], list[Pod]] = {}
    for pod in pods:
        if pod.is_terminal:
            continue
        consumed = consumed_request(pod) if pod.is_pending else None
        if consumed is not None:
            split.consumed[pod.key] = (
                f"consumes ProvisioningRequest {pod.namespace}/{consumed}: its capacity is the request's, it triggers "
                "none of its own"
            )
            continue
        group = pod.metadata.labels.get(POD_GROUP_LABEL) if atomic_pod_groups else None
        if group:
            groups.setdefault((pod.namespace, group), []).append(pod)
        elif pod.is_pending:
            split.individual.append(pod)
    for (namespace, name), members in sorted(groups.items()):
        gang = group_gang(namespace, name, members)
        if gang is not None:
            split.gangs.append(gang)
    split.gangs.sort(key=lambda g: g.order)
    return split
