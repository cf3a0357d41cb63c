"""Two autoscalers never fight: while HyperPod's own autoscaler is enabled on the cluster (DescribeCluster
``AutoScaling.Mode: Enable``), reconcile and disruption change nothing in it.

Each pass that finds it so writes the NodePool and HyperpodNodeClass conditions (``NoConflictingAutoscaler`` False, through
``services.validation``), a Warning ``AutoscalerConflict`` event on every NodePool (once per repeat
window) and the ``AutoscalerConflict`` gauge (1). A pass that finds it disabled again sets the gauge to 0 and, when an
object still carries the False condition, rewrites the conditions.
"""

from __future__ import annotations

import logging

from ..domain.hyperpod import ClusterView
from ..domain.objects import ClusterObjects
from ..ports import metrics as m
from ..ports.cluster import ClusterPort, ObjectRef
from ..ports.metrics import MetricsPort
from .events import SentEvents, send_event
from .validation import NO_CONFLICT, validate_and_report

log = logging.getLogger(__name__)

EVENT_REASON = "AutoscalerConflict"


def _marked(objects: ClusterObjects) -> bool:
    """Some NodePool or HyperpodNodeClass still says the other autoscaler is on."""
    conditions = [c for p in objects.nodepools for c in (p.status.conditions if p.status else [])]
    conditions += [c for nc in objects.nodeclasses for c in (nc.status.conditions if nc.status else [])]
    return any(c.type == NO_CONFLICT and c.status == "False" for c in conditions)


def hold_off(
    cluster: ClusterPort,
    metrics: MetricsPort,
    objects: ClusterObjects,
    view: ClusterView,
    events_sent: SentEvents,
    now: float,
    repeat_seconds: float,
    dry_run: bool = False,
) -> str | None:
    """Why this pass must change nothing in the cluster (None: it may act). Reports the conflict (or its end) unless
    ``dry_run``."""
    why = view.conflicting_autoscaler
    if dry_run:
        return why
    metrics.gauge(m.AUTOSCALER_CONFLICT, 1 if why else 0)
    if why is None:
        if _marked(objects):
            _write_conditions(cluster, objects, view)
        return None
    log.warning("%s", why)
    _write_conditions(cluster, objects, view)
    for pool in objects.nodepools:
        key = (f"NodePool/{pool.name}", f"{EVENT_REASON}:{why}")
        if events_sent.first_in_window(key, now, repeat_seconds):
            ref = ObjectRef("NodePool", pool.name, api_version="karpenter.sh/v1")
            send_event(cluster, metrics, ref, EVENT_REASON, why, "Warning")
    return why


def _write_conditions(cluster: ClusterPort, objects: ClusterObjects, view: ClusterView) -> None:
    try:
        validate_and_report(cluster, objects, view)
    except Exception as exc:  # a report: it must not turn holding off into a failure
        log.warning("status conditions not written: %s", exc)
