"""Fixed-length integer resource vectors: the engine's hot loops compare tuples instead of dictionaries.

The order is ``CORE_RESOURCES`` then any other resource a pod or DaemonSet requests, sorted. ``UNBOUNDED`` stands for a
capacity the catalog does not model for new nodes (ephemeral storage: HyperPod root volumes are sized by the operator).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..resources import CORE_RESOURCES, EPHEMERAL_STORAGE

Vec = tuple[int, ...]
UNBOUNDED = 1 << 62


class Space:
    """The resource names of one scheduling run, and conversions to and from vectors."""

    def __init__(self, extra: Iterable[str] = ()) -> None:
        others = sorted(set(extra) - set(CORE_RESOURCES))
        self.names: tuple[str, ...] = (*CORE_RESOURCES, *others)
        self.index = {name: i for i, name in enumerate(self.names)}
        self.zero: Vec = (0,) * len(self.names)

    def vec(self, values: Mapping[str, int]) -> Vec:
        return tuple(values.get(name, 0) for name in self.names)

    def new_node_vec(self, values: Mapping[str, int]) -> Vec:
        """Allocatable of a new node: resources the catalog does not model are 0, except ephemeral storage (unbounded)."""
        return tuple(
            values.get(name, 0) if name != EPHEMERAL_STORAGE or name in values else UNBOUNDED for name in self.names
        )

    def to_dict(self, vec: Vec) -> dict[str, int]:
        return {name: v for name, v in zip(self.names, vec, strict=True) if v}


def vadd(a: Vec, b: Vec) -> Vec:
    return tuple(x + y for x, y in zip(a, b, strict=True))


def vsub(a: Vec, b: Vec) -> Vec:
    return tuple(x - y for x, y in zip(a, b, strict=True))


def vscale(a: Vec, k: int) -> Vec:
    return tuple(x * k for x in a)


def fits(need: Vec, free: Vec) -> bool:
    for n, f in zip(need, free, strict=True):
        if n > f:
            return False
    return True


def fits_sum(used: Vec, add: Vec, cap: Vec) -> bool:
    """``used + add <= cap`` without building the sum."""
    for u, a, c in zip(used, add, cap, strict=True):
        if u + a > c:
            return False
    return True


def count_fit(req: Vec, free: Vec) -> int:
    """How many copies of ``req`` fit in ``free`` (``UNBOUNDED`` when ``req`` is zero)."""
    best = UNBOUNDED
    for r, f in zip(req, free, strict=True):
        if r > 0:
            q = f // r
            if q < best:
                best = q
                if best <= 0:
                    return 0
    return best


def count_fit_in(req: Vec, used: Vec, cap: Vec) -> int:
    """How many copies of ``req`` fit in ``cap - used``."""
    best = UNBOUNDED
    for r, u, c in zip(req, used, cap, strict=True):
        if r > 0:
            q = (c - u) // r
            if q < best:
                best = q
                if best <= 0:
                    return 0
    return best


def nonzero(req: Vec) -> tuple[tuple[int, int], ...]:
    """The (resource index, request) pairs of ``req`` above zero: what a fit check of it needs to look at."""
    return tuple((r, q) for r, q in enumerate(req) if q > 0)


def pack_into(free: list[int], asks: tuple[tuple[int, int], ...], most: int) -> int:
    """Put as many copies as fit in ``free`` (at most ``most``) of a request given as ``nonzero`` pairs: takes them off
    ``free`` and returns how many."""
    if most <= 0:
        return 0
    for r, q in asks:
        fit = free[r] // q
        if fit < most:
            most = fit
            if most <= 0:
                return 0
    for r, q in asks:
        free[r] -= q * most
    return most


def first_excess(need: Vec, free: Vec) -> int | None:
    """Index of the first resource where ``need`` exceeds ``free``."""
    for i, (n, f) in enumerate(zip(need, free, strict=True)):
        if n > f:
            return i
    return None
