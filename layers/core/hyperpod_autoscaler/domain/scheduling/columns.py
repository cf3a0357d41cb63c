"""Repacking the new claims by column generation.

The packer places one class of pods after another, so a node it opens early is sized for the pods it has seen: a 4-GPU
node takes four CPU-heavy GPU pods and wastes a fifth of its cores, while the small GPU pods that would have filled that
room get single-GPU nodes of their own. This pass looks at all the movable claims of a tier at once, as counts of pods
per class, and solves the *configuration LP* over them: each column is one node of one offering shape holding whole
pods (so many of each class), each row says every pod is placed, and the LP picks how many nodes of each column to buy.

- *Master*: a revised simplex on ``min price·x`` subject to ``A x >= n``, with the explicit inverse of the basis (a few
  hundred classes at most). It starts from one node per class on its cheapest shape, with the packer's own claims as
  columns it can use at once.
- *Pricing*: with the master's duals (what one more pod of each class is worth), each shape's best column is a
  knapsack. It is filled greedily in the order of worth per weighted share of the node, over a few weightings of the
  resources (CPU, memory, accelerators); the best fill that is worth more than the shape's price enters. When none
  is, the *exchange* pricing starts from the shape's basic columns (worth exactly its price): one pod of a basic
  column makes way for a pod of another class and the room left is filled greedily; the best exchange worth more than
  the price enters (a node full in CPU and idle in memory, turned into one that fits a small pod more). The pricing is
  not exact, so the LP it reaches is an upper bound on the configuration LP, not the bound itself.
- *Rounding*: every column's whole nodes are bought (largest first); the pods they leave go first into the room those
  nodes have left, then are packed greedily, each new node the shape whose greedy fill is worth the most per price at
  the duals; every node then takes its cheapest shape.

The result replaces the claims only when it costs less and keeps within ``max_new``. Claims whose pods carry topology
rules, and tiers with NodePool limits, are left alone. The search stops at its deadline or after a fixed number of
steps, whichever comes first, so small inputs give the same plan every time.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..k8s import Pod
from ..resources import CPU, EPHEMERAL_STORAGE, MEMORY, PODS
from .vectors import Vec, count_fit, fits, pack_into, vadd, vscale, vsub

if TYPE_CHECKING:
    from .offerings import Offering
    from .packer import Claim, Packer

MAX_CLASSES = 400
"""Tiers with more distinct pod classes than this are not repacked (the master's inverse grows with their square)."""
MAX_PIVOTS = 20_000
"""Simplex steps at most, whatever the budget."""
WORK_PER_SECOND = 1_500_000
"""Work steps (``Problem.work``) the repack may take per second of its budget."""
ROUND_GRACE_SECONDS = 0.25
"""How far past the repack's deadline the rounding may run before the repack is dropped (a safety net)."""
PIVOT_WORK_DIVISOR = 8
"""A pivot's row operations on the basis inverse (size squared) run about this many times faster than fill steps."""
COLUMNS_PER_ROUND = 8
"""New columns a pricing round adds at most (the most negative reduced costs)."""
WEIGHTINGS: tuple[tuple[float, float, float], ...] = ((1, 1, 1), (1, 0, 1), (0, 1, 1), (2, 1, 1), (1, 1, 2))
"""Weights of (CPU, memory, accelerators) in the share of a node a pod takes, one greedy fill per weighting (with the
dominant share, the ones that found the entering columns on the Alibaba traces)."""
FORCED = 4
"""The classes worth the most per pod are each tried first in a fill of their own: one large pod with small ones that
complement it (a memory-heavy GPU pod with CPU-light ones) is a column no share order finds."""
EPS = 1e-9
EXCHANGE_STARTS = 4
"""Basic columns per shape (the most used) that the exchange pricing starts from, once the greedy fills find nothing."""
EXCHANGE_MIN_DEVICES = 2
"""The exchange pricing runs on shapes with at least this many accelerators: where a node holds several GPU pods whose
CPU and memory must dovetail (on the traces, 1-GPU and CPU-only shapes gained nothing from it)."""


@dataclass(frozen=True, slots=True)
class Shape:
    """Offerings of a tier that look the same to the repack: allocatable, price, and which pod classes accept them."""

    alloc: Vec
    price: float
    accepts: frozenset[int]
    """Indexes (into the problem's keys) of the classes that may run there."""


@dataclass(slots=True)
class Column:
    """One node of one shape holding ``counts[k]`` pods of class ``k``."""

    shape: int
    price: float
    counts: dict[int, int]


@dataclass(slots=True)
class Problem:
    """The movable claims of one tier as counts: class ``k`` asks ``reqs[k]`` per pod and has ``n[k]`` pods."""

    tier: int
    claims: list[Claim]
    keys: list[tuple[int, int]]
    reqs: list[Vec]
    n: list[int]
    pods: list[list[Pod]]
    shapes: list[Shape]
    accel: list[int]
    """Resource indexes counted as accelerators in the weightings (GPUs, Neuron devices)."""
    columns: list[Column] = field(default_factory=list)
    nonzero: list[tuple[tuple[int, int], ...]] = field(default_factory=list)
    """Per class, its (resource index, request) pairs with a request above zero: what a fill checks."""
    work: int = 0
    """Steps taken so far: classes visited by the pricing fills, plus each pivot's share of its row operations."""
    sizes: dict[int, list[dict[int, float]]] = field(default_factory=dict)
    """Per shape (by index): per class, the share of the node one pod takes, by its dominant resource and then
    under each of the ``WEIGHTINGS``."""

    @property
    def cost(self) -> float:
        return sum(c.price for c in self.claims)


def _problems(packer: Packer) -> list[Problem]:
    by_tier: dict[int, list[Claim]] = defaultdict(list)
    for c in packer.claims:
        if c.pods and packer.movable(c):
            by_tier[c.tier].append(c)
    out: list[Problem] = []
    names = packer.space.names
    accel = [i for i, name in enumerate(names) if name not in (CPU, MEMORY, PODS, EPHEMERAL_STORAGE)]
    for tier, claims in sorted(by_tier.items()):
        offerings = [o for o in packer.offer.offerings if o.tier == tier]
        if len(claims) < 2 or any(o.pool.limits for o in offerings):
            continue
        pods_by_key: dict[tuple[int, int], list[Pod]] = defaultdict(list)
        for c in sorted(claims, key=lambda c: c.idx):
            for p in c.pods:
                pods_by_key[packer.pod_class[p.key]].append(p)
        keys = sorted(pods_by_key)
        if len(keys) > MAX_CLASSES:
            continue
        allowed = []
        for cls_idx, level in keys:
            view = packer.class_by_idx[cls_idx].view(level)
            assert view is not None
            allowed.append(packer.allowed_offerings(view))
        reqs = [packer.class_by_idx[k[0]].req for k in keys]
        seen: dict[tuple, int] = {}
        shapes: list[Shape] = []
        for o in sorted(offerings, key=lambda o: (o.price, o.idx)):
            accepts = frozenset(i for i in range(len(keys)) if o.idx in allowed[i] and fits(reqs[i], o.alloc))
            sig = (o.alloc, o.price, accepts)
            if accepts and sig not in seen:
                seen[sig] = len(shapes)
                shapes.append(Shape(o.alloc, o.price, accepts))
        problem = Problem(tier, claims, keys, reqs, [len(pods_by_key[k]) for k in keys], [], shapes, accel)
        problem.pods = [pods_by_key[k] for k in keys]
        problem.nonzero = [packer.class_by_idx[k[0]].asks for k in keys]
        out.append(problem)
    return out


def _fill(
    pb: Problem, shape: Shape, order: list[int], y: list[float], limit: list[int]
) -> tuple[float, dict[int, int]]:
    """Greedy fill of one node of ``shape`` with classes in ``order``, at most ``limit[k]`` pods of class ``k``."""
    free = list(shape.alloc)
    take: dict[int, int] = {}
    value = 0.0
    asks = pb.nonzero
    for k in order:
        m = pack_into(free, asks[k], limit[k])
        if m:
            take[k] = m
            value += y[k] * m
    return value, take


def _shares(pb: Problem, shape: Shape, k: int) -> tuple[float, float, float]:
    req, alloc = pb.reqs[k], shape.alloc
    cpu = req[0] / alloc[0] if alloc[0] else 0.0
    mem = req[1] / alloc[1] if alloc[1] else 0.0
    acc = max((req[i] / alloc[i] for i in pb.accel if alloc[i] and req[i]), default=0.0)
    return cpu, mem, acc


def _best_fill(pb: Problem, s: int, y: list[float], limit: list[int]) -> tuple[float, dict[int, int]]:
    """The most valuable of the greedy fills of shape ``s`` over the weightings (and by dominant share)."""
    shape = pb.shapes[s]
    cand = [k for k in shape.accepts if y[k] > EPS and limit[k] > 0]
    if not cand:
        return 0.0, {}
    sizes = pb.sizes.get(s)
    if sizes is None:
        shares = {k: _shares(pb, shape, k) for k in shape.accepts}
        sizes = [{k: max(EPS, max(v)) for k, v in shares.items()}]
        for w in WEIGHTINGS:
            sizes.append({k: max(EPS, w[0] * v[0] + w[1] * v[1] + w[2] * v[2]) for k, v in shares.items()})
        pb.sizes[s] = sizes
    best: tuple[float, dict[int, int]] = (0.0, {})
    orders = [sorted(cand, key=lambda k, size=size: (-y[k] / size[k], k)) for size in sizes]  # type: ignore[misc]
    by_worth = sorted(cand, key=lambda k: (-y[k], k))
    orders.append(by_worth)
    for first in by_worth[:FORCED]:
        orders.append([first, *(k for k in orders[0] if k != first)])
    pb.work += len(orders) * len(cand)
    for order in orders:
        found = _fill(pb, shape, order, y, limit)
        if found[0] > best[0] + EPS:
            best = found
    return best


def _exchange_fill(
    pb: Problem, s: int, starts: list[dict[int, int]], y: list[float], max_work: int | None = None
) -> tuple[float, dict[int, int]]:
    """The most valuable column of shape ``s`` found by exchanging one pod of a start column for one pod of another
    class, then filling the room left greedily by worth per pod.

    The starts are basic columns, worth exactly their price at the duals: a node that is full in one resource and has
    room in another becomes worth more than its price when one of its pods makes way for one that uses the room (a
    CPU-heavy GPU pod for a memory-heavy one, with a small CPU pod in the CPU freed), a column no single greedy order
    builds. The search stops (with the best found so far) once ``pb.work`` reaches ``max_work``."""
    shape = pb.shapes[s]
    reqs, n = pb.reqs, pb.n
    order = sorted((k for k in shape.accepts if y[k] > EPS), key=lambda k: (-y[k], k))
    items = [(k, pb.nonzero[k], y[k], n[k]) for k in order]
    best_value, best = 0.0, {}
    for start in starts:
        used = _used(pb, start)
        value0 = sum(y[k] * m for k, m in start.items())
        for a in sorted(start):
            if max_work is not None and pb.work >= max_work:
                break
            room = vsub(shape.alloc, vsub(used, reqs[a]))
            for b in order:
                if b == a or start.get(b, 0) >= n[b] or not fits(reqs[b], room):
                    continue
                pb.work += len(items)
                free = list(vsub(room, reqs[b]))
                take = dict(start)
                take[a] -= 1
                take[b] = take.get(b, 0) + 1
                value = value0 - y[a] + y[b]
                for k, asks, worth, most in items:
                    m = pack_into(free, asks, most - take.get(k, 0))
                    if m:
                        take[k] = take.get(k, 0) + m
                        value += worth * m
                if value > best_value + EPS:
                    best_value, best = value, {k: m for k, m in take.items() if m}
    return (best_value, best) if best else (0.0, {})


class _Master:
    """The restricted master LP ``min price·x, A x >= n, x >= 0`` by a revised simplex with the basis inverse kept
    explicitly. Variables: the columns (index >= 0) and one surplus per row (index ``-1 - row``)."""

    def __init__(self, pb: Problem) -> None:
        self.pb = pb
        size = len(pb.keys)
        self.size = size
        # the first ``size`` columns are the singletons: a diagonal, feasible basis
        self.basis = list(range(size))
        self.binv = [[0.0] * size for _ in range(size)]
        self.x = [0.0] * size
        for k in range(size):
            m = pb.columns[k].counts[k]
            self.binv[k][k] = 1.0 / m
            self.x[k] = pb.n[k] / m
        self.cb = [pb.columns[k].price for k in range(size)]

    def duals(self) -> list[float]:
        y = [0.0] * self.size
        for i, c in enumerate(self.cb):
            if c:
                row = self.binv[i]
                for j in range(self.size):
                    y[j] += c * row[j]
        return y

    def entering(self, y: list[float]) -> tuple[int, float] | None:
        """The variable with the most negative reduced cost per unit of price, and its reduced cost (None: the basis is
        optimal)."""
        best, enter, cost = -1e-9, None, 0.0
        for j, col in enumerate(self.pb.columns):
            rc = col.price
            for k, m in col.counts.items():
                rc -= y[k] * m
            scaled = rc / max(1.0, col.price)
            if scaled < best:
                best, enter, cost = scaled, j, rc
        for k in range(self.size):
            if y[k] < best:
                best, enter, cost = y[k], -1 - k, y[k]
        return None if enter is None else (enter, cost)

    def pivot(self, enter: int, y: list[float], rc: float) -> bool:
        """Bring ``enter`` (reduced cost ``rc``) into the basis and update the duals ``y`` in place."""
        size, binv = self.size, self.binv
        if enter >= 0:
            counts = self.pb.columns[enter].counts
            d = [sum(binv[i][k] * m for k, m in counts.items()) for i in range(size)]
        else:
            k = -1 - enter
            d = [-binv[i][k] for i in range(size)]
        r, ratio = -1, 0.0
        for i in range(size):
            if d[i] > 1e-9:
                t = self.x[i] / d[i]
                if r < 0 or t < ratio - 1e-12:
                    r, ratio = i, t
        if r < 0:  # unbounded: cannot happen with a nonnegative A and positive prices
            return False
        piv = d[r]
        row_r = [v / piv for v in binv[r]]
        binv[r] = row_r
        x_r = self.x[r] / piv
        for i in range(size):
            di = d[i]
            if i != r and di != 0.0:
                binv[i] = [a - di * b for a, b in zip(binv[i], row_r, strict=True)]
                self.x[i] -= di * x_r
        self.x[r] = x_r
        self.basis[r] = enter
        self.cb[r] = self.pb.columns[enter].price if enter >= 0 else 0.0
        for j, v in enumerate(row_r):  # y' = c_B' B'^-1 = y + rc * (row r of B'^-1)
            if v:
                y[j] += rc * v
        return True

    def basic_columns(self, shape: int, most: int) -> list[dict[int, int]]:
        """The counts of up to ``most`` basic columns of ``shape``, the most used first."""
        found = sorted(
            (-x, v) for v, x in zip(self.basis, self.x, strict=True) if v >= 0 and self.pb.columns[v].shape == shape
        )
        return [self.pb.columns[v].counts for _x, v in found[:most]]

    def solution(self) -> list[tuple[int, float]]:
        return [(v, x) for v, x in zip(self.basis, self.x, strict=True) if v >= 0 and x > 1e-9]


def _initial_columns(pb: Problem) -> bool:
    """The singletons and the claims' own columns; False if some class fits no shape (cannot happen for pods that are
    on claims of the tier)."""
    for k in range(len(pb.keys)):
        best: Column | None = None
        for s, shape in enumerate(pb.shapes):
            if k not in shape.accepts:
                continue
            m = min(count_fit(pb.reqs[k], shape.alloc), pb.n[k])
            if m > 0 and (best is None or shape.price / m < best.price / best.counts[k]):
                best = Column(s, shape.price, {k: m})
        if best is None:
            return False
        pb.columns.append(best)
    index = {key: i for i, key in enumerate(pb.keys)}
    seen: set[tuple] = set()
    for c in pb.claims:
        counts = {index[key]: m for key, m in c.counts.items() if m}
        o = c.chosen
        at = next(
            (
                i
                for i, sh in enumerate(pb.shapes)
                if sh.alloc == o.alloc and sh.price == o.price and counts.keys() <= sh.accepts
            ),
            None,
        )
        sig = (at, tuple(sorted(counts.items())))
        if at is None or sig in seen:
            continue
        seen.add(sig)
        pb.columns.append(Column(at, pb.shapes[at].price, counts))
    return True


def _entering(
    pb: Problem, shapes: list[int], search: Callable[[int], tuple[float, dict[int, int]] | None]
) -> tuple[list[tuple[float, int, Column]], bool]:
    """The columns worth more than their shape's price that ``search`` finds for ``shapes``, as (reduced cost, shape,
    column), and whether every shape was searched (``search`` returns None once the budget is spent). Shapes of one
    allocatable that take the same classes share one search: a fill's worth does not depend on the price."""
    added: list[tuple[float, int, Column]] = []
    seen: dict[tuple, tuple[float, dict[int, int]]] = {}
    for s in shapes:
        shape = pb.shapes[s]
        key = (shape.alloc, shape.accepts)
        hit = seen.get(key)
        if hit is None:
            found = search(s)
            if found is None:
                return added, False
            hit = seen[key] = found
        value, take = hit
        if take and value > shape.price * (1 + 1e-7):
            added.append((shape.price - value, s, Column(s, shape.price, take)))
    return added, True


def _greedy_round(pb: Problem, y: list[float]) -> list[tuple[float, int, Column]]:
    """The greedy pricing of every shape (``_best_fill``): the entering columns."""
    added, _all = _entering(pb, list(range(len(pb.shapes))), lambda s: _best_fill(pb, s, y, pb.n))
    return added


def _exchange_round(
    pb: Problem, master: _Master, y: list[float], deadline: float, max_work: int
) -> tuple[list[tuple[float, int, Column]], bool]:
    """The exchange pricing of every shape with several accelerators (``EXCHANGE_MIN_DEVICES``), once the greedy fills
    find nothing: the entering columns, and whether the round finished within the budget."""

    def search(s: int) -> tuple[float, dict[int, int]] | None:
        if pb.work >= max_work or time.perf_counter() >= deadline:
            return None
        return _exchange_fill(pb, s, master.basic_columns(s, EXCHANGE_STARTS), y, max_work)

    shapes = [
        s
        for s, shape in enumerate(pb.shapes)
        if max((shape.alloc[r] for r in pb.accel), default=0) >= EXCHANGE_MIN_DEVICES
    ]
    added, finished = _entering(pb, shapes, search)
    return added, finished and pb.work < max_work


@dataclass(slots=True)
class SolveStats:
    pivots: int = 0
    rounds: int = 0
    converged: bool = False
    lp: float = 0.0
    exchanges: int = 0


def _solve(pb: Problem, deadline: float, max_work: int) -> tuple[list[tuple[int, float]], list[float], SolveStats]:
    master = _Master(pb)
    y = master.duals()
    st = SolveStats()
    pivot_work = len(pb.keys) * len(pb.keys) // PIVOT_WORK_DIVISOR + len(pb.columns)
    for _step in range(MAX_PIVOTS):
        if pb.work >= max_work or time.perf_counter() >= deadline:
            break
        found = master.entering(y)
        if found is None:
            st.rounds += 1
            added = _greedy_round(pb, y)
            if not added:
                st.exchanges += 1
                added, finished = _exchange_round(pb, master, y, deadline, max_work)
                if not added:
                    st.converged = finished
                    break
            added.sort(key=lambda t: (t[0], t[1]))
            pb.columns.extend(col for _rc, _s, col in added[:COLUMNS_PER_ROUND])
            continue
        if not master.pivot(found[0], y, found[1]):
            break
        pb.work += pivot_work
        st.pivots += 1
        if st.pivots % 100 == 0:  # against drift of the incremental duals
            y = master.duals()
    solution = master.solution()
    st.lp = sum(pb.columns[v].price * x for v, x in solution)
    return solution, y, st


def _round(pb: Problem, solution: list[tuple[int, float]], y: list[float], give_up_at: float) -> list[Column] | None:
    """Whole nodes of the LP's columns, then a greedy packing of the pods they leave, each node on its cheapest shape.
    None if some pod fits no shape (cannot happen for pods that are on claims of the tier) or if the packing of what
    is left runs past ``give_up_at`` (a basic solution leaves at most one node's worth per class, so it does not)."""
    need = list(pb.n)
    nodes: list[Column] = []
    for v, x in sorted(solution, key=lambda t: (-t[1], t[0])):
        col = pb.columns[v]
        for _ in range(int(x + 1e-9)):
            take = {k: min(m, need[k]) for k, m in col.counts.items() if need[k] > 0}
            if not take:
                break
            for k, m in take.items():
                need[k] -= m
            nodes.append(Column(col.shape, col.price, take))
    _fill_room(pb, nodes, need, y)
    worth = [max(v, 0.0) + 1e-6 for v in y]  # a class the duals price at 0 (over-covered) is still placed
    while any(need):
        if time.perf_counter() > give_up_at:
            return None
        best: tuple[float, int, dict[int, int]] | None = None
        for s, shape in enumerate(pb.shapes):
            value, take = _best_fill(pb, s, worth, need)
            if take and (best is None or value / shape.price > best[0]):
                best = (value / shape.price, s, take)
        if best is None:
            return None
        _score, s, take = best
        copies = min(need[k] // m for k, m in take.items())
        for _ in range(max(1, copies)):
            got = {k: min(m, need[k]) for k, m in take.items() if need[k] > 0}
            if not got:
                break
            for k, m in got.items():
                need[k] -= m
            nodes.append(Column(s, pb.shapes[s].price, got))
    for node in nodes:
        used = _used(pb, node.counts)
        for s, shape in enumerate(pb.shapes):  # by price
            if shape.price >= node.price:
                break
            if node.counts.keys() <= shape.accepts and fits(used, shape.alloc):
                node.shape, node.price = s, shape.price
                break
    return nodes


def _fill_room(pb: Problem, nodes: list[Column], need: list[int], y: list[float]) -> None:
    """Put the pods the whole nodes leave into the room those nodes have left, first fit, the classes worth the most
    per pod first (the LP's columns are full in some resource, rarely in all)."""
    left = sorted((k for k, m in enumerate(need) if m > 0), key=lambda k: (-y[k], k))
    if not left:
        return
    frees = [list(vsub(pb.shapes[nd.shape].alloc, _used(pb, nd.counts))) for nd in nodes]
    accepts = [pb.shapes[nd.shape].accepts for nd in nodes]
    for k in left:
        asks = pb.nonzero[k]
        pb.work += len(nodes)
        for i, free in enumerate(frees):
            if k not in accepts[i]:
                continue
            m = pack_into(free, asks, need[k])
            if not m:
                continue
            counts = nodes[i].counts
            counts[k] = counts.get(k, 0) + m
            need[k] -= m
            if not need[k]:
                break


def _used(pb: Problem, counts: dict[int, int]) -> Vec:
    used = tuple(0 for _ in pb.reqs[0])
    for k, m in counts.items():
        used = vadd(used, vscale(pb.reqs[k], m))
    return used


def _apply(packer: Packer, pb: Problem, nodes: list[Column]) -> None:
    from .packer import Claim, first_fitting

    for c in pb.claims:
        packer.release(c)
    pods = [list(reversed(p)) for p in pb.pods]  # popped from the end: the claims' order
    lists: dict[frozenset[int], list[Offering]] = {}
    for node in sorted(nodes, key=lambda nd: (-nd.price, sorted(nd.counts.items()))):
        ks = frozenset(node.counts)
        offs = lists.get(ks)
        if offs is None:
            first, *rest = sorted(ks)
            view = packer.class_by_idx[pb.keys[first][0]].view(pb.keys[first][1])
            assert view is not None
            offs = [o for o in packer.compat_offerings(view) if o.tier == pb.tier]
            for k in rest:
                other = packer.class_by_idx[pb.keys[k][0]].view(pb.keys[k][1])
                assert other is not None
                offs = packer.view_filter(offs, other)
            lists[ks] = offs
        used = _used(pb, node.counts)
        claim = Claim(len(packer.claims), offs, pb.tier, used)
        j = first_fitting(offs, used, 0, None)
        assert j >= 0, "the node's shape is one of these offerings"
        packer.set_chosen(claim, j)
        for k, m in sorted(node.counts.items()):
            for _ in range(m):
                claim.pods.append(pods[k].pop())
            claim.counts[pb.keys[k]] += m
        packer.claims.append(claim)
        packer.live_claims += 1


@dataclass(slots=True)
class RepackStats:
    """What the repack did, summed over the tiers, for the plan's stats."""

    tiers: int = 0
    kept: int = 0
    saved: float = 0.0
    work: int | None = None
    """Work steps taken (set once a tier's LP was solved)."""
    rounded: int = 0
    """Tiers whose LP solution was rounded to nodes; the solve figures below are theirs."""
    pivots: int = 0
    rounds: int = 0
    converged: bool = True
    lp: float = 0.0

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"tiers": self.tiers, "kept": self.kept, "saved": round(self.saved, 6)}
        if self.work is not None:
            out["work"] = self.work
        if self.rounded:
            out |= {"pivots": self.pivots, "rounds": self.rounds, "converged": self.converged, "lp": round(self.lp, 3)}
        return out


def repack(packer: Packer, seconds: float) -> dict[str, object]:
    """Repack each tier's movable claims by column generation within ``seconds``; keep a tier's repack when it costs
    less. Returns what it did, for the plan's stats.

    The search is bounded by work (``WORK_PER_SECOND`` steps a second, set below what this code does on a laptop core)
    as well as by the clock: where the work bound comes first, the plan is a function of the input alone, the same on
    every run; the clock only cuts it short on a slower or busier machine."""
    deadline = time.perf_counter() + max(0.0, seconds)
    max_work = int(max(0.0, seconds) * WORK_PER_SECOND)
    stats = RepackStats()
    spent = 0
    for pb in _problems(packer):
        if time.perf_counter() >= deadline or spent >= max_work:
            break
        stats.tiers += 1
        if not _initial_columns(pb):
            continue
        pb.work = spent
        solution, y, st = _solve(pb, deadline, max_work)
        spent = stats.work = pb.work
        nodes = _round(pb, solution, y, deadline + ROUND_GRACE_SECONDS)
        if nodes is None:
            continue
        total = sum(nd.price for nd in nodes)
        before = pb.cost
        stats.rounded += 1
        stats.pivots += st.pivots
        stats.rounds += st.rounds
        stats.converged = stats.converged and st.converged
        stats.lp += st.lp
        if total >= before - 1e-6:
            continue
        if packer.max_new is not None and packer.live_claims - len(pb.claims) + len(nodes) > packer.max_new:
            continue
        _apply(packer, pb, nodes)
        stats.kept += 1
        stats.saved += before - total
    return stats.as_dict()
