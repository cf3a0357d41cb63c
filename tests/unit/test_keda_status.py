"""The KEDA-style status and Events built from a decision (conditions and reasons as KEDA's operator writes them)."""

from __future__ import annotations

from typing import Any

from hyperpod_autoscaler.domain.keda_status import invalid_status, scale_events, scaled_object_status
from hyperpod_autoscaler.domain.podscaling import Reading, ScalerState, decide, parse_scaled_object

NOW = 10_000.0
SQS = {"type": "aws-sqs-queue", "metadata": {"queueURL": "http://q", "queueLength": "5"}}


def so(**spec: Any) -> dict[str, Any]:
    base = {"scaleTargetRef": {"name": "web"}, "triggers": [{**SQS, "name": "q"}, {**SQS, "name": "f"}], **spec}
    return {"metadata": {"name": "s", "namespace": "d"}, "spec": base}


def status_after(spec_doc: dict[str, Any], current: int, readings: list[Reading], state: ScalerState) -> dict[str, Any]:
    spec = parse_scaled_object(spec_doc)
    decision = decide(spec, current, readings, state, NOW)
    status = scaled_object_status(spec, decision, state, current, 1)
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]} | {"_status": status}


def test_partial_trigger_error_while_active() -> None:
    got = status_after(so(), 3, [Reading("q", 30.0), Reading("f", None, "throttled")], ScalerState(created_at=0))
    assert got["Ready"] == ("Unknown", "PartialTriggerError") and got["Active"] == ("True", "ScalerActive")
    assert got["_status"]["health"]["f"] == {"numberOfFailures": 1, "status": "Failing"}


def test_cooling_down_then_not_active() -> None:
    state = ScalerState(created_at=0, last_active=NOW - 10)
    got = status_after(so(minReplicaCount=0), 2, [Reading("q", 0.0), Reading("f", 0.0)], state)
    assert got["Active"] == ("False", "ScalerCooldown") and got["Ready"] == ("True", "ScaledObjectReady")
    got = status_after(so(minReplicaCount=0), 0, [Reading("q", 0.0), Reading("f", 0.0)], state)
    assert got["Active"] == ("False", "ScalerNotActive")


def test_fallback_condition_and_activation_event() -> None:
    doc = so(fallback={"failureThreshold": 0, "replicas": 2})
    got = status_after(doc, 1, [Reading("q", 0.0), Reading("f", None, "timeout")], ScalerState(created_at=0))
    assert got["Fallback"] == ("True", "FallbackExists") and got["Active"] == ("True", "ScalerActive")
    spec = parse_scaled_object(so())
    decision = decide(spec, 0, [Reading("q", 7.0), Reading("f", 0.0)], ScalerState(created_at=0), NOW)
    assert (
        "Normal",
        "KEDAScaleTargetActivated",
        "Scaled Deployment d/web from 0 to 1, triggered by q",
    ) in scale_events(spec, decision, 0)


def test_a_bad_object_is_not_ready_and_names_the_field() -> None:
    (ready,) = invalid_status("ScaledObject d/s: spec.triggers[0].type: 'kafka' is not supported")["conditions"]
    assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "False", "ScaledObjectCheckFailed")
    assert "spec.triggers[0].type" in ready["message"]
