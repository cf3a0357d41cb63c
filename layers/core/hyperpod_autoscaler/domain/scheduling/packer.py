"""The packing engine: places pod classes on existing capacity, then on new node claims, GPU-first and cost-aware.

Order: classes sorted by GPUs (then Neuron devices) descending, then by dominant share of the largest node, then CPU and
memory: GPUs are where the money is, so GPU pods choose their nodes first and CPU pods fill what is left around them.

For each class (all its pods at once, in chunks as large as the constraints allow):
1. existing nodes and in-flight capacity (first fit, in name order);
2. claims opened earlier in this run, when the pods fit without making the claim's cheapest offering dearer;
3. new claims: the offering with the lowest price per pod placed, within the highest-weight tier of NodePools that can
   take the pod; for pods without topology rules, the lowest price over the worth of the pods it would hold, counting
   pods of later classes the node would also take (a bounded lookahead, see ``Packer._lookahead``).
A claim keeps every offering that still fits its pods (flexible), and the cheapest one is chosen at the end.
"""

from __future__ import annotations

import bisect
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from ..k8s import HOSTNAME_LABEL, Pod
from ..plan import InflightClaim, NodeClaim, Plan, PlanInput, PlanOptions
from ..resources import CPU, GPU, MEMORY, NEURON
from .explain import explain
from .fit import format_taint, untolerated_taint
from .hostports import conflict, with_host_port_rules
from .offerings import (
    Bin,
    DaemonSetIndex,
    Offering,
    OfferingSet,
    Pool,
    build_bins,
    build_inflight_bins,
    build_offerings,
)
from .podclasses import PodClass, View, class_key, skip_reason
from .topology import Group, Rule, Topology
from .vectors import (
    UNBOUNDED,
    Space,
    Vec,
    count_fit,
    count_fit_in,
    fits,
    fits_sum,
    pack_into,
    vadd,
    vscale,
    vsub,
)

_T = TypeVar("_T")
ALL_EFFECTS = ("NoSchedule", "NoExecute", "PreferNoSchedule")
#: How many later classes a new node's lookahead may consider, and how many candidate offerings it evaluates in full.
LOOKAHEAD_CLASSES = 24
LOOKAHEAD_OFFERINGS = 8
#: How many of the largest offerings the lookahead evaluates besides those with the lowest price per pod.
LOOKAHEAD_LARGEST = 4


class _BestTable:
    """For one class, the offerings of its tier with how many of its pods each holds; answers "which offering gives the
    lowest price per pod when at most L pods are placed" in O(log n). With ``cnt >= L`` the price per pod is price/L (the
    cheapest such offering wins); with ``cnt < L`` it is price/cnt."""

    __slots__ = ("by_cnt", "cnts", "prefix_cheapest", "suffix_unit")

    def __init__(self, feasible: list[tuple[int, Offering]]) -> None:
        self.by_cnt = sorted(feasible, key=lambda t: (-t[0], t[1].price, t[1].idx))
        self.cnts = [-k for k, _ in self.by_cnt]  # ascending, for bisect
        self.prefix_cheapest: list[tuple[float, int, int]] = []  # best (price, idx, position) among by_cnt[: i + 1]
        best: tuple[float, int, int] | None = None
        for i, (_k, o) in enumerate(self.by_cnt):
            first = (o.price, o.idx, i)
            if best is None or first < best:
                best = first
            self.prefix_cheapest.append(best)
        self.suffix_unit: list[tuple[float, int, float, int, int] | None] = [None] * (len(self.by_cnt) + 1)
        for i in range(len(self.by_cnt) - 1, -1, -1):
            k, o = self.by_cnt[i]
            unit = (o.price / k, -k, o.price, o.idx, i)
            nxt = self.suffix_unit[i + 1]
            self.suffix_unit[i] = unit if nxt is None or unit < nxt else nxt

    def best(self, limit: int) -> tuple[Offering, int]:
        import bisect

        split = bisect.bisect_right(self.cnts, -limit)  # by_cnt[:split] have cnt >= limit
        choice: tuple | None = None
        if split > 0:
            price, idx, i = self.prefix_cheapest[split - 1]
            choice = (price / limit, -limit, price, idx, i, limit)
        rest = self.suffix_unit[split]
        if rest is not None:
            unit, negk, price, idx, i = rest
            cand = (unit, negk, price, idx, i, -negk)
            if choice is None or cand < choice:
                choice = cand
        assert choice is not None
        return self.by_cnt[choice[4]][1], choice[5]


class Claim:
    """A new node being planned: its pods and every offering that still fits them (sorted by price)."""

    __slots__ = ("counts", "hostname", "idx", "limit_off", "lo", "offerings", "pods", "tier", "used")

    def __init__(self, idx: int, offerings: list[Offering], tier: int, used: Vec) -> None:
        self.idx = idx
        self.hostname = f"<new-node-{idx}>"
        self.offerings = offerings
        self.tier = tier
        self.lo = 0
        self.used = used
        self.pods: list[Pod] = []
        self.counts: dict[tuple[int, int], int] = defaultdict(int)
        self.limit_off: Offering | None = None

    @property
    def chosen(self) -> Offering:
        return self.offerings[self.lo]

    @property
    def price(self) -> float:
        return self.offerings[self.lo].price


@dataclass(slots=True)
class Placement:
    """One class of pods being placed at one level of relaxed preferences: what each candidate node is checked against,
    and the candidates."""

    cls: PodClass
    level: int
    view: View
    rules: list[Rule]
    """The topology rules (spread, affinity, anti-affinity) the pods' domains must keep."""
    fix: tuple[str, ...]
    """Label keys a claim must settle on one value of before it takes the pods."""
    dkey: str | None
    """The one topology key other than the hostname that the rules count over (None: none, or several)."""
    pods: list[Pod]
    lists: dict[str | None, list] = field(default_factory=lambda: defaultdict(list))
    """Candidate existing nodes and open claims, per value of ``dkey`` (one list under None)."""
    cursors: dict[str | None, int] = field(default_factory=lambda: defaultdict(int))
    """Per list, the first candidate that may still take a pod."""

    @property
    def host_only(self) -> bool:
        """Whether only the hostname (and ``dkey``) rules count: a node that refuses for them refuses for good."""
        return all(r.key == HOSTNAME_LABEL or r.key == self.dkey for r in self.rules)


def limits_ok(o: Offering, current: Offering | None) -> bool:
    """Whether a claim may take ``o`` within its NodePool's limits (``current``: the offering it holds now, if any)."""
    pool = o.pool
    if not pool.limits:
        return True
    remove = current.capacity if current is not None and current.pool is pool else None
    return pool.limit_excess(o.capacity, remove) is None


class ClaimIndex:
    """The open claims by how much of each resource they could still take (``reach``: the most over the claim's offering
    and the larger ones at the same price, less what it holds), so that a class is offered the claims that may take it
    without a scan of every claim. During placement a claim only fills up and its offerings only narrow, so a reach
    recorded earlier is never below the true one: the index may offer a claim that then refuses, never hide one."""

    def __init__(self, dims: int) -> None:
        self.by_dim: list[list[tuple[int, int]]] = [[] for _ in range(dims)]
        """Per resource, (reach, claim index) pairs in order."""
        self.reach: dict[int, Vec] = {}

    def update(self, idx: int, reach: Vec) -> None:
        old = self.reach.get(idx)
        if old == reach:
            return
        for d, keys in enumerate(self.by_dim):
            if old is not None:
                del keys[bisect.bisect_left(keys, (old[d], idx))]
            bisect.insort(keys, (reach[d], idx))
        self.reach[idx] = reach

    def candidates(self, req: Vec) -> list[int]:
        """Indexes (in order) of the claims whose reach may hold ``req``: those with room in the resource that the
        fewest claims have room for."""
        best: list[tuple[int, int]] | None = None
        start = 0
        for d, q in enumerate(req):
            if q <= 0:
                continue
            keys = self.by_dim[d]
            at = bisect.bisect_left(keys, (q, -1))
            if best is None or len(keys) - at < len(best) - start:
                best, start = keys, at
        if best is None:
            return sorted(self.reach)
        return sorted(idx for _reach, idx in best[start:])


def _keep(offerings: list[Offering], pred: Callable[[Offering], bool]) -> list[Offering]:
    """The offerings ``pred`` keeps: the list itself when it keeps them all (so that its caches stay shared)."""
    out = [o for o in offerings if pred(o)]
    return offerings if len(out) == len(offerings) else out


def first_fitting(offerings: list[Offering], used: Vec, start: int, current: Offering | None) -> int:
    """Index of the cheapest offering from ``start`` that holds ``used`` within its pool's limits, or -1."""
    for i in range(start, len(offerings)):
        o = offerings[i]
        if fits(used, o.alloc) and limits_ok(o, current):
            return i
    return -1


class Packer:
    def __init__(self, inp: PlanInput, opts: PlanOptions) -> None:
        self.inp = inp
        self.opts = opts
        self.started = time.perf_counter()
        self.skipped: dict[str, str] = {}
        self.unschedulable: dict[str, str] = {}
        self.relaxed: dict[str, list[str]] = {}
        # pods to place, deduplicated, skipping those the engine never places
        pods: list[Pod] = []
        seen: set[str] = set()
        for pod in inp.pods:
            if pod.key in seen:
                continue
            seen.add(pod.key)
            why = skip_reason(pod)
            if why:
                self.skipped[pod.key] = why
            else:
                pods.append(with_host_port_rules(pod))
        extra: set[str] = set()
        for pod in pods:
            extra.update(pod.requests)
        for ds in inp.daemonsets:
            extra.update(ds.requests)
        self.space = Space(extra)
        self.daemonsets = DaemonSetIndex(inp.daemonsets)
        self.offer: OfferingSet = build_offerings(
            inp.nodepools,
            inp.nodeclasses,
            inp.cluster,
            inp.catalog,
            self.daemonsets,
            self.space,
            inp.unavailable_groups,
        )
        self.pools: list[Pool] = self.offer.pools
        moving = {p.key for p in pods}
        bound = [with_host_port_rules(p) for p in inp.bound_pods]
        self.bins, self.bound_by_node = build_bins(inp.nodes, bound, moving, self.daemonsets, self.space, self.pools)
        self.inflight = build_inflight_bins(
            inp.inflight, self.pools, inp.catalog, inp.cluster.name, self.daemonsets, self.space, self.offer.warnings
        )
        for _claim, bins in self.inflight:
            self.bins.extend(bins)
        self.claims: list[Claim] = []
        self.claim_index = ClaimIndex(len(self.space.names))
        self.topo = Topology()
        # caches
        self._compat_off: dict[tuple, list[Offering]] = {}
        self._compat_bins: dict[tuple, list[Bin]] = {}
        self._list_cache: dict[tuple, tuple[list[Offering], object]] = {}
        """Values derived from offering lists (``_per_list``): filtered lists, whether they have limits, ..."""
        self._rules: dict[tuple[int, int], list[Rule]] = {}
        self._fix: dict[tuple[int, int], tuple[str, ...]] = {}
        self._selected: dict[int, list[Group]] = {}
        self._owned: dict[int, list[Group]] = {}
        self._u: dict[tuple[int, int], float] = {}
        self.max_new = opts.max_new_nodes if opts.allow_new_nodes else 0
        self._pending_inflight: list[tuple[PodClass, Bin, Pod]] = []
        self.live_claims = 0
        self.pod_class: dict[str, tuple[int, int]] = {}
        self.improve_stats: dict[str, object] = {}
        self._allowed_idx: dict[tuple, frozenset[int]] = {}
        self._best_cache: dict[tuple, tuple[list[Offering], _BestTable | None]] = {}
        self._domain_cache: dict[tuple[int, str], tuple[list[Offering], list[str]]] = {}
        self._equal_price_alts: dict[tuple[int, int], tuple[list[Offering], list[Vec]]] = {}
        self._dvalues: dict[tuple, list[str]] = {}
        self._promised: dict[int, int] = defaultdict(int)
        self._unit: dict[int, float] = {}
        self._rp: list[float] | None = None
        self._filler_list: list[tuple[int, PodClass, frozenset[int]]] | None = None
        self._lookahead_cands: dict[int, tuple[_BestTable, list[Offering]]] = {}
        # classes
        self.classes = self._build_classes(pods)
        self.class_by_idx = {c.idx: c for c in self.classes}
        self._class_pos = {c.idx: i for i, c in enumerate(self.classes)}
        self._place_inflight_pods()
        self._init_topology()

    # --- setup -------------------------------------------------------------------------------------------------------

    def _build_classes(self, pods: list[Pod]) -> list[PodClass]:
        by_key: dict[tuple, PodClass] = {}
        for pod in pods:
            key = class_key(pod)
            cls = by_key.get(key)
            if cls is None:
                cls = PodClass(
                    idx=len(by_key),
                    key=key,
                    pods=[],
                    req=self.space.vec(pod.requests),
                    namespace=pod.namespace,
                    labels=dict(pod.metadata.labels),
                )
                by_key[key] = cls
            cls.add(pod)
        ref = [1] * len(self.space.names)
        for o in self.offer.offerings:
            ref = [max(a, b) for a, b in zip(ref, o.alloc, strict=True)]
        for b in self.bins:
            ref = [max(a, min(b.alloc[i], 1 << 50)) for i, a in enumerate(ref)]
        i_cpu, i_mem = self.space.index[CPU], self.space.index[MEMORY]
        i_gpu, i_neuron = self.space.index[GPU], self.space.index[NEURON]
        for cls in by_key.values():
            r = cls.req
            dominant = max(r[i_cpu] / ref[i_cpu], r[i_mem] / ref[i_mem])
            cls.sort_key = (-r[i_gpu], -r[i_neuron], -dominant, -r[i_cpu], -r[i_mem], repr(cls.key))
        return sorted(by_key.values(), key=lambda c: c.sort_key)

    def _place_inflight_pods(self) -> None:
        """Pods an in-flight claim was made for are already placed there (first fit over its virtual nodes; one that
        fits none still rides the first, so that a change in the allocatable model never launches it twice). When the
        claim dropped launches, the pods its remaining nodes cannot hold are planned again instead."""
        wanted: dict[str, tuple[InflightClaim, list[Bin]]] = {}
        for claim, bins in self.inflight:
            for key in claim.pods:
                wanted[key] = (claim, bins)
        if not wanted:
            return
        for cls in self.classes:
            keep: list[Pod] = []
            for pod in cls.pods:
                found = wanted.get(pod.key)
                if found is None:
                    keep.append(pod)
                    continue
                claim, wanted_bins = found
                target = next((b for b in wanted_bins if fits_sum(b.used, cls.req, b.alloc)), None)
                if target is None and (claim.dropped or not wanted_bins):
                    keep.append(pod)
                    continue
                target = target or wanted_bins[0]
                target.used = vadd(target.used, cls.req)
                target.pods.append(pod.key)
                self._pending_inflight.append((cls, target, pod))
            cls.pods = keep

    def _init_topology(self) -> None:
        """Create every group the classes' views and the bound pods' anti-affinity terms need, and count bound pods."""
        owner_groups: list[Group] = []
        for cls in self.classes + [c for c, _, _ in self._pending_inflight]:
            view = cls.view(0)
            if view is None:
                continue
            for s in view.spreads:
                self.topo.spread_group(s, cls.namespace, cls.labels)
            for t in view.affinity:
                self.topo.term_group(t, cls.namespace)
            for t in view.anti_affinity:
                self.topo.term_group(t, cls.namespace)
            for t in self._required_anti(cls.rep):
                owner_groups.append(self.topo.term_group(t, cls.namespace))
        bound: list[tuple[Pod, Bin]] = []
        bins_by_name = {b.node_name: b for b in self.bins if not b.key.startswith("inflight:")}
        for node_name, pods in self.bound_by_node.items():
            b = bins_by_name.get(node_name)
            if b is None:
                continue
            for pod in pods:
                bound.append((pod, b))
                for t in self._required_anti(pod):
                    owner_groups.append(self.topo.term_group(t, pod.namespace))
        self._owner_groups = {id(g): g for g in owner_groups}
        groups = list(self.topo.groups.values())
        for pod, b in bound:
            for g in groups:
                if g.selects(pod.namespace, pod.metadata.labels):
                    g.add(self._bin_domain(b, g.key), 1)
            for t in self._required_anti(pod):
                self.topo.term_group(t, pod.namespace).add_owner(self._bin_domain(b, t.topology_key), 1)
        for cls, b, _pod in self._pending_inflight:
            self._record(cls, b, None, 1)

    @staticmethod
    def _required_anti(pod: Pod) -> list:
        aff = pod.spec.affinity
        if aff is None or aff.pod_anti_affinity is None:
            return []
        return list(aff.pod_anti_affinity.required_during_scheduling_ignored_during_execution)

    # --- compatibility -----------------------------------------------------------------------------------------------

    def offering_mismatch(self, view: View, o: Offering) -> str | None:
        port = conflict(view.host_ports, o.ds_ports) if view.host_ports else None
        if port is not None:
            return f"host port {port[0]}/{port[1]} is held by a DaemonSet there"
        taint = untolerated_taint(view.tolerations, o.taints, ALL_EFFECTS)
        if taint is not None:
            return f"taint {format_taint(taint)} is not tolerated"
        req = view.node_req.first_mismatch(o.labels)
        if req is not None:
            have = o.labels.get(req.key)
            return (
                f"node affinity/selector {req} does not match ({req.key}={have})"
                if have is not None
                else (f"node affinity/selector {req} does not match (no {req.key} label)")
            )
        if not view.field_req.matches({}):
            return "matchFields on metadata.name cannot match a new node"
        return None

    def bin_mismatch(self, view: View, b: Bin) -> str | None:
        if b.unusable:
            return b.unusable
        port = conflict(view.host_ports, b.ds_ports) if view.host_ports else None
        if port is not None:
            return f"host port {port[0]}/{port[1]} is held by a DaemonSet there"
        taint = untolerated_taint(view.tolerations, b.taints, ALL_EFFECTS)
        if taint is not None:
            return f"taint {format_taint(taint)} is not tolerated"
        req = view.node_req.first_mismatch(b.labels)
        if req is not None:
            return f"node affinity/selector {req} does not match"
        if not view.field_req.matches({"metadata.name": b.node_name}):
            return "matchFields on metadata.name does not match"
        return None

    def compat_offerings(self, view: View) -> list[Offering]:
        """Offerings a view accepts, sorted by (tier, price, index)."""
        found = self._compat_off.get(view.node_key)
        if found is None:
            found = [o for o in self.offer.offerings if self.offering_mismatch(view, o) is None]
            found.sort(key=lambda o: (o.tier, o.price, o.idx))
            self._compat_off[view.node_key] = found
        return found

    def compat_bins(self, view: View) -> list[Bin]:
        found = self._compat_bins.get(view.node_key)
        if found is None:
            found = [b for b in self.bins if self.bin_mismatch(view, b) is None]
            self._compat_bins[view.node_key] = found
        return found

    def _per_list(self, offerings: list[Offering], key: tuple, compute: Callable[[], _T]) -> _T:
        """What ``compute`` derives from an offering list, cached by the list's identity and ``key`` (the lists are
        shared and never changed; the list itself is kept with the value, so a reused id is not mistaken for it)."""
        cache_key = (id(offerings), key)
        hit = self._list_cache.get(cache_key)
        if hit is None or hit[0] is not offerings:
            hit = (offerings, compute())
            self._list_cache[cache_key] = hit
        return hit[1]  # type: ignore[return-value]  # stored by this method with the same key

    def _filter(self, offerings: list[Offering], key: tuple, pred: Callable[[Offering], bool]) -> list[Offering]:
        return self._per_list(offerings, key, lambda: _keep(offerings, pred))

    def view_filter(self, offerings: list[Offering], view: View) -> list[Offering]:
        """The offerings of a list that a view's pods accept (cached by the list's identity and the view)."""

        def accepted() -> list[Offering]:
            allowed = self.allowed_offerings(view)
            return _keep(offerings, lambda o: o.idx in allowed)

        return self._per_list(offerings, ("view", view.node_key), accepted)

    def allowed_offerings(self, view: View) -> frozenset[int]:
        """The indexes of the offerings a view's pods accept (cached by the view's node key)."""
        allowed = self._allowed_idx.get(view.node_key)
        if allowed is None:
            allowed = frozenset(o.idx for o in self.compat_offerings(view))
            self._allowed_idx[view.node_key] = allowed
        return allowed

    def _domain_values_of(self, offerings: list[Offering], key: str) -> list[str]:
        """The sorted values of ``key`` over an offering list (cached by the list's identity: lists are shared)."""
        cache_key = (id(offerings), key)
        hit = self._domain_cache.get(cache_key)
        if hit is not None and hit[0] is offerings:
            return hit[1]
        values = sorted({v for o in offerings if (v := o.labels.get(key)) is not None})
        self._domain_cache[cache_key] = (offerings, values)
        return values

    def _value_filter(self, offerings: list[Offering], key: str, value: str | None) -> list[Offering]:
        return self._filter(offerings, ("value", key, value), lambda o: o.labels.get(key) == value)

    # --- topology ----------------------------------------------------------------------------------------------------

    def _bin_domain(self, b: Bin, key: str) -> str | None:
        return b.hostname if key == HOSTNAME_LABEL else b.labels.get(key)

    def _claim_domain(self, c: Claim, key: str) -> str | None:
        if key == HOSTNAME_LABEL:
            return c.hostname
        return c.offerings[c.lo].labels.get(key)

    def selected_by(self, cls: PodClass) -> list[Group]:
        found = self._selected.get(cls.idx)
        if found is None:
            found = [g for g in self.topo.groups.values() if g.selects(cls.namespace, cls.labels)]
            self._selected[cls.idx] = found
        return found

    def owned_anti(self, cls: PodClass) -> list[Group]:
        found = self._owned.get(cls.idx)
        if found is None:
            found = [self.topo.term_group(t, cls.namespace) for t in self._required_anti(cls.rep)]
            self._owned[cls.idx] = found
        return found

    def rules(self, cls: PodClass, level: int, view: View) -> list[Rule]:
        found = self._rules.get((cls.idx, level))
        if found is not None:
            return found
        out: list[Rule] = []
        ns, labels = cls.namespace, cls.labels
        for s in view.spreads:
            g = self.topo.spread_group(s, ns, labels)
            domains: set[str] = set()
            if s.topology_key != HOSTNAME_LABEL:
                for b in self.compat_bins(view):
                    d = self._bin_domain(b, s.topology_key)
                    if d is not None:
                        domains.add(d)
                for o in self.compat_offerings(view):
                    d = o.labels.get(s.topology_key)
                    if d is not None:
                        domains.add(d)
            out.append(Rule("spread", g, g.selects(ns, labels), s.max_skew, s.min_domains, frozenset(domains)))
        for t in view.affinity:
            g = self.topo.term_group(t, ns)
            out.append(Rule("affinity", g, g.selects(ns, labels)))
        for t in view.anti_affinity:
            g = self.topo.term_group(t, ns)
            out.append(Rule("anti", g, g.selects(ns, labels)))
        for g in self.selected_by(cls):
            if id(g) in self._owner_groups:
                out.append(Rule("inverse", g, True))
        self._rules[(cls.idx, level)] = out
        return out

    def movable(self, c: Claim) -> bool:
        """Whether the pods of claim ``c`` may move to other nodes: none carries a topology rule (spread, affinity or
        anti-affinity of its own) or is counted by someone else's, so moving them can never break one."""
        for cls_idx, level in c.counts:
            cls = self.class_by_idx[cls_idx]
            view = cls.view(level)
            if view is None or self.rules(cls, level, view) or self.selected_by(cls) or self.owned_anti(cls):
                return False
        return True

    def fix_keys(self, cls: PodClass, level: int, rules: list[Rule]) -> tuple[str, ...]:
        """Keys (other than the hostname) whose value a claim must settle before pods of this class join it."""
        found = self._fix.get((cls.idx, level))
        if found is None:
            keys = (
                {r.key for r in rules} | {g.key for g in self.selected_by(cls)} | {g.key for g in self.owned_anti(cls)}
            )
            keys.discard(HOSTNAME_LABEL)
            found = tuple(sorted(keys))
            self._fix[(cls.idx, level)] = found
        return found

    def _record(self, cls: PodClass, b: Bin | None, c: Claim | None, k: int) -> None:
        for g in self.selected_by(cls):
            d = self._bin_domain(b, g.key) if b is not None else self._claim_domain(c, g.key)  # type: ignore[arg-type]
            g.add(d, k)
        for g in self.owned_anti(cls):
            d = self._bin_domain(b, g.key) if b is not None else self._claim_domain(c, g.key)  # type: ignore[arg-type]
            g.add_owner(d, k)

    @staticmethod
    def _quota(rules: list[Rule], domain_of: Callable[[str], str | None], skip_key: str | None = None) -> int:
        q = UNBOUNDED
        for r in rules:
            if r.key == skip_key:
                continue
            v = r.quota(domain_of(r.key))
            if v < q:
                q = v
                if q == 0:
                    return 0
        return q

    # --- placement ---------------------------------------------------------------------------------------------------

    def run(self) -> None:
        failed: list[tuple[PodClass, int, list[Pod]]] = []
        for cls in self.classes:
            left, level = self._place_all_levels(cls, cls.pods, 0)
            if left:
                failed.append((cls, level, left))
        # Pods whose affinity targets were placed later get another chance, until nothing moves.
        while failed:
            progress = False
            again = []
            for cls, level, pods in failed:
                left, level = self._place_all_levels(cls, pods, level)
                if len(left) < len(pods):
                    progress = True
                if left:
                    again.append((cls, level, left))
            failed = again
            if not progress:
                break
        for cls, level, pods in failed:
            view = cls.view(level)
            assert view is not None
            reason = self.explain(cls, level, view)
            for pod in pods:
                self.unschedulable[pod.key] = reason
        self.downsize()

    def _place_all_levels(self, cls: PodClass, pods: list[Pod], level: int) -> tuple[list[Pod], int]:
        while True:
            view = cls.view(level)
            assert view is not None
            pods = self._place(cls, level, view, pods)
            if not pods:
                return [], level
            if cls.view(level + 1) is None:
                return pods, level
            level += 1
            for pod in pods:
                self.relaxed[pod.key] = list(cls.view(level).relaxed)  # type: ignore[union-attr]

    def _place(self, cls: PodClass, level: int, view: View, pods: list[Pod]) -> list[Pod]:
        rules = self.rules(cls, level, view)
        zkeys = sorted({r.key for r in rules if r.key != HOSTNAME_LABEL})
        dkey = zkeys[0] if len(zkeys) == 1 else None
        pl = Placement(cls, level, view, rules, self.fix_keys(cls, level, rules), dkey, pods)
        lists = pl.lists
        req = cls.req
        n = len(pods)
        pos = 0
        for b in self.compat_bins(view):
            if fits_sum(b.used, req, b.alloc):
                lists[self._bin_domain(b, dkey) if dkey else None].append(b)
        claims = self.claims
        for i in self.claim_index.candidates(req):
            c = claims[i]
            if not fits_sum(c.used, req, c.offerings[c.lo].alloc) and not self._may_fit_equal_price(c, req):
                continue
            offs = self.view_filter(c.offerings, view)
            if not offs:
                continue
            if dkey:
                for value in self._domain_values_of(offs, dkey):
                    lists[value].append(c)
            else:
                lists[None].append(c)
        dvalues = self._domain_values(cls, level, view, dkey, lists) if dkey else []
        while pos < n:
            remaining = n - pos
            if dkey:
                zone_q: dict[str | None, int] = {}
                for value in dvalues:
                    q = self._quota([r for r in rules if r.key == dkey], lambda _k, v=value: v)  # type: ignore[misc]
                    if q > 0:
                        zone_q[value] = q
                order: list[str | None] = sorted(
                    zone_q,
                    key=lambda v: (-min(zone_q[v], remaining), self._dcount(rules, dkey, v), v or ""),
                )
            else:
                zone_q = {None: UNBOUNDED}
                order = [None]
            if not order:
                break
            placed = 0
            for dval in order:
                placed = self._fill_from(pl, dval, min(zone_q[dval], remaining), pos)
                if placed:
                    break
            if not placed:
                for dval in order:
                    placed = self._open_claim(pl, dval, min(zone_q[dval], remaining), pos)
                    if placed:
                        break
            if not placed:
                break
            pos += placed
        return pods[pos:]

    def _dcount(self, rules: list[Rule], key: str, value: str | None) -> int:
        return sum(r.group.counts.get(value, 0) for r in rules if r.key == key and r.kind == "spread" and value)

    def _domain_values(
        self, cls: PodClass, level: int, view: View, key: str, lists: dict[str | None, list]
    ) -> list[str]:
        values = {v for v in lists if v is not None}
        static = self._dvalues.get((view.node_key, key))
        if static is None:
            found = {o.labels.get(key) for o in self.compat_offerings(view)}
            found.update(self._bin_domain(b, key) for b in self.compat_bins(view))
            static = sorted(v for v in found if v is not None)
            self._dvalues[(view.node_key, key)] = static
        values.update(static)
        return sorted(values)

    def _equal_price_allocs(self, c: Claim) -> list[Vec]:
        """The allocatables of the claim's other offerings at its price (larger types at an equal price), cached per
        (offering list, position): the same type in other zones is listed once."""
        offs = c.offerings
        key = (id(offs), c.lo)
        hit = self._equal_price_alts.get(key)
        if hit is None or hit[0] is not offs:
            base = offs[c.lo]
            alts: list[Vec] = []
            for i in range(c.lo + 1, len(offs)):
                o = offs[i]
                if o.price != base.price:
                    break
                if o.alloc != base.alloc and o.alloc not in alts:
                    alts.append(o.alloc)
            hit = (offs, alts)
            self._equal_price_alts[key] = hit
        return hit[1]

    def _may_fit_equal_price(self, c: Claim, req: Vec) -> bool:
        """Whether another offering of the claim at the same price (a larger type at an equal price) would take ``req``."""
        used = c.used
        for alloc in self._equal_price_allocs(c):
            if fits_sum(used, req, alloc):
                return True
        return False

    def _any_limits(self, offerings: list[Offering]) -> bool:
        """Whether any of the offerings' NodePools has limits (cached per offering list)."""
        return self._per_list(offerings, ("limits",), lambda: any(o.pool.limits for o in offerings))

    def _one_value(self, offerings: list[Offering], key: str) -> bool:
        """Whether the offerings all carry one value (or all none) of label ``key`` (cached per offering list)."""
        return self._per_list(offerings, ("one value", key), lambda: len({o.labels.get(key) for o in offerings}) == 1)

    def _index_claim(self, c: Claim) -> None:
        """Record the claim's reach in the claim index (after it took pods or was opened)."""
        most = c.offerings[c.lo].alloc
        for alloc in self._equal_price_allocs(c):
            most = tuple(max(a, b) for a, b in zip(most, alloc, strict=True))
        self.claim_index.update(c.idx, vsub(most, c.used))

    def _fill_from(self, pl: Placement, value: str | None, limit: int, pos: int) -> int:
        """Place up to ``limit`` of the pods from ``pos`` on the first candidate with domain value ``value`` (existing
        bin or open claim) that takes any. A candidate that cannot take one is skipped for the rest of this class when
        that can only stay so."""
        candidates = pl.lists[value]
        cursors = pl.cursors
        i = cursors[value]
        while i < len(candidates):
            cand = candidates[i]
            if isinstance(cand, Bin):
                k, permanent = self._bin_take(cand, pl, limit)
                if k:
                    self._commit_bin(cand, pl.cls, k, pl.pods, pos)
                    cursors[value] = i
                    return k
            else:
                k, permanent = self._claim_take(cand, pl, value, limit, pos)
                if k:
                    cursors[value] = i
                    return k
            if permanent and i == cursors[value]:
                cursors[value] = i + 1
            i += 1
        return 0

    def _bin_take(self, b: Bin, pl: Placement, limit: int) -> tuple[int, bool]:
        """How many pods an existing node takes (at most ``limit``), and whether a refusal can only stay so."""
        k = count_fit_in(pl.cls.req, b.used, b.alloc)
        if k <= 0:
            return 0, True
        q = self._quota(pl.rules, lambda key: self._bin_domain(b, key))
        if q <= 0:
            return 0, pl.host_only
        return min(k, q, limit), False

    def _commit_bin(self, b: Bin, cls: PodClass, k: int, pods: list[Pod], pos: int) -> None:
        b.used = vadd(b.used, vscale(cls.req, k))
        b.pods.extend(p.key for p in pods[pos : pos + k])
        self._record(cls, b, None, k)

    def _claim_take(self, c: Claim, pl: Placement, value: str | None, limit: int, pos: int) -> tuple[int, bool]:
        """Put up to ``limit`` of the pods from ``pos`` on an open claim without raising its price; returns how many,
        and whether a refusal can only stay so."""
        req = pl.cls.req
        offs = self.view_filter(c.offerings, pl.view)
        if not offs:
            return 0, True
        price = c.offerings[c.lo].price
        for key in pl.fix:
            if self._one_value(offs, key):
                continue
            if key == pl.dkey:
                want = value
            else:
                # settle the key on the value of the cheapest offering that takes the pod
                j = first_fitting(offs, vadd(c.used, req), 0, c.limit_off)
                if j < 0:
                    return 0, True
                want = offs[j].labels.get(key)
            offs = self._value_filter(offs, key, want)
            if not offs:
                return 0, True
        same = offs is c.offerings
        start = c.lo if same else 0
        j = first_fitting(offs, vadd(c.used, req), start, c.limit_off)
        if j < 0 or offs[j].price > price:
            return 0, True
        chosen = offs[j]
        k = count_fit_in(req, c.used, chosen.alloc)

        def domain(key: str) -> str | None:
            return c.hostname if key == HOSTNAME_LABEL else chosen.labels.get(key)

        q = self._quota(pl.rules, domain)
        if q <= 0:
            return 0, pl.host_only
        k = min(k, q, limit)
        # commit
        if not same:
            c.offerings = offs
        self.set_chosen(c, j)
        c.used = vadd(c.used, vscale(req, k))
        self._add_pods(c, pl, pl.pods[pos : pos + k])
        self._record(pl.cls, None, c, k)
        self._index_claim(c)
        return k, False

    def _add_pods(self, c: Claim, pl: Placement, pods: list[Pod]) -> None:
        tag = (pl.cls.idx, pl.level)
        c.pods.extend(pods)
        c.counts[tag] += len(pods)
        for p in pods:
            self.pod_class[p.key] = tag

    def release(self, c: Claim) -> None:
        """Drop a claim whose pods all moved elsewhere."""
        old = c.limit_off
        if old is not None:
            for name, amount in old.capacity.items():
                old.pool.usage[name] -= amount
            c.limit_off = None
        c.pods.clear()
        c.counts.clear()
        c.used = self.space.zero
        self.live_claims -= 1

    def set_chosen(self, c: Claim, j: int) -> None:
        """Claim ``c`` takes its offering ``j``, moving its share of its NodePool's limits with it."""
        new = c.offerings[j]
        old = c.limit_off
        if old is not new:
            if old is not None:
                for name, amount in old.capacity.items():
                    old.pool.usage[name] -= amount
            for name, amount in new.capacity.items():
                new.pool.usage[name] += amount
            c.limit_off = new
        c.lo = j

    # --- new claims --------------------------------------------------------------------------------------------------

    def _new_claim_allowed(self) -> bool:
        return self.max_new is None or self.live_claims < self.max_new

    def _open_claim(self, pl: Placement, value: str | None, limit: int, pos: int) -> int:
        """Open a new claim for up to ``limit`` of the pods from ``pos``, in domain value ``value``: the offering with the
        lowest price per pod it holds (with the lookahead's promise to later classes); returns how many it took."""
        if not self._new_claim_allowed():
            return 0
        cls, view, rules, fix, dkey = pl.cls, pl.view, pl.rules, pl.fix, pl.dkey
        req = cls.req
        host = "<new-node-probe>"
        qh = self._quota([r for r in rules if r.key == HOSTNAME_LABEL], lambda _k: host)
        if qh <= 0:
            return 0
        limit = min(limit, qh)
        compat = self.compat_offerings(view)
        if dkey:
            compat = self._value_filter(compat, dkey, value)
        other_rules = [r for r in rules if r.key not in (HOSTNAME_LABEL, dkey)]
        # The best-offering table depends only on the request and the compatible offerings (a shared list): classes that
        # differ in labels or topology but ask the same resources reuse it.
        cache_key = (req, id(compat))
        hit = self._best_cache.get(cache_key)
        table: _BestTable | bool | None = hit[1] if hit is not None and hit[0] is compat else False
        dynamic = bool(other_rules) or self._any_limits(compat)
        if table is False or dynamic:
            feasible: list[tuple[int, Offering]] = []
            tier_found: int | None = None
            for o in compat:
                if tier_found is not None and o.tier != tier_found:
                    break
                k = count_fit(req, o.alloc)
                if k <= 0 or not limits_ok(o, None):
                    continue
                if other_rules and self._quota(other_rules, lambda key, o=o: o.labels.get(key)) <= 0:  # type: ignore[misc]
                    continue
                tier_found = o.tier
                feasible.append((k, o))
            table = _BestTable(feasible) if feasible else None
            if not dynamic:
                self._best_cache[cache_key] = (compat, table)
        if not isinstance(table, _BestTable):
            return 0
        o, k = table.best(limit)
        promise: list[tuple[int, int]] = []
        if not rules and LOOKAHEAD_CLASSES > 0:
            o, k, promise = self._lookahead(cls, table, o, k, limit)
        offs = self._filter(compat, ("tier", o.tier), lambda x: x.tier == o.tier)
        for key in fix:
            offs = self._value_filter(offs, key, o.labels.get(key))
        used = vscale(req, k)
        c = Claim(len(self.claims), offs, o.tier, self.space.zero)
        if promise:
            # The node is sized for the pods of later classes too: start at the chosen offering (the final downsize
            # takes a cheaper one if those pods went elsewhere).
            j = offs.index(o) if o in offs else -1
            if j >= 0 and not limits_ok(o, None):
                j = -1
            for idx, m in promise:
                self._promised[idx] += m
        else:
            j = -1
        if j < 0:
            j = first_fitting(offs, used, 0, None)
        if j < 0:  # cannot happen: o itself fits
            return 0
        self.set_chosen(c, j)
        c.used = used
        self._add_pods(c, pl, pl.pods[pos : pos + k])
        self.claims.append(c)
        self.live_claims += 1
        self._record(cls, None, c, k)
        self._index_claim(c)
        pl.lists[value].append(c)
        return k

    def standalone_price(self, cls: PodClass) -> float:
        """What a pod of the class is worth to a new node that takes it: the lowest price per pod the class gets on nodes
        of its own (its first tier, ignoring limits and topology), capped by its dominant resource's price. 0 when no
        new node can take it."""
        found = self._unit.get(cls.idx)
        if found is None:
            found = 0.0
            view = cls.view(0)
            if view is not None:
                tier: int | None = None
                most = max(1, len(cls.pods))
                for o in self.compat_offerings(view):  # by (tier, price)
                    if tier is not None and (o.tier != tier or o.price / most >= found):
                        break  # another tier, or no dearer offering can give a lower price per pod
                    k = count_fit(cls.req, o.alloc)
                    if k <= 0:
                        continue
                    tier = o.tier
                    unit = o.price / min(k, most)
                    if found == 0.0 or unit < found:
                        found = unit
            # A pod that shares a node pays for less than a node of its own: at most its dominant resource at that
            # resource's lowest price per unit over the offerings (a 1-GPU pod: the cheapest 1-GPU node's price).
            rp = self._resource_prices()
            dom = max((r * q for r, q in zip(cls.req, rp, strict=True) if r > 0 and q > 0), default=0.0)
            if dom > 0:
                found = min(found, dom) if found > 0 else dom
            self._unit[cls.idx] = found
        return found

    def _resource_prices(self) -> list[float]:
        """Per resource, the lowest price per unit of it over the offerings (0 for resources no offering prices)."""
        rp = self._rp
        if rp is None:
            rp = [0.0] * len(self.space.names)
            for o in self.offer.offerings:
                for i, a in enumerate(o.alloc):
                    if 0 < a < (1 << 50):
                        q = o.price / a
                        if rp[i] == 0.0 or q < rp[i]:
                            rp[i] = q
            self._rp = rp
        return rp

    def _fillers(self) -> list[tuple[int, PodClass, frozenset[int]]]:
        """The classes a new node may count on to fill it (no topology rules of theirs or on them), in the engine's
        order, with their positions in it and the offerings they accept."""
        found = self._filler_list
        if found is None:
            found = []
            for pos, other in enumerate(self.classes):
                view = other.view(0)
                if view is None or not other.pods:
                    continue
                if self.rules(other, 0, view) or self.selected_by(other) or self.owned_anti(other):
                    continue
                found.append((pos, other, self.allowed_offerings(view)))
            self._filler_list = found
        return found

    def _lookahead(
        self, cls: PodClass, table: _BestTable, o: Offering, k: int, limit: int
    ) -> tuple[Offering, int, list[tuple[int, int]]]:
        """Choose a new node's offering by its price over the worth of the pods it would hold: ``k`` pods of ``cls`` and
        then, first fit in the engine's order, pods of later classes not yet counted on by another new node (each pod is
        worth its class's standalone price per pod). A node that costs less than its pods would on their own wins, e.g.
        a 4-GPU node for three large 1-GPU pods and one small one rather than a 1-GPU node per large pod."""
        import bisect

        fillers = self._fillers()
        first = bisect.bisect_right(fillers, self._class_pos.get(cls.idx, len(self.classes)), key=lambda t: t[0])
        if first >= len(fillers):
            return o, k, []
        w_self = self.standalone_price(cls)
        if w_self <= 0:
            return o, k, []
        cands = self._lookahead_cands.get(id(table))
        if cands is None or cands[0] is not table:
            ranked = sorted(table.by_cnt, key=lambda t: (t[1].price / t[0], t[1].price, t[1].idx))
            picked: list[Offering] = []
            seen: set[Vec] = set()
            for _k, cand in ranked:
                if cand.alloc in seen:
                    continue
                seen.add(cand.alloc)
                picked.append(cand)
                if len(picked) >= LOOKAHEAD_OFFERINGS:
                    break
            # and the largest nodes: most room for the pods of later classes
            for _k, cand in table.by_cnt:
                if cand.alloc in seen:
                    continue
                seen.add(cand.alloc)
                picked.append(cand)
                if len(picked) >= LOOKAHEAD_OFFERINGS + LOOKAHEAD_LARGEST:
                    break
            cands = (table, picked)
            self._lookahead_cands[id(table)] = cands
        promised = self._promised
        best: tuple[float, float, int] | None = None
        best_pick: tuple[Offering, int, list[tuple[int, int]]] = (o, k, [])
        candidates = cands[1] if o in cands[1] else [o, *cands[1]]
        req = cls.req
        for cand in candidates:
            kk = min(count_fit(req, cand.alloc), limit)
            if kk <= 0:
                continue
            free = [a - q * kk for a, q in zip(cand.alloc, req, strict=True)]
            worth = kk * w_self
            promise: list[tuple[int, int]] = []
            looked = 0
            for i in range(first, min(len(fillers), first + 4 * LOOKAHEAD_CLASSES)):
                _pos, other, allowed = fillers[i]
                avail = len(other.pods) - promised[other.idx]
                if avail <= 0 or cand.idx not in allowed:
                    continue
                w = self.standalone_price(other)
                if w > 0:
                    m = pack_into(free, other.asks, avail)
                    if m:
                        worth += m * w
                        promise.append((other.idx, m))
                looked += 1
                if looked >= LOOKAHEAD_CLASSES:
                    break
            score = (cand.price / worth, cand.price, cand.idx)
            if best is None or score < best:
                best = score
                best_pick = (cand, kk, promise)
        return best_pick

    def downsize(self) -> None:
        """Each claim takes the cheapest of its offerings that still holds its pods (a claim sized for pods that then
        went elsewhere, or emptied by the improvement pass)."""
        for c in self.claims:
            if not c.pods or c.lo == 0:
                continue
            j = first_fitting(c.offerings, c.used, 0, c.limit_off)
            if 0 <= j < c.lo:
                self.set_chosen(c, j)

    # --- explanations ------------------------------------------------------------------------------------------------

    def explain(self, cls: PodClass, level: int, view: View) -> str:
        return explain(self, cls, level, view)

    # --- result ------------------------------------------------------------------------------------------------------

    def plan(self) -> Plan:
        plan = Plan()
        for c in self.claims:
            if not c.pods:
                continue
            o = c.offerings[c.lo]
            plan.node_claims.append(
                NodeClaim(
                    nodepool=o.pool.name,
                    instance_group=o.group,
                    instance_type=o.itype.name,
                    zone=o.zone,
                    pods=[p.key for p in c.pods],
                    price=o.price,
                )
            )
        for b in self.bins:
            if b.pods:
                plan.existing_nodes.setdefault(b.key, []).extend(b.pods)
        plan.unschedulable = dict(self.unschedulable)
        plan.nodepool_errors = dict(self.offer.nodepool_errors)
        plan.stats = {
            "pods": sum(len(c.pods) for c in self.classes),
            "classes": len(self.classes),
            "skipped": dict(self.skipped),
            "relaxed": {k: v for k, v in self.relaxed.items() if k not in self.unschedulable},
            "warnings": list(self.offer.warnings),
            "unavailable": dict(self.offer.unavailable),
            "offerings": len(self.offer.offerings),
            "improve": dict(self.improve_stats),
            "seconds": round(time.perf_counter() - self.started, 6),
        }
        return plan
