"""Operator drills (``statemachines/drill.asl.json``): what to change, planned by a task so that a dry run can say it.

- ``scale-group``: add ``count`` nodes to ``group`` through the provision machine, then remove exactly those nodes through
  the deprovision machine (reason Drill).
- ``replace-node``: add one node to ``node``'s group, then drain and delete ``node``.
- ``drain-group``: drain and delete every node of ``group`` (scale to zero).
Execution names derive from the drill's input and the drill's own execution name (the Plan step gets it from the context
object as ``drillExecution``): a retried or redriven step of one drill starts its changes once, while the same drill run
again later (a new drill execution) gets new names instead of colliding with the first run's closed executions, which
Step Functions keeps for 90 days. Without ``drillExecution`` (a task invoked by hand) the names get a random token.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ..domain.disruption import pools_by_group
from ..domain.errors import InvalidRequest
from ..domain.k8s import NODEPOOL_LABEL
from .naming import new_token
from .provision import ProvisionDeps

DRILLS = ("scale-group", "replace-node", "drain-group")


def _digest(event: dict[str, Any]) -> str:
    body = {k: event.get(k) for k in ("drill", "group", "count", "node", "id")}
    body["attempt"] = event.get("drillExecution") or new_token()
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def plan(deps: ProvisionDeps, event: dict[str, Any]) -> dict[str, Any]:
    drill = event.get("drill")
    if drill not in DRILLS:
        raise InvalidRequest(f"drill input: field drill is {drill!r}, expected one of {list(DRILLS)}")
    cluster = str(event.get("cluster") or "")
    dry = bool(event.get("dryRun", False))
    tag = _digest(event)
    nodes = deps.hyperpod.list_nodes()
    out: dict[str, Any] = {"drill": drill, "dryRun": dry}
    if drill == "drain-group":
        group = event.get("group")
        if not isinstance(group, str) or not group:
            raise InvalidRequest("drill input: field group is required for drain-group")
        victims = sorted(n.node_name for n in nodes if n.group == group and n.status != "ShuttingDown")
        out["deprovision"] = {"cluster": cluster, "nodes": victims, "reason": "ScaleToZero"}
        out["deprovisionName"] = f"drill-drain-{tag}"
        out["summary"] = f"would drain and delete {len(victims)} node(s) of {group}: {', '.join(victims) or 'none'}"
        return out
    if drill == "replace-node":
        node = event.get("node")
        match = next((n for n in nodes if n.node_name == node or n.instance_id == node), None)
        if match is None:
            raise InvalidRequest(f"drill input: field node {node!r} is not a node of the cluster")
        group, count, replaced = match.group, 1, match.node_name
        out["replaced"] = replaced
        pool = _nodepool_of(deps, replaced)
    else:
        group = event.get("group")
        count = event.get("count", 1)
        if not isinstance(group, str) or not group or not isinstance(count, int) or count < 1:
            raise InvalidRequest("drill input: fields group (a name) and count (>= 1) are required for scale-group")
        pool = _owner_pool(deps, group, event.get("nodePool"))
    out["provision"] = {
        "cluster": cluster,
        "instanceGroup": group,
        "count": count,
        "claimId": f"drill-{tag}",
        "pods": [],
    }
    if pool:
        out["provision"]["nodePool"] = pool  # provision labels the new node with it: consolidation can remove it later
    out["provisionName"] = f"drill-up-{tag}"
    then = f"then drain and delete {out['replaced']}" if drill == "replace-node" else "then remove those nodes again"
    out["summary"] = f"would add {count} node(s) to {group}, wait until Ready, {then}"
    return out


def _nodepool_of(deps: ProvisionDeps, node_name: str) -> str | None:
    """The NodePool of the node a replace-node drill replaces: its replacement stays, and a node without the
    ``karpenter.sh/nodepool`` label is never consolidated (the whole-system soak found drill replacements left idle
    for good). None for a node no NodePool manages."""
    node = deps.cluster.get_node(node_name)
    return node.labels.get(NODEPOOL_LABEL) if node is not None else None


def _owner_pool(deps: ProvisionDeps, group: str, asked: Any) -> str | None:
    """The NodePool a scale-group drill's nodes are labelled with: the input's ``nodePool``, else the first by name of
    those whose HyperpodNodeClass lists the group. The drill removes its nodes again, but when that scale-back fails
    (a PDB, a timeout) they stay, and an unlabelled node of a shared group is never consolidated: it would bill for good."""
    if isinstance(asked, str) and asked:
        return asked
    pools = pools_by_group(deps.cluster.snapshot()).get(group) or []
    return min((p.name for p in pools), default=None)


def scale_back(deps: ProvisionDeps, event: dict[str, Any]) -> dict[str, Any]:
    plan_ = event.get("plan") or {}
    provisioned = (event.get("provisioned") or {}).get("Output") or {}
    if isinstance(provisioned, str):
        provisioned = json.loads(provisioned)
    if plan_.get("drill") == "replace-node":
        victims = [plan_["replaced"]]
    else:
        victims = list(provisioned.get("nodes") or [])
    tag = str(plan_.get("provisionName", "drill")).removeprefix("drill-up-")
    return {
        "deprovision": {"cluster": plan_.get("provision", {}).get("cluster", ""), "nodes": victims, "reason": "Drill"},
        "deprovisionName": f"drill-back-{tag}",
    }
