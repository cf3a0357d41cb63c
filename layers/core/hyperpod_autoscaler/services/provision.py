"""The task steps of the provision state machine (``statemachines/provision.asl.json``): scale, check, give back, finish.

Input of the execution: ``{cluster, instanceGroup, count, claimId, pods, nodePool?, instanceType?, zone?, gang?}``.
Each step raises the project's own errors (``ClusterBusy``, ``Throttled``, ``InsufficientCapacity``, ``RegistrationTimeout``,
``InvalidRequest``) so that the definition's Retry and Catch match them by name, in AWS as in tests.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..domain.disruption import INITIALIZED_LABEL
from ..domain.errors import ClusterBusy, InsufficientCapacity, InvalidRequest, RegistrationTimeout
from ..domain.k8s import NODEPOOL_LABEL
from ..ports import metrics as m
from ..ports.claims import ClaimForgetter
from ..ports.cluster import ClusterPort
from ..ports.hyperpod import ClusterNode, HyperPodPort, ScaleIntents
from ..ports.metrics import MetricsPort
from ..ports.state import BackoffPort

log = logging.getLogger(__name__)

DEFAULT_REGISTRATION_TIMEOUT = 1200


@dataclass
class ProvisionDeps:
    hyperpod: HyperPodPort
    cluster: ClusterPort
    backoff: BackoffPort
    metrics: MetricsPort
    claims: ClaimForgetter | None = None
    intents: ScaleIntents | None = None
    """Where an UpdateCluster scale records its write before making it (a retried task then does not write it twice)."""
    clock: Callable[[], float] = field(default=time.time)
    max_nodes_per_decision: int = 20
    """The reconcile settings' caps, enforced again by the task: a hand-started or replayed execution obeys them too."""
    max_nodes_total: int = 100


def _require(event: dict[str, Any], key: str, kind: type) -> Any:
    value = event.get(key)
    if not isinstance(value, kind) or (isinstance(value, str) and not value):
        raise InvalidRequest(f"provision input: field {key} is missing or not a {kind.__name__}")
    return value


def _claim(event: dict[str, Any]) -> tuple[str, int, str]:
    group = _require(event, "instanceGroup", str)
    count = _require(event, "count", int)
    claim = _require(event, "claimId", str)
    if count < 1:
        raise InvalidRequest(f"provision input: field count must be >= 1, got {count}")
    return group, count, claim


def _check_caps(deps: ProvisionDeps, group: str, count: int) -> None:
    """MaxNodesPerDecision caps ``count``; MaxNodesTotal caps the group's nodes (target or current, the larger) plus
    ``count``. A claim over either is refused before any scaling call."""
    if count > deps.max_nodes_per_decision:
        raise InvalidRequest(
            f"provision input: field count is {count}, above MaxNodesPerDecision ({deps.max_nodes_per_decision})"
        )
    view = deps.hyperpod.describe_cluster().group(group)
    have = max(view.target_count, view.current_count) if view is not None else 0
    if have + count > deps.max_nodes_total:
        raise InvalidRequest(
            f"provision input: field count is {count}; instance group {group} has {have} node(s), "
            f"so it would exceed MaxNodesTotal ({deps.max_nodes_total})"
        )


def scale(deps: ProvisionDeps, event: dict[str, Any]) -> dict[str, Any]:
    group, count, claim = _claim(event)
    _check_caps(deps, group, count)
    # one token per attempt (reconcile's clientToken): a later attempt for the same claim must launch new nodes
    result = deps.hyperpod.scale_up(group, count, str(event.get("clientToken") or claim), intents=deps.intents)
    log.info("scaled up %s by %d for claim %s (%s)", group, count, claim, result.mode)
    deps.metrics.count(m.PROVISION_STEPS, 1, Step="Scale", InstanceGroup=group)
    return {
        "mode": result.mode,
        "logicalIds": result.logical_ids,
        "targetCount": result.target_count,
        "startedAt": result.started_at if result.started_at is not None else deps.clock(),
    }


def _mine(deps: ProvisionDeps, event: dict[str, Any], group: str) -> list[ClusterNode]:
    started = event.get("scale") or {}
    nodes = deps.hyperpod.list_nodes(group)
    logical = set(started.get("logicalIds") or [])
    if logical:
        return [n for n in nodes if n.logical_id in logical]
    # UpdateCluster mode: the nodes launched since the scale call
    since = float(started.get("startedAt") or 0) - 1
    return [n for n in nodes if n.launch_time >= since]


def check(deps: ProvisionDeps, event: dict[str, Any]) -> dict[str, Any]:
    """Ready when the claim's nodes are Running in HyperPod and Ready in Kubernetes: ``count`` of them, less the launches
    that failed and were dropped.

    A launch that fails (``InsufficientInstanceCapacity``: only part of the capacity is there) is dropped at once, as
    Karpenter's launches are independent of each other: it is deleted (HyperPod would retry it in the background and
    it would come up later, owned by nothing), the group is backed off, and the claim waits for its other nodes, which
    were launched fine. The claim's record counts the dropped nodes off, so the next decision plans their pods again
    (elsewhere, or after the backoff) without waiting for this execution to end. A gang's claim
    never shrinks (a part of a gang is of no use to it), nor a claim whose every launch failed: both are given back."""
    group, count, claim = _claim(event)
    started = event.get("scale") or {}
    timeout = int(event.get("registrationTimeoutSeconds") or DEFAULT_REGISTRATION_TIMEOUT)
    nodes = _mine(deps, event, group)
    dropped = set((event.get("check") or {}).get("dropped") or [])
    if (event.get("scale") or {}).get("logicalIds"):
        # the claim's own nodes exactly: one shutting down was dropped (a retry after the delete went through)
        dropped |= {n.instance_id for n in nodes if n.status == "ShuttingDown"}
    failed = [n for n in nodes if n.status == "Failure" and n.instance_id not in dropped]
    if failed and (_gang(event) or len(failed) + len(dropped) >= count):
        raise InsufficientCapacity(
            f"{group}: {len(failed)} of {count} new nodes failed to launch: {failed[0].message or 'launch failure'}"
        )
    if failed:
        dropped |= _drop(deps, event, group, failed)
        _tell_reconcile(deps, event, len(dropped))
    nodes = [n for n in nodes if n.instance_id not in dropped]
    count -= len(dropped)
    ready: list[str] = []
    for n in nodes:
        if n.status != "Running":
            continue
        node = deps.cluster.get_node(n.node_name)
        if node is not None and NODEPOOL_LABEL not in node.labels:
            _label_with_nodepool(deps, event, [n.node_name], initialized=False, must=False)  # as soon as it registers
        if node is not None and node.is_ready:
            ready.append(n.node_name)
    elapsed = deps.clock() - float(started.get("startedAt") or deps.clock())
    deps.metrics.count(m.PROVISION_STEPS, 1, Step="Check", InstanceGroup=group)
    shrunk = {"dropped": sorted(dropped)} if dropped else {}
    if len(ready) >= count:
        return {"ready": True, "readyNodes": sorted(ready), "elapsed": round(elapsed, 1), **shrunk}
    if elapsed > timeout:
        raise RegistrationTimeout(
            f"{group}: {len(ready)} of {count} nodes Ready after {int(elapsed)}s (timeout {timeout}s), claim {claim}"
        )
    pending = sum(1 for n in nodes if n.status != "Running")
    log.info("claim %s: %d/%d Ready, %d pending, %ds elapsed", claim, len(ready), count, pending, int(elapsed))
    return {"ready": False, "readyNodes": sorted(ready), "elapsed": round(elapsed, 1), **shrunk}


def _drop(deps: ProvisionDeps, event: dict[str, Any], group: str, failed: list[ClusterNode]) -> set[str]:
    """Delete a claim's failed launches and back the group off; the ids deleted. A refused delete raises
    ``ClusterBusy`` (the state machine retries the check; each step here is idempotent)."""
    why = f"InsufficientCapacity: {failed[0].message or 'launch failure'}"
    backoff = deps.backoff.mark_unavailable(group, why[:300], cause=_attempt(event))
    deleted = deps.hyperpod.delete_nodes(node_ids=[n.instance_id for n in failed])
    if deleted.failed:
        raise ClusterBusy(
            f"{group}: HyperPod refused to delete {len(deleted.failed)} failed launch(es): {deleted.failed}"
        )
    log.warning(
        "claim %s: dropped %d failed launch(es) in %s (%s), group backed off %.0fs; waiting for the others",
        event.get("claimId"),
        len(failed),
        group,
        why,
        backoff,
    )
    deps.metrics.count(m.CLOUDPROVIDER_ERRORS, 1, Error="InsufficientCapacity", InstanceGroup=group)
    return {n.instance_id for n in failed}


def _label_with_nodepool(
    deps: ProvisionDeps, event: dict[str, Any], names: list[str], initialized: bool = True, must: bool = True
) -> None:
    """As Karpenter's nodes: the disruption side maps a node to its NodePool by this label (set on registration), and
    leaves a node out of the budgets until it is initialized (``karpenter.sh/initialized``, set once it is Ready).

    The label is what lets consolidation ever remove the node, so where no later step would write it again (``must``:
    finish, give-back) a failed write fails the task and the state machine retries it; a node left unlabelled would
    stay idle and billing for good. The check's label on registration is written again by the next check."""
    pool = event.get("nodePool")
    if not (isinstance(pool, str) and pool):
        return
    labels = {NODEPOOL_LABEL: pool} | ({INITIALIZED_LABEL: "true"} if initialized else {})
    for name in names:
        try:
            deps.cluster.label_node(name, labels)
        except Exception as exc:
            log.warning("could not label node %s with its NodePool %s: %s", name, pool, exc)
            if must:
                raise


def _tell_reconcile(deps: ProvisionDeps, event: dict[str, Any], dropped: int) -> None:
    """Count the dropped launches off the claim's record, so that the next decision plans their pods again at once
    (elsewhere: the group is backed off) instead of when this execution ends. Best effort: if the write fails, the
    pods wait for the execution's end, as before."""
    token = str(event.get("clientToken") or "")
    if deps.claims is None or not token:
        return
    try:
        deps.claims.drop(str(event.get("claimId")), token, dropped)
    except Exception as exc:
        log.warning("claim %s: could not record %d dropped launch(es): %s", event.get("claimId"), dropped, exc)


def _attempt(event: dict[str, Any]) -> str:
    """Which launch attempt failed, for the backoff: a task retried within one attempt marks one strike, while each
    later attempt for the same pods (reconcile's new ``clientToken``, same claim id) is a strike of its own."""
    return str(event.get("clientToken") or event.get("claimId") or "")


def _gang(event: dict[str, Any]) -> bool:
    """Whether the claim is an all-or-nothing gang's (reconcile puts ``gang: {source, namespace, name}`` in its input)."""
    return isinstance(event.get("gang"), dict)


def give_back(deps: ProvisionDeps, event: dict[str, Any]) -> dict[str, Any]:
    """After a capacity failure or a registration timeout: delete the claim's nodes that did not come up, pause launches
    into the group (growing backoff), and let the next decision place the pods elsewhere. Never relaunches here.

    A gang's claim (``gang`` in the input) gives back every node it launched, Ready ones too: its pods start only when
    all of them are up, so the nodes that came up would bill while the job cannot start (issue 17)."""
    group = str(event.get("instanceGroup") or "")
    error = event.get("error") or {}
    reason = str(error.get("Error") or "ProvisioningFailed")
    result: dict[str, Any] = {"status": "gave-back", "reason": reason, "kept": [], "deleted": [], "failed": {}}
    retry = event.get("retryCount")
    if not isinstance(retry, int) or retry == 0:  # the definition passes $$.State.RetryCount; by hand: a first attempt
        # counted by the first attempt, before anything can fail: a give-back whose deletes are refused on every retry
        # still counts its failure, and no retry counts it again
        deps.metrics.count(m.CLOUDPROVIDER_ERRORS, 1, Error=reason, InstanceGroup=group or "unknown")
    if group and event.get("scale"):
        nodes = _mine(deps, event, group)
        keep = set()
        for n in nodes if not _gang(event) else []:  # a gang's nodes all go: a part of a gang is of no use to it
            if n.status == "Running":
                node = deps.cluster.get_node(n.node_name)
                if node is not None and node.is_ready:
                    keep.add(n.instance_id)  # it came up: pods can use it, consolidation removes it if not
        kept = sorted(n.node_name for n in nodes if n.instance_id in keep)
        _label_with_nodepool(deps, event, kept)  # so that consolidation knows the node's NodePool
        result["kept"] = kept
        doomed = [n for n in nodes if n.instance_id not in keep and n.status != "ShuttingDown"]
        if doomed:
            deleted = deps.hyperpod.delete_nodes(node_ids=[n.instance_id for n in doomed])
            result["deleted"], result["failed"] = deleted.deleted, deleted.failed
    if group and reason in ("InsufficientCapacity", "RegistrationTimeout"):
        result["backoffSeconds"] = deps.backoff.mark_unavailable(
            group, f"{reason}: {str(error.get('Cause', ''))[:300]}", cause=_attempt(event)
        )
    if deps.claims is not None and event.get("claimId"):
        deps.claims.forget(str(event["claimId"]))
    log.warning("gave back claim %s in %s: %s", event.get("claimId"), group, result)
    if result["failed"]:
        # HyperPod keeps retrying a failed launch in the background: a node left here would come up later, owned by no
        # claim. The state machine retries this task (ClusterBusy); each step above is idempotent on a retry.
        raise ClusterBusy(f"{group}: HyperPod refused to delete {len(result['failed'])} node(s): {result['failed']}")
    return result


def finish(deps: ProvisionDeps, event: dict[str, Any]) -> dict[str, Any]:
    group, _count, claim = _claim(event)
    ready = (event.get("check") or {}).get("readyNodes") or []
    _label_with_nodepool(deps, event, ready)  # first: a retry of this task must find the claim still recorded
    started = (event.get("scale") or {}).get("startedAt")
    # only a launch that began after the failure that set the backoff clears it
    deps.backoff.clear(group, since=float(started) if started is not None else deps.clock())
    if deps.claims is not None:
        deps.claims.forget(claim)
    deps.metrics.count(m.NODECLAIMS_READY, len(ready), InstanceGroup=group)
    dropped = (event.get("check") or {}).get("dropped") or []
    return {"status": "ready", "nodes": ready, **({"dropped": dropped} if dropped else {})}
