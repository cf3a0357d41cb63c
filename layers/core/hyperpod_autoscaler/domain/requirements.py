"""Node-label requirement algebra (In, NotIn, Exists, DoesNotExist, Gt, Lt, Gte, Lte), as in Karpenter's
``scheduling.Requirements`` but exact about absent labels.

A requirement on one key is a set of allowed label values plus whether the label may be absent. The set is either finite
(``In``) or a complement (``NotIn``, ``Exists``), optionally bounded by integers (``Gt``/``Lt``; ``Gte n`` is ``Gt n-1``).
Kubernetes matches ``NotIn`` and ``DoesNotExist`` on nodes that lack the label, ``In``/``Exists``/``Gt``/``Lt`` need it;
Karpenter's own type folds ``NotIn`` into its complement set and loses that distinction, which is why ``absent_ok`` is kept
here: intersecting ``Exists`` with ``NotIn [a]`` must still require the label.

Intersections are what NodePool requirements and pod node-affinity terms combine with; ``compatible`` is Karpenter's
question "can one node satisfy both?", with undefined well-known keys allowed (the provider fills them in).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from .errors import InvalidObject
from .k8s import (
    ARCH_LABEL,
    HOSTNAME_LABEL,
    HP_GROUP_LABEL,
    INSTANCE_TYPE_LABEL,
    NODEPOOL_LABEL,
    OS_LABEL,
    ZONE_LABEL,
    NodeSelectorRequirement,
    NodeSelectorTerm,
)

#: Keys a new HyperPod node always carries (Karpenter's "well-known labels" for this provider): a requirement on one of
#: them is satisfiable even where the other side does not mention the key.
WELL_KNOWN_LABELS: frozenset[str] = frozenset(
    {ZONE_LABEL, INSTANCE_TYPE_LABEL, ARCH_LABEL, OS_LABEL, HOSTNAME_LABEL, NODEPOOL_LABEL, HP_GROUP_LABEL}
)

OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt", "Gte", "Lte")


def _as_int(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Requirement:
    """Allowed values of one label key. ``complement``: ``values`` are excluded from the set of all values instead of
    being the set. ``greater_than``/``less_than`` are exclusive integer bounds (the value must then be an integer).
    ``absent_ok``: a node without the label satisfies it. ``min_values``: NodePool minValues (carried, not enforced here)."""

    key: str
    complement: bool
    values: frozenset[str]
    greater_than: int | None = None
    less_than: int | None = None
    absent_ok: bool = False
    min_values: int | None = None

    # --- construction ------------------------------------------------------------------------------------------------

    @classmethod
    def new(cls, key: str, operator: str, values: Iterable[str] = (), min_values: int | None = None) -> Requirement:
        vals = frozenset(str(v) for v in values)
        if operator == "In":
            return cls(key, False, vals, min_values=min_values)
        if operator == "NotIn":
            return cls(key, True, vals, absent_ok=True, min_values=min_values)
        if operator == "Exists":
            return cls(key, True, frozenset(), min_values=min_values)
        if operator == "DoesNotExist":
            return cls(key, False, frozenset(), absent_ok=True, min_values=min_values)
        if operator in ("Gt", "Gte", "Lt", "Lte"):
            if len(vals) != 1 or _as_int(next(iter(vals))) is None:
                raise ValueError(f"operator {operator} on {key} needs exactly one integer value")
            bound = int(next(iter(vals)))
            if operator == "Gt":
                return cls(key, True, frozenset(), greater_than=bound, min_values=min_values)
            if operator == "Gte":
                return cls(key, True, frozenset(), greater_than=bound - 1, min_values=min_values)
            if operator == "Lt":
                return cls(key, True, frozenset(), less_than=bound, min_values=min_values)
            return cls(key, True, frozenset(), less_than=bound + 1, min_values=min_values)
        raise ValueError(f"unknown operator {operator!r} (known: {', '.join(OPERATORS)})")

    @classmethod
    def from_node_selector_requirement(cls, req: NodeSelectorRequirement) -> Requirement:
        return cls.new(req.key, req.operator, req.values, getattr(req, "min_values", None))

    # --- queries -----------------------------------------------------------------------------------------------------

    def _in_bounds(self, value: str) -> bool:
        if self.greater_than is None and self.less_than is None:
            return True
        number = _as_int(value)
        if number is None:
            return False
        if self.greater_than is not None and number <= self.greater_than:
            return False
        return not (self.less_than is not None and number >= self.less_than)

    def has(self, value: str) -> bool:
        """Whether a node labelled ``key=value`` satisfies the requirement."""
        if self.complement:
            return value not in self.values and self._in_bounds(value)
        return value in self.values and self._in_bounds(value)

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        return self.absent_ok if value is None else self.has(value)

    def any_value_allowed(self) -> bool:
        """Whether at least one label value satisfies it (a complement set always has one, unless bounds are empty)."""
        if self.complement:
            if self.greater_than is not None and self.less_than is not None:
                in_range = self.less_than - self.greater_than - 1
                excluded = sum(1 for v in self.values if self._in_bounds(v))
                return in_range > excluded
            return True
        return bool(self.values)

    def is_satisfiable(self) -> bool:
        return self.absent_ok or self.any_value_allowed()

    def __len__(self) -> int:
        """Number of allowed values; complement sets count as unbounded (``sys.maxsize``)."""
        return sys.maxsize if self.complement else len(self.values)

    @property
    def operator(self) -> str:
        """The Kubernetes operator this requirement reads as (``In``, ``NotIn``, ``Exists``, ``DoesNotExist``, ``Gt``...)."""
        if not self.complement:
            if self.values:
                return "In"
            return "DoesNotExist" if self.absent_ok else "Unsatisfiable"
        if self.greater_than is not None or self.less_than is not None:
            return (
                "Gt"
                if self.greater_than is not None and self.less_than is None
                else ("Lt" if self.greater_than is None else "Between")
            )
        if self.values:
            return "NotIn"
        return "Any" if self.absent_ok else "Exists"

    def __str__(self) -> str:
        op = self.operator
        parts = [self.key]
        if op in ("In", "NotIn"):
            parts.append(f"{op} [{', '.join(sorted(self.values))}]")
        elif op in ("Gt", "Lt", "Between"):
            bounds = []
            if self.greater_than is not None:
                bounds.append(f"> {self.greater_than}")
            if self.less_than is not None:
                bounds.append(f"< {self.less_than}")
            parts.append(" and ".join(bounds))
            if self.values:
                parts.append(f"NotIn [{', '.join(sorted(self.values))}]")
        else:
            parts.append(op)
        if self.absent_ok and op not in ("NotIn", "DoesNotExist", "Any"):
            parts.append("(or absent)")
        return " ".join(parts)

    # --- algebra -----------------------------------------------------------------------------------------------------

    def intersection(self, other: Requirement) -> Requirement:
        """The values both allow (and absence only if both allow it). Keys must be equal."""
        if other.key != self.key:
            raise ValueError(f"cannot intersect requirements on {self.key} and {other.key}")
        gt = _max_opt(self.greater_than, other.greater_than)
        lt = _min_opt(self.less_than, other.less_than)
        absent_ok = self.absent_ok and other.absent_ok
        min_values = _max_opt(self.min_values, other.min_values)
        if self.complement and other.complement:
            complement, values = True, self.values | other.values
        elif self.complement:
            complement, values = False, other.values - self.values
        elif other.complement:
            complement, values = False, self.values - other.values
        else:
            complement, values = False, self.values & other.values
        if gt is not None and lt is not None and lt - gt <= 1:
            return Requirement(self.key, False, frozenset(), absent_ok=absent_ok, min_values=min_values)
        if not complement:
            probe = Requirement(self.key, True, frozenset(), gt, lt)
            values = frozenset(v for v in values if probe._in_bounds(v))
            return Requirement(self.key, False, values, absent_ok=absent_ok, min_values=min_values)
        return Requirement(self.key, True, values, gt, lt, absent_ok, min_values)


def _max_opt(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def _min_opt(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


class Requirements(Mapping[str, Requirement]):
    """Requirements on several keys (AND). Adding a requirement on a key already present intersects them."""

    __slots__ = ("_reqs",)

    def __init__(self, reqs: Iterable[Requirement] = ()) -> None:
        self._reqs: dict[str, Requirement] = {}
        for req in reqs:
            self.add(req)

    # --- construction ------------------------------------------------------------------------------------------------

    @classmethod
    def from_labels(cls, labels: Mapping[str, str]) -> Requirements:
        """A concrete node: each label is ``In [value]``."""
        return cls(Requirement(k, False, frozenset({v})) for k, v in labels.items())

    @classmethod
    def from_node_selector(cls, selector: Mapping[str, str]) -> Requirements:
        return cls.from_labels(selector)

    @classmethod
    def from_term(cls, term: NodeSelectorTerm | None) -> Requirements:
        """One node-selector term's matchExpressions (matchFields are node names, handled by the caller)."""
        if term is None:
            return cls()
        return cls(Requirement.from_node_selector_requirement(r) for r in term.match_expressions)

    @classmethod
    def from_selector_requirements(
        cls, requirements: Iterable[NodeSelectorRequirement], kind: str = "NodePool", name: str = ""
    ) -> Requirements:
        """NodePool ``spec.template.spec.requirements``; raises InvalidObject naming the entry on a bad one."""
        out = cls()
        for index, req in enumerate(requirements):
            try:
                out.add(Requirement.from_node_selector_requirement(req))
            except ValueError as exc:
                raise InvalidObject(kind, name, f"spec.template.spec.requirements[{index}]", str(exc)) from None
        return out

    def add(self, req: Requirement) -> None:
        current = self._reqs.get(req.key)
        self._reqs[req.key] = req if current is None else current.intersection(req)

    def copy(self) -> Requirements:
        out = Requirements()
        out._reqs = dict(self._reqs)
        return out

    # --- mapping -----------------------------------------------------------------------------------------------------

    def __getitem__(self, key: str) -> Requirement:
        return self._reqs[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._reqs)

    def __len__(self) -> int:
        return len(self._reqs)

    def get_or_any(self, key: str) -> Requirement:
        """The requirement on ``key``, or "any value, or absent" when there is none."""
        return self._reqs.get(key) or Requirement(key, True, frozenset(), absent_ok=True)

    def __repr__(self) -> str:
        return f"Requirements({'; '.join(str(r) for r in self._reqs.values())})"

    def __str__(self) -> str:
        return ", ".join(str(self._reqs[k]) for k in sorted(self._reqs))

    # --- algebra -----------------------------------------------------------------------------------------------------

    def intersection(self, other: Requirements) -> Requirements:
        out = self.copy()
        for req in other.values():
            out.add(req)
        return out

    def is_satisfiable(self) -> bool:
        return all(r.is_satisfiable() for r in self._reqs.values())

    def unsatisfiable_key(self) -> str | None:
        for key in sorted(self._reqs):
            if not self._reqs[key].is_satisfiable():
                return key
        return None

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether a node with exactly these labels satisfies every requirement."""
        return all(r.matches(labels) for r in self._reqs.values())

    def first_mismatch(self, labels: Mapping[str, str]) -> Requirement | None:
        for key in sorted(self._reqs):
            req = self._reqs[key]
            if not req.matches(labels):
                return req
        return None

    def conflict(self, other: Requirements, allow_undefined: frozenset[str] = WELL_KNOWN_LABELS) -> str | None:
        """Why no node can satisfy both ``self`` (e.g. a NodePool's) and ``other`` (e.g. a pod's), or None.

        A key only ``other`` constrains is fine when ``other`` allows the label to be absent, or when the key is in
        ``allow_undefined`` (the provider sets it on every node, so any value can be chosen)."""
        for key in sorted(other):
            theirs = other[key]
            mine = self._reqs.get(key)
            if mine is None:
                if theirs.absent_ok or (key in allow_undefined and theirs.any_value_allowed()):
                    continue
                return f"{key}: {theirs} but the label is not defined"
            both = mine.intersection(theirs)
            if not both.is_satisfiable():
                return f"{key}: {theirs} conflicts with {mine}"
        return None

    def compatible(self, other: Requirements, allow_undefined: frozenset[str] = WELL_KNOWN_LABELS) -> bool:
        return self.conflict(other, allow_undefined) is None

    def labels(self) -> dict[str, str]:
        """Labels a node satisfying these requirements must carry: keys with exactly one allowed value and not absent.
        Well-known keys are left out (the provider sets them), as Karpenter does."""
        return {
            key: next(iter(req.values))
            for key, req in self._reqs.items()
            if not req.complement and len(req.values) == 1 and not req.absent_ok and key not in WELL_KNOWN_LABELS
        }


__all__ = ["OPERATORS", "WELL_KNOWN_LABELS", "Requirement", "Requirements"]
