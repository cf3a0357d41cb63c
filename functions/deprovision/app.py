"""Task function of the deprovision state machine: cordon, drain, delete, confirm, rollback."""

from aws_lambda_powertools import Logger, Tracer
from hyperpod_autoscaler import runtime
from hyperpod_autoscaler.services.deprovision import run_action

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
def handler(event, context):
    deps = runtime.deprovision_deps()
    try:
        return run_action(deps, event)
    finally:
        deps.metrics.flush()
