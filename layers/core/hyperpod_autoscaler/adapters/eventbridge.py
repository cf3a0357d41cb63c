"""Events the autoscaler puts on the default EventBridge bus for its own rules."""

from __future__ import annotations

import json
from typing import Any

from ..domain.triggers import OWN_SOURCE, REPLICAS_INCREASED


class EventBridgeAnnouncer:
    def __init__(self, client: Any, cluster: str) -> None:
        self._client = client
        self._cluster = cluster

    def replicas_increased(self, scaled_object: str, target: str, before: int, after: int) -> None:
        out = self._client.put_events(
            Entries=[
                {
                    "Source": OWN_SOURCE,
                    "DetailType": REPLICAS_INCREASED,
                    "Detail": json.dumps(
                        {
                            "cluster": self._cluster,
                            "scaledObject": scaled_object,
                            "target": target,
                            "from": before,
                            "to": after,
                        }
                    ),
                }
            ]
        )
        if out.get("FailedEntryCount"):
            raise RuntimeError(f"PutEvents refused the event: {out.get('Entries')}")
