"""Task function of the deprovision state machine: cordon, drain, delete, confirm, rollback."""

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from hyperpod_autoscaler import entrypoints

logger = Logger()
tracer = Tracer()
metrics = entrypoints.HandlerMetrics("deprovision")
copy_config_to_registered_loggers(source_logger=logger, include={"hyperpod_autoscaler"})  # the services' loggers


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event, context):
    return entrypoints.deprovision_task(event, context)
