"""Objects a decision had to skip because they are malformed: one poison pod (``memory: 1e400``) or one broken NodePool
must never stop the decision for the rest of the cluster.

The adapter parses every object on its own and collects the failures (``ClusterObjects.errors``, each naming the object
and the field, with a log line); this module tells the owner of each one: a Warning ``InvalidObject`` Event on the object
(``kubectl describe`` shows it; not re-sent within the repeat window) and the ``InvalidObjects`` gauge per kind, so that an
alarm can watch it.
"""

from __future__ import annotations

from ..domain.errors import InvalidObject
from ..ports import metrics as m
from ..ports.cluster import ClusterPort, ObjectRef
from ..ports.metrics import MetricsPort
from .events import SentEvents, send_event

REASON = "InvalidObject"
API_VERSIONS = {
    "Pod": "v1",
    "Node": "v1",
    "DaemonSet": "apps/v1",
    "PodDisruptionBudget": "policy/v1",
    "NodePool": "karpenter.sh/v1",
    "HyperpodNodeClass": "karpenter.sagemaker.amazonaws.com/v1",
    "ScaledObject": "keda.sh/v1alpha1",
}


def object_ref(error: InvalidObject) -> ObjectRef | None:
    """The object an error is about (``namespace/name`` or a cluster-scoped name); None when it has no name to point at."""
    if not error.name or error.kind not in API_VERSIONS:
        return None
    namespace, _, name = error.name.rpartition("/")
    return ObjectRef(error.kind, name, namespace or None, error.uid, API_VERSIONS[error.kind])


def warn_invalid_object(
    cluster: ClusterPort,
    metrics: MetricsPort,
    error: InvalidObject,
    sent: SentEvents,
    now: float,
    repeat_seconds: float,
) -> None:
    """A Warning Event on the object an error is about, unless the same one was sent within ``repeat_seconds``."""
    ref = object_ref(error)
    key = (f"{error.kind}/{error.name}", REASON, str(error))
    if ref is None or not sent.first_in_window(key, now, repeat_seconds):
        return
    send_event(cluster, metrics, ref, REASON, f"Skipped by the autoscaler: {error}", "Warning")


def report_invalid_objects(
    cluster: ClusterPort,
    metrics: MetricsPort,
    errors: list[InvalidObject],
    sent: SentEvents,
    now: float,
    repeat_seconds: float,
) -> None:
    """The Warning Event on each object skipped from a snapshot, and the gauges (in total and by Kind)."""
    per_kind: dict[str, int] = {}
    for error in errors:
        per_kind[error.kind] = per_kind.get(error.kind, 0) + 1
        warn_invalid_object(cluster, metrics, error, sent, now, repeat_seconds)
    metrics.gauge(m.INVALID_OBJECTS, len(errors))
    for kind, count in sorted(per_kind.items()):
        metrics.gauge(m.INVALID_OBJECTS, count, Kind=kind)
