"""A Karpenter-style packer, the yardstick the engine and the sandbox's verdict are measured against (it never decides
anything in the product)."""

from __future__ import annotations

from dataclasses import dataclass, field

from hyperpod_autoscaler.domain.catalog import InstanceType
from hyperpod_autoscaler.domain.k8s import Pod
from hyperpod_autoscaler.domain.resources import CPU, GPU, MEMORY, PODS

DIMS = (CPU, MEMORY, GPU, PODS)
Vec = tuple[int, ...]


def vec(resources: object) -> Vec:
    return tuple(int(resources.get(d, 0)) for d in DIMS)  # type: ignore[attr-defined]


def fits(used: Vec, add: Vec, cap: Vec) -> bool:
    return all(u + a <= c for u, a, c in zip(used, add, cap, strict=True))


@dataclass
class _Claim:
    types: list[InstanceType]
    used: Vec
    pods: int = 0
    caps: list[Vec] = field(default_factory=list)


def karpenter_ffd(pods: list[Pod], types: list[InstanceType]) -> tuple[float, int, int]:
    """Karpenter's provisioning as documented: pods sorted by CPU then memory, descending (GPUs are not in the key); each
    pod goes to the first open claim that some of its remaining instance types can still hold (the claim keeps every type
    that fits, narrowing as it fills), else to a new claim with every type that fits the pod; at launch each claim takes
    its cheapest remaining type. Returns (hourly cost, nodes, unplaced pods)."""
    caps = {t.name: vec(t.allocatable) for t in types}
    order = sorted(pods, key=lambda p: (-p.requests.get(CPU, 0), -p.requests.get(MEMORY, 0), p.key))
    claims: list[_Claim] = []
    unplaced = 0
    for pod in order:
        need = vec(pod.requests)
        placed = False
        for claim in claims:
            keep = [t for t in claim.types if fits(claim.used, need, caps[t.name])]
            if keep:
                claim.types = keep
                claim.used = tuple(u + n for u, n in zip(claim.used, need, strict=True))
                claim.pods += 1
                placed = True
                break
        if placed:
            continue
        options = [t for t in types if fits((0,) * len(DIMS), need, caps[t.name])]
        if not options:
            unplaced += 1
            continue
        claims.append(_Claim(options, need, 1))
    cost = sum(min(t.price for t in c.types) for c in claims)
    return cost, len(claims), unplaced
