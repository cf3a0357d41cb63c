"""The repack's pricing of one shape (``scheduling/knapsack.py``) and its merging of classes into rows
(``columns._aggregate``), checked against independent oracles: scipy's HiGHS for the LP relaxation, an exhaustive
enumeration of every column for the integer knapsack."""

from __future__ import annotations

import itertools
import random

import pytest
from hyperpod_autoscaler.domain.scheduling import columns, knapsack
from hyperpod_autoscaler.domain.scheduling.knapsack import Item, KnapsackLP
from hyperpod_autoscaler.domain.scheduling.vectors import nonzero

scipy_optimize = pytest.importorskip("scipy.optimize")


def _instance(rng: random.Random) -> tuple[tuple[int, ...], list[tuple[int, ...]], list[int], list[float]]:
    """A node of (cpu, memory, gpu) and a few classes: their requests, how many fit at most, and their worths."""
    alloc = (rng.randint(8, 48), rng.randint(8, 64), rng.choice([1, 2, 4]))
    reqs = []
    while len(reqs) < rng.randint(2, 6):
        req = (rng.randint(1, 12), rng.randint(1, 20), rng.choice([0, 0, 1, 1, 2]))
        if all(q <= a for q, a in zip(req, alloc, strict=True)):
            reqs.append(req)
    limits = [min(rng.randint(1, 4), min(a // q for q, a in zip(r, alloc, strict=True) if q)) for r in reqs]
    worths = [round(rng.uniform(0.1, 5.0), 3) for _ in reqs]
    return alloc, reqs, limits, worths


def _rows(alloc: tuple[int, ...], reqs: list[tuple[int, ...]]) -> tuple[list[int], list[list[float]]]:
    dims = [r for r in range(len(alloc)) if any(q[r] for q in reqs)]
    return dims, [[q[r] / alloc[r] for q in reqs] for r in dims]


def _integer_optimum(
    alloc: tuple[int, ...], reqs: list[tuple[int, ...]], limits: list[int], worths: list[float]
) -> float:
    best = 0.0
    for counts in itertools.product(*(range(u + 1) for u in limits)):
        used = [sum(q[r] * m for q, m in zip(reqs, counts, strict=True)) for r in range(len(alloc))]
        if all(u <= a for u, a in zip(used, alloc, strict=True)):
            best = max(best, sum(w * m for w, m in zip(worths, counts, strict=True)))
    return best


def _lp_optimum(rows: list[list[float]], limits: list[int], worths: list[float]) -> float:
    res = scipy_optimize.linprog(
        [-w for w in worths], A_ub=rows, b_ub=[1.0] * len(rows), bounds=[(0, u) for u in limits], method="highs"
    )
    assert res.status == 0
    return -res.fun


def _lp_value(lp: KnapsackLP, worths: list[float]) -> float:
    return sum(w * x for w, x in zip(worths, lp.solution(), strict=True))


@pytest.mark.parametrize("seed", range(40))
def test_the_knapsack_lp_matches_highs_and_its_bound_holds_warm_or_cold(seed: int) -> None:
    rng = random.Random(seed)
    alloc, reqs, limits, worths = _instance(rng)
    _dims, rows = _rows(alloc, reqs)
    lp = KnapsackLP(rows, limits)
    for round_ in range(3):  # the same LP, warm-started with new worths each round
        if round_:
            worths = [round(w * rng.uniform(0.5, 1.5), 3) for w in worths]
        lam, optimal = lp.solve(worths)
        assert optimal
        assert all(v >= 0 for v in lam)
        best = _lp_optimum(rows, limits, worths)
        assert _lp_value(lp, worths) == pytest.approx(best, rel=1e-7, abs=1e-9)
        x = lp.solution()
        assert all(-1e-9 <= v <= u + 1e-9 for v, u in zip(x, limits, strict=True))
        assert all(sum(row[j] * x[j] for j in range(len(x))) <= 1 + 1e-9 for row in rows)
        devs = [w - sum(lam[i] * rows[i][j] for i in range(len(rows))) for j, w in enumerate(worths)]
        assert knapsack.lagrangian_bound(lam, devs, limits) == pytest.approx(best, rel=1e-7, abs=1e-9)


@pytest.mark.parametrize("seed", range(40))
def test_the_lagrangian_bound_holds_at_any_nonnegative_prices(seed: int) -> None:
    rng = random.Random(1000 + seed)
    alloc, reqs, limits, worths = _instance(rng)
    _dims, rows = _rows(alloc, reqs)
    lam = [rng.uniform(0, 6) for _ in rows]
    devs = [w - sum(lam[i] * rows[i][j] for i in range(len(rows))) for j, w in enumerate(worths)]
    assert knapsack.lagrangian_bound(lam, devs, limits) >= _integer_optimum(alloc, reqs, limits, worths) - 1e-9


def _search(
    alloc: tuple[int, ...],
    reqs: list[tuple[int, ...]],
    limits: list[int],
    worths: list[float],
    floor: float,
    nodes: int,
) -> knapsack.Found:
    _dims, rows = _rows(alloc, reqs)
    lp = KnapsackLP(rows, limits)
    lam, _optimal = lp.solve(worths)
    devs = [w - sum(lam[i] * rows[i][j] for i in range(len(rows))) for j, w in enumerate(worths)]
    items = [
        Item(k, nonzero(reqs[k]), worths[k], limits[k], devs[k], x) for k, x in enumerate(lp.solution()) if limits[k]
    ]
    items.sort(key=lambda it: (-it.dev, -it.lp, it.k))
    return knapsack.search(alloc, items, sum(lam), floor, nodes)


@pytest.mark.parametrize("seed", range(60))
def test_the_search_run_to_its_end_finds_the_best_column(seed: int) -> None:
    rng = random.Random(2000 + seed)
    alloc, reqs, limits, worths = _instance(rng)
    best = _integer_optimum(alloc, reqs, limits, worths)
    found = _search(alloc, reqs, limits, worths, 0.0, 1_000_000)
    assert found.finished
    assert found.value == pytest.approx(best)
    used = [sum(reqs[k][r] * m for k, m in found.counts.items()) for r in range(len(alloc))]
    assert all(u <= a for u, a in zip(used, alloc, strict=True))
    assert all(0 < m <= limits[k] for k, m in found.counts.items())
    assert sum(worths[k] * m for k, m in found.counts.items()) == pytest.approx(found.value)
    # above a floor it cannot beat, it finds nothing and says it looked everywhere
    above = _search(alloc, reqs, limits, worths, best + 0.01, 1_000_000)
    assert above.finished and above.counts == {}


def test_a_search_cut_by_its_node_limit_says_so_and_still_returns_a_fitting_column() -> None:
    # eight classes that dovetail in CPU and memory: many columns, one node is not enough to look at them all
    alloc = (48, 192, 4)
    reqs = [(c, m, 1) for c, m in [(16, 34), (11, 51), (4, 16), (15, 94), (10, 44), (3, 6), (12, 17), (8, 32)]]
    limits = [min(4, 48 // q[0], 192 // q[1]) for q in reqs]
    worths = [1.51, 2.0, 1.17, 2.0, 1.44, 1.0, 1.2, 1.4]
    cut = _search(alloc, reqs, limits, worths, 0.0, 1)
    assert not cut.finished
    assert cut.counts, "the root's greedy completion is a column"
    used = [sum(reqs[k][r] * m for k, m in cut.counts.items()) for r in range(3)]
    assert all(u <= a for u, a in zip(used, alloc, strict=True))
    full = _search(alloc, reqs, limits, worths, 0.0, 1_000_000)
    assert full.finished and full.value >= cut.value
    assert full.value == pytest.approx(_integer_optimum(alloc, reqs, limits, worths))


def _problem(shapes: list[tuple[tuple[int, ...], float]], reqs: list[tuple[int, ...]], n: list[int]) -> columns.Problem:
    """A hand-made problem, every class on every shape it fits; resource 2 is the accelerator."""
    shape_list = [
        columns.Shape(
            alloc, price, frozenset(k for k, q in enumerate(reqs) if all(a >= b for a, b in zip(alloc, q, strict=True)))
        )
        for alloc, price in shapes
    ]
    pb = columns.Problem(0, [], [(k, 0) for k in range(len(reqs))], reqs, n, [[] for _ in reqs], shape_list, [2])
    pb.nonzero = [nonzero(q) for q in reqs]
    return pb


def test_rows_merge_classes_of_the_same_accelerators_and_shapes_and_ask_for_the_most_of_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(columns, "AGGREGATE_ROWS", 2)
    monkeypatch.setattr(columns, "AGGREGATE_WASTE", 1.0)
    # two GPU classes close to each other, one far, one CPU class: the close ones merge first
    reqs = [(10, 40, 1), (11, 39, 1), (2, 100, 1), (8, 8, 0)]
    pb = _problem([((48, 192, 4), 5.0), ((16, 64, 1), 1.6), ((16, 128, 0), 1.0)], reqs, [50, 3, 20, 9])
    lp, row_of = columns._aggregate(pb)
    assert row_of[0] == row_of[1] and len({row_of[0], row_of[2], row_of[3]}) == 3, row_of
    assert lp.reqs[row_of[0]] == (11, 40, 1)
    assert lp.n[row_of[0]] == 53 and sum(lp.n) == sum(pb.n)
    assert lp.members[row_of[0]] == [1, 0], "the largest member first"
    assert len(lp.keys) == 3, "a row of its own for each accelerator count, whatever the limit"
    for k, row in enumerate(row_of):
        assert all(a <= b for a, b in zip(reqs[k], lp.reqs[row], strict=True))
        assert {s for s, sh in enumerate(pb.shapes) if k in sh.accepts} == {
            s for s, sh in enumerate(lp.shapes) if row in sh.accepts
        }


def test_classes_that_may_run_on_different_shapes_stay_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(columns, "AGGREGATE_ROWS", 1)
    monkeypatch.setattr(columns, "AGGREGATE_WASTE", 1.0)
    # the CPU-heavy class fits both 1-GPU nodes, the memory-heavy one only the larger: a row for both would lose the
    # smaller node to the first, so they keep a row each
    pb = _problem([((16, 64, 1), 1.6), ((16, 128, 1), 2.0)], [(15, 10, 1), (2, 100, 1)], [4, 4])
    lp, row_of = columns._aggregate(pb)
    assert row_of == [0, 1] and len(lp.keys) == 2
    # on the same shapes they merge (the most of each request fits wherever both do)
    pb = _problem([((16, 128, 1), 2.0)], [(15, 10, 1), (2, 100, 1)], [4, 4])
    lp, row_of = columns._aggregate(pb)
    assert row_of == [0, 0] and lp.reqs == [(15, 100, 1)]


def test_merging_stops_at_its_waste_share(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(columns, "AGGREGATE_ROWS", 1)
    monkeypatch.setattr(columns, "AGGREGATE_WASTE", 0.01)
    # 100 small pods and one large: one row would ask for the large request 101 times
    pb = _problem([((48, 192, 4), 5.0)], [(2, 4, 1), (40, 180, 1)], [100, 1])
    _lp, row_of = columns._aggregate(pb)
    assert row_of == [0, 1]
    monkeypatch.setattr(columns, "AGGREGATE_WASTE", 100.0)
    _lp, row_of = columns._aggregate(pb)
    assert row_of == [0, 0]


@pytest.mark.parametrize("seed", range(10))
def test_rows_keep_every_class_once_above_its_requests_and_within_the_waste_share(seed: int) -> None:
    rng = random.Random(3000 + seed)
    shapes = [((48, 192, 4), 5.0), ((16, 64, 1), 1.6), ((32, 128, 0), 1.0), ((192, 768, 8), 16.0)]
    reqs = [(rng.randint(1, 16), rng.randint(1, 64), rng.choice([0, 1, 1, 2])) for _ in range(rng.randint(20, 120))]
    n = [rng.randint(1, 40) for _ in reqs]
    pb = _problem(shapes, reqs, n)
    lp, row_of = columns._aggregate(pb)
    assert sorted(k for members in lp.members for k in members) == list(range(len(reqs)))
    assert all(row_of[k] == row for row, members in enumerate(lp.members) for k in members)
    assert [sum(n[k] for k in members) for members in lp.members] == lp.n
    scale = [192, 768, 8]
    added = demand = 0.0
    for k, row in enumerate(row_of):
        assert all(a <= b for a, b in zip(reqs[k], lp.reqs[row], strict=True))
        assert reqs[k][2] == lp.reqs[row][2], "the same accelerators"
        assert {s for s, sh in enumerate(pb.shapes) if k in sh.accepts} == {
            s for s, sh in enumerate(lp.shapes) if row in sh.accepts
        }
        added += n[k] * sum((b - a) / c for a, b, c in zip(reqs[k], lp.reqs[row], scale, strict=True))
        demand += n[k] * sum(a / c for a, c in zip(reqs[k], scale, strict=True))
    assert added <= columns.AGGREGATE_WASTE * demand + 1e-9
    assert len(lp.keys) <= len(reqs)
