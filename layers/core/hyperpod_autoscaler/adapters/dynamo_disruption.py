"""The disruption function's memory on the state table.

* ``pk = "disruption"``, ``sk = "activity"``: per node, a digest of its pods and when that digest last changed
  (consolidateAfter counts from there). One item for the cluster (1,000 nodes is ~80 KB, under DynamoDB's 400 KB).
* ``pk = "disruption"``, ``sk = "replacement#<id>"``: a decision whose replacement node is being provisioned; the old
  nodes are deprovisioned once the replacement is Ready (the next pass), or released if it never came up.
"""

from __future__ import annotations

import json
from typing import Any

PARTITION = "disruption"


class DynamoDisruptionState:
    def __init__(self, client: Any, table_name: str) -> None:
        if not table_name:
            raise ValueError("DynamoDisruptionState: table_name is empty (set TABLE_NAME)")
        self._client = client
        self._table = table_name

    def _get(self, sk: str) -> dict[str, Any] | None:
        item = self._client.get_item(
            TableName=self._table, Key={"pk": {"S": PARTITION}, "sk": {"S": sk}}, ConsistentRead=True
        ).get("Item")
        if not item or "data" not in item:
            return None
        value = json.loads(item["data"]["S"])
        return value if isinstance(value, dict) else None

    def _put(self, sk: str, data: dict[str, Any]) -> None:
        self._client.put_item(
            TableName=self._table, Item={"pk": {"S": PARTITION}, "sk": {"S": sk}, "data": {"S": json.dumps(data)}}
        )

    def activity(self) -> dict[str, dict[str, Any]]:
        return self._get("activity") or {}

    def save_activity(self, nodes: dict[str, dict[str, Any]]) -> None:
        self._put("activity", nodes)

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

    def put_replacement(self, decision_id: str, record: dict[str, Any]) -> None:
        self._put(f"replacement#{decision_id}", record)

    def delete_replacement(self, decision_id: str) -> None:
        self._client.delete_item(
            TableName=self._table, Key={"pk": {"S": PARTITION}, "sk": {"S": f"replacement#{decision_id}"}}
        )
