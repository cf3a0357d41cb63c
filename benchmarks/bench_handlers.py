"""The Lambda handlers' figures (issue 5): the cold-start import time of every handler module, and the reconcile
handler's latency from an alarm event to the scale call at 1,000 pending pods.

    python -m benchmarks handlers
    python -m benchmarks.bench_handlers [--runs 100] [--pods 1000] [--only imports|reconcile]

Import time: each ``functions/<name>/app.py`` is imported as Lambda imports it (the function's directory on the path,
the core importable as the layer makes it, the environment template.yaml gives the function plus what the Lambda
runtime sets, tracing active as ``Tracing: Active`` makes it) in a fresh interpreter under ``python -X importtime``;
the cumulative milliseconds of the top-level imports, the median of a few interpreters (``lambdaMs``, the figure to hold
to 400 ms). For comparison: the same with ``POWERTOOLS_TRACE_DISABLED=true`` (``lambdaTracingDisabledMs``: what X-Ray
costs), and as the tests import a handler, outside Lambda's environment with tracing disabled (``localMs``: there the
X-Ray SDK builds its sampling client at import, which it does not do in Lambda).

Reconcile latency: the real reconcile handler (``functions/reconcile/app.py``) on the emulators, as template.yaml wires
it (``open_stack``: moto's server with the HyperPod emulator, the Kubernetes emulator, the real provision state
machine), with the seed NodePool and HyperpodNodeClass and N pending pods. "The scale call" is where the reconcile
function's decision ends: the first ``StartExecution`` request of a provision workflow (the workflow's first step then
calls HyperPod's UpdateCluster, in another function). It is timed by a botocore ``before-send`` hook on the function's
own Step Functions client, from the handler call (Powertools decorators and event parsing included). Every run is a
real decision: before it, the pods of the previous run are replaced by N new ones (new names and uids, so new claim ids
and execution names), the previous run's executions are stopped and its claim records deleted (so nothing is in flight
and the caps are whole again), the event gets a new id (no idempotency hit) and the clock moves on a minute. Each run
must have started provision executions. The state machine's executions are recorded but not interpreted (moto's
``execute_state_machine`` off): the provision workflows would otherwise run in this process between and during the
measured runs, which is not what the reconcile function sees on Lambda. The emulators live in this process too, and
their heap (moto's backends, the Kubernetes store and its change log) is many times the function's: before each
measured invocation it is collected and frozen (``gc.freeze``) so that a full collection in the handler does not walk
it (on Lambda that heap is not in the function's process); the handler's own objects are collected as usual.
``--no-freeze`` measures without that (the p99 then shows the emulators' collections: about 1 s here). One warm-up
invocation (building the clients and the engine's caches, as a container's first invocation does) is reported apart.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.bench_kube_snapshot import import_ms

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS_DIR = ROOT / "functions"
EVENT = ROOT / "events" / "reconcile" / "alarm-pending-pods.json"
SEED_PODS = ROOT / "examples" / "seed" / "pods.yaml"
IMPORT_AIM_MS = 400.0
P99_AIM_S = 1.0

# What the Lambda runtime sets for a python3.12 function (besides the function's own environment).
LAMBDA_RUNTIME_ENV = {
    "LAMBDA_TASK_ROOT": "/var/task",
    "LAMBDA_RUNTIME_DIR": "/var/runtime",
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_REGION": "us-west-2",
    "AWS_DEFAULT_REGION": "us-west-2",
    "_HANDLER": "app.handler",
}
KEPT_FROM_PARENT = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")


# --- (a) handler import time ---------------------------------------------------------------------------------------------


def _resolve(value: Any, parameters: dict[str, Any]) -> str:
    """An environment value of template.yaml: a literal, a parameter's default, or a stand-in for a resource's name."""
    if isinstance(value, dict) and "Ref" in value:
        target = str(value["Ref"])
        default = parameters.get(target)
        if default not in (None, ""):
            return str(default)
        return f"bench-{target.lower()}"
    if isinstance(value, dict):
        return "bench-value"
    return str(value)


def function_envs() -> dict[str, dict[str, str]]:
    """Function directory name -> the environment template.yaml gives it (Globals + its own), intrinsics resolved."""
    from hpa_testkit.sandbox.template import read_wiring

    wiring = read_wiring(ROOT / "template.yaml")
    out: dict[str, dict[str, str]] = {}
    for spec in wiring.functions.values():
        name = Path(spec.code_uri).name
        out[name] = {k: _resolve(v, wiring.parameters) for k, v in spec.environment.items()}
    return out


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    """``os.environ`` replaced by ``values`` (plus PATH and friends) for the duration: what ``import_ms``'s child gets."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update({k: saved[k] for k in KEPT_FROM_PARENT if k in saved})
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


IMPORT_MODES = {
    "lambdaMs": (True, True),
    "lambdaTracingDisabledMs": (True, False),
    "localMs": (False, False),
}
"""Figure -> (the Lambda runtime's environment, tracing). ``lambdaMs`` is the cold start's figure; ``localMs`` is how the
tests import a handler (no Lambda environment, ``POWERTOOLS_TRACE_DISABLED=true``)."""


def handler_import_ms(name: str, env: dict[str, str], lambda_env: bool, tracing: bool, repeats: int) -> list[float]:
    values = {
        **env,
        "PYTHONPATH": str(FUNCTIONS_DIR / name),  # Lambda: /var/task (the CodeUri) is on sys.path; app.py is ``app``
    }
    if lambda_env:
        values.update(LAMBDA_RUNTIME_ENV)
        values["AWS_LAMBDA_FUNCTION_NAME"] = f"hpa-{name}"
    if not tracing:
        values["POWERTOOLS_TRACE_DISABLED"] = "true"
    with _environ(values):
        return [import_ms("app") for _ in range(repeats)]


def import_figures(repeats: int) -> dict[str, dict[str, float]]:
    """Function -> figure -> the median of ``repeats`` fresh interpreters (cumulative ms)."""
    envs = function_envs()
    names = sorted(p.parent.name for p in FUNCTIONS_DIR.glob("*/app.py"))
    out: dict[str, dict[str, float]] = {}
    for name in names:
        if name not in envs:
            raise SystemExit(f"functions/{name} is not a function of template.yaml")
        out[name] = {
            figure: round(statistics.median(handler_import_ms(name, envs[name], lambda_env, tracing, repeats)), 1)
            for figure, (lambda_env, tracing) in IMPORT_MODES.items()
        }
    return out


# --- (b) reconcile: alarm event -> first StartExecution, N pending pods ----------------------------------------------------


def pending_pods(count: int, run: int) -> list[dict[str, Any]]:
    """``count`` pending pods shaped like the seed's (a Deployment's pods asking 1 CPU / 256Mi), named for this run."""
    from hpa_testkit.sandbox.runner import load_yaml_objects

    template = load_yaml_objects(SEED_PODS)[0]
    prefix = template["metadata"]["name"].rsplit("-", 1)[0]
    pods = []
    for i in range(count):
        pod = copy.deepcopy(template)
        pod["metadata"]["name"] = f"{prefix}-r{run:03d}-{i:05d}"
        pods.append(pod)
    return pods


def _moto_config(endpoint_url: str, body: dict[str, Any]) -> None:
    """moto's configuration API (``/moto-api/config``)."""
    req = urllib.request.Request(f"{endpoint_url}/moto-api/config", data=json.dumps(body).encode(), method="POST")
    req.add_header("Content-Type", "application/json")
    urllib.request.urlopen(req, timeout=10).read()


class ScaleCallProbe:
    """Records when the Step Functions client sends a StartExecution request (botocore's ``before-send``)."""

    def __init__(self, client: Any) -> None:
        self.times: list[float] = []
        client.meta.events.register("before-send.sfn.StartExecution", self._sent)

    def _sent(self, **_: Any) -> None:
        self.times.append(time.perf_counter())

    def clear(self) -> None:
        self.times.clear()


def _clear_previous_run(stack: Any) -> None:
    """Nothing in flight any more: the previous run's executions stopped and its claim records deleted; the cluster back
    to the seed's NodePool and HyperpodNodeClass (the previous pods and the events about them gone)."""
    sfn = stack.sfn
    for page in sfn.get_paginator("list_executions").paginate(
        stateMachineArn=stack.machines["provision"], statusFilter="RUNNING"
    ):
        for execution in page["executions"]:
            sfn.stop_execution(executionArn=execution["executionArn"], cause="benchmark: next run")
    ddb = stack.aws.client("dynamodb")
    for page in ddb.get_paginator("query").paginate(
        TableName=stack.table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "claim"}},
    ):
        for item in page["Items"]:
            ddb.delete_item(TableName=stack.table, Key={"pk": item["pk"], "sk": item["sk"]})
    stack.kube.reset()
    stack.seed()


def _percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def reconcile_figures(runs: int, pods: int, freeze_harness: bool = True) -> dict[str, Any]:
    from hpa_testkit.aws import AwsEmulator, sfn
    from hpa_testkit.clock import SimClock
    from hpa_testkit.kube import KubeEmulator
    from hpa_testkit.pytest_aws import open_stack
    from hyperpod_autoscaler import runtime

    event_template = json.loads(EVENT.read_text())
    clock = SimClock()
    with (
        KubeEmulator() as kube,
        AwsEmulator(clock=clock) as aws,
        tempfile.TemporaryDirectory() as tmp,
    ):
        sfn.retry_intervals.clear()
        sfn.waits.clear()
        kubeconfig = kube.write_kubeconfig(f"{tmp}/kubeconfig")
        # Before the state machines are created: moto keeps interpreted and recorded-only machines in different backends.
        _moto_config(aws.endpoint_url, {"stepfunctions": {"execute_state_machine": False}})
        with open_stack(aws, kube, kubeconfig, clock) as stack:
            probe = ScaleCallProbe(runtime.client("stepfunctions"))
            to_scale: list[float] = []
            totals: list[float] = []
            nodes_asked: list[int] = []
            executions: list[int] = []
            capped = 0
            warmup: dict[str, float] = {}
            for run in range(runs + 1):
                _clear_previous_run(stack)
                for pod in pending_pods(pods, run):
                    kube.apply(pod)
                clock.advance(60.0)
                event = copy.deepcopy(event_template)
                event["id"] = str(uuid.uuid4())
                probe.clear()
                if freeze_harness:
                    gc.collect()
                    gc.freeze()
                try:
                    started = time.perf_counter()
                    out = stack.invoke("reconcile", event)
                    ended = time.perf_counter()
                finally:
                    if freeze_harness:
                        gc.unfreeze()
                last = out.get("last") or {}
                if not (out.get("held") and out.get("executionsStarted") and probe.times):
                    raise AssertionError(f"run {run} started no provision execution: {out}")
                if last.get("pending") != pods:
                    raise AssertionError(f"run {run} saw {last.get('pending')} pending pods, not {pods}: {out}")
                running = stack.sfn.list_executions(
                    stateMachineArn=stack.machines["provision"], statusFilter="RUNNING"
                )["executions"]
                if {e["name"] for e in running} != set(out["executionsStarted"]):
                    raise AssertionError(f"run {run}: executions started {out['executionsStarted']}, running {running}")
                if run == 0:
                    warmup = {
                        "toScaleCallS": round(probe.times[0] - started, 4),
                        "handlerS": round(ended - started, 4),
                    }
                    continue
                to_scale.append(probe.times[0] - started)
                totals.append(ended - started)
                nodes_asked.append(sum(c["count"] for c in last["claims"]))
                executions.append(len(out["executionsStarted"]))
                capped += bool(last.get("capped"))
    return {
        "pendingPods": pods,
        "runs": runs,
        "harnessHeapFrozen": freeze_harness,
        "toScaleCallS": {
            "p50": round(statistics.median(to_scale), 4),
            "p99": round(_percentile(to_scale, 99), 4),
            "max": round(max(to_scale), 4),
        },
        "handlerS": {"p50": round(statistics.median(totals), 4), "p99": round(_percentile(totals, 99), 4)},
        "nodesAskedPerRun": sorted(set(nodes_asked)),
        "executionsStartedPerRun": sorted(set(executions)),
        "runsCutByMaxNodesPerDecision": capped,
        "warmupInvocation": warmup,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_handlers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100, help="measured reconcile invocations (default 100)")
    parser.add_argument("--pods", type=int, default=1000, help="pending pods per invocation (default 1000)")
    parser.add_argument("--repeats", type=int, default=3, help="interpreters per handler import figure (default 3)")
    parser.add_argument("--only", choices=("imports", "reconcile"), help="one of the two figures")
    parser.add_argument(
        "--no-freeze",
        action="store_true",
        help="leave the emulators' heap to the garbage collector during the measured invocations",
    )
    args = parser.parse_args(argv or [])
    if args.only in (None, "imports"):
        print(
            "== handler import time (cumulative ms, python -X importtime, fresh interpreter, as Lambda imports it) =="
        )
        for name, ms in import_figures(args.repeats).items():
            flag = "" if ms["lambdaMs"] <= IMPORT_AIM_MS else f"  (above the {IMPORT_AIM_MS:.0f} ms aim)"
            print(f"{name}: {json.dumps(ms)}{flag}", flush=True)
    if args.only in (None, "reconcile"):
        print(f"== reconcile: alarm event -> first provision StartExecution, {args.pods} pending pods ==", flush=True)
        figures = reconcile_figures(args.runs, args.pods, freeze_harness=not args.no_freeze)
        print(json.dumps(figures))
        p99 = figures["toScaleCallS"]["p99"]
        print(f"p99 {p99:.3f} s {'within' if p99 <= P99_AIM_S else 'ABOVE'} the {P99_AIM_S:.0f} s aim")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
