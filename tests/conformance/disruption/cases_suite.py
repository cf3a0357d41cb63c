"""Cases from Karpenter's disruption suite_test.go (budget mapping, candidate filtering) and the expiration controller."""

from __future__ import annotations

from typing import Any

from tests.unit.disruption_fixtures import (
    HOUR,
    annotated,
    deleting,
    node,
    not_ready,
    owned_by,
    pdb,
    pool,
    running,
    terminal,
    terminating,
)

from .model import EXPIRATION, SUITE, Case, Expect, c5, world


def _budget_world(*extra: dict[str, Any], budget: str = "100%") -> list[dict[str, Any]]:
    """Ten managed c5.xlarge nodes, each with a pod that keeps it out of this pass (do-not-disrupt), and ``extra``."""
    nodes = [c5(f"n{i}") for i in range(10)]
    pods = [annotated(running(f"web-{i}", f"n{i}"), "true") for i in range(10)]
    return world(*nodes, *pods, *extra, disruption={"budgets": [{"nodes": budget}]})


def _candidate(*pods: dict[str, Any], other: bool = True) -> list[dict[str, Any]]:
    """Node ``a`` carrying ``pods`` and a plain pod; node ``b`` (protected) with room for a's pods."""
    objs = [c5("a"), running("web-0", "a", labels={"app": "web"}), *pods]
    if other:
        objs += [c5("b"), annotated(running("pinned-0", "b"), "true")]
    return world(*objs)


def _protected_app(name: str, on: str, kind: str | None = None) -> dict[str, Any]:
    p = running(name, on, labels={"app": "guarded"})
    return owned_by(p, kind) if kind else p


BLOCKING = pdb("guarded", "guarded", max_unavailable=0)

CASES = [
    Case(
        "budget-mapping-unmanaged-not-counted",
        (
            SUITE,
            "BuildDisruptionBudgetMapping: should not consider nodes that are not managed as part of disruption count",
        ),
        _budget_world(node("unmanaged", "g5-12x-az1", cpu="8")),
        Expect(allowed=10),
    ),
    Case(
        "budget-mapping-uninitialized-not-counted",
        (
            SUITE,
            "BuildDisruptionBudgetMapping: should not consider nodes that are not initialized as part of "
            "disruption count",
        ),
        # upstream uses 100% of 10; a count shows the difference (with the booting node counted: 5 - 1)
        _budget_world(not_ready(c5("booting", age=120)), budget="5"),
        Expect(allowed=5),
    ),
    Case(
        "budget-mapping-not-negative",
        (SUITE, "BuildDisruptionBudgetMapping: should not return a negative disruption value"),
        world(*(deleting(c5(f"n{i}")) for i in range(10)), disruption={"budgets": [{"nodes": "10%"}]}),
        Expect(allowed=0, count=0),
    ),
    Case(
        "budget-mapping-deleting-counted",
        (
            SUITE,
            "BuildDisruptionBudgetMapping: should consider nodes with a deletion timestamp set and "
            "MarkedForDeletion to the disruption count",
        ),
        _budget_world(),
        Expect(allowed=8),
        run={"busy": {"n0", "n1"}},
    ),
    Case(
        "budget-mapping-not-ready-counted",
        (SUITE, "BuildDisruptionBudgetMapping: should consider not ready nodes to the disruption count"),
        [
            *_budget_world()[:2],
            *(not_ready(o) if o["metadata"]["name"] in ("n0", "n1") else o for o in _budget_world()[2:]),
        ],
        Expect(allowed=8),
    ),
    Case(
        "candidates-do-not-disrupt-pod",
        (
            SUITE,
            "Candidate Filtering: should not consider candidates that have do-not-disrupt pods scheduled and no "
            "terminationGracePeriod",
        ),
        _candidate(annotated(running("job-0", "a"), "true")),
        Expect(kept=("a", "b"), count=0),
    ),
    Case(
        "candidates-do-not-disrupt-mirror-pod",
        (SUITE, "Candidate Filtering: should not consider candidates that have do-not-disrupt mirror pods scheduled"),
        _candidate(annotated(owned_by(running("static-0", "a"), "Node"), "true")),
        Expect(kept=("a", "b"), count=0),
    ),
    Case(
        "candidates-do-not-disrupt-daemonset-pod",
        (
            SUITE,
            "Candidate Filtering: should not consider candidates that have do-not-disrupt daemonset pods scheduled",
        ),
        _candidate(annotated(owned_by(running("agent-0", "a"), "DaemonSet"), "true")),
        Expect(kept=("a", "b"), count=0),
    ),
    Case(
        "candidates-do-not-disrupt-terminating-pod",
        (SUITE, "Candidate Filtering: should consider candidates that have do-not-disrupt terminating pods"),
        _candidate(annotated(terminating(running("job-0", "a")), "true")),
        Expect(disrupted={"a": "Underutilized"}, kept=("b",)),
    ),
    Case(
        "candidates-do-not-disrupt-terminal-pod",
        (SUITE, "Candidate Filtering: should consider candidates that have do-not-disrupt terminal pods"),
        _candidate(annotated(terminal(running("job-0", "a")), "true")),
        Expect(disrupted={"a": "Underutilized"}, kept=("b",)),
    ),
    Case(
        "candidates-do-not-disrupt-node",
        (SUITE, "Candidate Filtering: should not consider candidates that have do-not-disrupt on nodes"),
        world(annotated(c5("a"), "true"), running("web-0", "a"), c5("b"), annotated(running("p-0", "b"), "true")),
        Expect(kept=("a", "b"), count=0),
    ),
    Case(
        "candidates-two-pdbs",
        (SUITE, "Candidate Filtering: should not consider candidates that have multiple PDBs on the same pod"),
        _candidate(
            running("api-0", "a", labels={"app": "api"}),
            running("api-1", "b", labels={"app": "api"}),
            pdb("api-1", "api", max_unavailable=1),
            pdb("api-2", "api", max_unavailable=1),
        ),
        Expect(kept=("a", "b"), count=0),
    ),
    Case(
        "candidates-blocking-pdb",
        (SUITE, "Candidate Filtering: should not consider candidates that have fully blocking PDBs"),
        _candidate(_protected_app("g-0", "a"), BLOCKING),
        Expect(kept=("a", "b"), count=0),
    ),
    Case(
        "candidates-blocking-pdb-daemonset-pod",
        (SUITE, "Candidate Filtering: should not consider candidates that have fully blocking PDBs on daemonset pods"),
        _candidate(_protected_app("g-0", "a", "DaemonSet"), BLOCKING),
        Expect(kept=("a", "b"), count=0),
    ),
    Case(
        "candidates-blocking-pdb-mirror-pod",
        (SUITE, "Candidate Filtering: should consider candidates that have fully blocking PDBs on mirror pods"),
        _candidate(_protected_app("g-0", "a", "Node"), BLOCKING),
        Expect(disrupted={"a": "Underutilized"}, kept=("b",)),
    ),
    Case(
        "candidates-blocking-pdb-terminal-pod",
        (SUITE, "Candidate Filtering: should consider candidates that have fully blocking PDBs on terminal pods"),
        _candidate(terminal(_protected_app("g-0", "a")), BLOCKING),
        Expect(disrupted={"a": "Underutilized"}, kept=("b",)),
    ),
    Case(
        "candidates-blocking-pdb-terminating-pod",
        (SUITE, "Candidate Filtering: should consider candidates that have fully blocking PDBs on terminating pods"),
        _candidate(terminating(_protected_app("g-0", "a")), BLOCKING),
        Expect(disrupted={"a": "Underutilized"}, kept=("b",)),
    ),
    Case(
        "candidates-deleting",
        (SUITE, "Candidate Filtering: should not consider candidates that are deleting"),
        world(deleting(c5("a"))),
        Expect(kept=("a",), count=0),
    ),
    Case(
        "candidates-in-queue",
        (SUITE, "Candidate Filtering: should not consider candidates that are actively being processed in the queue"),
        world(c5("a")),
        Expect(kept=("a",), count=0),
        run={"busy": {"a"}},
    ),
    Case(
        "candidates-uninitialized",
        (SUITE, "Candidate Filtering: should not consider candidates that aren't yet initialized"),
        world(not_ready(c5("a", age=60))),
        Expect(kept=("a",), count=0),
    ),
    Case(
        "candidates-no-nodepool-label",
        (
            SUITE,
            "Candidate Filtering: should not consider candidates that are not owned by a NodePool (no "
            "karpenter.sh/nodepool label)",
        ),
        world(node("a", "cpu-c5-az3", cpu="4", memory="8Gi")),
        Expect(kept=("a",), count=0),
        deliberate_difference="a node of an instance group that the NodePool's HyperpodNodeClass lists (HyperPod "
        "brings some up itself, e.g. for MinCount) belongs to that NodePool when only one NodePool uses the group",
        ours=Expect(disrupted={"a": "Empty"}),
    ),
    Case(
        "candidates-non-existent-nodepool",
        (SUITE, "Candidate Filtering: should not consider candidates that are have a non-existent NodePool"),
        world(c5("a", nodepool="gone")),
        Expect(kept=("a",), count=0),
    ),
    Case(
        "expiration-expired",
        (EXPIRATION, "Expiration: should delete NodeClaims if the nodeClaim is expired but the node isn't"),
        world(c5("old", age=800 * HOUR), annotated(running("job-0", "old"), "true"), expire="720h"),
        Expect(disrupted={"old": "Expired"}),
    ),
    Case(
        "expiration-not-expired",
        (EXPIRATION, "Expiration: should not remove non-expired NodeClaims"),
        world(c5("young", age=100 * HOUR), running("job-0", "young"), expire="720h"),
        Expect(kept=("young",), count=0),
    ),
    Case(
        "expiration-disabled",
        (EXPIRATION, "Expiration: should not remove the NodeClaims when expiration is disabled"),
        world(c5("old", age=8000 * HOUR), running("job-0", "old"), expire="Never"),
        Expect(kept=("old",), count=0),
    ),
    Case(
        "expiration-once",
        (EXPIRATION, "Expiration: shouldn't expire the same NodeClaim multiple times"),
        world(c5("old", age=800 * HOUR), expire="720h"),
        Expect(kept=("old",), count=0),
        run={"busy": {"old"}},
    ),
    Case(
        "expiration-per-pool",
        (EXPIRATION, "Expiration: should not remove non-expired NodeClaims (expireAfter is the node's own NodePool's)"),
        world(
            c5("a", nodepool="short", age=48 * HOUR),
            c5("b", nodepool="long", age=48 * HOUR),
            annotated(running("p-a", "a"), "true"),
            annotated(running("p-b", "b"), "true"),
            pools=[pool("short", expire="24h"), pool("long", expire="720h")],
        ),
        Expect(disrupted={"a": "Expired"}, kept=("b",)),
    ),
]
