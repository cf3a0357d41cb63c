"""What users look for in ``kubectl get nodepools,hyperpodnodeclasses``: the status conditions of their objects.

NodePool: ``ValidationSucceeded`` (the object parses: requirements, budgets, durations), ``NodeClassReady`` (its
``nodeClassRef`` is a HyperpodNodeClass that exists and is Ready), ``Ready`` (both). HyperpodNodeClass:
``InstanceGroupReady`` (every listed group exists in the HyperPod cluster), ``SubnetsReady`` (every group's zone is known),
``Ready``, and ``status.instanceGroups`` resolved from DescribeCluster. Both kinds get ``NoConflictingAutoscaler``: False
(reason ``HyperPodAutoScalingEnabled``) while HyperPod's own autoscaler is enabled on the cluster, when this autoscaler
changes nothing (``services.conflict``); Ready is left to the object's own validity (the engine skips a class that is not
Ready, and a conflict's end must not wait for the next validation to serve pods). A bad object gets a False condition with the reason; it never stops
the others.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from ..domain.hyperpod import ClusterView
from ..domain.objects import ClusterObjects
from ..ports.cluster import ClusterPort

log = logging.getLogger(__name__)


NO_CONFLICT = "NoConflictingAutoscaler"
CONFLICT_REASON = "HyperPodAutoScalingEnabled"


def conflict_condition(view: ClusterView) -> dict[str, Any]:
    why = view.conflicting_autoscaler
    return _cond(NO_CONFLICT, why is None, CONFLICT_REASON if why else "HyperPodAutoScalingDisabled", why or "")


def _cond(kind: str, ok: bool, reason: str, message: str = "") -> dict[str, Any]:
    return {"type": kind, "status": "True" if ok else "False", "reason": reason, "message": message}


@dataclass
class ValidationResult:
    nodepools: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    nodeclasses: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


def nodeclass_statuses(objects: ClusterObjects, view: ClusterView) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for nc in objects.nodeclasses:
        groups = []
        missing = []
        zoneless = []
        for name in nc.spec.instance_groups:
            group = view.group(name)
            if group is None:
                missing.append(name)
                continue
            known = nc.group_status(name)
            subnets = [{"id": s.id, "zone": s.zone} for s in known.subnets] if known else []
            if not subnets and group.zone:
                subnets = [{"id": sid, "zone": group.zone} for sid in group.subnets]
            if not subnets:
                zoneless.append(name)
            groups.append({"name": name, "instanceTypes": [group.instance_type], "subnets": subnets})
        conditions = [
            _cond(
                "InstanceGroupReady",
                not missing,
                "InstanceGroupsFound" if not missing else "InstanceGroupNotFound",
                f"not in HyperPod cluster {view.name}: {', '.join(missing)}" if missing else "",
            ),
            _cond(
                "SubnetsReady",
                not zoneless,
                "SubnetsResolved" if not zoneless else "SubnetZoneUnknown",
                f"no subnet zone for {', '.join(zoneless)}" if zoneless else "",
            ),
        ]
        conflict = conflict_condition(view)
        conditions.append(conflict)
        ready = not missing and not zoneless and bool(groups)
        conditions.append(_cond("Ready", ready, "Ready" if ready else "NotReady"))
        out[nc.name] = {"instanceGroups": groups, "conditions": conditions}
    return out


def nodepool_conditions(
    objects: ClusterObjects, classes: dict[str, dict[str, Any]], view: ClusterView | None = None
) -> dict[str, list[dict[str, Any]]]:
    conflict = conflict_condition(view) if view is not None else None
    out: dict[str, list[dict[str, Any]]] = {}
    for err in objects.errors:
        if err.kind == "NodePool" and err.name:
            out[err.name] = [
                _cond("ValidationSucceeded", False, "ValidationFailed", str(err)),
                _cond("Ready", False, "ValidationFailed", str(err)),
            ]
    for pool in objects.nodepools:
        ref = pool.spec.template.spec.node_class_ref
        if not ref.is_hyperpod:
            ok, reason, msg = False, "UnsupportedNodeClass", f"{ref.group}/{ref.kind} is not a HyperpodNodeClass"
        elif ref.name not in classes:
            ok, reason, msg = False, "NodeClassNotFound", f"HyperpodNodeClass {ref.name} does not exist"
        else:
            ready = next(c for c in classes[ref.name]["conditions"] if c["type"] == "Ready")["status"] == "True"
            ok, reason, msg = ready, "NodeClassReady" if ready else "NodeClassNotReady", ""
            if not ready:
                msg = f"HyperpodNodeClass {ref.name} is not Ready"
        conditions = [_cond("ValidationSucceeded", True, "Valid"), _cond("NodeClassReady", ok, reason, msg)]
        if conflict is not None:
            conditions.append(conflict)
        conditions.append(_cond("Ready", ok, "Ready" if ok else reason, msg))
        out[pool.name] = conditions
    return out


def validate_and_report(cluster: ClusterPort, objects: ClusterObjects, view: ClusterView) -> ValidationResult:
    """Compute every condition and write it through the status subresource (writes that change nothing are skipped by
    the adapter). One failing write is logged and the others go on."""
    result = ValidationResult()
    result.nodeclasses = nodeclass_statuses(objects, view)
    result.nodepools = nodepool_conditions(objects, result.nodeclasses, view)
    for name, status in sorted(result.nodeclasses.items()):
        try:
            cluster.set_nodeclass_status(name, status)
        except Exception as exc:  # one object's write must not stop the others
            log.warning("could not write the status of HyperpodNodeClass %s: %s", name, exc)
            result.failures.append(f"HyperpodNodeClass/{name}")
    for name, conditions in sorted(result.nodepools.items()):
        try:
            cluster.set_nodepool_conditions(name, conditions)
        except Exception as exc:
            log.warning("could not write the conditions of NodePool %s: %s", name, exc)
            result.failures.append(f"NodePool/{name}")
    return result
