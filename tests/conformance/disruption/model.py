"""The shape of a conformance case: objects, cluster, the decision upstream expects, and where it comes from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.unit.disruption_fixtures import CPU_GROUPS, node, pool
from tests.unit.engine_fixtures import nodeclass

CONSOLIDATION = "pkg/controllers/disruption/consolidation_test.go"
EMPTINESS = "pkg/controllers/disruption/emptiness_test.go"
DRIFT = "pkg/controllers/disruption/drift_test.go"
SUITE = "pkg/controllers/disruption/suite_test.go"
EXPIRATION = "pkg/controllers/nodeclaim/expiration/suite_test.go"
NODECLAIM_DRIFT = "pkg/controllers/nodeclaim/disruption/drift_test.go"


@dataclass(frozen=True)
class Expect:
    """What the disruption pass decides. Fields left None are not checked."""

    disrupted: dict[str, str] = field(default_factory=dict)
    """Node -> the reason of the decision that must take it."""
    kept: tuple[str, ...] = ()
    """Nodes no decision may take."""
    count: int | None = None
    """How many nodes the pass disrupts in all (when upstream fixes the number, not which)."""
    count_by_pool: dict[str, int] | None = None
    allowed: int | None = None
    """``allowedDisruptions`` of NodePool ``default``, for every reason."""
    replaced: bool | None = None
    """Whether the pass launches a replacement."""


@dataclass(frozen=True)
class Case:
    name: str
    upstream: tuple[str, str]
    """(file in kubernetes-sigs/karpenter, "Describe/Context/It" text)."""
    objects: list[dict[str, Any]]
    expect: Expect
    run: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of ``disrupt`` (now, last_change, busy, min_counts)."""
    deliberate_difference: str | None = None
    """Why we decide otherwise on purpose (docs/disruption.md); ``ours`` is then what we decide instead."""
    ours: Expect | None = None


def world(*objects: dict[str, Any], pools: list[dict[str, Any]] | None = None, **pool_kw: Any) -> list[dict[str, Any]]:
    """The objects with one HyperpodNodeClass over the CPU groups and NodePool ``default`` (or ``pools``); as upstream's
    suites, the default NodePool's budget is 100% unless the case gives one."""
    if pools is None:
        pool_kw["disruption"] = {"budgets": [{"nodes": "100%"}]} | pool_kw.get("disruption", {})
        pools = [pool(**pool_kw)]
    return [nodeclass(groups=CPU_GROUPS), *pools, *objects]


def c5(name: str, nodepool: str = "default", **kw: Any) -> dict[str, Any]:
    """The cheapest type (ml.c5.xlarge, 4 CPUs): consolidation can only delete it, never replace it."""
    return node(name, "cpu-c5-az3", cpu="4", memory="8Gi", nodepool=nodepool, **kw)


def m5(name: str, group: str = "cpu-m5-az1", nodepool: str = "default", **kw: Any) -> dict[str, Any]:
    """An ml.m5.2xlarge (8 CPUs): a c5.xlarge can replace it when its pods need at most 4 CPUs."""
    return node(name, group, nodepool=nodepool, **kw)
