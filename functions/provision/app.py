"""Task function of the provision and drill state machines: one action per Task state (scale, check, give_back, finish,
drill_plan, drill_scale_back). Errors are the project's own types, so Retry/Catch match them by name."""

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from hyperpod_autoscaler import entrypoints

logger = Logger()
tracer = Tracer()
metrics = entrypoints.HandlerMetrics("provision")
copy_config_to_registered_loggers(source_logger=logger, include={"hyperpod_autoscaler"})  # the services' loggers


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event, context):
    return entrypoints.provision_task(event, context)
