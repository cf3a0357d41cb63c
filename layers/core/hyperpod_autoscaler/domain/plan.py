"""The question every part of the autoscaler asks the packing engine, and its answer.

Scale-up asks it with the pending pods; consolidation asks it with the pods of candidate nodes and those nodes removed;
``hyperpod-autoscaler plan`` asks it offline. The engine lives in ``domain.scheduling``; these are its input and output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .catalog import Catalog
from .gangs import POD_GROUP, Gang, Reservation, reservations, split_gangs
from .hyperpod import ClusterView
from .k8s import DaemonSet, Node, Pod
from .karpenter import HyperpodNodeClass, NodePool
from .objects import ClusterObjects


@dataclass(frozen=True)
class InflightClaim:
    """Capacity already asked for and not yet a Ready node (a running provision execution). Counted as capacity so that
    overlapping decisions never provision the same pods twice."""

    claim_id: str
    nodepool: str
    instance_group: str
    instance_type: str
    zone: str
    count: int
    pods: tuple[str, ...] = ()
    gang: GangRef | None = None
    """The gang whose new nodes this claim launches all or nothing (its execution gives them all back on a failure)."""
    dropped: int = 0
    """Launches the claim's execution gave up (insufficient capacity), already taken off ``count``: the pods its
    remaining nodes cannot hold are planned again instead of riding it."""


@dataclass(frozen=True)
class GangRef:
    """Which gang a provision claim is for: ``source`` is ``ProvisioningRequest`` or ``PodGroup``."""

    source: str
    namespace: str
    name: str

    def to_dict(self) -> dict[str, str]:
        return {"source": self.source, "namespace": self.namespace, "name": self.name}

    @classmethod
    def from_dict(cls, raw: object) -> GangRef | None:
        """The reference a claim record or an execution input carries (None when it carries none or a broken one)."""
        if not isinstance(raw, dict):
            return None
        parts = [raw.get(k) for k in ("source", "namespace", "name")]
        if not all(isinstance(p, str) and p for p in parts):
            return None
        return cls(*(str(p) for p in parts))


@dataclass
class PlanInput:
    pods: list[Pod]
    """Pods to place (pending pods for scale-up; candidates' pods for consolidation)."""
    nodes: list[Node]
    bound_pods: list[Pod]
    """Pods already running on ``nodes`` (they use capacity and count for spread/affinity)."""
    nodepools: list[NodePool]
    nodeclasses: list[HyperpodNodeClass]
    cluster: ClusterView
    catalog: Catalog
    daemonsets: list[DaemonSet] = field(default_factory=list)
    inflight: list[InflightClaim] = field(default_factory=list)
    unavailable_groups: dict[str, str] = field(default_factory=dict)
    """Instance groups not to launch into now (group -> reason), e.g. a capacity backoff."""
    gangs: list[Gang] = field(default_factory=list)
    """Pods placed all or nothing (ProvisioningRequests, pod groups); not in ``pods``."""
    consumed: dict[str, str] = field(default_factory=dict)
    """Pending pods not planned because a ProvisioningRequest stands for them (pod key -> why)."""
    reservations: list[Reservation] = field(default_factory=list)
    """Capacity Provisioned requests book on existing nodes: used before any other pod is placed."""

    @classmethod
    def from_objects(
        cls, objects: ClusterObjects, cluster: ClusterView, catalog: Catalog, pods: list[Pod] | None = None
    ) -> PlanInput:
        """``pods`` (default: the pending pods of ``objects``, with their ProvisioningRequests and pod groups as gangs)
        against the cluster ``objects`` describes."""
        split = None
        if pods is None:
            split = split_gangs(objects.pods, objects.provisioning_requests, objects.pod_templates)
        return cls(
            pods=split.individual if split is not None else list(pods or []),
            nodes=objects.nodes,
            bound_pods=objects.bound_pods,
            nodepools=objects.nodepools,
            nodeclasses=objects.nodeclasses,
            cluster=cluster,
            catalog=catalog,
            daemonsets=objects.daemonsets,
            gangs=split.gangs if split is not None else [],
            consumed=split.consumed if split is not None else {},
            reservations=(
                split.reservations
                if split is not None
                else reservations(objects.pods, objects.provisioning_requests, objects.pod_templates)
            ),
        )


@dataclass
class PlanOptions:
    allow_new_nodes: bool = True
    max_new_nodes: int | None = None
    """Cap on new nodes in this plan (a global safety cap, or 1 for a consolidation replacement)."""
    time_budget_seconds: float = 2.0
    """Time the engine may spend improving a feasible solution (repack, merge, downsize)."""
    improve: bool = True


@dataclass
class NodeClaim:
    """One new node: the NodePool it satisfies, the instance group (and so type and zone) it is launched in, its pods."""

    nodepool: str
    instance_group: str
    instance_type: str
    zone: str
    pods: list[str]
    price: float

    def to_contract(self) -> dict[str, Any]:
        return {
            "nodePool": self.nodepool,
            "instanceGroup": self.instance_group,
            "instanceType": self.instance_type,
            "zone": self.zone,
            "pods": list(self.pods),
        }


@dataclass
class GangDecision:
    """What a plan decides for one gang: ``provision`` (new nodes planned so every pod is placed), ``fits`` (existing
    and in-flight capacity holds every pod) or ``blocked`` (not every pod can be placed: nothing is planned for it)."""

    source: str
    namespace: str
    name: str
    provisioning_class: str
    decision: str
    pods: list[str]
    reason: str

    @property
    def ref(self) -> GangRef:
        return GangRef(self.source, self.namespace, self.name)

    def to_contract(self) -> dict[str, Any]:
        out: dict[str, Any] = {"namespace": self.namespace, "name": self.name}
        if self.source != POD_GROUP:
            out["class"] = self.provisioning_class
        out.update(decision=self.decision, pods=list(self.pods), reason=self.reason)
        return out


@dataclass
class Plan:
    node_claims: list[NodeClaim] = field(default_factory=list)
    existing_nodes: dict[str, list[str]] = field(default_factory=dict)
    """Node name (or ``inflight:<claim id>``) -> pods placed on it."""
    unschedulable: dict[str, str] = field(default_factory=dict)
    """Pod key -> the reason no NodePool or node can take it."""
    nodepool_errors: dict[str, str] = field(default_factory=dict)
    """NodePools not used and why (invalid class, unknown group, ...)."""
    stats: dict[str, Any] = field(default_factory=dict)
    gangs: list[GangDecision] = field(default_factory=list)
    """One decision per ProvisioningRequest and pod group, in the order they were planned."""

    @property
    def scale_up(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for claim in self.node_claims:
            out[claim.instance_group] = out.get(claim.instance_group, 0) + 1
        return dict(sorted(out.items()))

    @property
    def hourly_cost(self) -> float:
        return round(sum(c.price for c in self.node_claims), 6)

    def to_contract(self) -> dict[str, Any]:
        """The ``plan --output json`` contract, exactly."""
        return {
            "nodeClaims": [c.to_contract() for c in self.node_claims],
            "existingNodes": [{"node": n, "pods": list(p)} for n, p in self.existing_nodes.items() if p],
            "unschedulable": [{"pod": k, "reason": r} for k, r in self.unschedulable.items()],
            "scaleUp": self.scale_up,
            "hourlyCost": self.hourly_cost,
            "provisioningRequests": [g.to_contract() for g in self.gangs if g.source != POD_GROUP],
            "podGroups": [g.to_contract() for g in self.gangs if g.source == POD_GROUP],
        }


def inflight_from_execution(payload: dict[str, Any], view: ClusterView) -> InflightClaim | None:
    """A running provision execution's input as an in-flight claim (None when it is not one of ours)."""
    group_name = payload.get("instanceGroup")
    claim = payload.get("claimId")
    if not isinstance(group_name, str) or not isinstance(claim, str):
        return None
    group = view.group(group_name)
    pods = payload.get("pods") or []
    return InflightClaim(
        claim_id=claim,
        nodepool=str(payload.get("nodePool") or ""),
        instance_group=group_name,
        instance_type=str(payload.get("instanceType") or (group.instance_type if group else "")),
        zone=str(payload.get("zone") or (group.zone if group and group.zone else "")),
        count=int(payload.get("count") or 0),
        pods=tuple(str(p) for p in pods if isinstance(p, str)),
        gang=GangRef.from_dict(payload.get("gang")),
    )
