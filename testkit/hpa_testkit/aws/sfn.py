"""Running the real ``statemachines/*.asl.json`` in moto's ASL interpreter, with Lambda tasks routed in-process.

moto's interpreter invokes Lambda through a boto3 client (it would need Docker); here that client is replaced by one that
calls the registered Python handler, and a handler's exception reaches Retry/Catch as AWS Lambda reports it: ``errorType``
= the exception's class name. Wait states and Retry intervals wait on the emulator's clock instead of really sleeping,
and every Retry interval is recorded (``retry_intervals``) so that tests can assert backoff, jitter and caps.

Lambda service faults (``lambda_error``): the next invocations of a task (by action) fail before the handler runs, the
way the Lambda service fails them (throttling, 5xx), and reach Retry/Catch as AWS names them: ``Lambda.<code>``
(``Lambda.TooManyRequestsException``, ``Lambda.ServiceException``...).
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

Handler = Callable[[Any, Any], Any]

_routes: dict[str, Handler] = {}
_clock: list[Any] = [None]
retry_intervals: list[tuple[str, float]] = []
waits: list[float] = []
lost_start_responses: dict[str, float] = {"rate": 0.0, "lost": 0}
"""A fault: StartExecution starts the execution, then its response is lost (a 500 to the caller) with probability
``rate``. The caller's retry, or the next decision, then meets ``ExecutionAlreadyExists`` for an execution it started."""
lambda_faults: list[list[Any]] = []
"""[code, remaining count, action or None]; ``lambda_error`` adds one, the ``aws`` fixture clears them."""
lambda_faults_served: list[tuple[str, str]] = []


TIMED_OUT = "Sandbox.Timedout"


def lambda_error(code: str = "TooManyRequestsException", count: int = 1, action: str | None = None) -> None:
    """Fail the next ``count`` invocations (of the task ``action`` when given) with the Lambda service error ``code``.
    ``TIMED_OUT`` (``Sandbox.Timedout``) runs the handler first, then reports the function timed out: its effects
    happened, its result is lost (Lambda kills a function at its timeout, possibly just after its last call)."""
    lambda_faults.append([code, count, action])


def _lambda_fault(event: Any) -> str | None:
    action = event.get("action") if isinstance(event, dict) else None
    for fault in lambda_faults:
        if fault[1] > 0 and fault[2] in (None, action):
            fault[1] -= 1
            lambda_faults_served.append((fault[0], str(action)))
            return str(fault[0])
    return None


_installed = threading.Lock()
_done = [False]


class _Context:
    def __init__(self, name: str) -> None:
        self.function_name = name
        self.aws_request_id = f"sfn-{uuid.uuid4()}"
        self.invoked_function_arn = name
        self.memory_limit_in_mb = 512

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def _name_of(function: str) -> str:
    """A function name from a name, a function ARN or a qualified ARN."""
    m = re.match(r"arn:aws[^:]*:lambda:[^:]*:\d+:function:([^:]+)", function)
    return m.group(1) if m else function


class _LambdaClient:
    def invoke(self, FunctionName: str, Payload: Any = None, **_: Any) -> dict[str, Any]:
        name = _name_of(FunctionName)
        handler = _routes.get(name)
        if handler is None:
            body = {"errorType": "ResourceNotFoundException", "errorMessage": f"no handler routed for {name}"}
            return {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": io.BytesIO(json.dumps(body).encode())}
        if isinstance(Payload, bytes | bytearray):
            event = json.loads(Payload or b"{}")
        elif isinstance(Payload, str):
            event = json.loads(Payload or "{}")
        else:
            event = Payload
        code = _lambda_fault(event)
        if code == TIMED_OUT:
            with contextlib.suppress(Exception):  # its outcome is lost either way
                handler(event, _Context(name))
            body = {"errorType": TIMED_OUT, "errorMessage": "Task timed out (injected after the handler ran)"}
            return {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": io.BytesIO(json.dumps(body).encode())}
        if code is not None:
            from botocore.exceptions import ClientError

            status = 429 if code == "TooManyRequestsException" else 500
            error = {
                "Error": {"Code": code, "Message": f"injected {code}"},
                "ResponseMetadata": {"HTTPStatusCode": status},
            }
            raise ClientError(error, "Invoke")  # type: ignore[arg-type]
        try:
            result = handler(event, _Context(name))
        except Exception as exc:  # Lambda's error envelope: errorType is the exception class name
            body = {
                "errorType": type(exc).__name__,
                "errorMessage": str(exc),
                "stackTrace": traceback.format_exception_only(type(exc), exc),
            }
            return {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": io.BytesIO(json.dumps(body).encode())}
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(result, default=str).encode())}


class _ClockTime:
    """Stands in for the ``time`` module inside moto's retrier: its sleep waits on our clock and is recorded."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        retry_intervals.append((threading.current_thread().name, float(seconds)))
        clock = _clock[0]
        if clock is None:
            time.sleep(seconds)
        else:
            clock.sleep(seconds)


def install(clock: Any) -> None:
    """Patch moto's interpreter (once per process) and point its waits at ``clock``."""
    _clock[0] = clock
    with _installed:
        if _done[0]:
            return
        from moto.core import config as moto_config
        from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
        from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
        from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function

        moto_config.default_user_config["stepfunctions"]["execute_state_machine"] = True
        original_client_for = lambda_eval_utils.boto_client_for

        def client_for(region: str, service: str, state_credentials: Any = None) -> Any:
            if service == "lambda":
                return _LambdaClient()
            return original_client_for(region=region, service=service, state_credentials=state_credentials)

        lambda_eval_utils.boto_client_for = client_for  # type: ignore[assignment]
        retrier_decl.time = _ClockTime()  # type: ignore[assignment]

        def wait_interval(self: Any, env: Any, wait_seconds: int) -> None:
            waits.append(float(wait_seconds))
            clock_now = _clock[0]
            if clock_now is None:
                time.sleep(wait_seconds)
            else:
                clock_now.sleep(wait_seconds)

        wait_function.WaitFunction._wait_interval = wait_interval  # type: ignore[method-assign]
        _patch_lambda_service_errors()
        _patch_turns()
        _patch_sfn_integration()
        _patch_lost_start_responses()
        _done[0] = True


def _turns() -> Any:
    """The clock when it gives turns (the deterministic sandbox, see ``hpa_testkit.sandbox.clock``), else None."""
    clock = _clock[0]
    return clock if getattr(clock, "turns", False) else None


class _InheritingThread(threading.Thread):
    """A thread an execution starts and waits for (a program's body, a Task state's evaluation): it works in the
    execution's turn, which its parent holds while it waits."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        clock = _turns()
        self._hpa_worker = clock.current_worker() if clock is not None else None

    def run(self) -> None:
        clock = _turns()
        if clock is not None:
            clock.adopt(self._hpa_worker)
        super().run()


class _ThreadingWithTurns:
    """The ``threading`` module as moto's program sees it, with ``Thread`` the inheriting one."""

    Thread = _InheritingThread

    def __getattr__(self, name: str) -> Any:
        return getattr(threading, name)


class _SyncPollTime:
    """The ``time`` module of moto's ``.sync`` integration: with turns, its poll for the child execution's end sleeps
    on the cluster clock (it gives the turn up, and sees the child's end at the next tick); else as it was."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        clock = _turns()
        if clock is None:
            time.sleep(seconds)
        else:
            clock.sleep(seconds)


def _patch_turns() -> None:
    """With a clock that gives turns, each execution is one worker: queued when StartExecution creates it (by the
    worker whose call created it), its threads taking one turn between them. Without one, moto's threads as they were."""
    from moto.stepfunctions.parser.asl.component.program import program
    from moto.stepfunctions.parser.asl.component.state.exec import execute_state
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_callback
    from moto.stepfunctions.parser.backend import execution_worker

    program.threading = _ThreadingWithTurns()  # type: ignore[assignment]
    execute_state.Thread = _InheritingThread  # type: ignore[misc]
    state_task_service_callback.time = _SyncPollTime()  # type: ignore[assignment]
    original_start = execution_worker.ExecutionWorker.start

    def start(self: Any) -> None:
        clock = _turns()
        if clock is None:
            original_start(self)
            return
        worker = clock.new_worker(f"execution#{len(execution_worker.TMP_THREADS)}")

        def _execution_logic() -> None:  # the name wait_for_execution_threads looks for
            with clock.run_as(worker):
                self._execution_logic()

        thread = threading.Thread(target=_execution_logic, daemon=True)
        execution_worker.TMP_THREADS.append(thread)
        thread.start()

    execution_worker.ExecutionWorker.start = start  # type: ignore[method-assign]


def _patch_lambda_service_errors() -> None:
    """moto names every Lambda service error ``Exception``; AWS names it ``Lambda.<code>`` (what Retry lists match)."""
    from botocore.exceptions import ClientError
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_lambda as mod

    original = mod.StateTaskLambda._from_error

    def from_error(self: Any, env: Any, ex: Exception) -> Any:
        if not isinstance(ex, ClientError):
            return original(self, env, ex)
        name = f"Lambda.{ex.response['Error']['Code']}"
        return mod.FailureEvent(
            env=env,
            error_name=mod.CustomErrorName(name),
            event_type=mod.HistoryEventType.LambdaFunctionFailed,
            event_details=mod.EventDetails(
                lambdaFunctionFailedEventDetails=mod.LambdaFunctionFailedEventDetails(
                    error=name, cause=ex.response["Error"]["Message"]
                )
            ),
        )

    mod.StateTaskLambda._from_error = from_error  # type: ignore[method-assign]


def _pascal(d: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if hasattr(v, "isoformat"):
            v = v.isoformat()
        out[k[:1].upper() + k[1:]] = v
    return out


def _patch_sfn_integration() -> None:
    """moto's ``states:startExecution`` integration hands the ASL's PascalCase parameters (StateMachineArn, Name, Input)
    to boto3 unchanged and expects PascalCase back (ExecutionArn); boto3 speaks camelCase. Translate both ways, and give
    ``.sync:2`` the shape AWS documents: the DescribeExecution fields in PascalCase with ``Output`` parsed as JSON."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_callback as callback_mod,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_sfn as mod

    callback_mod._DELAY_SECONDS_SYNC_CONDITION_CHECK = 0.02  # type: ignore[misc]  # real-time poll of a child execution
    cls = mod.StateTaskServiceSfn

    def eval_service_task(
        self: Any, env: Any, resource_runtime_part: Any, normalised_parameters: dict[str, Any], state_credentials: Any
    ) -> None:
        client = mod.boto_client_for(
            region=resource_runtime_part.region, service="stepfunctions", state_credentials=state_credentials
        )
        params = {k[:1].lower() + k[1:]: v for k, v in normalised_parameters.items()}
        response = getattr(client, self._get_boto_service_action())(**params)
        response.pop("ResponseMetadata", None)
        env.stack.append(_pascal(response))

    original_sync2 = cls._build_sync2_resolver

    def build_sync2(self: Any, *args: Any, **kwargs: Any) -> Any:
        resolver = original_sync2(self, *args, **kwargs)

        def resolve() -> Any:
            result = resolver()
            return None if result is None else _pascal(result)

        return resolve

    cls._eval_service_task = eval_service_task  # type: ignore[method-assign]
    cls._build_sync2_resolver = build_sync2  # type: ignore[method-assign]


def _patch_lost_start_responses() -> None:
    import random

    from moto.core.exceptions import JsonRESTError
    from moto.stepfunctions.responses import StepFunctionResponse

    original = StepFunctionResponse.start_execution
    rng = random.Random(17)

    def start_execution(self: Any) -> Any:
        result = original(self)
        if lost_start_responses["rate"] and rng.random() < lost_start_responses["rate"]:
            lost_start_responses["lost"] += 1
            error = JsonRESTError("ServiceUnavailable", "the response was lost after the execution started")
            error.code = 500
            raise error
        return result

    StepFunctionResponse.start_execution = start_execution  # type: ignore[method-assign]


def route_lambda(function: str, handler: Handler) -> None:
    _routes[_name_of(function)] = handler


def substitute(definition: str, substitutions: dict[str, Any]) -> str:
    """SAM's DefinitionSubstitutions: ``${Name}`` replaced by its value (numbers stay numbers in the JSON)."""

    def sub(m: re.Match[str]) -> str:
        key = m.group(1)
        if key not in substitutions:
            raise KeyError(f"no DefinitionSubstitution for ${{{key}}}")
        return str(substitutions[key])

    return re.sub(r"\$\{([A-Za-z0-9_]+)\}", sub, definition)


def create_state_machine(sfn: Any, name: str, path: str | Path, substitutions: dict[str, Any]) -> str:
    definition = substitute(Path(path).read_text(), substitutions)
    json.loads(definition)  # fail early on a bad substitution
    return str(
        sfn.create_state_machine(
            name=name, definition=definition, roleArn="arn:aws:iam::123456789012:role/sfn", type="STANDARD"
        )["stateMachineArn"]
    )


def wait_for(sfn: Any, execution_arn: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        desc = sfn.describe_execution(executionArn=execution_arn)
        if desc["status"] != "RUNNING":
            out = dict(desc)
            if desc.get("output"):
                out["output"] = json.loads(desc["output"])
            return out
        if time.monotonic() > deadline:
            raise TimeoutError(f"{execution_arn} still RUNNING after {timeout}s")
        time.sleep(0.01)


def history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**kwargs)
        events.extend(page["events"])
        if not page.get("nextToken"):
            return events
        kwargs["nextToken"] = page["nextToken"]
