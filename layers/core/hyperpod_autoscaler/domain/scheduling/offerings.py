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
from ..hyperpod import ClusterView, InstanceGroup
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


def group_zone(nodeclass: HyperpodNodeClass, view: InstanceGroup, group: str) -> str | None:
    """The class's status zone for the group (HyperPod resolves it from the group's subnets), else the cluster view's."""
    status = nodeclass.group_status(group)
    if status is not None and status.zones:
        return status.zones[0]
    return view.zone


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


@dataclass(frozen=True)
class LaunchContext:
    """What decides whether an instance group can launch a node and with what room: the cluster view, the catalog, the
    DaemonSets, the resource space and the groups unavailable now (group -> reason)."""

    cluster: ClusterView
    catalog: Catalog
    daemonsets: DaemonSetIndex
    space: Space
    unavailable_groups: dict[str, str]
    groups: dict[str, InstanceGroup] = field(default_factory=dict)
    """The cluster's instance groups by name (the first of a name, as ``ClusterView.group``)."""

    def __post_init__(self) -> None:
        for g in self.cluster.instance_groups:
            self.groups.setdefault(g.name, g)


@dataclass(frozen=True)
class GroupTarget:
    """Where one instance group of a pool launches: its instance type, its zone and the label sets a new node may carry."""

    itype: InstanceType
    zone: str
    variants: list[dict[str, str]]


def pool_requirements(nodepool: NodePool) -> tuple[Requirements, str] | tuple[None, str]:
    """A NodePool's requirements with its template labels (Karpenter adds them as ``In [value]``: zone=a pins the zone),
    or why they cannot be used: a bad requirement, or a key no node can ever satisfy."""
    name = nodepool.name
    try:
        requirements = Requirements.from_selector_requirements(
            nodepool.spec.template.spec.requirements, "NodePool", name
        ).intersection(Requirements.from_labels(nodepool.spec.template.metadata.labels))
    except InvalidObject as exc:
        return None, str(exc)
    bad_key = requirements.unsatisfiable_key()
    if bad_key is not None:
        return None, f"spec.template.spec.requirements on {bad_key} can never be satisfied ({requirements[bad_key]})"
    return requirements, ""


def new_pool(nodepool: NodePool, nodeclass: HyperpodNodeClass, requirements: Requirements, tier: int) -> Pool:
    # each limit on its own: a resource vector leaves zeros out, and a limit of 0 allows no node at all
    limits = {k: Resources.parse({k: v})[k] for k, v in nodepool.spec.limits.items()}
    return Pool(
        name=nodepool.name,
        nodepool=nodepool,
        weight=nodepool.weight,
        requirements=requirements,
        taints=list(nodepool.spec.template.spec.taints),
        limits=limits,
        tier=tier,
        groups=list(nodeclass.spec.instance_groups),
    )


def group_target(pool: Pool, nodeclass: HyperpodNodeClass, group: str, ctx: LaunchContext) -> GroupTarget | str:
    """Where the pool's ``group`` launches, or why it cannot: not in the cluster, an instance type the catalog does not
    know, no known zone, or labels the NodePool's requirements exclude."""
    view = ctx.groups.get(group)
    if view is None:
        return f"instance group {group} is not in cluster {ctx.cluster.name or '(unnamed)'}"
    itype = ctx.catalog.get(view.instance_type)
    if itype is None:
        return f"instance type {view.instance_type} of group {group} is not in the catalog"
    zone = group_zone(nodeclass, view, group)
    if not zone:
        return (
            f"zone of group {group} is unknown (no subnets in HyperpodNodeClass {nodeclass.name} "
            "status.instanceGroups nor in the cluster view)"
        )
    variants = label_variants(pool.requirements, new_node_labels(pool, group, itype, zone, ctx.cluster.name))
    mismatch = pool.requirements.first_mismatch(variants[0])
    if mismatch is not None:
        return f"{itype.name} in {zone} is excluded by the NodePool requirement {mismatch}"
    return GroupTarget(itype, zone, variants)


def add_group_offerings(pool: Pool, target: GroupTarget, group: str, ctx: LaunchContext, built: OfferingSet) -> None:
    """One offering per label variant of the group whose allocatable holds the DaemonSets that would run there; a
    variant that cannot marks the group excluded (the other variants are still offered)."""
    itype = target.itype
    for labels in target.variants:
        overhead = ctx.daemonsets.overhead(labels, pool.taints)
        alloc = vsub(ctx.space.new_node_vec(itype.allocatable), ctx.space.vec(overhead))
        if any(v < 0 for v in alloc):
            pool.excluded[group] = (
                f"DaemonSets need {overhead.format()}, more than {itype.name} allocatable {itype.allocatable.format()}"
            )
            continue
        offering = Offering(
            idx=len(built.offerings),
            pool=pool,
            group=group,
            itype=itype,
            zone=target.zone,
            labels=labels,
            taints=pool.taints,
            alloc=alloc,
            price=itype.price,
            capacity=instance_capacity(itype),
            ds_overhead=overhead,
            ds_ports=ctx.daemonsets.host_ports(labels, pool.taints),
        )
        built.offerings.append(offering)
        pool.offerings.append(offering)


def add_pool_offerings(pool: Pool, nodeclass: HyperpodNodeClass, ctx: LaunchContext, built: OfferingSet) -> None:
    """The offerings of every instance group of the pool's class; a group that cannot launch is excluded with the reason
    (and listed as unavailable when it is backed off)."""
    for group in nodeclass.spec.instance_groups:
        target = group_target(pool, nodeclass, group, ctx)
        if isinstance(target, str):
            pool.excluded[group] = target
            continue
        if group in ctx.unavailable_groups:
            reason = f"instance group {group} is unavailable: {ctx.unavailable_groups[group]}"
            pool.excluded[group] = reason
            built.unavailable[f"{pool.name}/{group}"] = reason
            continue
        add_group_offerings(pool, target, group, ctx, built)


def report_pool(
    pool: Pool, nodeclass: HyperpodNodeClass, unavailable_groups: dict[str, str], built: OfferingSet
) -> None:
    """A pool without offerings is a NodePool error naming why each group was excluded; a pool with some warns about
    the groups it left out (but not about the backed-off ones: they are listed as unavailable)."""
    if not pool.offerings:
        if not nodeclass.spec.instance_groups:
            built.nodepool_errors[pool.name] = f"HyperpodNodeClass {nodeclass.name} lists no spec.instanceGroups"
        else:
            built.nodepool_errors[pool.name] = "no usable instance group: " + "; ".join(
                pool.excluded[g] for g in nodeclass.spec.instance_groups if g in pool.excluded
            )
        return
    for group, reason in pool.excluded.items():
        if group not in (unavailable_groups or {}):
            built.warnings.append(f"NodePool {pool.name}: {reason}")


def build_offerings(
    nodepools: list[NodePool],
    nodeclasses: list[HyperpodNodeClass],
    cluster: ClusterView,
    catalog: Catalog,
    daemonsets: DaemonSetIndex,
    space: Space,
    unavailable_groups: dict[str, str],
) -> OfferingSet:
    """Every usable NodePool as a pool with its offerings, highest weight first (ties by name, as Karpenter orders them);
    a NodePool that cannot be used at all is in ``nodepool_errors`` with the reason."""
    ctx = LaunchContext(cluster, catalog, daemonsets, space, unavailable_groups)
    classes = {c.name: c for c in nodeclasses}
    built = OfferingSet(pools=[], offerings=[], nodepool_errors={}, warnings=[], unavailable={})
    ordered = sorted(nodepools, key=lambda p: (-p.weight, p.name))
    weights = sorted({p.weight for p in ordered}, reverse=True)
    for nodepool in ordered:
        nodeclass, why = usable_nodeclass(nodepool, classes)
        if nodeclass is None:
            built.nodepool_errors[nodepool.name] = why
            continue
        requirements, why = pool_requirements(nodepool)
        if requirements is None:
            built.nodepool_errors[nodepool.name] = why
            continue
        pool = new_pool(nodepool, nodeclass, requirements, weights.index(nodepool.weight))
        add_pool_offerings(pool, nodeclass, ctx, built)
        report_pool(pool, nodeclass, unavailable_groups, built)
        built.pools.append(pool)
    return built


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
