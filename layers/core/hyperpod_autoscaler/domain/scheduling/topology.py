"""Topology bookkeeping for pod affinity, anti-affinity and topology spread, on any topology key.

A ``Group`` is a set of pods picked by (topology key, label selector, namespaces): it counts its pods per domain (zone
value, hostname, ...), from the bound pods and from every placement the engine makes. Anti-affinity is symmetric in
Kubernetes, so a group also counts the pods that *own* a required anti-affinity term with its selector: a pod the selector
picks must stay out of those domains.

A ``Rule`` is one constraint of a class view over a group; ``quota`` says how many more pods of the class a domain may
take (0 = none; ``UNBOUNDED`` = the rule does not limit it). Hostname spreads use a minimum of 0 (a new node is always a
possible empty domain, as in Karpenter), which is stricter than kube-scheduler and so always feasible for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..k8s import HOSTNAME_LABEL, LabelSelector, PodAffinityTerm, TopologySpreadConstraint
from .vectors import UNBOUNDED


@dataclass(eq=False)
class Group:
    key: str
    selector: LabelSelector | None
    namespaces: frozenset[str] | None
    """None = every namespace."""
    extra_labels: tuple[tuple[str, str], ...] = ()
    """matchLabelKeys of a spread, resolved to the owner's values."""
    counts: dict[str, int] = field(default_factory=dict)
    total: int = 0
    owners: dict[str, int] = field(default_factory=dict)

    def selects(self, namespace: str, labels: dict[str, str]) -> bool:
        if self.selector is None:
            return False
        if self.namespaces is not None and namespace not in self.namespaces:
            return False
        for k, v in self.extra_labels:
            if labels.get(k) != v:
                return False
        return self.selector.matches(labels)

    def add(self, domain: str | None, k: int) -> None:
        self.total += k
        if domain is not None:
            self.counts[domain] = self.counts.get(domain, 0) + k

    def add_owner(self, domain: str | None, k: int) -> None:
        if domain is not None:
            self.owners[domain] = self.owners.get(domain, 0) + k


@dataclass(eq=False)
class Rule:
    kind: str  # "spread" | "affinity" | "anti" | "inverse"
    group: Group
    self_match: bool
    max_skew: int = 0
    min_domains: int | None = None
    domains: frozenset[str] = frozenset()
    """Spread: the eligible domains (where the class could run), for the minimum count."""

    @property
    def key(self) -> str:
        return self.group.key

    def describe(self) -> str:
        if self.kind == "spread":
            return f"topology spread on {self.key} (maxSkew {self.max_skew})"
        if self.kind == "affinity":
            return f"pod affinity on {self.key}"
        if self.kind == "anti":
            return f"pod anti-affinity on {self.key}"
        return f"another pod's anti-affinity on {self.key}"

    def quota(self, domain: str | None) -> int:
        """How many more pods of the class the domain may take under this rule."""
        g = self.group
        if self.kind == "spread":
            if domain is None:
                return 0
            if self.key == HOSTNAME_LABEL or (self.min_domains is not None and len(self.domains) < self.min_domains):
                minimum = 0
            else:
                counts = g.counts
                minimum = min((counts.get(d, 0) for d in self.domains), default=0)
            have = g.counts.get(domain, 0)
            if self.self_match:
                return max(0, minimum + self.max_skew - have)
            return UNBOUNDED if have - minimum <= self.max_skew else 0
        if self.kind == "affinity":
            if domain is None:
                return 0
            if g.counts.get(domain, 0) > 0:
                return UNBOUNDED
            return UNBOUNDED if g.total == 0 and self.self_match else 0
        if self.kind == "anti":
            if domain is None:
                return UNBOUNDED
            if g.counts.get(domain, 0) > 0:
                return 0
            return 1 if self.self_match else UNBOUNDED
        # inverse: pods owning an anti-affinity term that picks this class are in the domain
        if domain is None:
            return UNBOUNDED
        return 0 if g.owners.get(domain, 0) > 0 else UNBOUNDED


class Topology:
    """All groups of one scheduling run, deduplicated by what they select."""

    def __init__(self) -> None:
        self.groups: dict[tuple, Group] = {}

    def group(
        self,
        key: str,
        selector: LabelSelector | None,
        namespaces: frozenset[str] | None,
        extra: tuple[tuple[str, str], ...] = (),
    ) -> Group:
        sig = (key, selector.model_dump_json() if selector is not None else None, namespaces, extra)
        found = self.groups.get(sig)
        if found is None:
            found = Group(key, selector, namespaces, extra)
            self.groups[sig] = found
        return found

    def term_group(self, term: PodAffinityTerm, owner_namespace: str) -> Group:
        if term.namespaces:
            namespaces: frozenset[str] | None = frozenset(term.namespaces)
        elif term.namespace_selector is not None:
            namespaces = None
        else:
            namespaces = frozenset({owner_namespace})
        return self.group(term.topology_key, term.label_selector, namespaces)

    def spread_group(self, spread: TopologySpreadConstraint, namespace: str, labels: dict[str, str]) -> Group:
        extra = tuple(sorted((k, labels[k]) for k in spread.match_label_keys if k in labels))
        return self.group(spread.topology_key, spread.label_selector, frozenset({namespace}), extra)
