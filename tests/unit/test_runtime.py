"""The composition root builds each client and adapter once per container, for the configuration it was built from."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hyperpod_autoscaler import runtime

KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""


@pytest.fixture
def container(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    (tmp_path / "kubeconfig").write_text(KUBECONFIG)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kubeconfig"))
    for name, value in {
        "TABLE_NAME": "state",
        "HYPERPOD_CLUSTER_NAME": "hp",
        "EKS_CLUSTER_NAME": "eks",
        "AWS_REGION": "us-west-2",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:1",
    }.items():
        monkeypatch.setenv(name, value)
    runtime.reset()
    yield
    runtime.reset()


def test_warm_invocations_reuse_the_clients_and_adapters(container: None) -> None:
    first = [runtime.client("dynamodb"), runtime.lease(), runtime.backoff(), runtime.claims(), runtime.workflows()]
    first += [runtime.hyperpod(), runtime.reconcile_deps(), runtime.disruption_deps(), runtime.idempotency_store("i")]
    again = [runtime.client("dynamodb"), runtime.lease(), runtime.backoff(), runtime.claims(), runtime.workflows()]
    again += [runtime.hyperpod(), runtime.reconcile_deps(), runtime.disruption_deps(), runtime.idempotency_store("i")]
    assert all(a is b for a, b in zip(first, again, strict=True))
    provision, deprovision = runtime.provision_deps(), runtime.deprovision_deps()
    assert provision.hyperpod is deprovision.hyperpod is runtime.hyperpod()
    assert provision.backoff is runtime.reconcile_deps().backoffs


def test_each_invocation_gets_its_own_metrics(container: None) -> None:
    assert runtime.provision_deps().metrics is not runtime.provision_deps().metrics


def test_another_configuration_gets_its_own_and_reset_forgets(container: None, monkeypatch: pytest.MonkeyPatch) -> None:
    lease, client = runtime.lease(), runtime.client("dynamodb")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:2")
    assert runtime.client("dynamodb") is not client
    assert runtime.lease() is not lease
    assert runtime.regional_client("sqs", "eu-west-1").meta.region_name == "eu-west-1"
    moved = runtime.lease()
    runtime.reset()
    assert runtime.lease() is not moved
