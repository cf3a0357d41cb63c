"""The engine's cost moves: the new-node lookahead, the split move of the improvement pass and the final downsize."""

from __future__ import annotations

from typing import Any

import pytest
from hyperpod_autoscaler.domain.catalog import Catalog
from hyperpod_autoscaler.domain.plan import PlanOptions
from hyperpod_autoscaler.domain.scheduling import packer as packer_module
from hyperpod_autoscaler.domain.scheduling.improve import _try_split
from hyperpod_autoscaler.domain.scheduling.packer import Packer
from hyperpod_autoscaler.domain.scheduling.vectors import fits, vadd

from . import engine_fixtures
from .engine_fixtures import nodeclass, nodepool, pod

IT = "node.kubernetes.io/instance-type"
PRICES = Catalog.builtin()


@pytest.fixture(autouse=True)
def _g6_12x(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(engine_fixtures.GROUPS, "g6-12x-az2", ("ml.g6.12xlarge", "us-west-2b"))


def _packer(objects: list[dict[str, Any]], opts: PlanOptions) -> Packer:
    p = Packer(engine_fixtures.plan_input(objects, catalog=PRICES), opts)
    p.run()
    return p


def _assert_feasible(p: Packer, total_pods: int) -> None:
    placed = 0
    for c in p.claims:
        if not c.pods:
            continue
        used = p.space.zero
        for pod_ in c.pods:
            used = vadd(used, p.class_by_idx[p.pod_class[pod_.key][0]].req)
        assert used == c.used
        assert fits(used, c.chosen.alloc)
        placed += len(c.pods)
    assert placed == total_pods


def _types(p: Packer) -> list[str]:
    return sorted(c.chosen.itype.name for c in p.claims if c.pods)


def _mixed_gpu_objects() -> list[dict[str, Any]]:
    large = [pod(f"train-{i}", cpu="11", memory="40Gi", gpu=1) for i in range(3)]
    small = [pod("infer-0", cpu="3", memory="8Gi", gpu=1)]
    only = nodepool(
        requirements=[{"key": IT, "operator": "In", "values": ["ml.g6.xlarge", "ml.g6.4xlarge", "ml.g6.12xlarge"]}]
    )
    groups = ["auto-g6-az1", "auto-g6-4xaz2", "g6-12x-az2"]
    return [nodeclass(groups=groups), only, *large, *small]


def test_lookahead_sizes_a_node_for_the_pods_of_later_classes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Three 1-GPU pods that need 11 CPUs each cost least alone on g6.4xlarge nodes ($1.654 each, $1.917 a pod on a
    g6.12xlarge); with the small 1-GPU pod that comes later on a g6.xlarge, $5.968. One g6.12xlarge ($5.752) holds all
    four: the lookahead counts the small pod when it sizes the first node."""
    opts = PlanOptions(improve=False)
    monkeypatch.setattr(packer_module, "LOOKAHEAD_CLASSES", 0)
    greedy = _packer(_mixed_gpu_objects(), opts)
    monkeypatch.undo()
    monkeypatch.setitem(engine_fixtures.GROUPS, "g6-12x-az2", ("ml.g6.12xlarge", "us-west-2b"))
    ahead = _packer(_mixed_gpu_objects(), opts)
    assert _types(greedy) == ["ml.g6.4xlarge"] * 3 + ["ml.g6.xlarge"]
    assert _types(ahead) == ["ml.g6.12xlarge"]
    assert ahead.plan().hourly_cost < greedy.plan().hourly_cost
    _assert_feasible(ahead, 4)
    _assert_feasible(greedy, 4)


def test_split_repacks_an_oversized_claim_onto_cheaper_nodes() -> None:
    """Eight small 1-GPU pods left alone on a g6.48xlarge ($16.69, e.g. the pods it was sized for went elsewhere) cost
    less on two g6.12xlarge nodes ($11.50): the split move repacks them, and every pod still fits."""
    pods = [pod(f"infer-{i}", cpu="2", memory="4Gi", gpu=1) for i in range(8)]
    only = nodepool(requirements=[{"key": IT, "operator": "In", "values": ["ml.g6.12xlarge", "ml.g6.48xlarge"]}])
    p = _packer([nodeclass(groups=["g6-12x-az2", "g6-48x-az2"]), only, *pods], PlanOptions())
    live = [c for c in p.claims if c.pods]
    assert _types(p) == ["ml.g6.12xlarge"] * 2
    # force the bad state: all eight pods on one g6.48xlarge
    a, b = live
    a.pods.extend(b.pods)
    for key, n in b.counts.items():
        a.counts[key] += n
    a.used = vadd(a.used, b.used)
    p.release(b)
    big = next(i for i, o in enumerate(a.offerings) if o.itype.name == "ml.g6.48xlarge")
    p.set_chosen(a, big)
    assert p.plan().hourly_cost == pytest.approx(PRICES["ml.g6.48xlarge"].price)
    assert _try_split(p, a)
    assert _types(p) == ["ml.g6.12xlarge"] * 2
    assert p.plan().hourly_cost == pytest.approx(2 * PRICES["ml.g6.12xlarge"].price)
    _assert_feasible(p, 8)


def test_split_keeps_a_claim_that_is_cheapest_as_it_is() -> None:
    """Four 11-CPU 1-GPU pods: one g6.12xlarge ($5.752) beats four g6.4xlarge ($6.616); the split move keeps it."""
    pods = [pod(f"train-{i}", cpu="11", memory="40Gi", gpu=1) for i in range(4)]
    only = nodepool(requirements=[{"key": IT, "operator": "In", "values": ["ml.g6.4xlarge", "ml.g6.12xlarge"]}])
    p = _packer([nodeclass(groups=["auto-g6-4xaz2", "g6-12x-az2"]), only, *pods], PlanOptions())
    (c,) = [c for c in p.claims if c.pods]
    assert c.chosen.itype.name == "ml.g6.12xlarge"
    assert not _try_split(p, c)
    _assert_feasible(p, 4)


def test_downsize_takes_the_cheapest_offering_that_still_fits() -> None:
    pods = [pod(f"infer-{i}", cpu="2", memory="4Gi", gpu=1) for i in range(4)]
    only = nodepool(requirements=[{"key": IT, "operator": "In", "values": ["ml.g6.12xlarge", "ml.g6.48xlarge"]}])
    p = _packer([nodeclass(groups=["g6-12x-az2", "g6-48x-az2"]), only, *pods], PlanOptions())
    (c,) = [c for c in p.claims if c.pods]
    big = next(i for i, o in enumerate(c.offerings) if o.itype.name == "ml.g6.48xlarge")
    p.set_chosen(c, big)
    p.downsize()
    assert c.chosen.itype.name == "ml.g6.12xlarge"
    _assert_feasible(p, 4)
