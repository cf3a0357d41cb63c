"""Pricing one offering shape for the repack: the node of that shape whose pods are worth the most at the master's duals.

That node is a bounded integer knapsack in a few resources (CPU, memory, accelerators, pod slots): each class of pods is
worth its dual per pod, at most ``limit[k]`` of it, and the pods must fit the allocatable. Two tools, both exact in what
they claim:

- ``KnapsackLP``: the knapsack's LP relaxation (pods divisible), by a bounded-variable primal simplex with as many rows
  as resources. Its constraints are fixed per shape, only the worths change from one pricing round to the next, so it
  is kept and warm-started: a few pivots a round. Its resource prices ``lam`` give the *Lagrangian bound*
  ``sum(lam) + sum_k limit_k * max(0, worth_k - lam . share_k)``, an upper bound on every node's worth for any prices
  ``lam >= 0`` (optimal or not): a shape whose bound is not above its price cannot give an entering column, and the
  search below prunes with the same bound.
- ``search``: a depth-first search over the classes, most valuable at those prices first (the LP's own solution first),
  each node of the search completed greedily into a full column, pruned by the Lagrangian bound of what is left. The
  columns the greedy fills of ``columns.py`` miss are the *tight* ones, full in CPU and memory at once (four GPU pods
  whose cores and memory dovetail, with a CPU pod in the cores left): at the LP's prices every pod is worth about what
  it uses, and what decides is the room left over. The search is bounded by a number of nodes, so it is a heuristic
  with a proof of optimality only when it finishes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .vectors import Vec, pack_into

EPS = 1e-9


class KnapsackLP:
    """``max c.x`` subject to ``A x <= 1`` and ``0 <= x <= upper``, by a primal simplex with bounded variables.

    ``rows[i][j]`` is the share of resource ``i`` of the node that one pod of item ``j`` takes. Slack ``i`` is variable
    ``n + i``. The tableau ``B^-1 [A I]`` is kept between calls: a new objective starts from the last basis, which is
    still feasible (only the objective changed)."""

    def __init__(self, rows: Sequence[Sequence[float]], upper: Sequence[float]) -> None:
        self.m = m = len(rows)
        self.n = n = len(upper)
        self.cols: list[list[tuple[int, float]]] = [[(i, rows[i][j]) for i in range(m) if rows[i][j]] for j in range(n)]
        self.upper = [float(u) for u in upper] + [float("inf")] * m
        self.tableau = [[float(v) for v in rows[i]] + [1.0 if j == i else 0.0 for j in range(m)] for i in range(m)]
        self.basis = [n + i for i in range(m)]
        self.values = [1.0] * m
        self.basic = [False] * n + [True] * m
        self.at_upper = [False] * (n + m)
        self.pivots = 0
        """Simplex steps taken over every call (the caller's work count)."""

    def solve(self, c: Sequence[float], max_steps: int = 0) -> tuple[list[float], bool]:
        """Optimise for worths ``c`` (nonnegative); returns the resource prices ``lam`` (each >= 0) and whether they are
        optimal (False only when ``max_steps`` ran out: the prices still give a valid bound)."""
        m, n = self.m, self.n
        steps = max_steps or 50 + 4 * (n + m)
        for _ in range(steps):
            lam = self._prices(c)
            enter, direction = -1, 0.0
            best = EPS
            for j in range(n + m):
                if self.basic[j]:
                    continue
                if j < n:
                    d = c[j]
                    for i, a in self.cols[j]:
                        d -= lam[i] * a
                else:
                    d = -lam[j - n]
                score = -d if self.at_upper[j] else d
                if score > best:
                    best, enter, direction = score, j, (-1.0 if self.at_upper[j] else 1.0)
            if enter < 0:
                return [max(0.0, v) for v in lam], True
            self._step(enter, direction)
        return [max(0.0, v) for v in self._prices(c)], False

    def solution(self) -> list[float]:
        """The current basic solution's ``x`` (items only)."""
        x = [self.upper[j] if self.at_upper[j] and not self.basic[j] else 0.0 for j in range(self.n)]
        for b, v in zip(self.basis, self.values, strict=True):
            if b < self.n:
                x[b] = v
        return x

    def _prices(self, c: Sequence[float]) -> list[float]:
        m, n, tab = self.m, self.n, self.tableau
        cb = [c[b] if b < n else 0.0 for b in self.basis]
        return [sum(cb[r] * tab[r][n + i] for r in range(m)) for i in range(m)]

    def _step(self, j: int, direction: float) -> None:
        m, tab = self.m, self.tableau
        alpha = [tab[r][j] for r in range(m)]
        limit, leave, leave_high = self.upper[j], -1, False
        for r in range(m):
            a = direction * alpha[r]
            if a > EPS:
                t = self.values[r] / a
                if t < limit - 1e-12:
                    limit, leave, leave_high = t, r, False
            elif a < -EPS:
                high = self.upper[self.basis[r]]
                if high != float("inf"):
                    t = (high - self.values[r]) / -a
                    if t < limit - 1e-12:
                        limit, leave, leave_high = t, r, True
        self.pivots += 1
        limit = max(0.0, limit)
        for r in range(m):
            self.values[r] -= direction * limit * alpha[r]
        if leave < 0:  # the entering variable reaches its other bound
            self.at_upper[j] = not self.at_upper[j]
            return
        entering_value = (self.upper[j] if self.at_upper[j] else 0.0) + direction * limit
        pivot_row = [v / alpha[leave] for v in tab[leave]]
        tab[leave] = pivot_row
        for r in range(m):
            f = alpha[r]
            if r != leave and f:
                tab[r] = [a - f * b for a, b in zip(tab[r], pivot_row, strict=True)]
        old = self.basis[leave]
        self.basis[leave] = j
        self.basic[j], self.basic[old] = True, False
        self.at_upper[j], self.at_upper[old] = False, leave_high
        self.values[leave] = entering_value


def lagrangian_bound(lam: Sequence[float], devs: Sequence[float], limits: Sequence[int]) -> float:
    """``sum(lam) + sum_k limit_k * max(0, dev_k)``: no node of the shape is worth more (``dev_k`` is item ``k``'s worth
    less its resources at the prices ``lam``)."""
    return sum(lam) + sum(d * u for d, u in zip(devs, limits, strict=True) if d > 0)


@dataclass(slots=True)
class Item:
    """One class of pods in a search: its nonzero requests, worth per pod, most pods, and worth over its resources."""

    k: int
    asks: tuple[tuple[int, int], ...]
    worth: float
    most: int
    dev: float
    lp: float
    """How many the LP relaxation takes (the search tries that count first)."""


@dataclass(slots=True)
class Found:
    value: float
    counts: dict[int, int]
    steps: int
    """Work done: the items the greedy completions looked at."""
    finished: bool
    """The search ran to its end: no column of the shape is worth more than ``value`` (or the floor)."""


def search(alloc: Vec, items: list[Item], root_bound: float, floor: float, max_nodes: int) -> Found:
    """The most valuable column above ``floor`` found in ``max_nodes`` nodes of a depth-first search.

    ``items`` are sorted by the caller (most worth over resources first); ``root_bound`` is ``sum(lam)``. At each node
    the classes fixed so far are completed greedily (as many of each later class as fit, in order): the completions
    are the columns found. A subtree is cut when the Lagrangian bound of what is left cannot beat the best found."""
    n = len(items)
    positive = [0.0] * (n + 1)
    for i in range(n - 1, -1, -1):
        it = items[i]
        positive[i] = positive[i + 1] + (it.dev * it.most if it.dev > 0 else 0.0)
    best_value, best_counts = floor, {}
    free = list(alloc)
    counts = [0] * n
    nodes = steps = 0

    def complete(i: int, value: float) -> None:
        nonlocal best_value, best_counts, steps
        room = list(free)
        added: list[tuple[int, int]] = []
        steps += n - i
        for t in range(i, n):
            it = items[t]
            most = pack_into(room, it.asks, it.most)
            if most:
                added.append((t, most))
                value += it.worth * most
        if value > best_value + EPS:
            best_value = value
            best_counts = {items[t].k: counts[t] for t in range(i) if counts[t]}
            for t, m in added:
                best_counts[items[t].k] = m

    def visit(i: int, value: float, bound: float) -> None:
        nonlocal nodes
        nodes += 1
        complete(i, value)
        if i == n or nodes >= max_nodes or bound + positive[i] <= best_value + EPS:
            return
        it = items[i]
        taken = most = pack_into(free, it.asks, it.most)  # ``free`` has ``taken`` pods of the item off it
        start = min(most, int(it.lp + 0.5))
        order = [start]
        low, high = start - 1, start + 1
        while low >= 0 or high <= most:
            if high <= most:
                order.append(high)
                high += 1
            if low >= 0:
                order.append(low)
                low -= 1
        for m in order:
            if bound + m * it.dev + positive[i + 1] <= best_value + EPS:
                continue
            for r, q in it.asks:
                free[r] += q * (taken - m)
            taken = counts[i] = m
            visit(i + 1, value + m * it.worth, bound + m * it.dev)
            if nodes >= max_nodes:
                break
        for r, q in it.asks:
            free[r] += q * taken
        counts[i] = 0

    visit(0, 0.0, root_bound)
    return Found(best_value, best_counts, steps, nodes < max_nodes)
