"""The task steps of the deprovision state machine (``statemachines/deprovision.asl.json``): cordon, drain, delete,
confirm, roll back.

Input of the execution: ``{cluster, nodes: [node names], reason, terminationGracePeriodSeconds?}``. ``reason`` is Empty,
Underutilized, Drifted, Expired, ScaleToZero or Drill. A node or pod annotated ``karpenter.sh/do-not-disrupt`` stops the
disruption of that node (it is untainted and dropped from the run) unless the reason is Expired, which is forceful but
still goes through the Eviction API, PDBs and the grace period.

PodDisruptionBudgets: a refused eviction is retried on the next drain round. Only an expiry deletes a pod that a PDB
still protects, and only once the NodePool's terminationGracePeriod has passed since the drain started (Karpenter's rule;
with no terminationGracePeriod an expired node waits for its PDBs). Every other reason is voluntary and never overrides a
PDB: when evictions are still refused after the drain timeout (the terminationGracePeriod if given, else
``DEFAULT_DRAIN_TIMEOUT_SECONDS``) the node is given back (untainted, uncordoned) and reported as aborted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..adapters import metrics as m
from ..adapters.errors import raising_project_errors
from ..adapters.metrics import AutoscalerMetrics
from ..domain.duration import parse_duration
from ..domain.errors import AutoscalerError, DisruptionAborted, InvalidRequest, Unavailable
from ..domain.k8s import DISRUPTED_TAINT_KEY, DO_NOT_DISRUPT, Pod, Taint
from ..ports.cluster import ClusterPort
from ..ports.hyperpod import HyperPodPort

log = logging.getLogger(__name__)

FORCEFUL_REASONS = {"Expired"}
DEFAULT_DRAIN_TIMEOUT_SECONDS = 3600
"""How long a voluntary disruption waits on PDB refusals before it gives the node back."""
DRAIN_BOUND_SECONDS = 3 * 3600
DRAIN_BOUND_ROUNDS = 800
"""How long one execution drains (time, and rounds of Drain/Wait) before it hands the nodes back (untainted, uncordoned)
to the next disruption pass. An expiry without a terminationGracePeriod waits on its PDBs without end, and a Standard
execution fails, uncatchably and without rollback, at 25,000 history events (~9 per round): a wait that long belongs to
the next decision, not to one execution."""


@dataclass
class DeprovisionDeps:
    hyperpod: HyperPodPort
    cluster: ClusterPort
    metrics: AutoscalerMetrics
    clock: Callable[[], float] = field(default=time.time)


def _nodes(event: dict[str, Any]) -> list[str]:
    nodes = event.get("nodes")
    if not isinstance(nodes, list) or not all(isinstance(n, str) and n for n in nodes):
        raise InvalidRequest("deprovision input: field nodes must be a list of node names")
    return list(nodes)


def _protects(value: str | None) -> bool:
    """``karpenter.sh/do-not-disrupt``: "true" or a duration (both protect while the pod is there)."""
    if value is None:
        return False
    if value.strip().lower() == "true":
        return True
    try:
        parse_duration(value)
        return True
    except ValueError:
        return False


def _evictable(pods: list[Pod]) -> list[Pod]:
    return [p for p in pods if p.owner_kind != "DaemonSet" and not p.is_terminal]


def _blocker(deps: DeprovisionDeps, node_name: str, pods: list[Pod] | None = None) -> str | None:
    node = deps.cluster.get_node(node_name)
    if node is not None and _protects(node.metadata.annotations.get(DO_NOT_DISRUPT)):
        return f"node {node_name} is annotated {DO_NOT_DISRUPT}"
    for pod in pods if pods is not None else deps.cluster.list_pods_on_node(node_name):
        if _protects(pod.do_not_disrupt):
            return f"pod {pod.key} is annotated {DO_NOT_DISRUPT}"
    return None


def _release(deps: DeprovisionDeps, node: str) -> None:
    deps.cluster.remove_taint(node, DISRUPTED_TAINT_KEY)
    deps.cluster.uncordon(node)


def cordon(deps: DeprovisionDeps, event: dict[str, Any]) -> dict[str, Any]:
    reason = str(event.get("reason") or "Underutilized")
    kept: list[str] = []
    aborted: dict[str, str] = {}
    gone: list[str] = []
    for name in _nodes(event):
        if deps.cluster.get_node(name) is None:
            gone.append(name)
            continue
        why = None if reason in FORCEFUL_REASONS else _blocker(deps, name)
        if why:
            aborted[name] = why
            continue
        deps.cluster.taint_node(name, Taint(key=DISRUPTED_TAINT_KEY, effect="NoSchedule"))
        deps.cluster.cordon(name)
        kept.append(name)
    deps.metrics.count(m.DEPROVISION_STEPS, 1, Step="Cordon")
    log.info("cordoned %s (reason %s); aborted %s; already gone %s", kept, reason, aborted, gone)
    return {"nodes": kept, "aborted": aborted, "gone": gone, "drainStartedAt": deps.clock(), "rounds": 0}


def drain(deps: DeprovisionDeps, event: dict[str, Any]) -> dict[str, Any]:
    state = event.get("drain") or event.get("cordon") or {}  # a later round continues from the previous one
    nodes = list(state.get("nodes") or [])
    reason = str(event.get("reason") or "Underutilized")
    forceful = reason in FORCEFUL_REASONS
    given = event.get("terminationGracePeriodSeconds")
    limit = int(given) if given is not None else (None if forceful else DEFAULT_DRAIN_TIMEOUT_SECONDS)
    started = float(state.get("drainStartedAt") or deps.clock())
    waited = deps.clock() - started
    past_limit = limit is not None and waited >= limit
    remaining = 0
    blocked = 0
    aborted: dict[str, str] = dict(state.get("aborted") or {})
    still: list[str] = []
    for name in nodes:
        pods = _evictable(deps.cluster.list_pods_on_node(name))
        why = None if forceful else _blocker(deps, name, pods)
        if why:
            _release(deps, name)  # a protected pod arrived: stop for this node, give it back
            aborted[name] = why
            continue
        left_here = blocked_here = 0
        for pod in pods:
            result: str = deps.cluster.evict(pod.namespace, pod.name)
            if result == "blocked" and past_limit and forceful:
                deps.cluster.delete_pod(pod.namespace, pod.name)
                result = "deleted-after-grace"
            deps.metrics.count(m.EVICTIONS, 1, Result=result)
            if result == "blocked":
                blocked_here += 1
            if result in ("blocked", "evicted"):
                left_here += 1  # evicted pods take a moment to go: the next check sees them gone
        if blocked_here and past_limit and not forceful:
            _release(deps, name)  # a voluntary disruption never overrides a PDB: give the node back
            aborted[name] = f"PodDisruptionBudgets refused {blocked_here} eviction(s) for {int(waited)}s"
            continue
        still.append(name)
        remaining += left_here
        blocked += blocked_here
    deps.metrics.count(m.DEPROVISION_STEPS, 1, Step="Drain")
    rounds = int(state.get("rounds") or 0) + 1
    hand_back = remaining > 0 and (waited >= DRAIN_BOUND_SECONDS or rounds >= DRAIN_BOUND_ROUNDS)
    if hand_back:
        log.warning(
            "drain of %s still waits on %d pod(s) after %ds and %d rounds: handed back",
            still,
            remaining,
            waited,
            rounds,
        )
    return {
        "nodes": still,
        "aborted": aborted,
        "drainStartedAt": started,
        "remaining": remaining,
        "blocked": blocked,
        "drained": remaining == 0,
        "gone": state.get("gone") or [],
        "rounds": rounds,
        "handBack": hand_back,
    }


def delete(deps: DeprovisionDeps, event: dict[str, Any]) -> dict[str, Any]:
    state = event.get("drain") or {}
    nodes = [n for n in state.get("nodes") or [] if n.startswith("hyperpod-")]
    ids = {n[len("hyperpod-") :]: n for n in nodes}
    result = deps.hyperpod.delete_nodes(node_ids=sorted(ids)) if ids else None
    deleted = [ids[i] for i in (result.deleted if result else []) if i in ids]
    failed = {ids.get(i, i): why for i, why in (result.failed.items() if result else [])}
    for name in failed:
        _release(deps, name)  # roll back the nodes HyperPod refused to delete
    deps.metrics.count(m.DEPROVISION_STEPS, 1, Step="Delete")
    deps.metrics.count(m.NODECLAIMS_TERMINATED, len(deleted), Reason=str(event.get("reason") or "Underutilized"))
    log.info("deleted %s; failed %s", deleted, failed)
    return {"deleted": deleted, "failed": failed}


CONFIRM_ATTEMPTS = 90
"""Checks (10 s apart) before a node that HyperPod accepted to delete but still lists fails the run (15 minutes)."""


def confirm(deps: DeprovisionDeps, event: dict[str, Any]) -> dict[str, Any]:
    attempts = int((event.get("confirm") or {}).get("attempts", 0)) + 1
    deleted = set((event.get("delete") or {}).get("deleted") or [])
    alive = {
        n.node_name
        for n in deps.hyperpod.list_nodes()
        if n.node_name in deleted and n.status not in ("ShuttingDown", "NotFound")
    }
    registered = {n for n in deleted if deps.cluster.get_node(n) is not None}
    left = sorted(alive | registered)
    if left and attempts >= CONFIRM_ATTEMPTS:
        raise DisruptionAborted(f"nodes still present {attempts} checks after their deletion: {', '.join(left)}")
    return {"gone": not left, "left": left, "attempts": attempts}


def rollback(deps: DeprovisionDeps, event: dict[str, Any]) -> dict[str, Any]:
    """Untaint and uncordon every node of the run. A node that could not be restored fails the task after the others
    were tried (``Unavailable`` when every failure was transient, so the Retry tries again): success means restored."""
    nodes = list((event.get("cordon") or {}).get("nodes") or event.get("nodes") or [])
    done = []
    failed: dict[str, Exception] = {}
    for name in nodes:
        try:
            _release(deps, name)
            done.append(name)
        except Exception as exc:  # keep rolling back the others
            log.warning("rollback of %s failed: %s", name, exc)
            failed[name] = exc
    if failed:
        permanent = [e for e in failed.values() if not (isinstance(e, AutoscalerError) and e.transient)]
        if permanent:
            raise permanent[0]
        raise Unavailable(f"rollback: {len(failed)} of {len(nodes)} node(s) not restored: {failed}")
    return {"rolledBack": done}


ACTIONS: dict[str, Callable[[DeprovisionDeps, dict[str, Any]], dict[str, Any]]] = {
    "cordon": cordon,
    "drain": drain,
    "delete": delete,
    "confirm": confirm,
    "rollback": rollback,
}


def run_action(deps: DeprovisionDeps, event: dict[str, Any]) -> dict[str, Any]:
    action = event.get("action")
    if action not in ACTIONS:
        raise InvalidRequest(f"deprovision task: field action is {action!r}, expected one of {sorted(ACTIONS)}")
    payload = event.get("input") if isinstance(event.get("input"), dict) else event
    step = ACTIONS[str(action)]
    args = {**(event.get("defaults") or {}), **payload}  # type: ignore[dict-item]
    # an SDK error no adapter mapped (DynamoDB, Step Functions) reaches Step Functions by its project name too
    return raising_project_errors(f"deprovision {action}", lambda: step(deps, args))  # type: ignore[arg-type]
