"""Repacking the new claims by column generation.

The packer places one class of pods after another, so a node it opens early is sized for the pods it has seen: a 4-GPU
node takes four CPU-heavy GPU pods and wastes a fifth of its cores, while the small GPU pods that would have filled that
room get single-GPU nodes of their own. This pass looks at all the movable claims of a tier at once, as counts of pods
per class, and solves the *configuration LP* over them: each column is one node of one offering shape holding whole
pods (so many of each class), each row says every pod is placed, and the LP picks how many nodes of each column to buy.

- *Rows* (``_aggregate``): classes that take the same accelerators and the same shapes merge, the closest first, into
  at most ``AGGREGATE_ROWS`` rows whose pods ask for the most any member asks. A row of three pods costs the master as
  much as one of three hundred; with fewer rows the LP runs to its end within the budget.
- *Master*: a revised simplex on ``min price·x`` subject to ``A x >= n``, with the explicit inverse of the basis. It
  starts from one node per row on its cheapest shape, with the packer's own claims as columns it can use at once.
- *Pricing*, per shape, at the master's duals (what one more pod of each row is worth): the best column is a knapsack
  (``knapsack.py``). Its LP relaxation, kept warm per shape, bounds every column's worth: most shapes are proven to
  have no entering column there. On the others, greedy fills (worth per weighted share of the node, a few weightings),
  then a depth-first search guided by the LP's resource prices that completes every node of the search greedily (the
  tight columns, full in CPU and memory at once), then exchanges from the shape's basic columns (one pod makes way for
  another and the room left is filled). When nothing enters, the search runs again with four times the nodes. The
  pricing is exact only where the bound or a finished search proves it, so the LP reached is an upper bound on the
  configuration LP of the rows, not the bound itself.
- *Rounding*: every column's whole nodes are bought (largest first) with the real pods of each row, the largest
  classes first; the pods they leave go first into the room those nodes have left, then are packed greedily, each new
  node the shape whose greedy fill is worth the most per price at the duals; every node then takes its cheapest shape.

The result replaces the claims only when it costs less and keeps within ``max_new``. Claims whose pods carry topology
rules, and tiers with NodePool limits, are left alone. The search stops at its deadline or after a fixed number of
steps, whichever comes first, so small inputs give the same plan every time.
"""

from __future__ import annotations

import heapq
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..k8s import Pod
from ..resources import CPU, EPHEMERAL_STORAGE, MEMORY, PODS
from . import knapsack
from .knapsack import Item, KnapsackLP
from .vectors import UNBOUNDED, Vec, count_fit, fits, nonzero, pack_into, vadd, vscale, vsub

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
SEARCH_NODES = 150
"""Nodes of the knapsack search (``knapsack.search``) per shape in a pricing round."""
SEARCH_NODES_MAX = 25_600
"""When no pricing finds an entering column, the search runs again with four times the nodes, up to this many."""
AGGREGATE_ROWS = 40
"""The master LP has at most this many rows: classes that take the same accelerators and the same shapes are merged,
the closest first, into one row whose pods ask for the most any of them asks (so every column fits each of them)."""
AGGREGATE_NEIGHBOURS = 16
"""A class is first paired for merging with the next classes of its group in order of size (the sum of its requests'
shares of the largest node), this many; a merged row inherits both sides' pairs."""
AGGREGATE_WASTE = 0.01
"""Merging stops before the requests it adds exceed this share of all the pods' requests (in shares of the largest
node), whatever the row count."""


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
    members: list[list[int]] = field(default_factory=list)
    """For a problem made by ``_aggregate``: per row, the classes of the original problem it stands for, the largest
    first."""
    knapsacks: dict[int, _Knapsack] = field(default_factory=dict)
    """Per shape (by index): its knapsack LP, kept warm from one pricing round to the next."""

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


@dataclass(slots=True)
class _Cluster:
    members: list[int]
    rep: list[int]
    pods: int
    total: list[int]
    """Per resource, the requests of all the cluster's pods."""
    version: int = 0


def _aggregate(pb: Problem) -> tuple[Problem, list[int]]:
    """The problem with classes merged into at most ``AGGREGATE_ROWS`` rows, and each class's row.

    Only classes that ask for the same accelerators and may run on the same shapes merge (the most each member asks,
    resource by resource, then fits wherever each of them does). The cost of a
    merge is the requests it adds: for every pod, what its row asks beyond its own requests, in shares of the largest
    node; the cheapest merges come first (few pods, close requests), until the row count or ``AGGREGATE_WASTE`` is
    reached. The master LP's size goes with the square of its rows, and a row of a few pods costs as many pricing
    rounds as a large one: this is what lets the column generation run to its end within the budget. The rounding
    places the real pods (``_whole_nodes``), smaller than or equal to their row's, so no column it buys overflows."""
    size = len(pb.keys)
    width = len(pb.reqs[0]) if pb.reqs else 0
    finite = [
        r for r in range(width) if any(sh.alloc[r] < UNBOUNDED for sh in pb.shapes) and any(q[r] for q in pb.reqs)
    ]
    scale = {r: max(sh.alloc[r] for sh in pb.shapes if sh.alloc[r] < UNBOUNDED) or 1 for r in finite}
    shapes_of = [frozenset(s for s, sh in enumerate(pb.shapes) if k in sh.accepts) for k in range(size)]
    group = {}
    for k in range(size):
        group[k] = (tuple(pb.reqs[k][r] for r in pb.accel), shapes_of[k])
    clusters = {k: _Cluster([k], list(pb.reqs[k]), pb.n[k], [q * pb.n[k] for q in pb.reqs[k]]) for k in range(size)}

    def waste(rep: list[int], pods: int, total: list[int]) -> float:
        return sum((rep[r] * pods - total[r]) / scale[r] for r in finite)

    def merged(a: _Cluster, b: _Cluster) -> tuple[list[int], int, list[int]]:
        return (
            [max(x, y) for x, y in zip(a.rep, b.rep, strict=True)],
            a.pods + b.pods,
            [x + y for x, y in zip(a.total, b.total, strict=True)],
        )

    heap: list[tuple[float, int, int, int, int]] = []

    def push(a: int, b: int) -> None:
        ca, cb = clusters[a], clusters[b]
        rep, pods, total = merged(ca, cb)
        cost = waste(rep, pods, total) - waste(ca.rep, ca.pods, ca.total) - waste(cb.rep, cb.pods, cb.total)
        heapq.heappush(heap, (cost, a, b, ca.version, cb.version))

    by_group: dict[tuple, list[int]] = defaultdict(list)
    for k in range(size):
        by_group[group[k]].append(k)
    near: dict[int, set[int]] = {k: set() for k in range(size)}
    for ks in by_group.values():
        ks.sort(key=lambda k: (sum(pb.reqs[k][r] / scale[r] for r in finite), k))
        for i, a in enumerate(ks):
            for b in ks[i + 1 : i + 1 + AGGREGATE_NEIGHBOURS]:
                near[a].add(b)
                near[b].add(a)
                push(min(a, b), max(a, b))
    pb.work += len(heap) * max(1, len(finite))
    demand = sum(pb.n[k] * sum(pb.reqs[k][r] / scale[r] for r in finite) for k in range(size))
    budget, spent, rows = AGGREGATE_WASTE * demand, 0.0, size
    while rows > AGGREGATE_ROWS and heap:
        cost, a, b, va, vb = heapq.heappop(heap)
        if a not in clusters or b not in clusters or clusters[a].version != va or clusters[b].version != vb:
            continue
        if spent + cost > budget:
            break
        spent += cost
        ca, cb = clusters[a], clusters.pop(b)
        ca.rep, ca.pods, ca.total = merged(ca, cb)
        ca.members += cb.members
        ca.version += 1
        rows -= 1
        near[a] = (near[a] | near.pop(b)) - {a, b}
        pb.work += len(near[a]) * max(1, len(finite))
        for x in sorted(near[a]):
            near[x].discard(b)
            near[x].add(a)
            push(min(a, x), max(a, x))
    ordered = sorted(clusters.values(), key=lambda c: min(c.members))
    row_of = [0] * size
    for i, c in enumerate(ordered):
        for k in c.members:
            row_of[k] = i
    reqs = [tuple(c.rep) for c in ordered]
    shapes = [Shape(sh.alloc, sh.price, frozenset(row_of[k] for k in sh.accepts)) for sh in pb.shapes]
    lp = Problem(
        pb.tier,
        pb.claims,
        [pb.keys[min(c.members)] for c in ordered],
        reqs,
        [c.pods for c in ordered],
        [],
        shapes,
        pb.accel,
    )
    lp.nonzero = [nonzero(q) for q in reqs]
    lp.members = [sorted(c.members, key=lambda k: (-sum(pb.reqs[k][r] / scale[r] for r in finite), k)) for c in ordered]
    lp.work = pb.work
    return lp, row_of


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


def _initial_columns(lp: Problem, pb: Problem, row_of: list[int]) -> bool:
    """The master's first columns: one per row (as many of its pods as fit on the shape cheapest per pod), then the
    claims' own nodes, in rows, where they still fit at the rows' requests. False if some row fits no shape (cannot
    happen for pods that are on claims of the tier)."""
    for k in range(len(lp.keys)):
        best: Column | None = None
        for s, shape in enumerate(lp.shapes):
            if k not in shape.accepts:
                continue
            m = min(count_fit(lp.reqs[k], shape.alloc), lp.n[k])
            if m > 0 and (best is None or shape.price / m < best.price / best.counts[k]):
                best = Column(s, shape.price, {k: m})
        if best is None:
            return False
        lp.columns.append(best)
    index = {key: row_of[i] for i, key in enumerate(pb.keys)}
    seen: set[tuple] = set()
    for c in pb.claims:
        counts: dict[int, int] = defaultdict(int)
        for key, m in c.counts.items():
            if m:
                counts[index[key]] += m
        o = c.chosen
        used = _used(lp, counts)
        at = next(
            (
                i
                for i, sh in enumerate(lp.shapes)
                if sh.alloc == o.alloc and sh.price == o.price and counts.keys() <= sh.accepts and fits(used, sh.alloc)
            ),
            None,
        )
        sig = (at, tuple(sorted(counts.items())))
        if at is None or sig in seen:
            continue
        seen.add(sig)
        lp.columns.append(Column(at, lp.shapes[at].price, dict(counts)))
    return True


@dataclass(slots=True)
class _Knapsack:
    """A shape's knapsack LP (``knapsack.KnapsackLP``) over the classes it takes, with the most pods of each that one
    node holds."""

    lp: KnapsackLP
    classes: list[int]
    limits: list[int]


def _knapsack(pb: Problem, s: int) -> _Knapsack:
    found = pb.knapsacks.get(s)
    if found is None:
        alloc = pb.shapes[s].alloc
        classes = sorted(k for k in pb.shapes[s].accepts if pb.n[k] > 0)
        dims = [r for r in range(len(alloc)) if 0 < alloc[r] < UNBOUNDED and any(pb.reqs[k][r] for k in classes)]
        limits = [min(pb.n[k], count_fit(pb.reqs[k], alloc)) for k in classes]
        rows = [[pb.reqs[k][r] / alloc[r] for k in classes] for r in dims]
        found = pb.knapsacks[s] = _Knapsack(KnapsackLP(rows, limits), classes, limits)
    return found


@dataclass(slots=True)
class _Pricing:
    """One pricing round's settings: the duals, the search's node limit, and whether the greedy fills and the exchange
    already ran at these duals (a round repeated with more search nodes runs the search alone)."""

    y: list[float]
    nodes: int
    first: bool = True
    finished: bool = True
    """Every shape was either proven to have no entering column (its bound) or searched to the end."""


def _price(pb: Problem, master: _Master, s: int, pr: _Pricing, max_work: int) -> tuple[float, dict[int, int]]:
    """The best column of shape ``s`` worth more than its price that the pricing finds at the duals (``(0, {})`` if
    none): first the knapsack LP's bound (no column can beat it), then the greedy fills, then the knapsack search,
    then (on shapes with several accelerators) the exchanges."""
    shape, y = pb.shapes[s], pr.y
    ks = _knapsack(pb, s)
    worth = [max(0.0, y[k]) for k in ks.classes]
    before = ks.lp.pivots
    lam, _optimal = ks.lp.solve(worth)
    pb.work += (ks.lp.pivots - before + 1) * ks.lp.m * (ks.lp.n + ks.lp.m) // 2  # a pivot's scan and row updates
    devs = [w - sum(lam[i] * a for i, a in col) for w, col in zip(worth, ks.lp.cols, strict=True)]
    floor = shape.price * (1 + 1e-7)
    if knapsack.lagrangian_bound(lam, devs, ks.limits) <= floor:
        return 0.0, {}
    if pr.first:
        value, take = _best_fill(pb, s, y, pb.n)
        if take and value > floor:
            return value, take
    x = ks.lp.solution()
    items = [
        Item(k, pb.nonzero[k], w, u, d, xk)
        for k, w, u, d, xk in zip(ks.classes, worth, ks.limits, devs, x, strict=True)
        if w > EPS and u > 0
    ]
    items.sort(key=lambda it: (-it.dev, -it.lp, it.k))
    nodes = min(pr.nodes, max(1, (max_work - pb.work) // max(1, len(items))))
    found = knapsack.search(shape.alloc, items, sum(lam), shape.price, nodes)
    pb.work += found.steps
    pr.finished = pr.finished and found.finished
    if found.counts and found.value > floor:
        return found.value, found.counts
    if pr.first and max((shape.alloc[r] for r in pb.accel), default=0) >= EXCHANGE_MIN_DEVICES:
        value, take = _exchange_fill(pb, s, master.basic_columns(s, EXCHANGE_STARTS), y, max_work)
        if take and value > floor:
            return value, take
    return 0.0, {}


def _pricing_round(
    pb: Problem, master: _Master, pr: _Pricing, deadline: float, max_work: int
) -> tuple[list[tuple[float, int, Column]], bool]:
    """The entering columns of every shape, as (reduced cost, shape, column), and whether every shape was priced
    within the budget. Shapes of one allocatable that take the same classes share one pricing (a column's worth does
    not depend on the price; the cheapest of them is priced first, so its floor is the lowest)."""
    added: list[tuple[float, int, Column]] = []
    seen: dict[tuple, tuple[float, dict[int, int]]] = {}
    for s, shape in enumerate(pb.shapes):
        key = (shape.alloc, shape.accepts)
        hit = seen.get(key)
        if hit is None:
            if pb.work >= max_work or time.perf_counter() >= deadline:
                return added, False
            hit = seen[key] = _price(pb, master, s, pr, max_work)
        value, take = hit
        if take and value > shape.price * (1 + 1e-7):
            added.append((shape.price - value, s, Column(s, shape.price, take)))
    return added, True


@dataclass(slots=True)
class SolveStats:
    pivots: int = 0
    rounds: int = 0
    converged: bool = False
    """No pricing found an entering column (within its search nodes)."""
    proven: bool = False
    """And every shape was proven to have none: the LP is the configuration LP of the (aggregated) problem."""
    lp: float = 0.0


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
            pr = _Pricing(y, SEARCH_NODES)
            added, complete = _pricing_round(pb, master, pr, deadline, max_work)
            while not added and complete and not pr.finished and pr.nodes < SEARCH_NODES_MAX:
                pr = _Pricing(y, pr.nodes * 4, first=False)
                added, complete = _pricing_round(pb, master, pr, deadline, max_work)
            if not added:
                st.converged = complete
                st.proven = complete and pr.finished
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


def _whole_nodes(pb: Problem, lp: Problem, solution: list[tuple[int, float]]) -> tuple[list[Column], list[int]]:
    """The whole nodes of the LP's columns, holding the real pods of each row (its largest classes first: the smaller
    ones left over fit the room more easily), and the pods of each class left to place."""
    need = list(pb.n)
    nodes: list[Column] = []
    for v, x in sorted(solution, key=lambda t: (-t[1], t[0])):
        col = lp.columns[v]
        for _ in range(int(x + 1e-9)):
            take: dict[int, int] = {}
            for row, m in sorted(col.counts.items()):
                for k in lp.members[row]:
                    if m <= 0:
                        break
                    got = min(m, need[k])
                    if got:
                        take[k] = take.get(k, 0) + got
                        need[k] -= got
                        m -= got
            if not take:
                break
            nodes.append(Column(col.shape, col.price, take))
    return nodes, need


def _round(pb: Problem, nodes: list[Column], need: list[int], y: list[float], give_up_at: float) -> list[Column] | None:
    """The LP's whole nodes (``_whole_nodes``), then the pods they leave (``need``): first into the room those nodes
    have left, then packed greedily on new nodes; every node then takes its cheapest shape. ``y`` is each class's worth
    per pod (its row's dual). None if some pod fits no shape (cannot happen for pods that are on claims of the tier) or
    if the packing of what is left runs past ``give_up_at`` (a basic solution leaves at most one node's worth per row,
    so it does not)."""
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
    rows: int = 0
    """The master LPs' rows (classes merged by ``_aggregate``)."""
    pivots: int = 0
    rounds: int = 0
    converged: bool = True
    proven: bool = True
    lp: float = 0.0

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"tiers": self.tiers, "kept": self.kept, "saved": round(self.saved, 6)}
        if self.work is not None:
            out["work"] = self.work
        if self.rounded:
            out |= {
                "rows": self.rows,
                "pivots": self.pivots,
                "rounds": self.rounds,
                "converged": self.converged,
                "proven": self.proven,
                "lp": round(self.lp, 3),
            }
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
        pb.work = spent
        lp, row_of = _aggregate(pb)
        if not _initial_columns(lp, pb, row_of):
            continue
        solution, y, st = _solve(lp, deadline, max_work)
        pb.work = lp.work  # the rounding counts on from the solve
        whole, need = _whole_nodes(pb, lp, solution)
        nodes = _round(pb, whole, need, [y[row] for row in row_of], deadline + ROUND_GRACE_SECONDS)
        spent = stats.work = pb.work
        if nodes is None:
            continue
        total = sum(nd.price for nd in nodes)
        before = pb.cost
        stats.rounded += 1
        stats.rows += len(lp.keys)
        stats.pivots += st.pivots
        stats.rounds += st.rounds
        stats.converged = stats.converged and st.converged
        stats.proven = stats.proven and st.proven
        stats.lp += st.lp
        if total >= before - 1e-6:
            continue
        if packer.max_new is not None and packer.live_claims - len(pb.claims) + len(nodes) > packer.max_new:
            continue
        _apply(packer, pb, nodes)
        stats.kept += 1
        stats.saved += before - total
    return stats.as_dict()
