"""What the engine is measured against on unconstrained workloads (the Alibaba traces): a Karpenter-style first-fit-decreasing
packer, and a linear-programming lower bound on the hourly cost of any feasible plan."""

from __future__ import annotations

from collections import Counter

from hpa_testkit.packing import DIMS, fits, karpenter_ffd, vec
from hyperpod_autoscaler.domain.catalog import InstanceType
from hyperpod_autoscaler.domain.k8s import Pod

__all__ = ["karpenter_ffd", "lp_lower_bound", "placeable"]


def lp_lower_bound(pods: list[Pod], types: list[InstanceType]) -> float:
    """min sum_j price_j x_j  s.t.  sum_j y_cj = n_c (every pod of class c placed on types it fits alone),
    sum_c y_cj req_cr <= x_j alloc_jr for every type j and resource r, x, y >= 0. Continuous node counts make it a lower
    bound on the cost of every integral plan."""
    import numpy as np
    from scipy.optimize import linprog
    from scipy.sparse import lil_matrix

    classes = Counter(vec(p.requests) for p in pods)
    shapes = sorted(classes)
    caps = [vec(t.allocatable) for t in types]
    pairs = [(c, j) for c, s in enumerate(shapes) for j, cap in enumerate(caps) if fits((0,) * len(DIMS), s, cap)]
    n_x = len(types)
    n_vars = n_x + len(pairs)
    cost = np.zeros(n_vars)
    for j, t in enumerate(types):
        cost[j] = t.price
    # equality: each class fully placed
    a_eq = lil_matrix((len(shapes), n_vars))
    b_eq = np.array([classes[s] for s in shapes], dtype=float)
    for k, (c, _j) in enumerate(pairs):
        a_eq[c, n_x + k] = 1.0
    # capacity: per type and resource (scaled to keep the numbers well-conditioned)
    scale = [max(1, max(cap[r] for cap in caps)) for r in range(len(DIMS))]
    a_ub = lil_matrix((len(types) * len(DIMS), n_vars))
    for j, cap in enumerate(caps):
        for r in range(len(DIMS)):
            a_ub[j * len(DIMS) + r, j] = -cap[r] / scale[r]
    for k, (c, j) in enumerate(pairs):
        for r in range(len(DIMS)):
            if shapes[c][r]:
                a_ub[j * len(DIMS) + r, n_x + k] = shapes[c][r] / scale[r]
    b_ub = np.zeros(len(types) * len(DIMS))
    missing = [s for c, s in enumerate(shapes) if not any(pc == c for pc, _ in pairs)]
    if missing:
        raise ValueError(f"{len(missing)} pod shapes fit no instance type: the bound covers placeable pods only")
    res = linprog(cost, A_ub=a_ub.tocsr(), b_ub=b_ub, A_eq=a_eq.tocsr(), b_eq=b_eq, bounds=(0, None), method="highs")
    if not res.success:
        raise RuntimeError(f"LP failed: {res.message}")
    return float(res.fun)


def placeable(pods: list[Pod], types: list[InstanceType]) -> list[Pod]:
    caps = [vec(t.allocatable) for t in types]
    zero = (0,) * len(DIMS)
    return [p for p in pods if any(fits(zero, vec(p.requests), c) for c in caps)]
