"""The reconcile lease on the stack's DynamoDB table, by conditional writes (see ``ports.lease`` for the protocol).

One item per lease: ``pk = "lease#<name>"``, ``sk = "lease"``, with ``holder``, ``leaseUntil`` (epoch seconds, the lease's
real expiry, compared in every condition) and ``requestedAt`` (the last pass request). The table's TTL attribute is set a
little after ``leaseUntil`` only to garbage-collect abandoned items: DynamoDB deletes expired items lazily (hours, even days),
so correctness never depends on it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from .dynamo_table import DynamoTable, conditional_failed

SORT_KEY = "lease"
#: How long after expiry the TTL attribute lets DynamoDB drop the item.
GARBAGE_AFTER_SECONDS = 3600


def _num(value: float) -> dict[str, str]:
    return {"N": str(Decimal(repr(round(value, 6))))}


class DynamoLease(DynamoTable):
    """LeasePort on DynamoDB. ``client`` is a boto3 ``dynamodb`` client; ``now`` returns epoch seconds (the simulated clock
    in the sandbox)."""

    def _key(self, name: str) -> dict[str, dict[str, str]]:
        return self._item_key(f"lease#{name}", SORT_KEY)

    def acquire(self, name: str, holder: str, ttl_seconds: float) -> bool:
        now = self._now()
        item = {
            **self._key(name),
            "holder": {"S": holder},
            "leaseUntil": _num(now + ttl_seconds),
            "acquiredAt": _num(now),
            self._ttl: {"N": str(int(now + ttl_seconds + GARBAGE_AFTER_SECONDS))},
        }
        return self._write_if(
            self._client.put_item,
            Item=item,
            ConditionExpression="attribute_not_exists(#pk) OR leaseUntil < :now OR holder = :me",
            ExpressionAttributeNames={"#pk": self._pk},
            ExpressionAttributeValues={":now": _num(now), ":me": {"S": holder}},
        )

    def renew(self, name: str, holder: str, ttl_seconds: float) -> bool:
        now = self._now()
        return self._write_if(
            self._client.update_item,
            Key=self._key(name),
            UpdateExpression="SET leaseUntil = :until, #ttl = :ttl",
            ConditionExpression="holder = :me AND leaseUntil >= :now",
            ExpressionAttributeNames={"#ttl": self._ttl},
            ExpressionAttributeValues={
                ":until": _num(now + ttl_seconds),
                ":ttl": {"N": str(int(now + ttl_seconds + GARBAGE_AFTER_SECONDS))},
                ":me": {"S": holder},
                ":now": _num(now),
            },
        )

    def request_pass(self, name: str) -> bool:
        now = self._now()
        return self._write_if(
            self._client.update_item,
            Key=self._key(name),
            UpdateExpression="SET requestedAt = :now",
            ConditionExpression="attribute_exists(#pk) AND leaseUntil >= :now",
            ExpressionAttributeNames={"#pk": self._pk},
            ExpressionAttributeValues={":now": _num(now)},
        )

    def pass_requested(self, name: str, since: float) -> bool:
        item = self._item(name)
        return bool(item and "requestedAt" in item and float(item["requestedAt"]["N"]) > since)

    def release(self, name: str, holder: str, since: float) -> bool:
        try:
            self._client.delete_item(
                TableName=self._table,
                Key=self._key(name),
                ConditionExpression="holder = :me AND (attribute_not_exists(requestedAt) OR requestedAt <= :since)",
                ExpressionAttributeValues={":me": {"S": holder}, ":since": _num(since)},
            )
        except ClientError as exc:
            if not conditional_failed(exc):
                raise
            current = self.holder(name)
            # Still ours: the condition failed on requestedAt, a pass is owed. Not ours: nothing left to release.
            return current != holder
        return True

    def force_release(self, name: str, holder: str) -> None:
        try:
            self._client.delete_item(
                TableName=self._table,
                Key=self._key(name),
                ConditionExpression="holder = :me",
                ExpressionAttributeValues={":me": {"S": holder}},
            )
        except ClientError as exc:
            if not conditional_failed(exc):
                raise

    def holder(self, name: str) -> str | None:
        """The current holder (None when free or expired); for status and tests."""
        item = self._item(name)
        if not item or float(item["leaseUntil"]["N"]) < self._now():
            return None
        return str(item["holder"]["S"])

    def _item(self, name: str) -> dict[str, Any] | None:
        answer = self._client.get_item(TableName=self._table, Key=self._key(name), ConsistentRead=True)
        item: dict[str, Any] | None = answer.get("Item")
        return item
