"""The disruption function's memory on the state table.

* ``pk = "disruption"``, ``sk = "activity"``: per node, a digest of its pods and when that digest last changed
  (consolidateAfter counts from there). One item for the cluster (1,000 nodes is ~80 KB, under DynamoDB's 400 KB), with a
  ``version`` that every write checks (optimistic concurrency: a writer that read an older version writes nothing).
* ``pk = "disruption"``, ``sk = "decision#<id>"``: the attempt a decision is on (``services.naming``): attempt number,
  token, the name and machine of the attempt's first execution, when it was recorded. Written under a condition (over no
  record, or over exactly the attempt the decider saw end), so two deciders of one decision start one execution and the
  next decision after that execution closed gets a new name. Garbage-collected by TTL.
* ``pk = "disruption"``, ``sk = "replacement#<id>"``: a decision whose replacement node is being provisioned; the old
  nodes are deprovisioned once the replacement is Ready (the next pass), or released if it never came up. Created only
  when absent; moved on and deleted only for the same attempt (``provisionName``).
"""

from __future__ import annotations

import json
from typing import Any

from .dynamo_table import DynamoTable

PARTITION = "disruption"
DECISION_TTL_SECONDS = 7 * 86400


class DynamoDisruptionState(DynamoTable):
    def _key(self, sk: str) -> dict[str, dict[str, str]]:
        return self._item_key(PARTITION, sk)

    def _item(self, sk: str) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self._client.get_item(
            TableName=self._table, Key=self._key(sk), ConsistentRead=True
        ).get("Item")
        return item

    @staticmethod
    def _data(item: dict[str, Any] | None) -> dict[str, Any] | None:
        if not item or "data" not in item:
            return None
        value = json.loads(item["data"]["S"])
        return value if isinstance(value, dict) else None

    def _put(self, item: dict[str, Any], condition: str, names: dict[str, str], values: dict[str, Any]) -> bool:
        kwargs: dict[str, Any] = {"Item": item, "ConditionExpression": condition}
        if names:
            kwargs["ExpressionAttributeNames"] = names
        if values:
            kwargs["ExpressionAttributeValues"] = values
        return self._write_if(self._client.put_item, **kwargs)

    # --- activity ------------------------------------------------------------------------------------------------------

    def activity(self) -> dict[str, dict[str, Any]]:
        return self.activity_versioned()[0]

    def activity_versioned(self) -> tuple[dict[str, dict[str, Any]], int]:
        """The activity and its version (0: never written, or written before versions)."""
        item = self._item("activity")
        version = int(item.get("version", {}).get("N", "0")) if item else 0
        return self._data(item) or {}, version

    def save_activity(self, nodes: dict[str, dict[str, Any]], version: int | None = None) -> bool:
        """Write over ``version`` (what the caller read); False when someone wrote meanwhile (nothing written: the next
        pass starts from theirs). Without a version, an unconditional write (tools)."""
        item = {**self._key("activity"), "data": {"S": json.dumps(nodes)}, "version": {"N": str((version or 0) + 1)}}
        if version is None:
            self._client.put_item(TableName=self._table, Item=item)
            return True
        if version == 0:
            return self._put(item, "attribute_not_exists(version)", {}, {})
        return self._put(item, "version = :v", {}, {":v": {"N": str(version)}})

    # --- decision attempts ---------------------------------------------------------------------------------------------

    def decision(self, decision_id: str) -> dict[str, Any] | None:
        """The attempt recorded for a decision: ``{name, machine, attempt, token, recordedAt}`` (None: none, or expired)."""
        item = self._item(f"decision#{decision_id}")
        if not item or float(item.get("expiresAt", {}).get("N", "0")) < self._now():
            return None
        return self._data(item)

    def record_decision(self, decision_id: str, record: dict[str, Any], replacing: str | None) -> bool:
        """Record a decision's attempt, over no (live) record (``replacing`` None) or over exactly the attempt whose first
        execution is named ``replacing``. False: another decider recorded one first."""
        now = self._now()
        item = {
            **self._key(f"decision#{decision_id}"),
            "data": {"S": json.dumps(record)},
            "name": {"S": str(record["name"])},
            "expiresAt": {"N": str(int(now + DECISION_TTL_SECONDS))},
        }
        if replacing is None:
            return self._put(item, "attribute_not_exists(pk) OR expiresAt < :now", {}, {":now": {"N": str(int(now))}})
        return self._put(item, "#n = :previous", {"#n": "name"}, {":previous": {"S": replacing}})

    # --- replacements --------------------------------------------------------------------------------------------------

    def replacements(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": {"S": PARTITION}, ":prefix": {"S": "replacement#"}},
            "ConsistentRead": True,
        }
        while True:
            page = self._client.query(**kwargs)
            for item in page.get("Items", []):
                out[item["sk"]["S"].removeprefix("replacement#")] = json.loads(item["data"]["S"])
            if "LastEvaluatedKey" not in page:
                return out
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def put_replacement(self, decision_id: str, record: dict[str, Any]) -> bool:
        """Record a new replacement (only if none is recorded for the decision); False when one is."""
        item = {
            **self._key(f"replacement#{decision_id}"),
            "data": {"S": json.dumps(record)},
            "provisionName": {"S": str(record.get("provisionName") or "")},
        }
        return self._put(item, "attribute_not_exists(pk)", {}, {})

    def start_draining(self, decision_id: str, record: dict[str, Any]) -> bool:
        """Move a replacement to its draining phase, once: only the same attempt (``provisionName``), not yet draining."""
        item = {
            **self._key(f"replacement#{decision_id}"),
            "data": {"S": json.dumps(record)},
            "provisionName": {"S": str(record.get("provisionName") or "")},
            "phase": {"S": "draining"},
        }
        return self._put(
            item,
            "attribute_exists(pk) AND (provisionName = :pn OR attribute_not_exists(provisionName)) "
            "AND (attribute_not_exists(phase) OR phase <> :draining)",
            {},
            {":pn": {"S": str(record.get("provisionName") or "")}, ":draining": {"S": "draining"}},
        )

    def delete_replacement(self, decision_id: str, provision_name: str | None = None) -> bool:
        """Forget a replacement; with ``provision_name``, only that attempt's record (a newer one is left alone)."""
        kwargs: dict[str, Any] = {"Key": self._key(f"replacement#{decision_id}")}
        if provision_name is not None:
            kwargs["ConditionExpression"] = "provisionName = :pn OR attribute_not_exists(provisionName)"
            kwargs["ExpressionAttributeValues"] = {":pn": {"S": provision_name}}
        return self._write_if(self._client.delete_item, **kwargs)
