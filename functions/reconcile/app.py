"""Node tier: pending pods -> node claims -> provision workflows (alarm, HyperPod events, schedule, manual invoke)."""

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from hyperpod_autoscaler import entrypoints

logger = Logger()
tracer = Tracer()
metrics = entrypoints.HandlerMetrics("reconcile")
copy_config_to_registered_loggers(source_logger=logger, include={"hyperpod_autoscaler"})  # the services' loggers


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE, log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event, context):
    return entrypoints.reconcile(event, context)
