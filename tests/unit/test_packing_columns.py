"""The column-generation repack of the improvement pass (``scheduling/columns.py``), checked against an exhaustive
search over every partition of the pods into nodes (its own fit check on the offerings' allocatable)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hyperpod_autoscaler.domain.plan import PlanOptions
from hyperpod_autoscaler.domain.scheduling import columns
from hyperpod_autoscaler.domain.scheduling.improve import improve
from hyperpod_autoscaler.domain.scheduling.packer import Packer
from hyperpod_autoscaler.domain.scheduling.vectors import nonzero

from . import engine_fixtures
from .engine_fixtures import nodeclass, nodepool, plan_input, pod

IT = "node.kubernetes.io/instance-type"
TYPES = ["ml.g6.xlarge", "ml.g6.4xlarge", "ml.g6.12xlarge", "ml.m5.2xlarge"]
GROUPS = ["auto-g6-az1", "auto-g6-4xaz2", "g6-12x-az2", "cpu-m5-az1"]


@pytest.fixture(autouse=True)
def _g6_12x(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(engine_fixtures.GROUPS, "g6-12x-az2", ("ml.g6.12xlarge", "us-west-2b"))


def _packer(pods: list[dict[str, Any]], *, repack: bool, limits: dict[str, str] | None = None) -> Packer:
    pool = nodepool(requirements=[{"key": IT, "operator": "In", "values": TYPES}])
    if limits:
        pool["spec"]["limits"] = limits
    p = Packer(plan_input([nodeclass(groups=GROUPS), pool, *pods]), PlanOptions())
    p.run()
    if not repack:
        saved = columns.repack
        columns.repack = lambda _packer, _deadline: {}  # type: ignore[assignment]
        try:
            improve(p, 5.0)
        finally:
            columns.repack = saved  # type: ignore[assignment]
    else:
        improve(p, 5.0)
    return p


def _cost(p: Packer) -> float:
    return round(sum(c.price for c in p.claims if c.pods), 6)


def _placed_once_and_fitting(p: Packer, pods: list[dict[str, Any]]) -> None:
    seen: list[str] = []
    for c in p.claims:
        if not c.pods:
            continue
        total = [0] * len(p.space.names)
        for pod_ in c.pods:
            seen.append(pod_.key)
            for i, v in enumerate(p.class_by_idx[p.pod_class[pod_.key][0]].req):
                total[i] += v
        assert all(t <= a for t, a in zip(total, c.chosen.alloc, strict=True)), (c.chosen.itype.name, total)
        assert tuple(total) == c.used
    assert sorted(seen) == sorted(f"default/{x['metadata']['name']}" for x in pods)


def _optimum(p: Packer) -> float:
    """The cheapest plan by exhaustive search: every partition of the pods into nodes, each node on the cheapest
    offering whose allocatable holds the sum of its pods' requests."""
    offers = [(o.alloc, o.price) for o in p.offer.offerings]
    reqs = [p.class_by_idx[p.pod_class[x.key][0]].req for c in p.claims for x in c.pods]
    best = [float("inf")]

    def price(block: list[tuple[int, ...]]) -> float | None:
        total = [sum(col) for col in zip(*block, strict=True)]
        found = [pr for alloc, pr in offers if all(t <= a for t, a in zip(total, alloc, strict=True))]
        return min(found) if found else None

    def search(i: int, blocks: list[list[tuple[int, ...]]], cost: float) -> None:
        if cost >= best[0] - 1e-9:
            return
        if i == len(reqs):
            best[0] = cost
            return
        for b in blocks:
            old = price(b)
            b.append(reqs[i])
            new = price(b)
            if new is not None and old is not None:
                search(i + 1, blocks, cost - old + new)
            b.pop()
        alone = price([reqs[i]])
        assert alone is not None
        blocks.append([reqs[i]])
        search(i + 1, blocks, cost + alone)
        blocks.pop()

    search(0, [], 0.0)
    return round(best[0], 6)


def _paired_pods() -> list[dict[str, Any]]:
    return [
        pod("a-0", cpu="14", memory="50Gi", gpu=1),
        pod("b-0", cpu="3", memory="8Gi", gpu=1),
        pod("c-0", cpu="16", memory="60Gi", gpu=1),
        pod("d-0", cpu="4", memory="24Gi", gpu=1),
        pod("c-1", cpu="16", memory="60Gi", gpu=1),
    ]


def test_the_repack_finds_the_cheapest_plan_that_placing_class_after_class_misses() -> None:
    """Two 16-core GPU pods fit no 1-GPU type: they need the 4-GPU g6.12xlarge ($5.752), whose other two GPUs and
    spare cores take the two small GPU pods; the 14-core pod then costs $1.654 alone on a g6.4xlarge: $7.406. Placing
    class after class, the packer fills the g6.12xlarge with the large pods first and gives a small one a node of its
    own ($8.412); the split, empty and merge moves do not undo that."""
    pods = _paired_pods()
    without = _packer(pods, repack=False)
    with_repack = _packer(pods, repack=True)
    assert _optimum(with_repack) == 7.406
    assert _cost(without) == 8.412
    assert _cost(with_repack) == 7.406
    _placed_once_and_fitting(with_repack, pods)
    assert sorted(c.chosen.itype.name for c in with_repack.claims if c.pods) == ["ml.g6.12xlarge", "ml.g6.4xlarge"]
    stats = with_repack.improve_stats["repack"]
    assert isinstance(stats, dict)
    assert {k: stats[k] for k in ("tiers", "kept", "saved", "converged")} == {
        "tiers": 1,
        "kept": 1,
        "saved": 1.006,
        "converged": True,
    }
    assert stats["lp"] <= 7.406 + 1e-6 and stats["pivots"] > 0 and stats["work"] > 0


SHAPES = [
    ("3", "8Gi", 1),
    ("4", "24Gi", 1),
    ("8", "30Gi", 1),
    ("11", "40Gi", 1),
    ("12", "44Gi", 1),
    ("14", "50Gi", 1),
    ("16", "60Gi", 1),
    ("6", "20Gi", 0),
    ("15", "40Gi", 0),
    ("12", "48Gi", 0),
]


@pytest.mark.parametrize("seed", range(12))
def test_the_repack_never_costs_more_places_every_pod_once_and_is_never_below_the_optimum(seed: int) -> None:
    rng = random.Random(seed)
    pods = []
    for j in range(rng.randint(5, 7)):
        cpu, memory, gpu = rng.choice(SHAPES)
        pods.append(pod(f"p{j}-0", cpu=cpu, memory=memory, gpu=gpu))
    without = _packer(pods, repack=False)
    with_repack = _packer(pods, repack=True)
    _placed_once_and_fitting(with_repack, pods)
    assert _optimum(with_repack) <= _cost(with_repack) <= _cost(without)


def test_a_tier_whose_nodepool_has_limits_is_left_to_the_moves() -> None:
    pods = _paired_pods()
    p = _packer(pods, repack=True, limits={"cpu": "1000"})
    assert p.improve_stats["repack"] == {"tiers": 0, "kept": 0, "saved": 0.0}
    _placed_once_and_fitting(p, pods)


def test_a_repack_cut_by_its_work_bound_gives_the_same_plan_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # the work bound, not the clock, ends the search here: the plan is a function of the input alone
    monkeypatch.setattr(columns, "WORK_PER_SECOND", 3_000)
    rng = random.Random(7)
    pods = []
    for j in range(60):
        cpu, memory, gpu = rng.choice(SHAPES)
        pods.append(pod(f"p{j}-0", cpu=cpu, memory=memory, gpu=gpu))
    plans, all_stats = [], []
    for _ in range(2):
        p = _packer(pods, repack=False)  # the moves only: the repack below is the one measured
        all_stats.append(columns.repack(p, 1.0))
        plans.append(sorted((c.chosen.itype.name, sorted(x.key for x in c.pods)) for c in p.claims if c.pods))
        _placed_once_and_fitting(p, pods)
    assert all_stats[0]["converged"] is False, all_stats[0]
    assert all_stats[0] == all_stats[1]
    assert plans[0] == plans[1]


def test_the_rounding_gives_up_past_its_time_and_otherwise_places_every_pod() -> None:
    # a safety net: the packing of what the LP's whole nodes leave is not bounded by work, so it stops at a time
    import time

    pods = _paired_pods()
    p = _packer(pods, repack=False)
    (pb,) = columns._problems(p)
    worth = [1.0] * len(pb.keys)
    late = columns._round(pb, [], list(pb.n), worth, time.perf_counter() - 1.0)
    assert late is None, "all pods left to place, and late"
    nodes = columns._round(pb, [], list(pb.n), worth, time.perf_counter() + 60.0)
    assert nodes is not None
    placed = [0] * len(pb.keys)
    for node in nodes:
        for k, m in node.counts.items():
            placed[k] += m
    assert placed == pb.n


def _problem(alloc: tuple[int, ...], reqs: list[tuple[int, ...]], n: list[int], accel: list[int]) -> columns.Problem:
    """A hand-made problem: one shape of price 10 that takes every class."""
    shape = columns.Shape(alloc, 10.0, frozenset(range(len(reqs))))
    pb = columns.Problem(0, [], [(k, 0) for k in range(len(reqs))], reqs, n, [[] for _ in reqs], [shape], accel)
    pb.nonzero = [nonzero(req) for req in reqs]
    return pb


def test_an_exchange_frees_the_room_a_small_pod_needs() -> None:
    # (cpu, memory, GPU) on a node of (10, 10, 2): two CPU-heavy GPU pods fill its CPU and leave memory idle (worth
    # exactly the node's price at these duals); one of them making way for a memory-heavy GPU pod leaves room for a small
    # CPU pod, a column worth 12
    heavy, memory_heavy, small, other = (5, 2, 1), (2, 7, 1), (3, 1, 0), (4, 4, 1)
    pb = _problem((10, 10, 2), [heavy, memory_heavy, small, other], [4, 4, 10, 4], [2])
    y = [5.0, 5.0, 2.0, 4.9]
    value, take = columns._exchange_fill(pb, 0, [{0: 2}], y)
    assert (value, take) == (12.0, {0: 1, 1: 1, 2: 1})
    # no start, no exchange; a start nothing can be exchanged in keeps nothing
    assert columns._exchange_fill(pb, 0, [], y) == (0.0, {})
    assert columns._exchange_fill(pb, 0, [{0: 2}], [5.0, 0.0, 0.0, 0.0]) == (0.0, {})
    # the work bound: a search that may take no step finds nothing, one that may take a few counts them
    assert columns._exchange_fill(pb, 0, [{0: 2}], y, max_work=pb.work) == (0.0, {})
    before = pb.work
    assert columns._exchange_fill(pb, 0, [{0: 2}], y, max_work=pb.work + 1000) == (12.0, {0: 1, 1: 1, 2: 1})
    assert pb.work > before


@pytest.mark.parametrize("seed", range(20))
def test_exchange_columns_fit_their_shape_and_never_take_more_pods_than_a_class_has(seed: int) -> None:
    rng = random.Random(seed)
    alloc = (rng.randint(8, 48), rng.randint(8, 64), rng.choice([2, 4, 8]))
    reqs: list[tuple[int, ...]] = [
        (rng.randint(1, 8), rng.randint(1, 16), rng.choice([0, 0, 1, 1, 2])) for _ in range(8)
    ]
    reqs = [r for r in reqs if all(q <= a for q, a in zip(r, alloc, strict=True))] or [(1, 1, 0)]
    n = [rng.randint(1, 5) for _ in reqs]
    pb = _problem(alloc, reqs, n, [2])
    y = [round(rng.uniform(0.1, 3.0), 3) for _ in reqs]
    _value, start = columns._best_fill(pb, 0, y, n)
    value, take = columns._exchange_fill(pb, 0, [start], y)
    if not take:
        return
    used = [sum(reqs[k][r] * m for k, m in take.items()) for r in range(3)]
    assert all(u <= a for u, a in zip(used, alloc, strict=True)), (take, used, alloc)
    assert all(0 < m <= n[k] for k, m in take.items())
    assert value == pytest.approx(sum(y[k] * m for k, m in take.items()))
    # one exchange from the start: at most one class of the start lost a pod
    assert sum(1 for k, m in start.items() if take.get(k, 0) < m) <= 1


def test_the_rounding_puts_what_whole_nodes_leave_in_their_room_before_opening_nodes() -> None:
    # two classes on a (10, 10, 2) node: the LP's half node of the second class goes into the first node's room
    pb = _problem((10, 10, 2), [(4, 4, 1), (2, 2, 0)], [2, 1], [2])
    pb.columns = [columns.Column(0, 10.0, {0: 2}), columns.Column(0, 10.0, {1: 5})]
    pb.members = [[0], [1]]
    whole, need = columns._whole_nodes(pb, pb, [(0, 1.0), (1, 0.2)])
    assert [node.counts for node in whole] == [{0: 2}] and need == [0, 1]
    nodes = columns._round(pb, whole, need, [5.0, 2.0], float("inf"))
    assert nodes is not None
    assert [node.counts for node in nodes] == [{0: 2, 1: 1}]
