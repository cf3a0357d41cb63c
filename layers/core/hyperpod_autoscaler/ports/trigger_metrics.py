"""The metrics a ScaledObject's triggers read (SQS queue depth, CloudWatch metrics), as the pod scaler sees them
(``adapters.aws_metrics`` reads them with boto3)."""

from __future__ import annotations

from typing import Protocol

from ..domain.podscaling import TriggerSpec


class TriggerMetrics(Protocol):
    def read(self, trigger: TriggerSpec) -> float: ...
