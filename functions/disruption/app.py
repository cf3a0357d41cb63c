"""Disruption: expiry, drift, empty and underutilized nodes -> deprovision workflows (replacements first), on a schedule."""

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.logging import correlation_paths
from hyperpod_autoscaler import entrypoints

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE, log_event=False)
@tracer.capture_lambda_handler
def handler(event, context):
    return entrypoints.disruption(event, context)
