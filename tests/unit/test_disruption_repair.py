"""A node the deprovision workflow tainted and cordoned, with no deprovision running for it any more (its rollback failed,
or its execution was stopped), is restored by the next disruption pass; nothing else is touched."""

from __future__ import annotations

from typing import Any

from hyperpod_autoscaler.domain.objects import parse_objects
from hyperpod_autoscaler.ports.cluster import ObjectRef
from hyperpod_autoscaler.services.disruption import DisruptionDeps, repair_stranded

from .engine_fixtures import node

TAINT = {"key": "karpenter.sh/disrupted", "effect": "NoSchedule"}


class RecordingCluster:
    def __init__(self, fail: set[str] | None = None) -> None:
        self.calls: list[tuple[str, str]] = []
        self.fail = fail or set()
        self.events: list[tuple[str, str]] = []

    def remove_taint(self, node_name: str, key: str) -> None:
        if node_name in self.fail:
            raise RuntimeError("API down")
        self.calls.append(("untaint", node_name))

    def uncordon(self, node_name: str) -> None:
        self.calls.append(("uncordon", node_name))

    def record_event(self, ref: ObjectRef, reason: str, message: str, type_: str = "Normal") -> None:
        self.events.append((ref.name, reason))


def deps(cluster: RecordingCluster) -> DisruptionDeps:
    none: Any = None
    return DisruptionDeps(cluster=cluster, hyperpod=none, workflows=none, state=none, metrics=none, catalog=none)  # type: ignore[arg-type]


def test_stranded_nodes_are_restored_and_nothing_else_is_touched() -> None:
    snapshot = parse_objects(
        [
            node("stranded", taints=[TAINT], unschedulable=True),
            node("draining", taints=[TAINT], unschedulable=True),  # a deprovision is running for it
            node("operator", unschedulable=True),  # cordoned by someone else: not ours to undo
            node("tainted-only", taints=[TAINT]),
            node("healthy"),
        ]
    )
    cluster = RecordingCluster()
    restored = repair_stranded(deps(cluster), snapshot, busy={"draining"}, now=0.0)
    assert sorted(restored) == ["stranded", "tainted-only"]
    assert sorted(cluster.calls) == [("uncordon", "stranded"), ("untaint", "stranded"), ("untaint", "tainted-only")]
    assert sorted(cluster.events) == [("stranded", "DisruptionRolledBack"), ("tainted-only", "DisruptionRolledBack")]


def test_a_node_that_cannot_be_restored_now_does_not_stop_the_others() -> None:
    snapshot = parse_objects(
        [node("a", taints=[TAINT], unschedulable=True), node("b", taints=[TAINT], unschedulable=True)]
    )
    cluster = RecordingCluster(fail={"a"})
    assert repair_stranded(deps(cluster), snapshot, busy=set(), now=0.0) == ["b"]
