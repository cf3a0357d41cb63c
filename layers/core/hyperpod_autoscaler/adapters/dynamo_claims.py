"""In-flight node claims on the stack's DynamoDB table, one attempt at a time.

A claim (the decision: these pods on this group) is recorded BEFORE its provision execution starts, together with the
attempt it is on and that attempt's execution name. Item: ``pk = "claim"``, ``sk = <claim id>``, with the claim's fields,
``attempt``, ``executionName``, ``recordedAt``, ``closedAt`` (set when the workflow ended), ``dropped`` (launches the
attempt gave up: the claim counts that many nodes less) and the TTL attribute.

Every write is conditional, so concurrent deciders agree on one attempt: the first attempt is written only when no live
record exists (``attribute_not_exists`` or expired), the next attempt only over the exact attempt the decider saw end
(``executionName = <that attempt's name>``); a decider whose write fails reads the winner's record and starts that name,
which is one execution. Reconcile counts a recorded claim as in flight only while its execution runs, or for a short
grace period after recording while it has not closed (a decider that died between the record and the start); the TTL
only garbage-collects.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from ..domain.plan import GangRef, InflightClaim
from ..ports.claims import RecordedClaim
from .dynamo_table import DynamoTable, conditional_failed

PARTITION = "claim"


class DynamoClaimStore(DynamoTable):
    def _key(self, claim_id: str) -> dict[str, dict[str, str]]:
        return self._item_key(PARTITION, claim_id)

    def record_claim(
        self,
        claim: InflightClaim,
        execution_name: str,
        ttl_seconds: int,
        *,
        attempt: int = 1,
        replacing: str | None = None,
    ) -> bool:
        """Record ``attempt`` of the claim under ``execution_name``. ``replacing`` is the execution name of the attempt
        the caller saw end (None: the caller saw no record). False when the condition failed: another decider recorded
        an attempt first (read it with ``get`` and start that one)."""
        now = self._now()
        item = {
            **self._key(claim.claim_id),
            "executionName": {"S": execution_name},
            "attempt": {"N": str(attempt)},
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
                        **({"gang": claim.gang.to_dict()} if claim.gang is not None else {}),
                    }
                )
            },
        }
        if replacing is None:
            condition = "attribute_not_exists(#pk) OR #ttl < :now"
            names = {"#pk": self._pk, "#ttl": self._ttl}
            values: dict[str, Any] = {":now": {"N": str(int(now))}}
        else:
            condition = "executionName = :previous"
            names = {}
            values = {":previous": {"S": replacing}}
        try:
            self._client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression=condition,
                **({"ExpressionAttributeNames": names} if names else {}),
                ExpressionAttributeValues=values,
            )
            return True
        except ClientError as exc:
            if conditional_failed(exc):
                return False
            raise

    def _parse(self, item: dict[str, Any]) -> RecordedClaim | None:
        try:
            body = json.loads(item["claim"]["S"])
            dropped = int(item.get("dropped", {}).get("N", "0"))
            claim = InflightClaim(
                claim_id=item[self._sk]["S"],
                nodepool=str(body["nodePool"]),
                instance_group=str(body["instanceGroup"]),
                instance_type=str(body["instanceType"]),
                zone=str(body["zone"]),
                count=max(0, int(body["count"]) - dropped),
                dropped=dropped,
                pods=tuple(str(p) for p in body.get("pods", [])),
                gang=GangRef.from_dict(body.get("gang")),
            )
            closed = item.get("closedAt", {}).get("N")
            return RecordedClaim(
                claim,
                item["executionName"]["S"],
                float(item["recordedAt"]["N"]),
                int(item.get("attempt", {}).get("N", "1")),
                float(closed) if closed is not None else None,
            )
        except (KeyError, TypeError, ValueError):
            return None  # a damaged record must not stop decisions; its TTL removes it

    def get(self, claim_id: str) -> RecordedClaim | None:
        """The claim's current attempt (None when there is none, or it expired)."""
        item = self._client.get_item(TableName=self._table, Key=self._key(claim_id), ConsistentRead=True).get("Item")
        if not item or float(item.get(self._ttl, {}).get("N", "0")) < self._now():
            return None
        return self._parse(item)

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
                rec = self._parse(item)
                if rec is not None:
                    out.append(rec)
            if "LastEvaluatedKey" not in page:
                return out
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def drop(self, claim_id: str, attempt_token: str, dropped: int) -> None:
        """Record that the attempt named with ``attempt_token`` dropped ``dropped`` launches (a total: a retry writes
        the same); the claim then counts that many nodes less. Another attempt's record is left alone."""
        self._set_if(
            claim_id,
            "SET dropped = :d",
            "contains(executionName, :token)",
            {":d": {"N": str(dropped)}, ":token": {"S": attempt_token}},
        )

    def forget(self, claim_id: str) -> None:
        """The claim's workflow ended (the provision workflow's last step calls it): mark the attempt closed. The record
        stays until its TTL so that the next decision for the same pods knows which attempt comes next; a claim that
        was never recorded (a drill's, a replacement's) is left alone."""
        self._set_if(
            claim_id,
            "SET closedAt = :now",
            "attribute_exists(#pk)",
            {":now": {"N": repr(round(self._now(), 3))}},
            {"#pk": self._pk},
        )

    def _set_if(
        self,
        claim_id: str,
        update: str,
        condition: str,
        values: dict[str, Any],
        names: dict[str, str] | None = None,
    ) -> None:
        """One conditional update of a claim's record; a failed condition is no error (nothing to change)."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._key(claim_id),
                UpdateExpression=update,
                ConditionExpression=condition,
                **({"ExpressionAttributeNames": names} if names else {}),
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if not conditional_failed(exc):
                raise
