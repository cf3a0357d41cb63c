"""A HyperPod node of a NodePool's group that carries no ``karpenter.sh/nodepool`` label (HyperPod replaced a failed
instance, or the node predates the NodePool) is labelled by the disruption pass once it has been unlabelled for a while,
so that consolidation can ever remove it (whole-system soak: replaced nodes of a shared group stayed idle for good)."""

from __future__ import annotations

from typing import Any

from hyperpod_autoscaler.domain.disruption import ADOPT_AFTER_SECONDS, adoptions
from hyperpod_autoscaler.domain.objects import parse_objects
from hyperpod_autoscaler.ports.cluster import ObjectRef
from hyperpod_autoscaler.services.disruption import DisruptionDeps, adopt

from .engine_fixtures import node, nodeclass, nodepool

CREATED = "2026-01-01T00:00:00Z"
T0 = 1767225600.0  # CREATED as epoch seconds
ONLY_M5 = [{"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["ml.m5.2xlarge"]}]
ONLY_C5 = [{"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["ml.c5.xlarge"]}]


def hp_node(name: str, created: str = CREATED, **kw: Any) -> dict[str, Any]:
    obj = node(name, **kw)
    obj["metadata"]["creationTimestamp"] = created
    return obj


def world(*nodes: dict[str, Any], pools: list[dict[str, Any]] | None = None) -> Any:
    pools = pools or [nodepool("b-pool"), nodepool("a-pool")]
    return parse_objects([nodeclass(groups=["cpu-m5-az1", "cpu-c5-az3"]), *pools, *nodes])


def test_unlabelled_hyperpod_nodes_of_a_shared_group_go_to_the_first_pool_by_weight_then_name() -> None:
    objs = world(
        hp_node("hyperpod-i-0aaa"),
        hp_node("hyperpod-i-0bbb", labels={"karpenter.sh/nodepool": "b-pool"}),  # already labelled
        hp_node("static-node"),  # not a HyperPod node: nothing could ever delete it
        hp_node("hyperpod-i-0ccc", created="2026-01-01T00:01:50Z"),  # 10 s old at T0+120: provision may label it
        hp_node("hyperpod-i-0ddd", group="cpu-m5-az2"),  # a group no NodePool lists
    )
    assert adoptions(objs, T0 + ADOPT_AFTER_SECONDS) == {"hyperpod-i-0aaa": "a-pool"}
    weighted = world(hp_node("hyperpod-i-0aaa"), pools=[nodepool("b-pool", weight=5), nodepool("a-pool")])
    assert adoptions(weighted, T0 + 600) == {"hyperpod-i-0aaa": "b-pool"}


def test_the_pool_whose_requirements_the_node_meets_is_preferred() -> None:
    objs = world(
        hp_node("hyperpod-i-0aaa"),  # an m5 node
        pools=[nodepool("a-c5-only", requirements=ONLY_C5, weight=50), nodepool("z-m5", requirements=ONLY_M5)],
    )
    assert adoptions(objs, T0 + 600) == {"hyperpod-i-0aaa": "z-m5"}
    none_fit = world(
        hp_node("hyperpod-i-0aaa"), pools=[nodepool("b", requirements=ONLY_C5), nodepool("a", requirements=ONLY_C5)]
    )
    assert adoptions(none_fit, T0 + 600) == {"hyperpod-i-0aaa": "a"}


class LabellingCluster:
    def __init__(self, fail: set[str] | None = None) -> None:
        self.labels: dict[str, dict[str, str]] = {}
        self.events: list[tuple[str, str]] = []
        self.fail = fail or set()

    def label_node(self, node_name: str, labels: dict[str, str]) -> None:
        if node_name in self.fail:
            raise RuntimeError("API down")
        self.labels[node_name] = labels

    def record_event(self, ref: ObjectRef, reason: str, message: str, type_: str = "Normal") -> None:
        self.events.append((ref.name, reason))


def test_the_pass_labels_each_node_and_one_failed_write_does_not_stop_the_others() -> None:
    objs = world(hp_node("hyperpod-i-0aaa"), hp_node("hyperpod-i-0bbb", ready=False), hp_node("hyperpod-i-0ccc"))
    cluster = LabellingCluster(fail={"hyperpod-i-0ccc"})
    none: Any = None
    deps = DisruptionDeps(cluster=cluster, hyperpod=none, workflows=none, state=none, metrics=none, catalog=none)  # type: ignore[arg-type]
    assert adopt(deps, objs, T0 + 600) == ["hyperpod-i-0aaa", "hyperpod-i-0bbb"]
    assert cluster.labels == {
        "hyperpod-i-0aaa": {"karpenter.sh/nodepool": "a-pool", "karpenter.sh/initialized": "true"},
        "hyperpod-i-0bbb": {"karpenter.sh/nodepool": "a-pool"},  # not Ready: not initialized yet
    }
    assert cluster.events == [("hyperpod-i-0aaa", "NodeAdopted"), ("hyperpod-i-0bbb", "NodeAdopted")]
