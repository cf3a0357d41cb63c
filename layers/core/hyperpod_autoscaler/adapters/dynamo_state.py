"""Per-group launch backoff on the stack's DynamoDB table (``ports.state.BackoffPort``).

Item: ``pk = "backoff"``, ``sk = <group>``, ``until`` (epoch seconds), ``strikes``, ``reason``, ``lastFailure``,
``cause`` (what failed: a claim id), ``seconds`` (the last strike's length). A failure
makes the group unavailable for ``BASE_SECONDS * 2^(strikes-1)`` capped at ``MAX_SECONDS`` (3 min, 6, 12, ... 1 h:
Karpenter caches an insufficient-capacity error for 3 minutes and never grows it); strikes reset after a success or a
quiet ``FORGET_AFTER_SECONDS``.

Writes are conditional: a failure is written over exactly the item it read (two failures at once are two strikes, not
one lost), and a success clears the backoff only when its own attempt started after the failure that set it (an older
launch that happens to come up says nothing about the capacity that failed since).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from botocore.exceptions import ClientError

from ..ports.hyperpod import ScaleIntent
from .dynamo_table import DynamoTable, conditional_failed

log = logging.getLogger(__name__)

PARTITION = "backoff"
WRITE_ATTEMPTS = 5
BASE_SECONDS = 180.0
MAX_SECONDS = 3600.0
FORGET_AFTER_SECONDS = 6 * 3600.0


class DynamoBackoff(DynamoTable):
    def _key(self, group: str) -> dict[str, dict[str, str]]:
        return self._item_key(PARTITION, group)

    def mark_unavailable(self, group: str, reason: str, cause: str = "") -> float:
        for _ in range(WRITE_ATTEMPTS):
            now = self._now()
            item = self._client.get_item(TableName=self._table, Key=self._key(group), ConsistentRead=True).get("Item")
            if cause and item and item.get("cause", {}).get("S") == cause and "seconds" in item:
                return float(item["seconds"]["N"])  # the same failure marked again (its task retried): one strike
            strikes = 0
            if item and now - float(item.get("lastFailure", {}).get("N", "0")) < FORGET_AFTER_SECONDS:
                strikes = int(item.get("strikes", {}).get("N", "0"))
            strikes += 1
            seconds = min(MAX_SECONDS, BASE_SECONDS * 2 ** (strikes - 1))
            if item is None:
                condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
            else:  # over exactly what we read (a concurrent failure or clear makes us read again)
                condition = {
                    "ConditionExpression": "lastFailure = :seen AND strikes = :strikes",
                    "ExpressionAttributeValues": {
                        ":seen": item.get("lastFailure", {"N": "0"}),
                        ":strikes": item.get("strikes", {"N": "0"}),
                    },
                }
            try:
                self._client.put_item(
                    TableName=self._table,
                    Item={
                        **self._key(group),
                        "until": {"N": repr(round(now + seconds, 3))},
                        "strikes": {"N": str(strikes)},
                        "reason": {"S": reason[:500]},
                        "lastFailure": {"N": repr(round(now, 3))},
                        "cause": {"S": cause[:200]},
                        "seconds": {"N": repr(seconds)},
                        "expiresAt": {"N": str(int(now + FORGET_AFTER_SECONDS))},
                    },
                    **condition,
                )
            except ClientError as exc:
                if conditional_failed(exc):
                    continue
                raise
            return seconds
        raise RuntimeError(f"backoff for {group}: the item kept changing under {WRITE_ATTEMPTS} writes")

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

    def clear(self, group: str, since: float | None = None) -> bool:
        """A launch into ``group`` that started at ``since`` succeeded: reset the group's backoff, unless a failure was
        recorded after that launch started (the newer failure stands). Without ``since``, unconditionally (tools).
        True when the backoff is gone."""
        kwargs: dict[str, Any] = {"Key": self._key(group)}
        if since is not None:
            kwargs["ConditionExpression"] = "attribute_not_exists(pk) OR lastFailure < :since"
            kwargs["ExpressionAttributeValues"] = {":since": {"N": repr(round(since, 3))}}
        return self._write_if(self._client.delete_item, **kwargs)


SCALER_PARTITION = "podscaler"


class StateChanged(Exception):
    """A ScaledObject's state was written by someone else since this invocation read it: nothing was written."""


class DynamoScalerStates(DynamoTable):
    """Pod-scaler state per ScaledObject (``pk = "podscaler"``, ``sk = <namespace>/<name>``, ``state`` as JSON, and a
    ``version`` that ``put`` checks against the one ``get`` read: a concurrent writer's state is never overwritten)."""

    def __init__(self, client: Any, table_name: str) -> None:
        super().__init__(client, table_name)
        self._versions: dict[str, int] = {}

    def get(self, key: str) -> dict[str, Any] | None:
        item = self._client.get_item(
            TableName=self._table, Key=self._item_key(SCALER_PARTITION, key), ConsistentRead=True
        ).get("Item")
        self._versions[key] = int(item.get("version", {}).get("N", "0")) if item else 0
        if not item or "state" not in item:
            return None
        value: dict[str, Any] = json.loads(item["state"]["S"])
        return value

    def put(self, key: str, state: dict[str, Any]) -> None:
        """Write over the version ``get`` read (raises StateChanged when it moved on). A key never read is written
        only if no versioned state exists yet."""
        version = self._versions.get(key, 0)
        condition: dict[str, Any] = (
            {"ConditionExpression": "attribute_not_exists(version)"}
            if version == 0
            else {"ConditionExpression": "version = :v", "ExpressionAttributeValues": {":v": {"N": str(version)}}}
        )
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": SCALER_PARTITION},
                    "sk": {"S": key},
                    "state": {"S": json.dumps(state)},
                    "version": {"N": str(version + 1)},
                },
                **condition,
            )
        except ClientError as exc:
            if conditional_failed(exc):
                self._versions.pop(key, None)
                raise StateChanged(f"pod-scaler state {key} was written concurrently; not overwritten") from None
            raise
        self._versions[key] = version + 1


INTENT_PARTITION = "scaleintent"
INTENT_TTL_SECONDS = 24 * 3600.0
"""An intent matters while its task may still be retried (minutes); the table's TTL removes it a day later."""


class DynamoScaleIntents(DynamoTable):
    """The UpdateCluster writes scale tasks are about to make (``ports.hyperpod.ScaleIntents``): ``pk = "scaleintent"``,
    ``sk = <attempt's client token>``, ``group``, ``base``, ``target``, ``at``. A retry of the attempt overwrites its
    own record when it writes again (the base it read then is the one that counts)."""

    def _key(self, token: str) -> dict[str, dict[str, str]]:
        return self._item_key(INTENT_PARTITION, token)

    def recorded(self, token: str) -> ScaleIntent | None:
        item = self._client.get_item(TableName=self._table, Key=self._key(token), ConsistentRead=True).get("Item")
        if not item:
            return None
        try:
            return ScaleIntent(
                group=item["group"]["S"],
                base=int(item["base"]["N"]),
                target=int(item["target"]["N"]),
                at=float(item["at"]["N"]),
            )
        except (KeyError, ValueError) as exc:  # a malformed record: no proof of a write, so the write is made
            log.warning("scale intent %s is malformed (%s); ignored", token, exc)
            return None

    def record(self, token: str, intent: ScaleIntent) -> None:
        now = self._now()
        self._client.put_item(
            TableName=self._table,
            Item={
                **self._key(token),
                "group": {"S": intent.group},
                "base": {"N": str(intent.base)},
                "target": {"N": str(intent.target)},
                "at": {"N": repr(round(now, 3))},
                self._ttl: {"N": str(int(now + INTENT_TTL_SECONDS))},
            },
        )

    def forget(self, token: str) -> None:
        self._client.delete_item(TableName=self._table, Key=self._key(token))
