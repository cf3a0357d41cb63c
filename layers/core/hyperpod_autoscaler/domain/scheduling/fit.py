"""Kubernetes' filter rules for one pod on one real node, the way kube-scheduler applies them.

``pod_fits_node`` is the concrete check a scheduler stand-in binds pods with, and the rules the packing engine mirrors
for existing nodes: node usable (not cordoned, not marked unschedulable by HyperPod, not being deleted), NoSchedule and
NoExecute taints tolerated, nodeSelector and required node affinity (OR of terms), resources against allocatable minus the
pods already on the node, and, when the other bound pods are given, required pod affinity and anti-affinity (both
directions) and DoNotSchedule topology spread.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from ..k8s import (
    HOSTNAME_LABEL,
    Node,
    Pod,
    PodAffinityTerm,
    Taint,
    Toleration,
    TopologySpreadConstraint,
)
from ..resources import PODS, Resources

#: The kubelet default when a node does not report ``pods`` in its allocatable.
DEFAULT_NODE_PODS = 110

#: Tolerations the DaemonSet controller adds to every DaemonSet pod (so node-condition taints never keep them off).
DAEMONSET_DEFAULT_TOLERATIONS: tuple[Toleration, ...] = (
    Toleration(key="node.kubernetes.io/not-ready", operator="Exists", effect="NoExecute"),
    Toleration(key="node.kubernetes.io/unreachable", operator="Exists", effect="NoExecute"),
    Toleration(key="node.kubernetes.io/disk-pressure", operator="Exists", effect="NoSchedule"),
    Toleration(key="node.kubernetes.io/memory-pressure", operator="Exists", effect="NoSchedule"),
    Toleration(key="node.kubernetes.io/pid-pressure", operator="Exists", effect="NoSchedule"),
    Toleration(key="node.kubernetes.io/unschedulable", operator="Exists", effect="NoSchedule"),
)

HARD_EFFECTS = ("NoSchedule", "NoExecute")


def node_allocatable(node: Node) -> Resources:
    """Allocatable, with the kubelet's default pod slots when the node does not report them."""
    alloc = node.allocatable
    if PODS not in alloc:
        alloc = alloc + {PODS: DEFAULT_NODE_PODS}
    return alloc


def hostname_of(node: Node) -> str:
    return node.labels.get(HOSTNAME_LABEL) or node.name


def domain_of(node: Node, key: str) -> str | None:
    """The node's value for a topology key (hostname falls back to the node name, as the kubelet sets it)."""
    if key == HOSTNAME_LABEL:
        return hostname_of(node)
    return node.labels.get(key)


def untolerated_taint(tolerations: Sequence[Toleration], taints: Iterable[Taint], effects=HARD_EFFECTS) -> Taint | None:
    """The first taint with one of ``effects`` that no toleration tolerates."""
    for taint in taints:
        if taint.effect in effects and not any(t.tolerates(taint) for t in tolerations):
            return taint
    return None


def format_taint(taint: Taint) -> str:
    return f"{taint.key}={taint.value}:{taint.effect}" if taint.value else f"{taint.key}:{taint.effect}"


def node_selection_mismatch(pod: Pod, labels: Mapping[str, str], node_name: str = "") -> str | None:
    """Why nodeSelector or required node affinity (any one of the OR-terms) rejects a node with ``labels``, or None."""
    for key, value in pod.spec.node_selector.items():
        if labels.get(key) != value:
            have = labels.get(key)
            return (
                f"nodeSelector {key}={value} does not match (node has {key}={have})"
                if have is not None
                else (f"nodeSelector {key}={value} does not match (node has no {key} label)")
            )
    terms = pod.required_node_terms()
    if terms and not any(term.matches(dict(labels), node_name) for term in terms):
        return "required node affinity matches none of its terms"
    return None


def spread_selector_matches(constraint: TopologySpreadConstraint, pod_labels: Mapping[str, str], owner: Pod) -> bool:
    """Whether a pod with ``pod_labels`` counts for ``owner``'s spread constraint (labelSelector plus matchLabelKeys)."""
    selector = constraint.label_selector
    if selector is None:
        return False
    if not selector.matches(dict(pod_labels)):
        return False
    for key in constraint.match_label_keys:
        if key in owner.metadata.labels and pod_labels.get(key) != owner.metadata.labels[key]:
            return False
    return True


def _term_selects(term: PodAffinityTerm, pod: Pod, owner_namespace: str) -> bool:
    return term.selects(pod, owner_namespace)


def _required_terms(pod: Pod, anti: bool) -> list[PodAffinityTerm]:
    aff = pod.spec.affinity
    if aff is None:
        return []
    block = aff.pod_anti_affinity if anti else aff.pod_affinity
    return list(block.required_during_scheduling_ignored_during_execution) if block else []


def _resources_reason(pod: Pod, node: Node, pods_on_node: Sequence[Pod]) -> str | None:
    alloc = node_allocatable(node)
    used = Resources.sum(p.requests for p in pods_on_node if not p.is_terminal and p.key != pod.key)
    need = pod.requests
    for name, amount in need.items():
        if amount <= 0:
            continue
        free = alloc[name] - used[name]
        if amount > free:
            shown = Resources({name: amount}).format()
            free_shown = Resources({name: max(free, 0)}).format() or f"{name}=0"
            return f"insufficient {name} (pod requests {shown}, node has {free_shown} free)"
    return None


def _same_domain(other_node: str | None, node: Node, key: str, node_labels: Mapping[str, Mapping[str, str]]) -> bool:
    """Whether a pod bound to ``other_node`` is in the same topology domain as ``node`` for ``key``."""
    if other_node is None:
        return False
    if other_node == node.name:
        return True
    mine = domain_of(node, key)
    if mine is None:
        return False
    labels = node_labels.get(other_node)
    if labels is None:
        return False
    theirs = (labels.get(HOSTNAME_LABEL) or other_node) if key == HOSTNAME_LABEL else labels.get(key)
    return theirs == mine


def _inter_pod_reason(
    pod: Pod, node: Node, others: Sequence[Pod], node_labels: Mapping[str, Mapping[str, str]]
) -> str | None:
    # Required pod affinity: some selected pod must be in the node's domain (or none exists anywhere and the pod selects
    # itself, which lets the first replica of a self-affine group start anywhere).
    for term in _required_terms(pod, anti=False):
        if domain_of(node, term.topology_key) is None:
            return f"pod affinity: node has no {term.topology_key} label"
        selected = [q for q in others if _term_selects(term, q, pod.namespace)]
        if any(_same_domain(q.spec.node_name, node, term.topology_key, node_labels) for q in selected):
            continue
        if not selected and _term_selects(term, pod, pod.namespace):
            continue
        return f"pod affinity: no matching pod in the node's {term.topology_key} domain"
    for term in _required_terms(pod, anti=True):
        if domain_of(node, term.topology_key) is None:
            continue
        for q in others:
            if _term_selects(term, q, pod.namespace) and _same_domain(
                q.spec.node_name, node, term.topology_key, node_labels
            ):
                return f"pod anti-affinity: {q.key} is in the node's {term.topology_key} domain"
    # Symmetry: existing pods' required anti-affinity terms that select this pod.
    for q in others:
        for term in _required_terms(q, anti=True):
            if _term_selects(term, pod, q.namespace) and _same_domain(
                q.spec.node_name, node, term.topology_key, node_labels
            ):
                return f"pod anti-affinity of {q.key} ({term.topology_key}) rejects this pod"
    return None


def _spread_reason(
    pod: Pod,
    node: Node,
    others: Sequence[Pod],
    nodes: Sequence[Node],
) -> str | None:
    for constraint in pod.spec.topology_spread_constraints:
        if constraint.when_unsatisfiable != "DoNotSchedule":
            continue
        key = constraint.topology_key
        mine = domain_of(node, key)
        if mine is None:
            return f"topology spread: node has no {key} label"
        honor_affinity = constraint.node_affinity_policy != "Ignore"
        honor_taints = constraint.node_taints_policy == "Honor"
        eligible: dict[str, str] = {}  # node name -> domain
        for candidate in {n.name: n for n in [*nodes, node]}.values():
            domain = domain_of(candidate, key)
            if domain is None:
                continue
            if honor_affinity and node_selection_mismatch(pod, candidate.labels, candidate.name) is not None:
                continue
            if honor_taints and untolerated_taint(pod.spec.tolerations, candidate.spec.taints) is not None:
                continue
            eligible[candidate.name] = domain
        counts: dict[str, int] = dict.fromkeys(eligible.values(), 0)
        for q in others:
            if q.namespace != pod.namespace or q.spec.node_name not in eligible:
                continue
            if spread_selector_matches(constraint, q.metadata.labels, pod):
                counts[eligible[q.spec.node_name]] += 1
        minimum = min(counts.values()) if counts else 0
        if constraint.min_domains is not None and len(counts) < constraint.min_domains:
            minimum = 0
        self_match = 1 if spread_selector_matches(constraint, pod.metadata.labels, pod) else 0
        skew = counts.get(mine, 0) + self_match - minimum
        if skew > constraint.max_skew:
            return f"topology spread on {key}: skew would be {skew} > maxSkew {constraint.max_skew}"
    return None


def pod_fits_node(
    pod: Pod,
    node: Node,
    pods_on_node: list[Pod],
    all_bound_pods: list[Pod] | None = None,
    nodes: Sequence[Node] | None = None,
) -> str | None:
    """None when ``pod`` may be bound to ``node``, else the reason it may not (kube-scheduler's filters).

    ``pods_on_node`` are the pods bound to ``node`` (their requests use its allocatable). With ``all_bound_pods`` (every pod
    bound anywhere), required pod affinity/anti-affinity and DoNotSchedule topology spread are checked too; their domains
    come from the nodes' labels, so pass ``nodes`` (every node) for keys other than the hostname: without it only
    ``node`` itself is known and pods elsewhere count only when they are on ``node``.
    """
    unusable = node.unusable_reason()
    if unusable:
        return f"node {node.name} is {unusable}" if not unusable.startswith("HyperPod") else unusable
    taint = untolerated_taint(pod.spec.tolerations, node.spec.taints)
    if taint is not None:
        return f"taint {format_taint(taint)} is not tolerated"
    mismatch = node_selection_mismatch(pod, node.labels, node.name)
    if mismatch:
        return mismatch
    reason = _resources_reason(pod, node, pods_on_node)
    if reason:
        return reason
    if all_bound_pods is None:
        return None
    others = [q for q in all_bound_pods if q.key != pod.key and not q.is_terminal and q.spec.node_name]
    known_nodes = list(nodes or [])
    node_labels: dict[str, Mapping[str, str]] = {n.name: n.labels for n in known_nodes}
    node_labels[node.name] = node.labels
    reason = _inter_pod_reason(pod, node, others, node_labels)
    if reason:
        return reason
    return _spread_reason(pod, node, others, known_nodes)


__all__ = [
    "DAEMONSET_DEFAULT_TOLERATIONS",
    "DEFAULT_NODE_PODS",
    "domain_of",
    "format_taint",
    "hostname_of",
    "node_allocatable",
    "node_selection_mismatch",
    "pod_fits_node",
    "spread_selector_matches",
    "untolerated_taint",
]
