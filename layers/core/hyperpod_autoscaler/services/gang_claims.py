"""Which provision execution a gang's new nodes go out in.

A gang is planned all or nothing (``domain.scheduling.gangs``); at run time its new nodes of one instance group go out as
ONE provision execution (one claim, count N), kept apart from the other pods' claims of the same group, so that the
execution can give back every node of the gang when the launch fails (``services.provision.give_back``).
"""

from __future__ import annotations

from ..domain.plan import GangRef, NodeClaim, Plan

BatchKey = tuple[str, str, GangRef | None]
"""(instance group, NodePool, the gang whose nodes they are or None)."""


def claim_owners(plan: Plan) -> list[GangRef | None]:
    """For each of ``plan.node_claims``, the gang whose new node it is: the first gang (in plan order, oldest first) with
    a pod on it that the plan provisions for. A node an earlier gang gets is that gang's even when a later gang or other
    pods use its spare room: the later ones wait for it."""
    owner: dict[str, GangRef] = {}
    for decision in plan.gangs:
        if decision.decision == "provision":
            for key in decision.pods:
                owner.setdefault(key, decision.ref)
    return [next((owner[k] for k in claim.pods if k in owner), None) for claim in plan.node_claims]


def batches(plan: Plan) -> dict[BatchKey, list[NodeClaim]]:
    """The plan's new nodes by execution: one per (instance group, NodePool) for the other pods, one per (instance
    group, NodePool, gang) for a gang's; in a stable order (gangs' after the plain one of the same group)."""
    out: dict[BatchKey, list[NodeClaim]] = {}
    for claim, gang in zip(plan.node_claims, claim_owners(plan), strict=True):
        out.setdefault((claim.instance_group, claim.nodepool, gang), []).append(claim)
    return dict(sorted(out.items(), key=lambda kv: (kv[0][0], kv[0][1], _order(kv[0][2]))))


def _order(gang: GangRef | None) -> tuple[str, str, str]:
    return ("", "", "") if gang is None else (gang.source, gang.namespace, gang.name)
