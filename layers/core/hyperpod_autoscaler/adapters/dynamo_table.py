"""The stack's one DynamoDB table, as every adapter on it sees it (template.yaml's ``StateTable``): a string partition key
``pk``, a string sort key ``sk`` and the TTL attribute ``expiresAt``. Each adapter keeps its items under a partition of
its own (``claim``, ``lease#<name>``, ``disruption``, ``backoff``, ``podscaler``, ``scaleintent``) and writes under conditions."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

KEY_ATTR = "pk"
SORT_KEY_ATTR = "sk"
TTL_ATTR = "expiresAt"


def conditional_failed(exc: ClientError) -> bool:
    """Whether a write was refused by its condition (someone else wrote first), rather than failed."""
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class DynamoTable:
    """Base of the adapters on the table. ``client`` is a boto3 ``dynamodb`` client; ``now`` returns epoch seconds (the
    simulated clock in the sandbox)."""

    def __init__(self, client: Any, table_name: str, now: Callable[[], float] = time.time) -> None:
        if not table_name:
            raise ValueError(f"{type(self).__name__}: table_name is empty (set TABLE_NAME)")
        self._client = client
        self._table = table_name
        self._now = now
        self._pk = KEY_ATTR
        self._sk = SORT_KEY_ATTR
        self._ttl = TTL_ATTR

    def _item_key(self, partition: str, sort: str) -> dict[str, dict[str, str]]:
        return {self._pk: {"S": partition}, self._sk: {"S": sort}}

    def _write_if(self, write: Callable[..., Any], **kwargs: Any) -> bool:
        """A conditional write on the table (``put_item``, ``update_item``, ``delete_item`` of the client): False when
        its condition refused it; any other error is raised."""
        try:
            write(TableName=self._table, **kwargs)
        except ClientError as exc:
            if conditional_failed(exc):
                return False
            raise
        return True
