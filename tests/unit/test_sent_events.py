"""One memory of sent Events serves every sender (reconcile, disruption, the conflict and invalid-object warnings)."""

from __future__ import annotations

from hyperpod_autoscaler.ports.cluster import ObjectRef
from hyperpod_autoscaler.services.events import SentEvents, send_event


def test_an_event_is_sent_again_only_once_its_window_has_passed() -> None:
    sent = SentEvents()
    key = ("default/p", "FailedProvisioning", "no NodePool")
    assert sent.first_in_window(key, 1000.0, 600.0)
    assert not sent.first_in_window(key, 1599.9, 600.0), "a repeat within the window"
    assert not sent.first_in_window(key, 1599.9, 600.0), "a refused repeat does not move the window"
    assert sent.first_in_window(key, 1600.0, 600.0)
    assert sent.first_in_window(("default/p", "FailedProvisioning", "other message"), 1600.0, 600.0)


def test_forgetting_keeps_only_what_was_sent_within_the_window() -> None:
    sent = SentEvents()
    sent.first_in_window("old", 0.0, 600.0)
    sent.first_in_window("new", 500.0, 600.0)
    sent.forget_older(600.0, 600.0)
    assert "old" not in sent and "new" in sent and len(sent) == 1


class _FailingCluster:
    def record_event(self, ref: ObjectRef, reason: str, message: str, type_: str) -> None:
        raise ConnectionError("api server down")


class _Metrics:
    def __init__(self) -> None:
        self.counts: list[tuple[str, float, dict[str, str]]] = []

    def count(self, name: str, value: float, **dims: str) -> None:
        self.counts.append((name, value, dims))


def test_a_failed_event_write_is_counted_not_raised() -> None:
    metrics = _Metrics()
    send_event(_FailingCluster(), metrics, ObjectRef("Node", "n1"), "DisruptionBlocked", "why", "Normal")  # type: ignore[arg-type]
    assert metrics.counts == [("CloudProviderErrors", 1, {"Error": "KubernetesEvent"})]
