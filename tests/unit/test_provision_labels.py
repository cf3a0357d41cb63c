"""Provision labels a node with its NodePool as soon as it registers, and marks it initialized once it is Ready."""

from __future__ import annotations

import io
from typing import Any

import pytest
from hyperpod_autoscaler.adapters.metrics import AutoscalerMetrics
from hyperpod_autoscaler.domain.errors import Unavailable
from hyperpod_autoscaler.domain.k8s import Node
from hyperpod_autoscaler.ports.hyperpod import ClusterNode
from hyperpod_autoscaler.services.provision import ProvisionDeps, check, finish

from .engine_fixtures import node


class Fakes:
    """HyperPod with one Running instance, Kubernetes with its Node (registered, Ready or not), labels recorded."""

    def __init__(self, ready: bool) -> None:
        self.node = node("hyperpod-i-1", "auto-g6-az1", ready=ready)
        self.labels: dict[str, dict[str, str]] = {}

    def list_nodes(self, group: str) -> list[ClusterNode]:
        return [ClusterNode("i-1", group, "ml.g6.xlarge", "Running", logical_id="l-1")]

    def get_node(self, name: str) -> Node | None:
        return Node.model_validate(self.node) if name == "hyperpod-i-1" else None

    def label_node(self, name: str, labels: dict[str, str]) -> None:
        self.labels.setdefault(name, {}).update(labels)

    def clear(self, group: str, since: float | None = None) -> bool:
        return True


def run(step: Any, fakes: Fakes, **event: Any) -> dict[str, Any]:
    deps = ProvisionDeps(
        hyperpod=fakes,  # type: ignore[arg-type]
        cluster=fakes,  # type: ignore[arg-type]
        backoff=fakes,  # type: ignore[arg-type]
        metrics=AutoscalerMetrics("test", out=io.StringIO()),
    )
    base = {
        "instanceGroup": "auto-g6-az1",
        "count": 1,
        "claimId": "c-1",
        "nodePool": "gpu",
        "scale": {"logicalIds": ["l-1"]},
    }
    return step(deps, base | event)


def test_a_registered_node_gets_its_nodepool_before_it_is_ready() -> None:
    fakes = Fakes(ready=False)
    assert run(check, fakes)["ready"] is False
    assert fakes.labels == {"hyperpod-i-1": {"karpenter.sh/nodepool": "gpu"}}


def test_a_ready_node_is_marked_initialized() -> None:
    fakes = Fakes(ready=True)
    run(finish, fakes, check={"readyNodes": ["hyperpod-i-1"]})
    assert fakes.labels["hyperpod-i-1"] == {"karpenter.sh/nodepool": "gpu", "karpenter.sh/initialized": "true"}


class FlakyLabels(Fakes):
    """The Kubernetes API refuses the first ``failures`` label writes (a 500 mapped to the project's Unavailable)."""

    def __init__(self, failures: int) -> None:
        super().__init__(ready=True)
        self.failures = failures
        self.cleared = 0

    def label_node(self, name: str, labels: dict[str, str]) -> None:
        if self.failures:
            self.failures -= 1
            raise Unavailable("Kubernetes API: 500 InternalError (label node)")
        super().label_node(name, labels)

    def clear(self, group: str, since: float | None = None) -> bool:
        self.cleared += 1
        return True


def test_a_failed_label_write_fails_finish_so_the_state_machine_retries_it() -> None:
    """Issue 11 (found by the whole-system soak, seed 2030): finish only logged a failed label write, and a node left
    without its NodePool label is never consolidated: idle and billing for good. The failure now fails the task (the
    state machine retries Unavailable) before the claim is forgotten, and the retry labels the node."""
    fakes = FlakyLabels(failures=1)
    with pytest.raises(Unavailable):
        run(finish, fakes, check={"readyNodes": ["hyperpod-i-1"]})
    assert fakes.cleared == 0, "the claim and backoff are left as they were until the labels are written"
    assert run(finish, fakes, check={"readyNodes": ["hyperpod-i-1"]})["status"] == "ready"
    assert fakes.labels["hyperpod-i-1"] == {"karpenter.sh/nodepool": "gpu", "karpenter.sh/initialized": "true"}


def test_a_failed_label_write_on_registration_is_left_to_the_next_check() -> None:
    fakes = FlakyLabels(failures=1)
    fakes.node = node("hyperpod-i-1", "auto-g6-az1", ready=False)
    assert run(check, fakes)["ready"] is False  # no failure: the next check writes it
    run(check, fakes)
    assert fakes.labels == {"hyperpod-i-1": {"karpenter.sh/nodepool": "gpu"}}
