"""The table from SDK errors to the project's names: each botocore, Kubernetes and transport error leaves the adapters as
the project's error type, transient (retried by every task) or permanent (straight to the Catch).

The expected names and classes are written out here from AWS's and Kubernetes' documentation (SageMaker's common errors:
InternalFailure 500, ServiceUnavailable 503, RequestTimeout; the API server's 409/410/429/5xx), not derived from the
code under test."""

from __future__ import annotations

import pytest
import urllib3.exceptions
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
)
from hyperpod_autoscaler.adapters.errors import to_project_error
from hyperpod_autoscaler.adapters.kube import KubeApiError, kube_error
from hyperpod_autoscaler.domain import errors

TRANSIENT = {"Throttled", "ClusterBusy", "Unavailable"}


def client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op")


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("InternalFailure", 500, "Unavailable"),
        ("ServiceUnavailable", 503, "Unavailable"),
        ("ServiceUnavailableException", 503, "Unavailable"),
        ("InternalServerError", 500, "Unavailable"),
        ("RequestTimeout", 408, "Unavailable"),
        ("RequestTimeoutException", 408, "Unavailable"),
        ("SomethingNew", 502, "Unavailable"),  # any 5xx
        ("ThrottlingException", 400, "Throttled"),
        ("Throttling", 400, "Throttled"),
        ("TooManyRequestsException", 429, "Throttled"),
        ("ProvisionedThroughputExceededException", 400, "Throttled"),
        ("ConflictException", 409, "ClusterBusy"),
        ("ResourceLimitExceeded", 400, "InsufficientCapacity"),
        ("InsufficientInstanceCapacity", 400, "InsufficientCapacity"),
        ("ResourceNotFound", 400, "NotFound"),
        ("ResourceNotFoundException", 400, "NotFound"),
        ("AccessDeniedException", 400, "AccessDenied"),
        ("ValidationException", 400, "InvalidRequest"),
    ],
)
def test_aws_error_codes(code: str, status: int, expected: str) -> None:
    err = to_project_error(client_error(code, status), "UpdateCluster")
    assert err is not None and type(err).__name__ == expected
    assert err.transient == (expected in TRANSIENT)
    assert "UpdateCluster" in str(err) and code in str(err)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (ConnectTimeoutError(endpoint_url="https://api.sagemaker"), "Unavailable"),
        (ReadTimeoutError(endpoint_url="https://api.sagemaker"), "Unavailable"),
        (EndpointConnectionError(endpoint_url="https://api.sagemaker"), "Unavailable"),
        (ParamValidationError(report="Unknown parameter in InstanceGroups[0]: MinCount"), "InvalidRequest"),
        (NoCredentialsError(), "AccessDenied"),
        (urllib3.exceptions.ReadTimeoutError(None, "/api/v1/nodes", "read timed out"), "Unavailable"),
        (urllib3.exceptions.ProtocolError("Connection aborted."), "Unavailable"),
        (ConnectionResetError(104, "reset"), "Unavailable"),
        (TimeoutError("timed out"), "Unavailable"),
    ],
)
def test_botocore_and_transport_errors(exc: Exception, expected: str) -> None:
    err = to_project_error(exc, "DescribeCluster")
    assert err is not None and type(err).__name__ == expected
    assert err.transient == (expected in TRANSIENT)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (500, "Unavailable"),
        (502, "Unavailable"),
        (503, "Unavailable"),
        (504, "Unavailable"),
        (0, "Unavailable"),  # no answer: refused, reset, timed out
        (410, "Unavailable"),  # expired continue token: a fresh list works
        (401, "Unavailable"),  # expired bearer token: renewed on the next call
        (429, "Throttled"),
        (409, "ClusterBusy"),
        (404, "NotFound"),
        (403, "AccessDenied"),
        (422, "InvalidRequest"),
        (400, "InvalidRequest"),
    ],
)
def test_kubernetes_statuses(status: int, expected: str) -> None:
    err = kube_error(status, "Reason", "body")
    assert type(err).__name__ == expected, "Step Functions matches the class name"
    assert isinstance(err, getattr(errors, expected)) and isinstance(err, KubeApiError)
    assert err.status == status
    assert err.transient == (expected in TRANSIENT)


def test_the_kubernetes_client_exception_itself() -> None:
    from kubernetes.client.exceptions import ApiException

    err = to_project_error(ApiException(status=503, reason="Service Unavailable"), "GET /api/v1/nodes")
    assert err is not None and type(err).__name__ == "Unavailable"


def test_project_errors_pass_through_and_bugs_stay_bugs() -> None:
    own = errors.InsufficientCapacity("x")
    assert to_project_error(own, "w") is own
    assert to_project_error(KeyError("nodes"), "w") is None


def test_every_transient_project_error_is_listed() -> None:
    transient = {
        name
        for name in dir(errors)
        if isinstance(getattr(errors, name), type)
        and issubclass(getattr(errors, name), errors.AutoscalerError)
        and getattr(errors, name).transient
    }
    assert transient == TRANSIENT


def test_a_task_boundary_raises_sdk_errors_by_their_project_name() -> None:
    from hyperpod_autoscaler.adapters.errors import raising_project_errors
    from hyperpod_autoscaler.services.tasks import run_provision_action

    def dynamo_down() -> None:
        raise client_error("InternalServerError", 500)

    with pytest.raises(errors.Unavailable, match="backoff"):
        raising_project_errors("backoff", dynamo_down)
    with pytest.raises(KeyError):
        raising_project_errors("bug", lambda: {}["missing"])
    with pytest.raises(errors.InvalidRequest, match="field action"):
        run_provision_action(None, {"action": "nope"})  # type: ignore[arg-type]


def test_a_task_entry_point_maps_what_its_service_raised() -> None:
    """The services raise what the SDKs raise; the task's entry point names it for Step Functions. (Its metrics are
    flushed by the handler's ``@metrics.log_metrics``: ``tests/unit/test_runtime.py``.)"""
    from types import SimpleNamespace

    from hyperpod_autoscaler.entrypoints import _task

    def dynamo_down(deps: SimpleNamespace, event: dict[str, str]) -> dict[str, str]:
        raise client_error("InternalServerError", 500)

    with pytest.raises(errors.Unavailable, match="provision scale: InternalServerError"):
        _task("provision", SimpleNamespace(), dynamo_down, {"action": "scale"})


def test_the_task_tables_are_whole_when_loaded_and_read_only() -> None:
    """The drill's steps run in the provision function: its table has them before the first task, and no call adds any."""
    from hyperpod_autoscaler.services import tasks

    assert {"drill_plan", "drill_scale_back", "scale", "check"} <= set(tasks.PROVISION_ACTIONS)
    with pytest.raises(TypeError):
        tasks.PROVISION_ACTIONS["scale"] = tasks.PROVISION_ACTIONS["check"]  # type: ignore[index]
