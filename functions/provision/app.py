"""Task function of the provision and drill state machines: one action per Task state (scale, check, give_back, finish,
drill_plan, drill_scale_back). Errors are the project's own types, so Retry/Catch match them by name."""

from aws_lambda_powertools import Logger, Tracer
from hyperpod_autoscaler import entrypoints

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
def handler(event, context):
    return entrypoints.provision_task(event, context)
