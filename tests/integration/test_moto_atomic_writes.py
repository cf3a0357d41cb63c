"""The test kit's moto server gives DynamoDB's guarantee that the product relies on for its lease, claims and backoff:
a conditional write is atomic. moto checks the condition and then writes with no lock between, so two concurrent
``attribute_not_exists`` puts of one item could both succeed (the whole-system soak, seed 20013: two overlapping
reconcile passes both recorded attempt 1 of one claim and each launched a node for the same pod)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hpa_testkit.aws import AwsEmulator

KEYS = 5
WRITERS = 4


@pytest.fixture
def slow_conditions(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Widen the window between moto reading the item and writing it: each condition takes 50 ms to build."""
    from moto.dynamodb.models import table

    build = table.get_filter_expression

    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.05)
        return build(*args, **kwargs)

    monkeypatch.setattr(table, "get_filter_expression", slow)
    yield


def test_one_of_many_concurrent_conditional_puts_of_an_item_wins(slow_conditions: None) -> None:
    with AwsEmulator() as aws:
        ddb = aws.client("dynamodb")
        ddb.create_table(
            TableName="t",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        )
        wins: dict[int, int] = {}
        lock = threading.Lock()

        def writer(n: int) -> None:
            client = aws.client("dynamodb")
            for i in range(KEYS):
                try:
                    client.put_item(
                        TableName="t",
                        Item={"pk": {"S": "claim"}, "sk": {"S": f"k{i}"}, "writer": {"S": str(n)}},
                        ConditionExpression="attribute_not_exists(#pk)",
                        ExpressionAttributeNames={"#pk": "pk"},
                    )
                except ClientError as exc:
                    assert exc.response["Error"]["Code"] == "ConditionalCheckFailedException"
                    continue
                with lock:
                    wins[i] = wins.get(i, 0) + 1

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(wins) == list(range(KEYS))
    assert {i: n for i, n in wins.items() if n > 1} == {}, "an item written twice under attribute_not_exists"
