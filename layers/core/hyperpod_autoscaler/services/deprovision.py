"""The task steps of the deprovision state machine (``statemachines/deprovision.asl.json``): cordon, drain, delete,
confirm, roll back.

Input of the execution: ``{cluster, nodes: [node names], reason, terminationGracePeriodSeconds?}``. ``reason`` is Empty,
Underutilized, Drifted, Expired, ScaleToZero or Drill. A node or pod annotated ``karpenter.sh/do-not-disrupt`` stops the
disruption of that node (it is untainted and dropped from the run) unless the reason is Expired, which is forceful.

An expiry drains as Karpenter's terminator does (``pkg/controllers/node/termination/terminator``): a do-not-disrupt pod
is never evicted, and it and a pod whose eviction a PDB refuses keep the drain waiting; once the NodePool's
terminationGracePeriod is about to end (the drain start plus the grace period, minus the pod's own
terminationGracePeriodSeconds, 30 s when unset) the pod is deleted, with what is left of the node's grace period as its
own. With no terminationGracePeriod an expired node waits for them.

PodDisruptionBudgets: a refused eviction is retried on the next drain round. Every other reason is voluntary and never
overrides a PDB: when evictions are still refused after the drain timeout (the terminationGracePeriod if given, else
``DEFAULT_DRAIN_TIMEOUT_SECONDS``) the node is given back (untainted, uncordoned) and reported as aborted.

Only HyperPod nodes (``hyperpod-<instance id>``) can be deleted, so no other node is ever cordoned: it is reported as
aborted by the cordon step. Scale to zero (``Empty``, ``ScaleToZero``) re-checks the node before cordoning and before
deleting: a node that is no longer empty (``Empty``) or that a pending pod would now fit on is given back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..domain.duration import parse_duration
from ..domain.errors import AutoscalerError, DisruptionAborted, InvalidRequest, Unavailable
from ..domain.k8s import DISRUPTED_TAINT_KEY, DO_NOT_DISRUPT, Node, Pod, Taint
from ..domain.scheduling.fit import pod_fits_node
from ..ports import metrics as m
from ..ports.cluster import ClusterPort
from ..ports.hyperpod import HyperPodPort
from ..ports.metrics import MetricsPort

log = logging.getLogger(__name__)

FORCEFUL_REASONS = {"Expired"}
TERMINATION_TIMESTAMP = "karpenter.sh/nodeclaim-termination-timestamp"
REVALIDATED_REASONS = {"Empty", "ScaleToZero"}
"""Scale to zero: the node is re-checked before the cordon and before the delete, and given back if needed again."""
HYPERPOD_NODE_PREFIX = "hyperpod-i-"
"""A HyperPod node's name: ``hyperpod-`` and the EC2 instance id that BatchDeleteClusterNodes takes as its NodeId."""
DEFAULT_POD_GRACE_SECONDS = 30
"""A pod's terminationGracePeriodSeconds when unset (the API server's default)."""
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
    metrics: MetricsPort
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


def _restore(deps: DeprovisionDeps, node: str) -> None:
    """Put a node back into service after its disruption failed (HyperPod refused the delete, or the run rolled back).
    Unlike a drain handed back at its bound (which keeps its deadline, or a grace period longer than the bound could
    never end), the node's termination deadline goes too: pods may land on it again, and a later expiry gives them the
    whole grace period from its own drain (soak seed 6907: a do-not-disrupt pod that landed after a refused delete was
    deleted at the first drain's deadline, 75 s after it arrived)."""
    deps.cluster.remove_node_annotation(node, TERMINATION_TIMESTAMP)
    _release(deps, node)


def _released_view(node: Node) -> Node:
    """The node as a pending pod would see it once given back: uncordoned, without the disrupted taint."""
    taints = [t for t in node.spec.taints if t.key != DISRUPTED_TAINT_KEY]
    return node.model_copy(update={"spec": node.spec.model_copy(update={"unschedulable": False, "taints": taints})})


def _needs(deps: DeprovisionDeps, reason: str, names: list[str]) -> dict[str, str]:
    """Scale to zero only: why each of ``names`` is needed again, from a fresh snapshot. An ``Empty`` node that runs a
    pod again (not a DaemonSet's, not terminating) is needed; so is a node a pending pod would fit on once given back,
    unless the pod fits on a usable node that stays (each pending pod keeps at most one node)."""
    if reason not in REVALIDATED_REASONS or not names:
        return {}
    objects = deps.cluster.snapshot()
    nodes = {n.name: n for n in objects.nodes}
    bound: dict[str, list[Pod]] = {}
    for pod in objects.pods:
        if pod.spec.node_name and not pod.is_terminal:
            bound.setdefault(pod.spec.node_name, []).append(pod)
    staying = [n for n in objects.nodes if n.name not in names and n.unusable_reason() is None]

    def placed_elsewhere(pod: Pod) -> bool:
        return any(pod_fits_node(pod, n, bound.get(n.name, [])) is None for n in staying)

    pending = list(objects.pending_pods)
    out: dict[str, str] = {}
    for name in names:
        node = nodes.get(name)
        if node is None:
            continue
        on_node = bound.get(name, [])
        busy = [p for p in on_node if not p.is_daemonset_pod and p.metadata.deletion_timestamp is None]
        if reason == "Empty" and busy:
            out[name] = f"node {name} is no longer empty: pod {busy[0].key} runs on it"
            continue
        view = _released_view(node)
        fits = next((p for p in pending if pod_fits_node(p, view, on_node) is None and not placed_elsewhere(p)), None)
        if fits is not None:
            pending.remove(fits)
            out[name] = f"node {name} is needed again: pending pod {fits.key} fits on it"
    return out


def cordon(deps: DeprovisionDeps, event: dict[str, Any]) -> dict[str, Any]:
    reason = str(event.get("reason") or "Underutilized")
    kept: list[str] = []
    aborted: dict[str, str] = {}
    gone: list[str] = []
    names = _nodes(event)
    for name in names:
        if not name.startswith(HYPERPOD_NODE_PREFIX):  # it could never be deleted: never cordon it
            aborted[name] = f"node {name} is not a HyperPod node (no {HYPERPOD_NODE_PREFIX}<instance id> name)"
    needs = _needs(deps, reason, [n for n in names if n not in aborted])
    for name in names:
        if name in aborted:
            continue
        if deps.cluster.get_node(name) is None:
            gone.append(name)
            continue
        why = needs.get(name) or (None if reason in FORCEFUL_REASONS else _blocker(deps, name))
        if why:
            aborted[name] = why
            continue
        deps.cluster.taint_node(name, Taint(key=DISRUPTED_TAINT_KEY, effect="NoSchedule"))
        deps.cluster.cordon(name)
        kept.append(name)
    deps.metrics.count(m.DEPROVISION_STEPS, 1, Step="Cordon")
    log.info("cordoned %s (reason %s); aborted %s; already gone %s", kept, reason, aborted, gone)
    out: dict[str, Any] = {"nodes": kept, "aborted": aborted, "gone": gone, "drainStartedAt": deps.clock(), "rounds": 0}
    grace = event.get("terminationGracePeriodSeconds")
    if reason in FORCEFUL_REASONS and grace is not None:
        out["deadlines"] = {name: _termination_deadline(deps, name, float(grace)) for name in kept}
    return out


def _termination_deadline(deps: DeprovisionDeps, name: str, grace: float) -> float:
    """When the node's terminationGracePeriod ends: written on the node the first time its expiry drains (Karpenter's
    ``karpenter.sh/nodeclaim-termination-timestamp``) and read back by every later execution, so a drain handed back
    after ``DRAIN_BOUND_SECONDS`` and decided again does not start the grace period over (it could never end)."""
    wanted = datetime.fromtimestamp(deps.clock() + grace, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    value = deps.cluster.annotate_node_once(name, TERMINATION_TIMESTAMP, wanted) or wanted
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        log.warning(
            "node %s: annotation %s=%r is not an RFC 3339 time: the grace period starts now",
            name,
            TERMINATION_TIMESTAMP,
            value,
        )
        return deps.clock() + grace


def _drain_pod(deps: DeprovisionDeps, pod: Pod, deadline: float | None) -> str:
    """One pod in one drain round: "evicted", "blocked" (a PDB refused), "gone", "conflict" (409: tried again next round), "waiting-do-not-disrupt" or
    "deleted-after-grace". ``deadline`` (expiry only) is when the node's terminationGracePeriod ends: from the pod's own
    grace period before it, the pod is deleted whatever protects it (Karpenter's ``DeleteExpiringPods``)."""
    if deadline is not None:
        now = deps.clock()
        grace = pod.spec.termination_grace_period_seconds
        if now >= deadline - (DEFAULT_POD_GRACE_SECONDS if grace is None else grace):
            deps.cluster.delete_pod(pod.namespace, pod.name, grace_period_seconds=max(0, int(deadline - now)))
            return "deleted-after-grace"
    if _protects(pod.do_not_disrupt):
        return "waiting-do-not-disrupt"  # never evicted (Karpenter's IsEvictable), but it keeps the node draining
    return deps.cluster.evict(pod.namespace, pod.name)


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
    deadline = started + limit if forceful and limit is not None else None  # the node's terminationGracePeriod ends
    deadlines = {str(k): float(v) for k, v in (state.get("deadlines") or {}).items()}
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
            result = _drain_pod(deps, pod, deadlines.get(name, deadline))
            deps.metrics.count(m.EVICTIONS, 1, Result=result)
            if result == "blocked":
                blocked_here += 1
            if result != "gone":
                left_here += 1  # evicted and deleted pods take a moment to go: the next check sees them gone
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
        **({"deadlines": deadlines} if deadlines else {}),
        "remaining": remaining,
        "blocked": blocked,
        "drained": remaining == 0,
        "gone": state.get("gone") or [],
        "rounds": rounds,
        "handBack": hand_back,
    }


def delete(deps: DeprovisionDeps, event: dict[str, Any]) -> dict[str, Any]:
    state = event.get("drain") or {}
    drained = [n for n in state.get("nodes") or [] if n.startswith(HYPERPOD_NODE_PREFIX)]
    needed = _needs(deps, str(event.get("reason") or "Underutilized"), drained)
    for name in needed:
        _release(deps, name)  # needed again since the cordon: give it back instead
    ids = {n[len("hyperpod-") :]: n for n in drained if n not in needed}
    result = deps.hyperpod.delete_nodes(node_ids=sorted(ids)) if ids else None
    deleted = [ids[i] for i in (result.deleted if result else []) if i in ids]
    failed = {ids.get(i, i): why for i, why in (result.failed.items() if result else [])}
    for name in failed:
        _restore(deps, name)  # roll back the nodes HyperPod refused to delete
    deps.metrics.count(m.DEPROVISION_STEPS, 1, Step="Delete")
    deps.metrics.count(m.NODECLAIMS_TERMINATED, len(deleted), Reason=str(event.get("reason") or "Underutilized"))
    log.info("deleted %s; failed %s; needed again %s", deleted, failed, needed)
    return {"deleted": deleted, "failed": failed, "aborted": needed}


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
            _restore(deps, name)
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
