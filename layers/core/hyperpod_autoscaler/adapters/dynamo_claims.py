"""In-flight node claims on the stack's DynamoDB table.

A claim is recorded (conditional put: first writer wins) BEFORE its provision execution starts, under the execution's
deterministic name. Item: ``pk = "claim"``, ``sk = <claim id>``, with the claim's fields, ``executionName``,
``recordedAt`` and the TTL attribute. Reconcile counts a recorded claim as in flight only while its execution runs, or
for a short grace period after recording (a decider that died between the record and the start); the TTL only
garbage-collects.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from ..domain.plan import InflightClaim

PARTITION = "claim"


@dataclass(frozen=True)
class RecordedClaim:
    claim: InflightClaim
    execution_name: str
    recorded_at: float


class DynamoClaimStore:
    def __init__(
        self,
        client: Any,
        table_name: str,
        *,
        key_attr: str = "pk",
        sort_key_attr: str = "sk",
        ttl_attr: str = "expiresAt",
        now: Callable[[], float] = time.time,
    ) -> None:
        if not table_name:
            raise ValueError("DynamoClaimStore: table_name is empty (set TABLE_NAME)")
        self._client = client
        self._table = table_name
        self._pk = key_attr
        self._sk = sort_key_attr
        self._ttl = ttl_attr
        self._now = now

    def record_claim(self, claim: InflightClaim, execution_name: str, ttl_seconds: int) -> bool:
        now = self._now()
        item = {
            self._pk: {"S": PARTITION},
            self._sk: {"S": claim.claim_id},
            "executionName": {"S": execution_name},
            "recordedAt": {"N": repr(round(now, 3))},
            self._ttl: {"N": str(int(now + ttl_seconds))},
            "claim": {
                "S": json.dumps(
                    {
                        "nodePool": claim.nodepool,
                        "instanceGroup": claim.instance_group,
                        "instanceType": claim.instance_type,
                        "zone": claim.zone,
                        "count": claim.count,
                        "pods": list(claim.pods),
                    }
                )
            },
        }
        try:
            self._client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(#pk)",
                ExpressionAttributeNames={"#pk": self._pk},
            )
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise

    def recorded_claims(self) -> list[RecordedClaim]:
        """Every claim not yet garbage-collected (expired items are filtered here: TTL deletion is lazy)."""
        now = self._now()
        out: list[RecordedClaim] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "#pk = :p",
            "ExpressionAttributeNames": {"#pk": self._pk},
            "ExpressionAttributeValues": {":p": {"S": PARTITION}},
            "ConsistentRead": True,
        }
        while True:
            page = self._client.query(**kwargs)
            for item in page.get("Items", []):
                if float(item.get(self._ttl, {}).get("N", "0")) < now:
                    continue
                try:
                    body = json.loads(item["claim"]["S"])
                    claim = InflightClaim(
                        claim_id=item[self._sk]["S"],
                        nodepool=str(body["nodePool"]),
                        instance_group=str(body["instanceGroup"]),
                        instance_type=str(body["instanceType"]),
                        zone=str(body["zone"]),
                        count=int(body["count"]),
                        pods=tuple(str(p) for p in body.get("pods", [])),
                    )
                    out.append(RecordedClaim(claim, item["executionName"]["S"], float(item["recordedAt"]["N"])))
                except (KeyError, TypeError, ValueError):
                    continue  # a damaged record must not stop decisions; its TTL removes it
            if "LastEvaluatedKey" not in page:
                return out
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def forget(self, claim_id: str) -> None:
        """Remove a claim once its execution has ended (the provision workflow's last step calls it)."""
        self._client.delete_item(TableName=self._table, Key={self._pk: {"S": PARTITION}, self._sk: {"S": claim_id}})
