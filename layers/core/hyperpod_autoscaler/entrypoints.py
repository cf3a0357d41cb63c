"""What each Lambda handler does between the event and the service, in one place so the handlers stay a few lines.

Every entry point: parses the event into a typed trigger (a malformed event fails naming the field, before anything is
read), deduplicates a redelivered EventBridge event with Powertools Idempotency on the state table (same event id → the
recorded answer, no second decision) and runs the service with the dependencies built by ``runtime``. The handler's
Powertools decorators do the rest: ``@logger.inject_lambda_context`` (the services' standard-library loggers are bridged
to it, so each line carries the correlation id) and ``@metrics.log_metrics`` on ``HandlerMetrics`` (flushed at the end of
every invocation, returned or raised).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.metrics.provider.base import BaseProvider

from . import runtime
from .adapters.errors import raising_project_errors
from .adapters.lambda_events import parse_trigger
from .domain.triggers import Trigger

log = logging.getLogger(__name__)

IDEMPOTENCY_PK = "idempotency"
IDEMPOTENCY_RECORD_MAX = 32_000
"""Bytes of an answer recorded whole for redeliveries; a larger one is recorded as its small fields only (a DynamoDB item
holds 400 KB, and a record that fails to save would fail the invocation after its work already ran)."""
FIELD_MAX = 1_000


def recorded_answer(out: dict[str, Any]) -> dict[str, Any]:
    """What the idempotency record keeps of an answer: the answer itself when small, else its small top-level fields and
    a ``truncated`` note (a redelivery only needs to know the event was handled, and roughly how)."""
    size = len(json.dumps(out, default=str))
    if size <= IDEMPOTENCY_RECORD_MAX:
        return out
    small = {k: v for k, v in out.items() if len(json.dumps(v, default=str)) <= FIELD_MAX}
    small["truncated"] = f"the answer was {size} bytes; the idempotency record keeps only its small fields"
    return small


class HandlerMetrics(BaseProvider):
    """A function's metrics as its handler sees them, for ``@metrics.log_metrics``: the provider ``runtime`` built for the
    function's services, looked up when used. A handler module is imported once, while ``runtime`` may build its
    dependencies again (a new endpoint in the sandbox and the tests), so the decorator flushes what the services
    actually recorded to."""

    def __init__(self, service: str) -> None:
        self.service = service

    def add_metric(self, *args: Any, **kwargs: Any) -> Any:
        return runtime.metrics_provider(self.service).add_metric(*args, **kwargs)

    def serialize_metric_set(self, *args: Any, **kwargs: Any) -> Any:
        return runtime.metrics_provider(self.service).serialize_metric_set(*args, **kwargs)

    def flush_metrics(self, *args: Any, **kwargs: Any) -> Any:
        built = runtime.built_metrics(self.service)  # an invocation that failed before building them recorded nothing
        return built.flush_metrics(*args, **kwargs) if built is not None else None

    def clear_metrics(self, *args: Any, **kwargs: Any) -> None:
        built = runtime.built_metrics(self.service)
        if built is not None:
            built.clear_metrics(*args, **kwargs)

    def add_cold_start_metric(self, context: Any) -> Any:
        return runtime.metrics_provider(self.service).add_cold_start_metric(context)


def _remaining(context: Any) -> Callable[[], float] | None:
    get = getattr(context, "get_remaining_time_in_millis", None)
    if get is None:
        return None
    return lambda: float(get()) / 1000.0


DISRUPTION_LEASE_SECONDS = 300.0
MIN_LEASE_SECONDS = 10.0
"""Above the leased loop's pass interval (5 s), which it must exceed."""


def _lease_seconds(context: Any, longest: float) -> float:
    """A lease never outlives the invocation that holds it: one that Lambda ends at its timeout runs no ``finally`` and
    cannot release, and a lease longer than the time it had left would keep every later pass out for the difference
    (the whole-system soak saw idle nodes kept minutes past their bound that way)."""
    remaining = _remaining(context)
    if remaining is None:
        return longest
    return max(MIN_LEASE_SECONDS, min(longest, remaining()))


def idempotent(trigger: Trigger, context: Any, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run ``work`` once per EventBridge event id; a redelivery gets the first answer. Events without an id (a manual
    invoke without one, a dry run) always run."""
    if not trigger.event_id or trigger.dry_run:
        return work()
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function

    store = runtime.idempotency_store(IDEMPOTENCY_PK)
    config = IdempotencyConfig(expires_after_seconds=3600)
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        config.register_lambda_context(context)

    answered: list[dict[str, Any]] = []

    @idempotent_function(data_keyword_argument="key", persistence_store=store, config=config)
    def once(key: dict[str, Any]) -> dict[str, Any]:
        out = work()
        answered.append(out)
        return recorded_answer(out)

    recorded = once(key={"function": runtime.env("POWERTOOLS_SERVICE_NAME", "hpa"), "event": trigger.event_id})
    # this invocation did the work: its whole answer; a redelivery: what was recorded
    return answered[0] if answered else recorded


def reconcile(event: Any, context: Any) -> dict[str, Any]:
    from .services.leased_loop import new_holder
    from .services.reconcile import run_reconcile

    trigger = parse_trigger(event)
    deps = runtime.reconcile_deps()

    def work() -> dict[str, Any]:
        result = run_reconcile(
            deps,
            runtime.reconcile_settings(),
            runtime.lease(),
            runtime.loop_settings(),
            trigger,
            new_holder("reconcile", context),
            remaining_seconds=_remaining(context),
            sleep=runtime.sleep,
        )
        out = result.to_dict()
        if trigger.kind == "schedule" and not trigger.dry_run:
            out["validation"] = validate(deps)
        return out

    return idempotent(trigger, context, work)


def validate(deps: Any) -> dict[str, Any]:
    """Write the NodePool and HyperpodNodeClass status conditions (the schedule does it once a minute)."""
    from .services.validation import validate_and_report

    try:
        result = validate_and_report(deps.cluster, deps.cluster.snapshot(), deps.hyperpod.describe_cluster())
    except Exception as exc:  # validation is a report: it must not fail the decision that just ran
        log.warning("status conditions not written: %s", exc)
        return {"error": str(exc)}
    return {"nodeClasses": len(result.nodeclasses), "nodePools": len(result.nodepools), "failures": result.failures}


def pod_scaler(event: Any, context: Any) -> dict[str, Any]:
    from .services.leased_loop import new_holder
    from .services.pod_scaler import run_pod_scaler

    trigger = parse_trigger(event)
    deps = runtime.pod_scaler_deps()

    def work() -> dict[str, Any]:
        result = run_pod_scaler(
            deps,
            runtime.lease(),
            runtime.loop_settings(),
            trigger,
            new_holder("pod-scaler", context),
            remaining_seconds=_remaining(context),
            sleep=runtime.sleep,
        )
        return result.to_dict()

    return idempotent(trigger, context, work)


def disruption(event: Any, context: Any) -> dict[str, Any]:
    """One pass under the ``disruption`` lease (a second invocation meanwhile does nothing: the schedule comes back)."""
    from .services.disruption import disrupt_once
    from .services.leased_loop import LoopSettings, new_holder, run_leased_loop

    trigger = parse_trigger(event)
    deps = runtime.disruption_deps()
    config = runtime.disruption_config()

    def work() -> dict[str, Any]:
        outcome = run_leased_loop(
            runtime.lease(),
            "disruption",
            new_holder("disruption", context),
            lambda: (disrupt_once(deps, config, dry_run=trigger.dry_run), False),
            LoopSettings(budget_seconds=0.0, lease_seconds=_lease_seconds(context, DISRUPTION_LEASE_SECONDS)),
            remaining_seconds=_remaining(context),
            clock=runtime.now,
            sleep=runtime.sleep,
        )
        last = outcome.passes[-1].to_dict() if outcome.passes else None
        return {"trigger": trigger.description, "held": outcome.held, "result": last}

    return idempotent(trigger, context, work)


def provision_task(event: Any, context: Any) -> dict[str, Any]:
    """One Task state of the provision or drill state machine."""
    from .services.tasks import run_provision_action

    return _task("provision", runtime.provision_deps(), run_provision_action, event)


def deprovision_task(event: Any, context: Any) -> dict[str, Any]:
    """One Task state of the deprovision state machine."""
    from .services.tasks import run_deprovision_action

    return _task("deprovision", runtime.deprovision_deps(), run_deprovision_action, event)


def _task(workflow: str, deps: Any, run_action: Callable[[Any, Any], dict[str, Any]], event: Any) -> dict[str, Any]:
    """A task's boundary: an SDK error no adapter mapped (DynamoDB, Step Functions) reaches Step Functions by its
    project name too, so the state machines' Retry and Catch match it."""
    action = event.get("action") if isinstance(event, dict) else None
    return raising_project_errors(f"{workflow} {action}", lambda: run_action(deps, event))
