"""Improving a feasible packing within a time budget.

Moves, each accepted only when the plan's hourly cost strictly drops and every pod still fits:

- *repack* (``columns.py``, the first ``REPACK_SHARE`` of the budget): each tier's movable claims repacked at once by
  column generation over the configuration LP, kept when cheaper.
- *split*: repack the pods of a claim onto several of its cheaper offerings when they cost less together (an 8-GPU node
  left with eight small 1-GPU pods becomes two 4-GPU nodes). Tried first, dearest claims first.
- *empty*: move all pods of a claim into the slack of other claims (without making their cheapest offering dearer), and
  drop it. Tried on the least utilised claims first.
- *merge*: replace a set of claims by one offering that holds all their pods for less than they cost together (e.g. four
  1-GPU nodes whose pods fit a cheaper 4-GPU node). Candidates are grouped by the NodePool tier and the offerings the
  pods accept.
- *downsize*: at the end every claim takes the cheapest offering that still fits its pods.

Only claims whose pods carry no topology rule (no spread, affinity or anti-affinity of their own, and not counted by
someone else's) are moved: moving such pods can never break a topology constraint. The moves are tried in a fixed order,
so the result is the same for the same input when the budget suffices; with a short budget the search stops early.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..k8s import Pod
from .vectors import count_fit_in, fits, vadd, vscale, vsub

if TYPE_CHECKING:
    from .offerings import Offering
    from .packer import Claim, Packer
    from .podclasses import PodClass


class _Undo:
    """Remembers claims' state so that a move that does not pay off can be rolled back exactly."""

    def __init__(self, packer: Packer) -> None:
        self.packer = packer
        self.saved: dict[int, tuple] = {}

    def touch(self, c: Claim) -> None:
        if c.idx not in self.saved:
            self.saved[c.idx] = (c, c.offerings, c.lo, c.used, len(c.pods), dict(c.counts), c.limit_off)

    def rollback(self) -> None:
        for c, offerings, lo, used, npods, counts, limit_off in self.saved.values():
            c.offerings = offerings
            self.packer.set_chosen(c, lo) if c.limit_off is limit_off else self._restore_limit(c, lo, limit_off)
            c.used = used
            del c.pods[npods:]
            c.counts.clear()
            c.counts.update(counts)
        self.saved.clear()

    def _restore_limit(self, c: Claim, lo: int, limit_off) -> None:
        current = c.limit_off
        if current is not None:
            for name, amount in current.capacity.items():
                current.pool.usage[name] -= amount
        if limit_off is not None:
            for name, amount in limit_off.capacity.items():
                limit_off.pool.usage[name] += amount
        c.limit_off = limit_off
        c.lo = lo


def _utilisation(c: Claim) -> float:
    alloc = c.offerings[c.lo].alloc
    return max((u / a for u, a in zip(c.used, alloc, strict=True) if a > 0 and u > 0), default=0.0)


def _take_into(packer: Packer, d: Claim, cls: PodClass, level: int, pods: list[Pod], undo: _Undo) -> int:
    """Put as many of ``pods`` (one class) into claim ``d`` as fit without raising its price; returns how many."""
    from .packer import first_fitting

    view = cls.view(level)
    assert view is not None
    offs = packer.view_filter(d.offerings, view)
    if not offs:
        return 0
    req = cls.req
    price = d.offerings[d.lo].price
    start = d.lo if offs is d.offerings else 0
    j = first_fitting(offs, vadd(d.used, req), start, d.limit_off)
    if j < 0 or offs[j].price > price:
        return 0
    k = min(len(pods), count_fit_in(req, d.used, offs[j].alloc))
    if k <= 0:
        return 0
    undo.touch(d)
    d.offerings = offs
    packer.set_chosen(d, j)
    d.used = vadd(d.used, vscale(req, k))
    d.pods.extend(pods[:k])
    d.counts[(cls.idx, level)] += k
    return k


def _try_empty(packer: Packer, c: Claim, others: list[Claim]) -> bool:
    undo = _Undo(packer)
    for (cls_idx, level), _count in sorted(c.counts.items()):
        cls = packer.class_by_idx[cls_idx]
        pods = [p for p in c.pods if packer.pod_class[p.key] == (cls_idx, level)]
        for d in others:
            if not pods:
                break
            if d is c or not d.pods or not fits(cls.req, vsub(d.offerings[d.lo].alloc, d.used)):
                continue
            taken = _take_into(packer, d, cls, level, pods, undo)
            pods = pods[taken:]
        if pods:
            undo.rollback()
            return False
    # every pod moved: drop c
    packer.release(c)
    return True


def _allowed(packer: Packer, c: Claim) -> frozenset[int] | None:
    """Offering indexes every pod of ``c`` accepts (None: no restriction found)."""
    allowed: frozenset[int] | None = None
    for cls_idx, level in c.counts:
        view = packer.class_by_idx[cls_idx].view(level)
        assert view is not None
        idx = packer.allowed_offerings(view)
        allowed = idx if allowed is None else allowed & idx
    return allowed


MERGE_TARGETS = 6
"""How many larger offerings of a claim the merge move tries as the one node that absorbs others."""


def _try_merge(packer: Packer, d: Claim, live: list[Claim], allowed: dict[int, frozenset[int] | None]) -> bool:
    """Upsize ``d`` to a larger offering and move whole claims into it when the one node costs less than all of them:
    e.g. eight 1-GPU nodes and a few CPU nodes whose pods fit one 8-GPU node's GPUs and spare CPU."""
    from .packer import limits_ok

    base = d.offerings[d.lo]
    d_allowed = allowed[d.idx]
    targets: list = []
    seen_alloc: set = set()
    for o in reversed(d.offerings):  # largest (dearest) first: most room to absorb others
        if o.price <= base.price or o.alloc in seen_alloc or o.tier != d.tier:
            continue
        if d_allowed is not None and o.idx not in d_allowed:
            continue
        if not fits(d.used, o.alloc) or not limits_ok(o, d.limit_off):
            continue
        seen_alloc.add(o.alloc)
        targets.append(o)
        if len(targets) >= MERGE_TARGETS:
            break
    best: tuple[float, Offering, list[Claim]] | None = None
    for o in targets:
        free = vsub(o.alloc, d.used)
        chosen: list[Claim] = []
        total = d.price
        # Knapsack greedy: absorb first the claims that pay the most per share of the target node they would fill.
        scored = []
        for c in live:
            if c is d or not c.pods or c.tier != d.tier:
                continue
            ca = allowed[c.idx]
            if ca is not None and o.idx not in ca:
                continue
            share = max((u / a for u, a in zip(c.used, o.alloc, strict=True) if a > 0), default=1.0)
            if share <= 0 or share > 1:
                continue
            scored.append((-c.price / share, c.idx, c))
        scored.sort(key=lambda t: (t[0], t[1]))
        for _score, _idx, c in scored:
            if fits(c.used, free):
                chosen.append(c)
                free = vsub(free, c.used)
                total += c.price
        saving = total - o.price
        if chosen and saving > 1e-9 and (best is None or saving > best[0]):
            best = (saving, o, chosen)
    if best is None:
        return False
    _saving, o, chosen = best
    for c in chosen:
        d.pods.extend(c.pods)
        for key, n in c.counts.items():
            d.counts[key] += n
        d.used = vadd(d.used, c.used)
        packer.release(c)
    j = d.offerings.index(o)
    packer.set_chosen(d, j)
    allowed[d.idx] = _allowed(packer, d)
    return True


SPLIT_MAX_PODS = 64
"""Claims with more pods than this are not split (the repack is quadratic in the pods of the claim)."""


def _try_split(packer: Packer, c: Claim) -> bool:
    """Repack the pods of ``c`` onto new nodes of its own offerings when they cost less together than ``c``: e.g. an
    8-GPU node left holding eight small 1-GPU pods (the pods it was sized for went elsewhere) becomes two 4-GPU nodes.
    Each new node takes the offering with the lowest price per worth of the pods it holds (first fit, largest first)."""
    from .packer import Claim, first_fitting

    offs = c.offerings
    if len(c.pods) < 2 or len(c.pods) > SPLIT_MAX_PODS or any(o.pool.limits for o in offs[: c.lo + 1]):
        return False
    # distinct shapes cheaper than c's offering, cheapest first
    shapes: list[Offering] = []
    seen: set = set()
    for o in offs[: c.lo]:
        if o.alloc not in seen:
            seen.add(o.alloc)
            shapes.append(o)
    if not shapes:
        return False
    tag = packer.pod_class
    order = sorted(c.pods, key=lambda p: (packer.class_by_idx[tag[p.key][0]].sort_key, p.key))
    reqs = [packer.class_by_idx[tag[p.key][0]].req for p in order]
    worth = [packer.standalone_price(packer.class_by_idx[tag[p.key][0]]) for p in order]
    left = list(range(len(order)))
    nodes: list[tuple[Offering, list[int], tuple]] = []
    total = 0.0
    while left:
        best: tuple[float, float, int] | None = None
        pick: tuple[Offering, list[int], tuple] | None = None
        for o in shapes:
            used = packer.space.zero
            took: list[int] = []
            value = 0.0
            for i in left:
                if fits(vadd(used, reqs[i]), o.alloc):
                    used = vadd(used, reqs[i])
                    took.append(i)
                    value += worth[i]
            if not took or value <= 0:
                continue
            score = (o.price / value, o.price, o.idx)
            if best is None or score < best:
                best, pick = score, (o, took, used)
        if pick is None:
            return False
        total += pick[0].price
        if total >= c.price - 1e-9:
            return False
        nodes.append(pick)
        taken = set(pick[1])
        left = [i for i in left if i not in taken]
    if len(nodes) < 2 or (packer.max_new is not None and packer.live_claims + len(nodes) - 1 > packer.max_new):
        return False
    packer.release(c)
    for _o, took, used in nodes:
        n = Claim(len(packer.claims), offs, c.tier, used)
        j = first_fitting(offs, used, 0, None)
        assert j >= 0
        packer.set_chosen(n, j)
        for i in took:
            n.pods.append(order[i])
            n.counts[tag[order[i].key]] += 1
        packer.claims.append(n)
        packer.live_claims += 1
    return True


REPACK_SHARE = 0.75
"""The share of the improvement budget the column-generation repack (``columns.py``) may take before the moves."""


def improve(packer: Packer, budget_seconds: float) -> None:
    from .columns import repack

    deadline = time.perf_counter() + max(0.0, budget_seconds)
    packer.improve_stats["repack"] = repack(packer, max(0.0, budget_seconds) * REPACK_SHARE)
    improved = True
    rounds = 0
    # Split rounds: a claim whose pods are cheaper on several smaller nodes, dearest first.
    splits = 0
    live = [c for c in packer.claims if c.pods and packer.movable(c)]
    for c in sorted(live, key=lambda c: (-c.price, c.idx)):
        if time.perf_counter() >= deadline:
            break
        if c.pods and _try_split(packer, c):
            splits += 1
    packer.improve_stats["splits"] = splits
    empty_deadline = time.perf_counter() + max(0.0, deadline - time.perf_counter()) / 2
    improved = True
    while improved and time.perf_counter() < empty_deadline:
        improved = False
        rounds += 1
        live = [c for c in packer.claims if c.pods and packer.movable(c)]
        order = sorted(live, key=lambda c: (_utilisation(c), -c.price, c.idx))
        for c in order:
            if time.perf_counter() >= empty_deadline:
                break
            if not c.pods:
                continue
            others = [d for d in packer.claims if d is not c and d.pods]
            if _try_empty(packer, c, others):
                improved = True
    packer.improve_stats["empty_rounds"] = rounds
    # Merge rounds: one larger node for several claims, dearest claims first (they have the most to gain).
    merges = 0
    improved = True
    while improved and time.perf_counter() < deadline:
        improved = False
        live = [c for c in packer.claims if c.pods and packer.movable(c)]
        allowed = {c.idx: _allowed(packer, c) for c in live}
        by_price = sorted(live, key=lambda c: (-c.price, c.idx))
        for d in by_price:
            if time.perf_counter() >= deadline:
                break
            if not d.pods:
                continue
            if _try_merge(packer, d, [c for c in by_price if c.pods], allowed):
                merges += 1
                improved = True
    packer.improve_stats["merges"] = merges
    packer.downsize()
