"""Kubernetes Events the services send: each at most once per window, and never at the cost of a decision.

A warm container runs pass after pass over the same cluster; ``SentEvents`` keeps a repeated pass from sending the same
Event again within the window (the role of client-go's event correlator, which folds repeats of an Event). ``send_event``
writes one and counts a failed write instead of raising: an Event is information."""

from __future__ import annotations

from collections.abc import Hashable

from ..ports import metrics as m
from ..ports.cluster import ClusterPort, ObjectRef
from ..ports.metrics import MetricsPort


class SentEvents:
    """When each Event was last sent, by a key that identifies it to its sender (object, reason, message)."""

    def __init__(self) -> None:
        self._sent: dict[Hashable, float] = {}

    def first_in_window(self, key: Hashable, now: float, window_seconds: float) -> bool:
        """True, and the send noted at ``now``, when ``key`` was not sent within the last ``window_seconds``; False
        (nothing noted) for a repeat."""
        seen = self._sent.get(key)
        if seen is not None and now - seen < window_seconds:
            return False
        self._sent[key] = now
        return True

    def forget_older(self, now: float, window_seconds: float) -> None:
        """Drop what was sent ``window_seconds`` or more ago, so that a warm container's memory stays bounded."""
        for key in [k for k, t in self._sent.items() if now - t >= window_seconds]:
            del self._sent[key]

    def __len__(self) -> int:
        return len(self._sent)

    def __contains__(self, key: object) -> bool:
        return key in self._sent


def send_event(
    cluster: ClusterPort, metrics: MetricsPort, ref: ObjectRef, reason: str, message: str, type_: str
) -> None:
    """Record an Event; a failed write is counted (``CloudProviderErrors``, ``Error=KubernetesEvent``), never raised."""
    try:
        cluster.record_event(ref, reason, message, type_)
    except Exception:  # an event is information: a failed write must not fail the decision that was already made
        metrics.count(m.CLOUDPROVIDER_ERRORS, 1, Error="KubernetesEvent")
