"""Equivalence classes of pods and the scheduling "views" of a class, from strict to relaxed.

Pods with the same namespace, labels, effective requests and scheduling constraints (replicas of one Deployment) are one
class: the engine decides for the class and places its pods in bulk, so a thousand replicas cost about as much as one.

A view is what the engine requires of a node for the class at one relaxation level, as Karpenter does: at first the
first required node-affinity term plus the heaviest preferred node-affinity term, every preferred pod (anti-)affinity
term and every ScheduleAnyway spread are treated as required, and PreferNoSchedule taints as NoSchedule; each relaxation
then removes one of them in Karpenter's order (required OR-terms, preferred pod affinity, preferred pod anti-affinity,
preferred node affinity, ScheduleAnyway spreads, PreferNoSchedule taints).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from ..k8s import (
    NodeSelectorTerm,
    Pod,
    PodAffinityTerm,
    Toleration,
    TopologySpreadConstraint,
    WeightedPodAffinityTerm,
)
from ..requirements import Requirement, Requirements
from .hostports import host_ports
from .vectors import Vec, nonzero

PNS_TOLERATION = Toleration(operator="Exists", effect="PreferNoSchedule")


def _req_key(reqs: Requirements) -> tuple:
    return tuple(
        (r.key, r.complement, tuple(sorted(r.values)), r.greater_than, r.less_than, r.absent_ok)
        for r in (reqs[k] for k in sorted(reqs))
    )


def _tol_key(t: Toleration) -> tuple:
    return (t.key or "", t.operator or "Equal", t.value or "", t.effect or "", t.toleration_seconds)


@dataclass(eq=False)
class View:
    """Node and pod constraints of a class at one relaxation level."""

    level: int
    node_req: Requirements
    field_req: Requirements
    """``matchFields`` on ``metadata.name`` (a new node's name is unknown, so only NotIn/DoesNotExist match it)."""
    tolerations: tuple[Toleration, ...]
    spreads: tuple[TopologySpreadConstraint, ...]
    """All treated as DoNotSchedule."""
    affinity: tuple[PodAffinityTerm, ...]
    anti_affinity: tuple[PodAffinityTerm, ...]
    relaxed: tuple[str, ...] = ()
    host_ports: tuple[tuple[int, str, str], ...] = ()
    """Host ports the pod asks for: a node whose DaemonSets hold one of them cannot take it."""
    node_key: tuple = ()

    @property
    def has_pod_rules(self) -> bool:
        return bool(self.spreads or self.affinity or self.anti_affinity)


@dataclass
class _State:
    required_terms: list[NodeSelectorTerm]
    preferred_node: list[NodeSelectorTerm]
    preferred_affinity: list[PodAffinityTerm]
    preferred_anti: list[PodAffinityTerm]
    spreads: list[TopologySpreadConstraint]
    tolerate_pns: bool = False
    relaxed: list[str] = field(default_factory=list)


def _by_weight(terms: list[WeightedPodAffinityTerm]) -> list[PodAffinityTerm]:
    return [t.pod_affinity_term for t in sorted(terms, key=lambda t: -t.weight)]


def _relax(state: _State) -> bool:
    if len(state.required_terms) > 1:
        state.required_terms.pop(0)
        state.relaxed.append("removed required node-affinity term 0 (trying the next OR-term)")
    elif state.preferred_affinity:
        state.preferred_affinity.pop(0)
        state.relaxed.append("removed the heaviest preferred pod-affinity term")
    elif state.preferred_anti:
        state.preferred_anti.pop(0)
        state.relaxed.append("removed the heaviest preferred pod-anti-affinity term")
    elif state.preferred_node:
        state.preferred_node.pop(0)
        state.relaxed.append("removed the heaviest preferred node-affinity term")
    elif any(s.when_unsatisfiable == "ScheduleAnyway" for s in state.spreads):
        index = next(i for i, s in enumerate(state.spreads) if s.when_unsatisfiable == "ScheduleAnyway")
        removed = state.spreads.pop(index)
        state.relaxed.append(f"removed ScheduleAnyway topology spread on {removed.topology_key}")
    elif not state.tolerate_pns:
        state.tolerate_pns = True
        state.relaxed.append("tolerating PreferNoSchedule taints")
    else:
        return False
    return True


def _view(pod: Pod, state: _State, level: int) -> View:
    node_req = Requirements.from_node_selector(pod.spec.node_selector)
    field_req = Requirements()
    for term in state.required_terms[:1] + state.preferred_node[:1]:
        node_req = node_req.intersection(Requirements.from_term(term))
        for f in term.match_fields:
            field_req.add(Requirement.from_node_selector_requirement(f))
    tolerations = tuple(pod.spec.tolerations) + ((PNS_TOLERATION,) if state.tolerate_pns else ())
    aff = pod.spec.affinity
    required_aff = (
        tuple(aff.pod_affinity.required_during_scheduling_ignored_during_execution) if aff and aff.pod_affinity else ()
    )
    required_anti = (
        tuple(aff.pod_anti_affinity.required_during_scheduling_ignored_during_execution)
        if aff and aff.pod_anti_affinity
        else ()
    )
    view = View(
        level=level,
        node_req=node_req,
        field_req=field_req,
        tolerations=tolerations,
        spreads=tuple(state.spreads),
        affinity=required_aff + tuple(state.preferred_affinity),
        anti_affinity=required_anti + tuple(state.preferred_anti),
        relaxed=tuple(state.relaxed),
        host_ports=tuple(host_ports(pod)),
    )
    view.node_key = (
        _req_key(node_req),
        _req_key(field_req),
        tuple(_tol_key(t) for t in tolerations),
        view.host_ports,
    )
    return view


def views_of(pod: Pod) -> Iterator[View]:
    """The class's views, strictest first; each next one relaxes one preference."""
    aff = pod.spec.affinity
    na = aff.node_affinity if aff else None
    state = _State(
        required_terms=list(pod.required_node_terms()),
        preferred_node=[t.preference for t in sorted(pod.preferred_node_terms(), key=lambda t: -t.weight)],
        preferred_affinity=_by_weight(aff.pod_affinity.preferred_during_scheduling_ignored_during_execution)
        if aff and aff.pod_affinity
        else [],
        preferred_anti=_by_weight(aff.pod_anti_affinity.preferred_during_scheduling_ignored_during_execution)
        if aff and aff.pod_anti_affinity
        else [],
        spreads=list(pod.spec.topology_spread_constraints),
    )
    del na
    level = 0
    yield _view(pod, state, level)
    while _relax(state):
        level += 1
        yield _view(pod, state, level)


def skip_reason(pod: Pod) -> str | None:
    """Why the engine does not place a pod at all (DaemonSet-owned or terminal). A pod asking ``karpenter.sh/nodepool
    DoesNotExist`` is placed like any other: every new node carries that label, so only existing nodes without it can
    take the pod, and it is reported unschedulable when none can."""
    if pod.is_daemonset_pod:
        return "owned by a DaemonSet (its pod comes with each node)"
    if pod.is_terminal:
        return f"terminal (phase {pod.status.phase})"
    return None


@dataclass(eq=False)
class PodClass:
    idx: int
    key: tuple
    pods: list[Pod]
    req: Vec
    namespace: str
    labels: dict[str, str]
    sort_key: tuple = ()
    _views: list[View] = field(default_factory=list)
    _iter: Iterator[View] | None = None
    _rep: Pod | None = None
    asks: tuple[tuple[int, int], ...] = field(init=False)
    """The request's nonzero (resource index, amount) pairs: what a fit check of one pod looks at."""

    def __post_init__(self) -> None:
        self.asks = nonzero(self.req)

    def add(self, pod: Pod) -> None:
        if self._rep is None:
            self._rep = pod
        self.pods.append(pod)

    @property
    def rep(self) -> Pod:
        """A representative pod (kept when every pod of the class was placed on in-flight capacity)."""
        if self._rep is None:
            self._rep = self.pods[0]
        return self._rep

    def view(self, level: int) -> View | None:
        """The view at ``level``, or None when nothing more can be relaxed."""
        if self._iter is None:
            self._iter = views_of(self.rep)
        while len(self._views) <= level:
            nxt = next(self._iter, None)
            if nxt is None:
                return None
            self._views.append(nxt)
        return self._views[level]


def class_key(pod: Pod) -> tuple:
    """What makes two pods interchangeable for scheduling."""
    spec = pod.spec
    aff = spec.affinity
    return (
        pod.namespace,
        tuple(sorted(pod.metadata.labels.items())),
        tuple(sorted(pod.requests.items())),
        tuple(sorted(spec.node_selector.items())),
        aff.model_dump_json() if aff is not None else "",
        tuple(_tol_key(t) for t in spec.tolerations),
        tuple(t.model_dump_json() for t in spec.topology_spread_constraints),
    )
