"""Why a pod could not be placed, in one line an operator can act on.

The explanation walks what the engine tried, in the same order: existing nodes (why each one refused), then every
NodePool's instance groups (the first check that failed: taint, node selection, size after DaemonSets, NodePool limit,
topology), plus the NodePools that are not usable at all.
"""

from __future__ import annotations

from collections import Counter
from typing import Protocol

from ..k8s import HOSTNAME_LABEL
from ..resources import Resources
from .offerings import Bin, Offering, OfferingSet, Pool
from .podclasses import PodClass, View
from .topology import Rule
from .vectors import Space, first_excess, vsub

MAX_ITEMS = 4


class Packer(Protocol):
    """What the explanation reads of the engine's state (the packer is one; the explanation does not depend on it)."""

    @property
    def space(self) -> Space: ...

    @property
    def bins(self) -> list[Bin]: ...

    @property
    def pools(self) -> list[Pool]: ...

    @property
    def offer(self) -> OfferingSet: ...

    @property
    def max_new(self) -> int | None: ...

    @property
    def live_claims(self) -> int: ...

    def bin_mismatch(self, view: View, b: Bin) -> str | None: ...

    def offering_mismatch(self, view: View, o: Offering) -> str | None: ...

    def rules(self, cls: PodClass, level: int, view: View) -> list[Rule]: ...

    def compat_offerings(self, view: View) -> list[Offering]: ...


def _fmt(packer: Packer, index: int, amount: int) -> str:
    name = packer.space.names[index]
    return Resources({name: max(amount, 0)}).format() or f"{name}=0"


def _bin_reason(packer: Packer, cls: PodClass, level: int, view: View, b: Bin) -> str:
    why = packer.bin_mismatch(view, b)
    if why:
        return why
    free = vsub(b.alloc, b.used)
    i = first_excess(cls.req, free)
    if i is not None:
        return f"insufficient {packer.space.names[i]} (needs {_fmt(packer, i, cls.req[i])}, free {_fmt(packer, i, free[i])})"
    for rule in packer.rules(cls, level, view):
        domain = b.hostname if rule.key == HOSTNAME_LABEL else b.labels.get(rule.key)
        if rule.quota(domain) <= 0:
            return f"{rule.describe()} does not allow it"
    return "full after the other pods of this plan"


def _offering_reason(packer: Packer, cls: PodClass, level: int, view: View, o: Offering) -> str:
    why = packer.offering_mismatch(view, o)
    if why:
        return why
    i = first_excess(cls.req, o.alloc)
    if i is not None:
        return f"needs {_fmt(packer, i, cls.req[i])} but a {o.itype.name} has {_fmt(packer, i, o.alloc[i])}" + (
            " after DaemonSets" if o.ds_overhead else ""
        )
    excess = o.pool.limit_excess(o.capacity)
    if excess:
        return f"NodePool limit on {excess} ({o.pool.limits[excess]}) would be exceeded"
    for rule in packer.rules(cls, level, view):
        domain = "<new-node-probe>" if rule.key == HOSTNAME_LABEL else o.labels.get(rule.key)
        if rule.quota(domain) <= 0:
            return f"{rule.describe()} does not allow it"
    tiers = [x.tier for x in packer.compat_offerings(view)]
    if tiers and o.tier != min(tiers):
        return f"NodePool weight {o.pool.weight} is below a heavier NodePool that matches"
    return "not chosen"


def _summarize(items: list[tuple[str, str]], what: str) -> str:
    if len(items) <= MAX_ITEMS:
        return "; ".join(f"{name}: {reason}" for name, reason in items)
    counts = Counter(reason for _, reason in items)
    shown = [f"{count} {what} {reason}" for reason, count in counts.most_common(MAX_ITEMS)]
    more = len(counts) - MAX_ITEMS
    return "; ".join(shown) + (f"; and {more} more reasons" if more > 0 else "")


def explain(packer: Packer, cls: PodClass, level: int, view: View) -> str:
    parts: list[str] = []
    if packer.bins:
        items = [
            (b.key if not b.key.startswith("inflight:") else b.hostname, _bin_reason(packer, cls, level, view, b))
            for b in packer.bins
        ]
        parts.append(f"no existing node fits ({_summarize(items, 'nodes:')})")
    if packer.max_new is not None and packer.live_claims >= packer.max_new:
        parts.append(
            "new nodes are not allowed in this plan"
            if packer.max_new == 0
            else f"the plan's cap of {packer.max_new} new nodes is reached"
        )
    else:
        items = []
        for pool in packer.pools:
            for o in pool.offerings:
                items.append((o.describe(), _offering_reason(packer, cls, level, view, o)))
            for group, reason in pool.excluded.items():
                items.append((f"{pool.name}/{group}", reason))
        if items:
            parts.append(f"no instance group can take it ({_summarize(items, 'groups:')})")
        else:
            parts.append("no NodePool can launch nodes")
    if packer.offer.nodepool_errors:
        parts.append(
            "unusable NodePools: " + "; ".join(f"{k}: {v}" for k, v in sorted(packer.offer.nodepool_errors.items()))
        )
    if view.relaxed:
        parts.append("preferences already relaxed: " + ", ".join(view.relaxed))
    return "; ".join(parts) if parts else "no capacity"
