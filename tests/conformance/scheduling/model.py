"""The shape of a scheduling conformance case: objects, the placement upstream expects, and where it comes from.

Upstream's fake cloud provider has zones ``test-zone-1..3``; here they are the zones of the fixture groups
(``us-west-2a..c``, see ``tests/unit/engine_fixtures.GROUPS``), so a case says ``ZONE1`` where upstream says test-zone-1."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.unit.engine_fixtures import nodeclass, nodepool, pod

PROVISIONING = "pkg/controllers/provisioning/suite_test.go"
SCHEDULING = "pkg/controllers/provisioning/scheduling/suite_test.go"
TOPOLOGY = "pkg/controllers/provisioning/scheduling/topology_test.go"
INSTANCE_SELECTION = "pkg/controllers/provisioning/scheduling/instance_selection_test.go"

ZONE = "topology.kubernetes.io/zone"
ITYPE = "node.kubernetes.io/instance-type"
HOSTNAME = "kubernetes.io/hostname"
NODEPOOL = "karpenter.sh/nodepool"
ZONE1, ZONE2, ZONE3 = "us-west-2a", "us-west-2b", "us-west-2c"


@dataclass(frozen=True)
class Expect:
    """Where the plan puts the pods. Fields left empty/None are not checked."""

    scheduled: tuple[str, ...] = ()
    """Pods placed (on a new or an existing node)."""
    unschedulable: tuple[str, ...] = ()
    """Pods the plan reports unschedulable."""
    labels: dict[str, str] = field(default_factory=dict)
    """Labels the node of every pod in ``scheduled`` carries."""
    new_nodes: int | None = None
    """How many new nodes the plan launches."""
    same_node: tuple[str, ...] = ()
    """Pods that share one node."""
    apart: tuple[str, ...] = ()
    """Pods on pairwise different nodes."""
    on_node: dict[str, str] = field(default_factory=dict)
    """Pod -> the existing node it is placed on."""
    skew: tuple[str, tuple[int, ...]] | None = None
    """(topology key, pods of the case's spread group per domain, in any order), as upstream's ``ExpectSkew``."""


@dataclass(frozen=True)
class Case:
    name: str
    upstream: tuple[str, str]
    """(file in kubernetes-sigs/karpenter, "Describe/Context/It" text)."""
    objects: list[dict[str, Any]]
    expect: Expect
    deliberate_difference: str | None = None
    """Why we decide otherwise on purpose (docs/engine.md); ``ours`` is then what we decide instead."""
    ours: Expect | None = None


def world(*objects: dict[str, Any], pools: list[dict[str, Any]] | None = None, **pool_kw: Any) -> list[dict[str, Any]]:
    """The objects with one HyperpodNodeClass ``hp`` over every fixture group and NodePool ``default`` (or ``pools``)."""
    return [nodeclass(), *(pools if pools is not None else [nodepool(**pool_kw)]), *objects]


def req(key: str, operator: str, *values: str) -> dict[str, Any]:
    out: dict[str, Any] = {"key": key, "operator": operator}
    if values:
        out["values"] = list(values)
    return out


def requires(
    *terms: list[dict[str, Any]], preferred: list[tuple[int, list[dict[str, Any]]]] | None = None
) -> dict[str, Any]:
    """A node affinity: ``terms`` ORed (each a list of ANDed requirements), and weighted preferences."""
    affinity: dict[str, Any] = {}
    if terms:
        affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {
            "nodeSelectorTerms": [{"matchExpressions": t} for t in terms]
        }
    if preferred:
        affinity["preferredDuringSchedulingIgnoredDuringExecution"] = [
            {"weight": w, "preference": {"matchExpressions": t}} for w, t in preferred
        ]
    return {"nodeAffinity": affinity}


def pending(
    name: str,
    *reqs: dict[str, Any],
    selector: dict[str, str] | None = None,
    prefer: list[dict[str, Any]] | None = None,
    **kw: Any,
) -> dict[str, Any]:
    """A pending pod (1 CPU unless told) requiring all of ``reqs`` (one node selector term) and ``selector``, and
    preferring all of ``prefer`` (one term of weight 1)."""
    spec: dict[str, Any] = dict(kw.pop("spec", {}))
    if reqs or prefer:
        spec["affinity"] = requires(*([list(reqs)] if reqs else []), preferred=[(1, prefer)] if prefer else [])
    if selector:
        spec["nodeSelector"] = selector
    return pod(name, **kw, **spec)


def host_port(p: dict[str, Any], port: int, protocol: str = "TCP", host_ip: str = "") -> dict[str, Any]:
    """``p`` with its container asking ``port`` on the host."""
    entry: dict[str, Any] = {"containerPort": port, "hostPort": port, "protocol": protocol}
    if host_ip:
        entry["hostIP"] = host_ip
    p["spec"]["containers"][0]["ports"] = [entry]
    return p


def not_ready(obj: dict[str, Any], reason: str = "NotReady") -> dict[str, Any]:
    """``obj`` (a NodePool or a HyperpodNodeClass) whose status says Ready=False."""
    obj.setdefault("status", {})["conditions"] = [{"type": "Ready", "status": "False", "reason": reason}]
    return obj


def deleting(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` with a deletionTimestamp (held by a finalizer)."""
    obj["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    obj["metadata"]["finalizers"] = ["karpenter.sh/termination"]
    return obj


SPREAD_LABELS = {"test": "test"}


def spread(key: str, max_skew: int = 1, when: str = "DoNotSchedule", **kw: Any) -> dict[str, Any]:
    """A topology spread constraint over the pods labelled test=test (upstream's ``labels``)."""
    return {
        "topologyKey": key,
        "maxSkew": max_skew,
        "whenUnsatisfiable": when,
        "labelSelector": {"matchLabels": SPREAD_LABELS},
        **kw,
    }


def spread_pods(n: int, *constraints: dict[str, Any], prefix: str = "s", **kw: Any) -> list[dict[str, Any]]:
    """``n`` pods labelled test=test with ``constraints``; the skew of a case counts these (named ``s-<i>``)."""
    spec = {"topologySpreadConstraints": list(constraints), **kw.pop("spec", {})}
    return [pending(f"{prefix}-{i}", labels=dict(SPREAD_LABELS), spec=spec, **kw) for i in range(n)]


def pod_term(key: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"topologyKey": key, "labelSelector": {"matchLabels": labels}}


def with_affinity(p: dict[str, Any], kind: str, *terms: dict[str, Any], weight: int | None = None) -> dict[str, Any]:
    """``p`` with required (or, given ``weight``, preferred) pod affinity / anti-affinity ``terms``."""
    aff = p["spec"].setdefault("affinity", {}).setdefault(kind, {})
    if weight is None:
        aff.setdefault("requiredDuringSchedulingIgnoredDuringExecution", []).extend(terms)
    else:
        aff.setdefault("preferredDuringSchedulingIgnoredDuringExecution", []).extend(
            {"weight": weight, "podAffinityTerm": t} for t in terms
        )
    return p
