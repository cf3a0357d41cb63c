"""All-or-nothing planning of gangs (ProvisioningRequests and pod groups) around the packing engine.

Each gang, oldest first, is a trial: the engine places the gang's pods alone against what is left after the gangs
accepted before it. If every pod is placed the gang is accepted and its placements are *booked*: its new nodes become
in-flight capacity holding its pods, its pods on existing nodes become bound there, so later gangs and the other pods
see that capacity as used. If any pod cannot be placed the trial is dropped whole: the gang gets no node claim and its
pods are reported unschedulable with the gang's reason. The other pods are planned last, exactly as without gangs, with
the booked capacity counted (a non-gang pod may still use the room a gang's new node has left).

Classes (Cluster Autoscaler's, ``cluster-autoscaler/provisioningrequest/``):

- ``best-effort-atomic-scale-up``: new nodes may be planned; they must all come from one instance group (one type, one
  zone) unless the request's ``allowMultipleInstanceGroups`` parameter is ``"true"``: when the free trial spreads over
  several groups, each group alone is tried and the cheapest that holds every pod wins. A group in backoff or a NodePool
  at its limits takes no new node, so a gang that needs one is blocked.
- ``check-capacity``: existing and in-flight capacity only, never a new node.

Pod groups are planned as best-effort-atomic requests.

Before any gang, the capacity of each request already Provisioned is held (Cluster Autoscaler's ``bookCapacity``,
``processors/provreq/processor.go``): stand-ins for its pods not yet scheduled are placed on existing nodes, first on
the nodes its status lists, then anywhere, and count as bound there for every trial and the final plan. So the pods of
other workloads get capacity of their own instead of the room the request's pods are about to take. Stand-ins that fit
nowhere hold nothing (Cluster Autoscaler's injection drops them too); they never cause a new node.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from ..gangs import Gang, Reservation
from ..k8s import Pod
from ..plan import GangDecision, InflightClaim, NodeClaim, Plan, PlanInput, PlanOptions

Engine = Callable[[PlanInput, PlanOptions], Plan]
GANG_CLAIM_PREFIX = "gang:"
#: The share of the time budget all the gangs' trials together may spend improving their claims, per instance group
#: tried: one trial gets this share divided by the number of gangs, so the gangs cost at most about the budget again
#: when ten groups are tried for each.
TRIAL_BUDGET_SHARE = 0.1


@dataclass
class Booked:
    """Capacity accepted gangs hold, expressed as engine input so the next trial and the final plan count it."""

    inflight: list[InflightClaim]
    carried: list[Pod] = field(default_factory=list)
    """Gang pods on in-flight capacity (ours or an earlier decision's): placed again there first by the engine."""
    bound: list[Pod] = field(default_factory=list)
    """Gang pods on existing nodes, as if bound there."""
    on_nodes: dict[str, list[str]] = field(default_factory=dict)
    claims: dict[str, NodeClaim] = field(default_factory=dict)
    """Synthetic in-flight claim id -> the gang's new node."""

    def input_for(
        self, inp: PlanInput, pods: list[Pod], unavailable: dict[str, str] | None = None, planned: bool = True
    ) -> PlanInput:
        """The engine's input for ``pods`` with the booked capacity; ``planned=False`` leaves out the new nodes earlier
        gangs of this plan get (a check-capacity request sees only existing and in-flight capacity)."""
        inflight = self.inflight if planned else [c for c in self.inflight if not _synthetic(c.claim_id)]
        kept = {k for c in inflight for k in c.pods}
        return replace(
            inp,
            pods=[*(p for p in self.carried if p.key in kept), *pods],
            bound_pods=[*inp.bound_pods, *self.bound],
            inflight=list(inflight),
            unavailable_groups=dict(inp.unavailable_groups if unavailable is None else unavailable),
            gangs=[],
            consumed={},
            reservations=[],
        )

    def book(self, gang: Gang, trial: Plan) -> None:
        """Hold a gang's placements: new nodes become in-flight claims with its pods, existing nodes get its pods."""
        by_key = {p.key: p for p in gang.pods}
        mine = set(by_key)
        for i, claim in enumerate(trial.node_claims):
            claim_id = f"{GANG_CLAIM_PREFIX}{gang.key}#{i}"
            self.claims[claim_id] = claim
            pods = tuple(k for k in claim.pods if k in mine)
            self.inflight.append(
                InflightClaim(claim_id, claim.nodepool, claim.instance_group, claim.instance_type, claim.zone, 1, pods)
            )
            self.carried.extend(by_key[k] for k in pods)
        for where, keys in trial.existing_nodes.items():
            ours = [k for k in keys if k in mine]
            if not ours:
                continue
            if where.startswith("inflight:"):
                claim_id = where.removeprefix("inflight:")
                self.inflight = [
                    replace(c, pods=(*c.pods, *ours)) if c.claim_id == claim_id else c for c in self.inflight
                ]
                self.carried.extend(by_key[k] for k in ours)
            else:
                self.on_nodes.setdefault(where, []).extend(ours)
                self.bound.extend(_bound_to(by_key[k], where) for k in ours)

    def new_nodes(self) -> int:
        return len(self.claims)


def _synthetic(claim_id: str) -> bool:
    """Whether an in-flight claim stands for a new node an earlier gang of this plan gets."""
    return claim_id.startswith(GANG_CLAIM_PREFIX)


def _on_planned_nodes(trial: Plan, keys: list[str]) -> int:
    """How many of the new nodes earlier gangs of this plan get hold some of ``keys``."""
    mine = set(keys)
    return sum(
        1
        for where, placed in trial.existing_nodes.items()
        if _synthetic(where.removeprefix("inflight:")) and mine.intersection(placed)
    )


def _bound_to(pod: Pod, node: str) -> Pod:
    return pod.model_copy(update={"spec": pod.spec.model_copy(update={"node_name": node})})


def _placed(plan: Plan) -> set[str]:
    out = {k for c in plan.node_claims for k in c.pods}
    for keys in plan.existing_nodes.values():
        out.update(keys)
    return out


def _remaining(opts: PlanOptions, booked: Booked) -> int | None:
    return None if opts.max_new_nodes is None else max(0, opts.max_new_nodes - booked.new_nodes())


class GangPlanner:
    """Decides the gangs of one plan in order, then plans the other pods; see the module's docstring."""

    def __init__(self, inp: PlanInput, opts: PlanOptions, engine: Engine) -> None:
        self.inp = inp
        self.opts = opts
        self.engine = engine
        self.booked = Booked(inflight=list(inp.inflight))
        self.decisions: list[GangDecision] = []
        self.blocked: dict[str, str] = {}
        self.held: dict[str, dict[str, int]] = {}
        """Booked request -> node -> how many of its pods' room is held there."""

    def run(self) -> Plan:
        for reservation in self.inp.reservations:
            self.reserve(reservation)
        for gang in sorted(self.inp.gangs, key=lambda g: g.order):
            self.decisions.append(self.decide(gang))
        final = self.engine(
            self.booked.input_for(self.inp, self.inp.pods),
            replace(self.opts, max_new_nodes=_remaining(self.opts, self.booked)),
        )
        return self.merge(final)

    # --- booked capacity ---------------------------------------------------------------------------------------------

    def reserve(self, reservation: Reservation) -> None:
        """Hold a booked request's room on existing nodes: the nodes its status lists first, then any (see the module's
        docstring). Never a new node, never in-flight capacity."""
        listed = set(reservation.nodes)
        tries = [[n for n in self.inp.nodes if n.name in listed], list(self.inp.nodes)]
        left = list(reservation.pods)
        held = self.held.setdefault(reservation.key, {})
        for nodes in tries:
            if not left or not nodes:
                continue
            inp = replace(
                self.booked.input_for(self.inp, left, planned=False),
                nodes=nodes,
                inflight=[],
                pods=left,
            )
            trial = self.engine(
                inp, replace(self.opts, allow_new_nodes=False, max_new_nodes=0, improve=False, time_budget_seconds=0.0)
            )
            by_key = {p.key: p for p in left}
            for where, keys in trial.existing_nodes.items():
                if where.startswith("inflight:"):
                    continue
                for key in keys:
                    self.booked.bound.append(_bound_to(by_key.pop(key), where))
                    held[where] = held.get(where, 0) + 1
            left = list(by_key.values())

    # --- one gang ----------------------------------------------------------------------------------------------------

    def trial_options(self, gang: Gang) -> PlanOptions:
        return replace(
            self.opts,
            allow_new_nodes=self.opts.allow_new_nodes and not gang.check_only,
            max_new_nodes=_remaining(self.opts, self.booked),
            time_budget_seconds=self.opts.time_budget_seconds * TRIAL_BUDGET_SHARE / max(1, len(self.inp.gangs)),
        )

    def trial(self, gang: Gang, unavailable: dict[str, str] | None = None) -> Plan:
        inp = self.booked.input_for(self.inp, gang.pods, unavailable, planned=not gang.check_only)
        return self.engine(inp, self.trial_options(gang))

    def decide(self, gang: Gang) -> GangDecision:
        keys = [p.key for p in gang.pods]
        if gang.error is not None:
            return self.block(gang, keys, gang.error)
        trial = self.trial(gang)
        missing = [k for k in keys if k not in _placed(trial)]
        if missing:
            return self.block(gang, keys, self.shortfall(gang, trial, missing))
        groups = sorted({c.instance_group for c in trial.node_claims})
        if len(groups) > 1 and not gang.multiple_groups:
            single = self.one_group(gang)
            if single is None:
                why = (
                    f"its new nodes would need instance groups {', '.join(groups)} and no single group can take "
                    "every pod; an atomic request gets one group (one zone) unless its parameter "
                    'allowMultipleInstanceGroups is "true"'
                )
                return self.block(gang, keys, why)
            trial = single
        self.booked.book(gang, trial)
        return self.accept(gang, keys, trial)

    def one_group(self, gang: Gang) -> Plan | None:
        """The cheapest trial whose new nodes all come from one instance group (every other one made unavailable)."""
        names = sorted(g.name for g in self.inp.cluster.instance_groups)
        best: tuple[float, int, str] | None = None
        found: Plan | None = None
        for name in names:
            if name in self.inp.unavailable_groups:
                continue
            others = {n: f"gang {gang.key} takes its new nodes from one instance group" for n in names if n != name}
            trial = self.trial(gang, {**self.inp.unavailable_groups, **others})
            if any(p.key not in _placed(trial) for p in gang.pods):
                continue
            score = (trial.hourly_cost, len(trial.node_claims), name)
            if best is None or score < best:
                best, found = score, trial
        return found

    def shortfall(self, gang: Gang, trial: Plan, missing: list[str]) -> str:
        first = missing[0]
        if gang.check_only:
            why = "existing and in-flight capacity cannot hold it (check-capacity never adds nodes)"
        else:
            why = trial.unschedulable.get(first, "not placed")
        return f"{len(missing)} of {len(gang.pods)} pods cannot be placed; {first}: {why}"

    def block(self, gang: Gang, keys: list[str], why: str) -> GangDecision:
        reason = (
            f"{gang.source} {gang.key} is blocked, so none of its {len(keys)} pods is planned (all or nothing): {why}"
        )
        for key in keys:
            self.blocked[key] = reason
        return GangDecision(gang.source, gang.namespace, gang.name, gang.provisioning_class, "blocked", keys, why)

    @staticmethod
    def accept(gang: Gang, keys: list[str], trial: Plan) -> GangDecision:
        shared = _on_planned_nodes(trial, keys)
        if not trial.node_claims and not shared:
            return GangDecision(
                gang.source,
                gang.namespace,
                gang.name,
                gang.provisioning_class,
                "fits",
                keys,
                "existing and in-flight capacity holds every pod",
            )
        where = [f"{g} +{n}" for g, n in trial.scale_up.items()]
        if shared:
            where.append(f"room on {shared} new nodes of earlier gangs")
        why = f"new nodes for every pod that existing capacity cannot hold: {', '.join(where)}"
        return GangDecision(gang.source, gang.namespace, gang.name, gang.provisioning_class, "provision", keys, why)

    # --- the plan ----------------------------------------------------------------------------------------------------

    def merge(self, final: Plan) -> Plan:
        """The final plan with the booked gangs' claims and placements; synthetic in-flight claims become claims."""
        plan = Plan(nodepool_errors=dict(final.nodepool_errors), stats=dict(final.stats), gangs=list(self.decisions))
        for claim_id, claim in self.booked.claims.items():
            pods = final.existing_nodes.get(f"inflight:{claim_id}", list(claim.pods))
            plan.node_claims.append(replace(claim, pods=list(pods)))
        plan.node_claims.extend(final.node_claims)
        for where, keys in final.existing_nodes.items():
            if not _synthetic(where.removeprefix("inflight:")):
                plan.existing_nodes[where] = list(keys)
        for node, keys in self.booked.on_nodes.items():
            plan.existing_nodes.setdefault(node, []).extend(keys)
        plan.unschedulable = {**self.blocked, **final.unschedulable}
        plan.stats["skipped"] = {**plan.stats.get("skipped", {}), **self.inp.consumed}
        if self.held:
            plan.stats["booked"] = {
                r.key: {"pods": len(r.pods), "held": dict(sorted(self.held.get(r.key, {}).items()))}
                for r in self.inp.reservations
            }
        return plan


def schedule_gangs(inp: PlanInput, opts: PlanOptions, engine: Engine) -> Plan:
    """Plan ``inp.gangs`` all or nothing, then ``inp.pods`` with what is left (``engine``: the plain packing engine)."""
    return GangPlanner(inp, opts, engine).run()
