"""Per-group launch backoff on the stack's DynamoDB table (``ports.state.BackoffPort``).

Item: ``pk = "backoff"``, ``sk = <group>``, ``until`` (epoch seconds), ``strikes``, ``reason``, ``lastFailure``. A failure
makes the group unavailable for ``BASE_SECONDS * 2^(strikes-1)`` capped at ``MAX_SECONDS`` (3 min, 6, 12, ... 1 h:
Karpenter caches an insufficient-capacity error for 3 minutes and never grows it); strikes reset after a success or a
quiet ``FORGET_AFTER_SECONDS``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

PARTITION = "backoff"
BASE_SECONDS = 180.0
MAX_SECONDS = 3600.0
FORGET_AFTER_SECONDS = 6 * 3600.0


class DynamoBackoff:
    def __init__(self, client: Any, table_name: str, now: Callable[[], float] = time.time) -> None:
        if not table_name:
            raise ValueError("DynamoBackoff: table_name is empty (set TABLE_NAME)")
        self._client = client
        self._table = table_name
        self._now = now

    def _key(self, group: str) -> dict[str, dict[str, str]]:
        return {"pk": {"S": PARTITION}, "sk": {"S": group}}

    def mark_unavailable(self, group: str, reason: str) -> float:
        now = self._now()
        item = self._client.get_item(TableName=self._table, Key=self._key(group), ConsistentRead=True).get("Item")
        strikes = 0
        if item and now - float(item.get("lastFailure", {}).get("N", "0")) < FORGET_AFTER_SECONDS:
            strikes = int(item.get("strikes", {}).get("N", "0"))
        strikes += 1
        seconds = min(MAX_SECONDS, BASE_SECONDS * 2 ** (strikes - 1))
        self._client.put_item(
            TableName=self._table,
            Item={
                **self._key(group),
                "until": {"N": repr(round(now + seconds, 3))},
                "strikes": {"N": str(strikes)},
                "reason": {"S": reason[:500]},
                "lastFailure": {"N": repr(round(now, 3))},
                "expiresAt": {"N": str(int(now + FORGET_AFTER_SECONDS))},
            },
        )
        return seconds

    def unavailable_groups(self) -> dict[str, str]:
        now = self._now()
        out: dict[str, str] = {}
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :p",
            "ExpressionAttributeValues": {":p": {"S": PARTITION}},
            "ConsistentRead": True,
        }
        while True:
            page = self._client.query(**kwargs)
            for item in page.get("Items", []):
                until = float(item.get("until", {}).get("N", "0"))
                if until > now:
                    out[item["sk"]["S"]] = (
                        f"{item.get('reason', {}).get('S', 'backoff')} (launches paused {int(until - now)}s more)"
                    )
            if "LastEvaluatedKey" not in page:
                return out
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def clear(self, group: str) -> None:
        self._client.delete_item(TableName=self._table, Key=self._key(group))


SCALER_PARTITION = "podscaler"


class DynamoScalerStates:
    """Pod-scaler state per ScaledObject (``pk = "podscaler"``, ``sk = <namespace>/<name>``, ``state`` as JSON)."""

    def __init__(self, client: Any, table_name: str) -> None:
        if not table_name:
            raise ValueError("DynamoScalerStates: table_name is empty (set TABLE_NAME)")
        self._client = client
        self._table = table_name

    def get(self, key: str) -> dict[str, Any] | None:
        item = self._client.get_item(
            TableName=self._table, Key={"pk": {"S": SCALER_PARTITION}, "sk": {"S": key}}, ConsistentRead=True
        ).get("Item")
        if not item or "state" not in item:
            return None
        value: dict[str, Any] = json.loads(item["state"]["S"])
        return value

    def put(self, key: str, state: dict[str, Any]) -> None:
        self._client.put_item(
            TableName=self._table,
            Item={"pk": {"S": SCALER_PARTITION}, "sk": {"S": key}, "state": {"S": json.dumps(state)}},
        )
