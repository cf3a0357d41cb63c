"""The whole-system soak's invariants, checked from the emulators' own records: the Kubernetes emulator's objects and
its eviction, API-deletion and PDB records; the HyperPod emulator's instances; moto's Step Functions executions."""

from __future__ import annotations

import json
import math
from typing import Any

from hyperpod_autoscaler.domain.k8s import DISRUPTED_TAINT_KEY, NODEPOOL_LABEL

from .sandbox.runner import ACCOUNT, REGION
from .system_soak import EXECUTION_BOUND, NODE_BOUND, POD_BOUND, STRANDED_BOUND, TICK
from .system_soak_run import ACTIVE_DRILL_SLACK, DO_NOT_DISRUPT, POOL_OF_TYPE, NodeSeen, PodSeen

LAUNCH_FAILURE = "InsufficientInstanceCapacity"
INITIALIZED_LABEL = "karpenter.sh/initialized"
DEFAULT_BUDGET = 0.10
"""Karpenter's default disruption budget, ``nodes: 10%`` (karpenter.sh/v1 NodePool API, ``spec.disruption.budgets``)."""
DISRUPTION_PERIOD = 60.0
"""The disruption function's schedule (template.yaml ``DisruptionSchedule``: rate(1 minute))."""


def _active_pods(sb: Any) -> dict[str, dict[str, Any]]:
    out = {}
    for pod in sb.kube.list("v1", "Pod"):
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        out[pod["metadata"]["uid"]] = pod
    return out


def _instances(sb: Any) -> list[Any]:
    hp = sb.aws.hyperpod
    with hp.lock:
        return [i for c in hp.clusters.values() for i in c.instances.values() if i.status != "ShuttingDown"]


def executions(sb: Any) -> list[Any]:
    """moto's execution objects for the stack's state machines (in this process; their dates are wall time)."""
    from moto.stepfunctions.models import stepfunctions_backends
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    arns = {sb.physical.get(lid) for lid in sb.wiring.state_machines}
    out: list[Any] = []
    for backends in (stepfunctions_parser_backends, stepfunctions_backends):
        try:
            machines = backends[ACCOUNT][REGION].state_machines
        except KeyError:
            continue
        for sm in machines:
            if sm.arn in arns:
                out.extend(sm.executions)
        if out:
            return out
    return out


def check_tick(sb: Any, t: float) -> None:
    obs = sb.observer
    pods = _active_pods(sb)
    nodes = {n["metadata"]["name"]: n for n in sb.kube.list("v1", "Node")}
    _gone_pods(sb, obs, pods, nodes, t)
    _pending_pods(obs, pods, t)
    _nodes(sb, obs, pods, nodes, t)
    _over_provisioning(sb, obs, pods, nodes, t)
    _running_executions(sb, obs, t)
    if pods:
        obs.last_busy = t


def _gone_pods(sb: Any, obs: Any, pods: dict[str, Any], nodes: dict[str, Any], t: float) -> None:
    """A pod that was active and is gone: by the autoscaler's eviction or delete, or lost with a node the autoscaler
    deleted, it must not have been protected (before its grace period) nor PDB-blocked (outside a forceful expiry)."""
    store = sb.kube.store
    with store.lock:
        taken = set(store.evictions[obs.seen_evictions :]) | set(store.api_pod_deletes[obs.seen_deletes :])
        blocked = set(store.pdb_violations[obs.seen_pdb :])
        obs.seen_evictions, obs.seen_deletes = len(store.evictions), len(store.api_pod_deletes)
        obs.seen_pdb = len(store.pdb_violations)
    for uid, seen in list(obs.pods.items()):
        if uid in pods:
            continue
        del obs.pods[uid]
        lost_with_node = seen.node is not None and seen.node not in nodes and seen.node in obs.nodes
        if seen.key not in taken and not lost_with_node:
            continue  # the sandbox's own doing: a Job's pod done, a scale-down, a failed node's eviction
        how = "evicted" if seen.key in taken else f"lost with node {seen.node}"
        if seen.protected and not obs.grace_passed(seen.node, t, seen.own_grace):
            obs.flag("doNotDisruptEvicted", uid, f"t={t:.0f} do-not-disrupt pod {seen.key[1]} {how}")
        if seen.key in blocked and not obs.grace_passed(seen.node, t, seen.own_grace):
            obs.flag("pdbViolated", uid, f"t={t:.0f} pod {seen.key[1]} {how} while its PDB allowed no disruption")


def _pending_pods(obs: Any, pods: dict[str, Any], t: float) -> None:
    start = obs.plan.last_fault_end
    for uid, pod in pods.items():
        meta, node = pod["metadata"], (pod.get("spec") or {}).get("nodeName")
        seen = obs.pods.get(uid)
        if seen is None:
            protected = (meta.get("annotations") or {}).get(DO_NOT_DISRUPT) == "true"
            own = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
            seen = obs.pods[uid] = PodSeen(
                (meta["namespace"], meta["name"]), node, protected, t, float(own) if own is not None else 30.0
            )
        seen.node = node or seen.node
        if node is None and meta.get("deletionTimestamp") is None and t - max(seen.pending_since, start) > POD_BOUND:
            obs.flag("podNotRunning", uid, f"t={t:.0f} pod {meta['name']} pending since {seen.pending_since:.0f}")


def _budget_room(obs: Any, nodes: dict[str, Any], t: float) -> dict[str, int]:
    """Per NodePool, how many more nodes its disruption budget lets go now, worked out from the Node objects alone:
    Karpenter's default budget (``nodes: 10%``, rounded up; the soak's NodePools set none) of its initialized nodes,
    less those NotReady or being disrupted, and less those removed within the last disruption period (a freed slot is
    used by the next pass, which runs once a minute). While a pool has no room its idle nodes are protected."""
    total: dict[str, int] = {}
    disrupting: dict[str, int] = {}
    for node in nodes.values():
        labels = node["metadata"].get("labels") or {}
        pool = labels.get(NODEPOOL_LABEL)
        if not pool or labels.get(INITIALIZED_LABEL) != "true":
            continue
        total[pool] = total.get(pool, 0) + 1
        spec = node.get("spec") or {}
        tainted = any(x.get("key") == DISRUPTED_TAINT_KEY for x in spec.get("taints") or [])
        if tainted or not _ready(node) or node["metadata"].get("deletionTimestamp"):
            disrupting[pool] = disrupting.get(pool, 0) + 1
    for name, seen in obs.nodes.items():
        if name not in nodes and seen.removed_at is not None and t - seen.removed_at < DISRUPTION_PERIOD:
            disrupting[seen.pool] = disrupting.get(seen.pool, 0) + 1
    return {pool: math.ceil(n * DEFAULT_BUDGET) - disrupting.get(pool, 0) for pool, n in total.items()}


def _ready(node: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (node.get("status") or {}).get("conditions") or []
    )


def _nodes(sb: Any, obs: Any, pods: dict[str, Any], nodes: dict[str, Any], t: float) -> None:
    busy = {(p.get("spec") or {}).get("nodeName") for p in pods.values()}
    room = _budget_room(obs, nodes, t)
    step = t - obs.last_tick if obs.last_tick is not None else 0.0
    obs.last_tick = t
    for name, seen in obs.nodes.items():
        if name not in nodes and seen.removed_at is None:
            seen.removed_at = t
    if any(room.get(pool, 1) <= 0 for pool in obs.plan.pools) and t > obs.plan.last_fault_end:
        obs.budget_blocked.append((t, step))
    for name, node in nodes.items():
        itype = node["metadata"]["labels"].get("node.kubernetes.io/instance-type", "")
        seen = obs.nodes.setdefault(name, NodeSeen(POOL_OF_TYPE.get(itype, ""), t))
        spec = node.get("spec") or {}
        disrupted = any(x.get("key") == DISRUPTED_TAINT_KEY for x in spec.get("taints") or [])
        held = bool(spec.get("unschedulable")) or disrupted
        seen.held_since = (seen.held_since if seen.held_since is not None else t) if held else None
        if disrupted and seen.disrupted_since is None:
            seen.disrupted_since = t
        idle = name not in busy and _ready(node)  # a failed node is HyperPod's to recover (NodeRecovery), not idle
        seen.idle_since = (seen.idle_since if seen.idle_since is not None else t) if idle else None
        counts = t > obs.plan.last_fault_end and room.get(seen.pool, 1) > 0  # else a fault or its budget holds it
        seen.idle_wait = (seen.idle_wait + (step if counts else 0.0)) if idle else 0.0
        consolidate = obs.plan.pools.get(seen.pool, {}).get("consolidateAfter", 0.0)
        if seen.idle_since is not None and seen.idle_wait > consolidate + NODE_BOUND:
            obs.flag(
                "idleNodeKept",
                name,
                f"t={t:.0f} node {name} idle since {seen.idle_since:.0f} ({seen.idle_wait:.0f} s with budget room)",
            )
        if seen.held_since is not None and t - seen.held_since > STRANDED_BOUND and not _running(sb, t):
            obs.flag("strandedNode", name, f"t={t:.0f} node {name} cordoned/tainted since {seen.held_since:.0f}")


def _dropped_launches(sb: Any) -> dict[str, int]:
    """Execution name -> launches it dropped for lack of capacity, from the claims' records: those nodes are not coming,
    and the pods they were for may be claimed again by a later decision (services/provision.py, ``check``)."""
    from hyperpod_autoscaler.adapters.dynamo_claims import DynamoClaimStore

    store = DynamoClaimStore(sb._client("dynamodb"), sb.physical["StateTable"], now=sb.clock.now)
    return {r.execution_name: r.claim.dropped for r in store.recorded_claims() if r.claim.dropped}


def _running(sb: Any, t: float) -> bool:
    return any(e.status == "RUNNING" for e in executions(sb))


def _over_provisioning(sb: Any, obs: Any, pods: dict[str, Any], nodes: dict[str, Any], t: float) -> None:
    """Double provisioning, two ticks in a row (a launch and its execution's start are seen a moment apart): one pod
    claimed by two running provisions at once, or instances booting beyond what the running provisions asked for (a
    launch repeated, or one that no live execution owns). A running drill may add ``ACTIVE_DRILL_SLACK`` instances.

    A claim that dropped launches (partial capacity) asks for that many nodes less, and the pods they were for may be
    claimed by a later provision too. A launch a fault delayed until its pods found room elsewhere is not double
    provisioning (Karpenter too launches
    for the pods it saw, and consolidates the node later); nor is a replacement whose old node's pods ended meanwhile."""
    instances = _instances(sb)
    obs.max_instances = max(obs.max_instances, len(instances))
    booting = sum(
        1
        for i in instances
        if i.status == "Pending" or (i.status == "Failure" and i.message.startswith(LAUNCH_FAILURE))
    )
    running = [e for e in executions(sb) if e.status == "RUNNING"]
    shrunk = _dropped_launches(sb)
    asked = 0
    owner: dict[str, str] = {}
    twice: list[str] = []
    for e in running:
        if "Provision" not in e.state_machine_arn:
            continue
        try:
            body = json.loads(e.execution_input or "{}")
        except ValueError:
            continue
        asked += max(0, int(body.get("count") or 0) - shrunk.get(e.name, 0))
        for key in body.get("pods") or []:
            if key in owner and not (shrunk.get(e.name) or shrunk.get(owner[key])):
                twice.append(f"{key} ({owner[key]}, {e.name})")
            owner[key] = e.name
    drills = sum(1 for e in running if "Drill" in e.state_machine_arn)
    surplus = booting - asked - ACTIVE_DRILL_SLACK * drills
    obs.over_ticks = obs.over_ticks + 1 if surplus > 0 or twice else 0
    if obs.over_ticks >= 2:
        obs.flag(
            "overProvisioned",
            f"t{int(t // 300)}",
            f"t={t:.0f} {booting} instances booting, {asked} asked by running provisions ({drills} drills); "
            f"pods claimed twice: {', '.join(twice) or 'none'}",
        )


def _running_executions(sb: Any, obs: Any, t: float) -> None:
    started = obs.__dict__.setdefault("execution_started", {})
    for e in executions(sb):
        first = started.setdefault(e.execution_arn, t)
        if e.status == "RUNNING" and t - first > EXECUTION_BOUND:
            obs.flag("executionOverBound", e.execution_arn, f"t={t:.0f} execution {e.name} running since {first:.0f}")


def check_end(sb: Any) -> None:
    """Scale to zero: once the work and the faults have been over for longer than consolidation and removal take, no
    instance may be left."""
    obs = sb.observer
    t = sb.ended_at  # the scenario's duration, or earlier once the run had settled with no instance left
    quiet_since = max(obs.last_busy, obs.plan.last_fault_end)
    longest = max((p.get("consolidateAfter", 0.0) for p in obs.plan.pools.values()), default=0.0)
    left = _instances(sb)
    blocked = sum(step for at, step in obs.budget_blocked if at > quiet_since)  # a budget held removals back
    if t - quiet_since - blocked > longest + NODE_BOUND + TICK and left:
        names = ", ".join(sorted(f"{i.instance_id}({i.status})" for i in left))
        obs.flag("notScaledToZero", "end", f"{len(left)} instances at the end, quiet since {quiet_since:.0f}: {names}")
