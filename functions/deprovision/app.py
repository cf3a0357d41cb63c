"""Task function of the deprovision state machine: cordon, drain, delete, confirm, rollback."""

from aws_lambda_powertools import Logger, Tracer
from hyperpod_autoscaler import entrypoints

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
def handler(event, context):
    return entrypoints.deprovision_task(event, context)
