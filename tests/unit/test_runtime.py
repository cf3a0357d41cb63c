"""The composition root builds each client and adapter once per container, for the configuration it was built from."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from hyperpod_autoscaler import entrypoints, runtime

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


def test_the_handlers_decorator_flushes_what_the_functions_services_recorded_even_when_it_raises(
    container: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """One metrics provider per function and container: the services record to it, and Powertools' ``log_metrics`` on
    the handler's ``HandlerMetrics`` flushes it in a ``finally`` (each invocation publishes its own datapoints)."""
    monkeypatch.setenv("METRICS_SINK", "emf")
    metrics = entrypoints.HandlerMetrics("provision")

    @metrics.log_metrics
    def handler(event: object, context: object) -> None:
        runtime.provision_deps().metrics.count("ProvisionSteps", Step="Scale")
        raise RuntimeError("the service failed")

    with pytest.raises(RuntimeError, match="the service failed"):
        handler({}, None)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [(line["ProvisionSteps"], line["Step"], line["ClusterName"]) for line in lines] == [([1.0], "Scale", "eks")]
    with pytest.raises(RuntimeError):
        handler({}, None)
    again = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [line["ProvisionSteps"] for line in again] == [[1.0]], "the first invocation's datapoint was not sent twice"


def test_an_invocation_that_failed_before_building_its_metrics_flushes_nothing(container: None) -> None:
    @entrypoints.HandlerMetrics("provision").log_metrics
    def handler(event: object, context: object) -> None:
        raise KeyError("event")

    with pytest.raises(KeyError):  # the handler's own error, not one from building metrics in the finally
        handler({}, None)
    assert runtime.built_metrics("provision") is None


def test_another_configuration_gets_its_own_and_reset_forgets(container: None, monkeypatch: pytest.MonkeyPatch) -> None:
    lease, client = runtime.lease(), runtime.client("dynamodb")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:2")
    assert runtime.client("dynamodb") is not client
    assert runtime.lease() is not lease
    assert runtime.regional_client("sqs", "eu-west-1").meta.region_name == "eu-west-1"
    moved = runtime.lease()
    runtime.reset()
    assert runtime.lease() is not moved


def test_every_client_has_the_connect_and_read_timeouts(container: None) -> None:
    """botocore waits 60 s for each by default: a ScaledObject trigger in another region must not hang a function."""
    for c in (runtime.client("sqs"), runtime.regional_client("sqs", "eu-west-1"), runtime.regional_client("sqs")):
        assert c.meta.config.connect_timeout == runtime.CONNECT_TIMEOUT_SECONDS
        assert c.meta.config.read_timeout == runtime.READ_TIMEOUT_SECONDS
    assert runtime.regional_client("sqs", "eu-west-1").meta.region_name == "eu-west-1"
