"""The workflow port on boto3's ``stepfunctions`` client: executions named after what they are for.

Starting a name that exists returns that execution (``started=False``, with its status) instead of starting another:
Standard workflows keep names unique for 90 days, *closed executions included*, so the services name each attempt
(``ports.workflow``) and read the status to tell "already running" from "already over".
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from ..ports.workflow import Execution, StartResult

NAME_MAX = 80


class StepFunctionsWorkflows:
    def __init__(self, client: Any) -> None:
        self.sfn = client

    def start(self, state_machine_arn: str, name: str, input: dict[str, Any]) -> StartResult:
        name = name[:NAME_MAX]
        try:
            resp = self.sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=json.dumps(input))
            return StartResult(resp["executionArn"], started=True)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
                raise
        arn = state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"
        existing = self.describe(state_machine_arn, name)
        return StartResult(arn, started=False, status=existing.status if existing else None)

    def running(self, state_machine_arn: str) -> list[Execution]:
        out: list[Execution] = []
        kwargs: dict[str, Any] = {"stateMachineArn": state_machine_arn, "statusFilter": "RUNNING", "maxResults": 1000}
        while True:
            page = self.sfn.list_executions(**kwargs)
            for item in page.get("executions", []):
                desc = self.sfn.describe_execution(executionArn=item["executionArn"])
                if desc.get("status") != "RUNNING":
                    continue
                try:
                    data = json.loads(desc.get("input") or "{}")
                except ValueError:
                    data = {}
                started = desc.get("startDate")
                out.append(
                    Execution(
                        arn=item["executionArn"],
                        name=item["name"],
                        status="RUNNING",
                        input=data if isinstance(data, dict) else {},
                        started_at=started.timestamp() if hasattr(started, "timestamp") else 0.0,
                    )
                )
            token = page.get("nextToken")
            if not token:
                return out
            kwargs["nextToken"] = token

    def describe(self, state_machine_arn: str, name: str) -> Execution | None:
        arn = state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{name[:NAME_MAX]}"
        try:
            desc = self.sfn.describe_execution(executionArn=arn)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("ExecutionDoesNotExist", "ResourceNotFound"):
                return None
            raise

        def parse(raw: Any) -> dict[str, Any] | None:
            try:
                value = json.loads(raw) if raw else None
            except ValueError:
                return None
            return value if isinstance(value, dict) else None

        started = desc.get("startDate")
        return Execution(
            arn=arn,
            name=desc.get("name", name),
            status=desc.get("status", "RUNNING"),
            input=parse(desc.get("input")) or {},
            started_at=started.timestamp() if hasattr(started, "timestamp") else 0.0,
            output=parse(desc.get("output")),
        )
