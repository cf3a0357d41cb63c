"""What capacity exists and what can be launched: NodePools resolved to HyperPod offerings, existing nodes and in-flight
claims as bins.

An offering is one instance group of a NodePool's HyperpodNodeClass: exactly one instance type in exactly one zone
(HyperPod requires a group's subnets to be in one zone), with the labels and taints a node launched there will carry.
The NodePool's requirements filter its class's groups; a NodePool that cannot be used at all is reported with the reason.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from ..base import Condition
from ..catalog import Catalog, InstanceType
from ..errors import InvalidObject
from ..hyperpod import ClusterView
from ..k8s import (
    ARCH_LABEL,
    HOSTNAME_LABEL,
    HP_CLUSTER_LABEL,
    HP_COMPUTE_TYPE,
    HP_GROUP_LABEL,
    INSTANCE_TYPE_LABEL,
    NODEPOOL_LABEL,
    OS_LABEL,
    ZONE_LABEL,
    DaemonSet,
    Node,
    ObjectMeta,
    Pod,
    Taint,
)
from ..karpenter import HyperpodNodeClass, NodePool
from ..plan import InflightClaim
from ..requirements import Requirements
from ..resources import CPU, GPU, MEMORY, NEURON, PODS, Resources
from .fit import (
    DAEMONSET_DEFAULT_TOLERATIONS,
    format_taint,
    hostname_of,
    node_allocatable,
    node_selection_mismatch,
    untolerated_taint,
)
from .hostports import HostPort, host_ports
from .vectors import UNBOUNDED, Space, Vec, vsub

#: The hostname a new node's labels carry while its real name is unknown: no real node name can equal it (``<`` is not
#: allowed in a node name), so ``In [some-node]`` never matches a new node while ``Exists`` and ``NotIn`` do.
NEW_NODE_HOSTNAME = "<new-node>"
NODES = "nodes"


@dataclass(eq=False)
class Pool:
    """One NodePool as the engine uses it. ``tier`` orders pools by weight (0 = highest); pools of equal weight share a
    tier, and a claim may pick the cheapest offering among them (Karpenter breaks such ties by name, which says nothing
    about cost)."""

    name: str
    nodepool: NodePool
    weight: int
    requirements: Requirements
    taints: list[Taint]
    limits: dict[str, int]
    tier: int = 0
    usage: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    offerings: list[Offering] = field(default_factory=list)
    excluded: dict[str, str] = field(default_factory=dict)
    """Instance group -> why it is not an offering of this pool."""
    groups: list[str] = field(default_factory=list)

    def limit_excess(self, add: dict[str, int], remove: dict[str, int] | None = None) -> str | None:
        """The first limit that adding ``add`` (and removing ``remove``) would exceed, or None."""
        for name, limit in self.limits.items():
            total = self.usage.get(name, 0) + add.get(name, 0) - (remove or {}).get(name, 0)
            if total > limit:
                return name
        return None


@dataclass(eq=False, slots=True)
class Offering:
    idx: int
    pool: Pool
    group: str
    itype: InstanceType
    zone: str
    labels: dict[str, str]
    taints: list[Taint]
    alloc: Vec
    """Allocatable after the DaemonSets that would run on the node."""
    price: float
    capacity: dict[str, int]
    """Capacity as NodePool limits count it (cpu, memory, GPUs, pods, one node)."""
    ds_overhead: Resources
    ds_ports: tuple[HostPort, ...] = ()
    """Host ports the DaemonSets that would run on the node hold."""

    @property
    def tier(self) -> int:
        return self.pool.tier

    def describe(self) -> str:
        return f"{self.pool.name}/{self.group} ({self.itype.name}, {self.zone})"


@dataclass(eq=False, slots=True)
class Bin:
    """An existing node, or one virtual node of an in-flight claim: fixed labels, taints and free capacity."""

    key: str
    """Plan key: the node name, or ``inflight:<claim id>``."""
    hostname: str
    labels: dict[str, str]
    taints: list[Taint]
    alloc: Vec
    used: Vec
    unusable: str | None
    node_name: str
    pods: list[str] = field(default_factory=list)
    ds_ports: tuple[HostPort, ...] = ()
    """Host ports the DaemonSets that run (or will run) on the node hold."""


def instance_capacity(itype: InstanceType) -> dict[str, int]:
    cap = itype.capacity
    return {CPU: cap[CPU], MEMORY: cap[MEMORY], GPU: cap[GPU], NEURON: cap[NEURON], PODS: cap[PODS], NODES: 1}


def node_capacity(node: Node) -> dict[str, int]:
    cap = Resources.parse(node.status.capacity) if node.status.capacity else node.allocatable
    return {CPU: cap[CPU], MEMORY: cap[MEMORY], GPU: cap[GPU], NEURON: cap[NEURON], PODS: cap[PODS], NODES: 1}


class DaemonSetIndex:
    """Which DaemonSets run on a node with given labels and taints, and what they request there."""

    def __init__(self, daemonsets: list[DaemonSet]) -> None:
        self.items: list[tuple[DaemonSet, Pod, list]] = []
        for ds in daemonsets:
            meta = ds.spec.template.metadata
            pod = Pod(
                metadata=ObjectMeta(name=ds.metadata.name, namespace=ds.metadata.namespace, labels=meta.labels),
                spec=ds.spec.template.spec,
            )
            tolerations = [*ds.spec.template.spec.tolerations, *DAEMONSET_DEFAULT_TOLERATIONS]
            self.items.append((ds, pod, tolerations))

    def running_on(self, labels: dict[str, str], taints: list[Taint], node_name: str = "") -> list[DaemonSet]:
        out = []
        for ds, pod, tolerations in self.items:
            if node_selection_mismatch(pod, labels, node_name) is not None:
                continue
            if untolerated_taint(tolerations, taints) is not None:
                continue
            out.append(ds)
        return out

    def host_ports(self, labels: dict[str, str], taints: list[Taint], node_name: str = "") -> tuple[HostPort, ...]:
        pods = {id(ds): pod for ds, pod, _ in self.items}
        return tuple(sorted({p for ds in self.running_on(labels, taints, node_name) for p in host_ports(pods[id(ds)])}))

    def overhead(self, labels: dict[str, str], taints: list[Taint], node_name: str = "") -> Resources:
        return Resources.sum(ds.requests for ds in self.running_on(labels, taints, node_name))


def new_node_labels(pool: Pool, group: str, itype: InstanceType, zone: str, cluster_name: str) -> dict[str, str]:
    labels = dict(pool.nodepool.spec.template.metadata.labels)
    labels.update(pool.requirements.labels())
    labels.update(
        {
            NODEPOOL_LABEL: pool.name,
            INSTANCE_TYPE_LABEL: itype.name,
            ZONE_LABEL: zone,
            ARCH_LABEL: itype.arch,
            OS_LABEL: "linux",
            HP_GROUP_LABEL: group,
            HP_COMPUTE_TYPE: "hyperpod",
            HOSTNAME_LABEL: NEW_NODE_HOSTNAME,
        }
    )
    if cluster_name:
        labels[HP_CLUSTER_LABEL] = cluster_name
    return labels


MAX_LABEL_VARIANTS = 16


def label_variants(requirements: Requirements, labels: dict[str, str]) -> list[dict[str, str]]:
    """The labels a new node may carry: one dict per choice of value for each NodePool requirement ``In`` several
    values on a key nothing else sets (Karpenter's NodeClaim takes one of them, the one its pods need), at most
    ``MAX_LABEL_VARIANTS`` (the first in value order). ``[labels]`` when there is no such key."""
    out = [labels]
    for key in sorted(requirements):
        req = requirements[key]
        if key in labels or req.complement or req.absent_ok or len(req.values) < 2:
            continue
        out = [{**variant, key: value} for variant in out for value in sorted(req.values)][:MAX_LABEL_VARIANTS]
    return out


def group_zone(nodeclass: HyperpodNodeClass, cluster: ClusterView, group: str) -> str | None:
    """The class's status zone for the group (HyperPod resolves it from the group's subnets), else the cluster view's."""
    status = nodeclass.group_status(group)
    if status is not None and status.zones:
        return status.zones[0]
    view = cluster.group(group)
    return view.zone if view is not None else None


@dataclass
class OfferingSet:
    pools: list[Pool]
    offerings: list[Offering]
    nodepool_errors: dict[str, str]
    warnings: list[str]
    unavailable: dict[str, str]
    """Offerings left out because their group is unavailable now: ``pool/group`` -> reason."""


def _not_ready(conditions: list[Condition]) -> str | None:
    """The reason of a Ready=False condition, or None (no Ready condition, as in an offline file, is not False)."""
    for c in conditions:
        if c.type == "Ready" and c.status == "False":
            return c.reason or c.message or "Ready=False"
    return None


def usable_nodeclass(
    nodepool: NodePool, classes: dict[str, HyperpodNodeClass]
) -> tuple[HyperpodNodeClass, str] | tuple[None, str]:
    """The HyperpodNodeClass a NodePool launches with, or why the NodePool is not used: it is being deleted, its status
    says Ready=False, its nodeClassRef is not a HyperpodNodeClass (group and kind) or names none, or that class says
    Ready=False. As Karpenter's provisioner, which keeps only Ready NodePools without a deletionTimestamp whose
    nodeClassRef's GroupKind is the provider's."""
    ref = nodepool.spec.template.spec.node_class_ref
    if nodepool.metadata.deletion_timestamp is not None:
        return None, "being deleted (metadata.deletionTimestamp is set)"
    reason = _not_ready(nodepool.status.conditions if nodepool.status else [])
    if reason is not None:
        return None, f"status says Ready=False ({reason})"
    if not ref.is_hyperpod:
        return None, (
            f"spec.template.spec.nodeClassRef is {ref.group or '<no group>'}/{ref.kind or '<no kind>'} {ref.name}, "
            "not a karpenter.sagemaker.amazonaws.com HyperpodNodeClass"
        )
    nodeclass = classes.get(ref.name)
    if nodeclass is None:
        return None, f"HyperpodNodeClass {ref.name} (spec.template.spec.nodeClassRef) does not exist"
    reason = _not_ready(nodeclass.status.conditions if nodeclass.status else [])
    if reason is not None:
        return None, f"HyperpodNodeClass {ref.name} status says Ready=False ({reason})"
    return nodeclass, ""


def build_offerings(
    nodepools: list[NodePool],
    nodeclasses: list[HyperpodNodeClass],
    cluster: ClusterView,
    catalog: Catalog,
    daemonsets: DaemonSetIndex,
    space: Space,
    unavailable_groups: dict[str, str],
) -> OfferingSet:
    classes = {c.name: c for c in nodeclasses}
    errors: dict[str, str] = {}
    warnings: list[str] = []
    unavailable: dict[str, str] = {}
    pools: list[Pool] = []
    offerings: list[Offering] = []
    ordered = sorted(nodepools, key=lambda p: (-p.weight, p.name))
    weights = sorted({p.weight for p in ordered}, reverse=True)
    for nodepool in ordered:
        name = nodepool.name
        nodeclass, why = usable_nodeclass(nodepool, classes)
        if nodeclass is None:
            errors[name] = why
            continue
        try:
            # the template labels are requirements too (Karpenter adds them as In [value]): zone=a pins the zone
            requirements = Requirements.from_selector_requirements(
                nodepool.spec.template.spec.requirements, "NodePool", name
            ).intersection(Requirements.from_labels(nodepool.spec.template.metadata.labels))
        except InvalidObject as exc:
            errors[name] = str(exc)
            continue
        bad_key = requirements.unsatisfiable_key()
        if bad_key is not None:
            errors[name] = (
                f"spec.template.spec.requirements on {bad_key} can never be satisfied ({requirements[bad_key]})"
            )
            continue
        # each limit on its own: a resource vector leaves zeros out, and a limit of 0 allows no node at all
        limits = {k: Resources.parse({k: v})[k] for k, v in nodepool.spec.limits.items()}
        pool = Pool(
            name=name,
            nodepool=nodepool,
            weight=nodepool.weight,
            requirements=requirements,
            taints=list(nodepool.spec.template.spec.taints),
            limits=limits,
            tier=weights.index(nodepool.weight),
            groups=list(nodeclass.spec.instance_groups),
        )
        for group in nodeclass.spec.instance_groups:
            view = cluster.group(group)
            if view is None:
                pool.excluded[group] = f"instance group {group} is not in cluster {cluster.name or '(unnamed)'}"
                continue
            itype = catalog.get(view.instance_type)
            if itype is None:
                pool.excluded[group] = f"instance type {view.instance_type} of group {group} is not in the catalog"
                continue
            zone = group_zone(nodeclass, cluster, group)
            if not zone:
                pool.excluded[group] = (
                    f"zone of group {group} is unknown (no subnets in HyperpodNodeClass {nodeclass.name} "
                    "status.instanceGroups nor in the cluster view)"
                )
                continue
            variants = label_variants(requirements, new_node_labels(pool, group, itype, zone, cluster.name))
            mismatch = requirements.first_mismatch(variants[0])
            if mismatch is not None:
                pool.excluded[group] = f"{itype.name} in {zone} is excluded by the NodePool requirement {mismatch}"
                continue
            if group in unavailable_groups:
                reason = f"instance group {group} is unavailable: {unavailable_groups[group]}"
                pool.excluded[group] = reason
                unavailable[f"{name}/{group}"] = reason
                continue
            for labels in variants:
                overhead = daemonsets.overhead(labels, pool.taints)
                alloc = vsub(space.new_node_vec(itype.allocatable), space.vec(overhead))
                if any(v < 0 for v in alloc):
                    pool.excluded[group] = (
                        f"DaemonSets need {overhead.format()}, more than {itype.name} allocatable "
                        f"{itype.allocatable.format()}"
                    )
                    continue
                offering = Offering(
                    idx=len(offerings),
                    pool=pool,
                    group=group,
                    itype=itype,
                    zone=zone,
                    labels=labels,
                    taints=pool.taints,
                    alloc=alloc,
                    price=itype.price,
                    capacity=instance_capacity(itype),
                    ds_overhead=overhead,
                    ds_ports=daemonsets.host_ports(labels, pool.taints),
                )
                offerings.append(offering)
                pool.offerings.append(offering)
        if not pool.offerings:
            if not nodeclass.spec.instance_groups:
                errors[name] = f"HyperpodNodeClass {nodeclass.name} lists no spec.instanceGroups"
            else:
                errors[name] = "no usable instance group: " + "; ".join(
                    pool.excluded[g] for g in nodeclass.spec.instance_groups if g in pool.excluded
                )
        else:
            for group, reason in pool.excluded.items():
                if group not in (unavailable_groups or {}):
                    warnings.append(f"NodePool {name}: {reason}")
        pools.append(pool)
    return OfferingSet(pools, offerings, errors, warnings, unavailable)


def pools_of_node(node: Node, pools: list[Pool]) -> list[Pool]:
    """The pools a node counts against: its karpenter.sh/nodepool label, else the pools whose class has its group."""
    label = node.labels.get(NODEPOOL_LABEL)
    if label is not None:
        return [p for p in pools if p.name == label]
    group = node.instance_group
    return [p for p in pools if group is not None and group in p.groups]


def build_bins(
    nodes: list[Node],
    bound_pods: list[Pod],
    moving: set[str],
    daemonsets: DaemonSetIndex,
    space: Space,
    pools: list[Pool],
) -> tuple[list[Bin], dict[str, list[Pod]]]:
    """One bin per existing node (also unusable ones: they still count for limits and topology). Returns the bins and
    the bound pods per node (pods in ``moving`` are being placed again, so they free their node's capacity)."""
    by_node: dict[str, list[Pod]] = defaultdict(list)
    for pod in bound_pods:
        if pod.spec.node_name and not pod.is_terminal and pod.key not in moving:
            by_node[pod.spec.node_name].append(pod)
    bins = []
    for node in sorted(nodes, key=lambda n: n.name):
        pods = by_node.get(node.name, [])
        used = Resources.sum(p.requests for p in pods)
        running = {
            (p.namespace, ref.name) for p in pods for ref in p.metadata.owner_references if ref.kind == "DaemonSet"
        }
        for ds in daemonsets.running_on(node.labels, node.spec.taints, node.name):
            if (ds.metadata.namespace or "default", ds.metadata.name) not in running:
                used = used + ds.requests  # its pod will start there
        alloc = node_allocatable(node)
        alloc_vec = tuple(
            UNBOUNDED if name == "ephemeral-storage" and name not in alloc else alloc[name] for name in space.names
        )
        bins.append(
            Bin(
                key=node.name,
                hostname=hostname_of(node),
                labels=dict(node.labels),
                taints=list(node.spec.taints),
                alloc=alloc_vec,
                used=space.vec(used),
                unusable=node.unusable_reason(),
                node_name=node.name,
                ds_ports=daemonsets.host_ports(node.labels, node.spec.taints, node.name),
            )
        )
        for pool in pools_of_node(node, pools):
            for name, amount in node_capacity(node).items():
                pool.usage[name] += amount
    return bins, by_node


def build_inflight_bins(
    inflight: list[InflightClaim],
    pools: list[Pool],
    catalog: Catalog,
    cluster_name: str,
    daemonsets: DaemonSetIndex,
    space: Space,
    warnings: list[str],
) -> list[tuple[InflightClaim, list[Bin]]]:
    """Each in-flight claim of count N becomes N virtual nodes of its group's type in its zone (labels as a new node of
    its NodePool would have); their capacity counts against the pool's limits."""
    by_name = {p.name: p for p in pools}
    out = []
    for claim in inflight:
        itype = catalog.get(claim.instance_type)
        if itype is None:
            warnings.append(
                f"in-flight claim {claim.claim_id}: instance type {claim.instance_type} is not in the catalog"
            )
            continue
        pool = by_name.get(claim.nodepool)
        if pool is not None:
            labels = new_node_labels(pool, claim.instance_group, itype, claim.zone, cluster_name)
            taints = pool.taints
            for name, amount in instance_capacity(itype).items():
                pool.usage[name] += amount * claim.count
        else:
            labels = {
                NODEPOOL_LABEL: claim.nodepool,
                INSTANCE_TYPE_LABEL: itype.name,
                ZONE_LABEL: claim.zone,
                ARCH_LABEL: itype.arch,
                OS_LABEL: "linux",
                HP_GROUP_LABEL: claim.instance_group,
                HP_COMPUTE_TYPE: "hyperpod",
            }
            taints = []
        overhead = daemonsets.overhead(labels, taints)
        alloc = space.new_node_vec(itype.allocatable)
        bins = []
        for i in range(claim.count):
            hostname = f"inflight:{claim.claim_id}#{i}"
            bins.append(
                Bin(
                    key=f"inflight:{claim.claim_id}",
                    hostname=hostname,
                    labels={**labels, HOSTNAME_LABEL: hostname},
                    taints=list(taints),
                    alloc=alloc,
                    used=space.vec(overhead),
                    unusable=None,
                    node_name=hostname,
                )
            )
        out.append((claim, bins))
    return out


def describe_taints(taints: list[Taint]) -> str:
    return ", ".join(format_taint(t) for t in taints)
