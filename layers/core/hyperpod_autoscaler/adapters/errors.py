"""The one table from the SDKs' errors to the project's names (``domain.errors``), transient or permanent.

Step Functions retries by name, and botocore's own retries are off for SageMaker, so an error that reaches a task under a
foreign name (``ClientError``, ``ReadTimeoutError``, ``ApiException``) is neither retried nor told apart from a real
failure. Every adapter maps through here; the task handlers map whatever is left at their boundary (a DynamoDB or Step
Functions call) the same way.

The sets follow botocore's standard retry mode (``botocore/retries/standard.py``: throttling codes, transient codes,
5xx), with AWS's documented SageMaker and DynamoDB codes added.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ..domain.errors import (
    AccessDenied,
    AutoscalerError,
    ClusterBusy,
    InsufficientCapacity,
    InvalidRequest,
    NotFound,
    Throttled,
    Unavailable,
)

T = TypeVar("T")

THROTTLING = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "RequestThrottled",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "SlowDown",
    "EC2ThrottledException",
}
CONFLICT = {"ConflictException", "TransactionConflictException", "PriorRequestNotComplete"}
CAPACITY = {"ResourceLimitExceeded", "InsufficientInstanceCapacity", "InsufficientCapacityException"}
NOT_FOUND = {"ResourceNotFound", "ResourceNotFoundException", "NotFoundException"}
DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnrecognizedClientException"}
UNAVAILABLE = {
    "InternalFailure",
    "InternalError",
    "InternalServerError",
    "InternalServerException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "ServiceException",
    "RequestTimeout",
    "RequestTimeoutException",
    "ExpiredToken",
    "ExpiredTokenException",
    "RequestExpired",
}


def from_aws_code(code: str, status: int) -> type[AutoscalerError]:
    """An AWS error code (and its HTTP status) as the project's error type."""
    if code in THROTTLING:
        return Throttled
    if code in CONFLICT:
        return ClusterBusy
    if code in CAPACITY:
        return InsufficientCapacity
    if code in NOT_FOUND:
        return NotFound
    if code in DENIED:
        return AccessDenied
    if code in UNAVAILABLE or status >= 500:
        return Unavailable
    return InvalidRequest


def from_kube_status(status: int) -> type[AutoscalerError]:
    """A Kubernetes API status as the project's error type. 0 is no answer at all (the transport failed); 410 is an
    expired ``continue`` token or resourceVersion, which a fresh list fixes; 401 is an expired bearer token, renewed on
    the next call. Callers handle the statuses that mean something there first (404 on a get, 409 on a write, 429 from
    the Eviction API)."""
    if status == 429:
        return Throttled
    if status == 409:
        return ClusterBusy
    if status == 404:
        return NotFound
    if status == 403:
        return AccessDenied
    if status in (0, 401, 408, 410) or status >= 500:
        return Unavailable
    return InvalidRequest


def _is_transport_error(exc: BaseException) -> bool:
    """A connection refused, reset, or timed out, by botocore, urllib3 or the socket layer."""
    if isinstance(exc, TimeoutError | ConnectionError):
        return True
    try:
        import urllib3.exceptions
    except ImportError:  # pragma: no cover - urllib3 ships with botocore
        return False
    return isinstance(exc, urllib3.exceptions.HTTPError)


def to_project_error(exc: BaseException, what: str) -> AutoscalerError | None:
    """``exc`` as the project's error (its message prefixed with ``what``), or None for what is not an SDK or transport
    error (a bug stays itself, visible as such)."""
    if isinstance(exc, AutoscalerError):
        return exc
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        CredentialRetrievalError,
        HTTPClientError,
        NoCredentialsError,
    )
    from botocore.exceptions import ConnectionError as BotoConnectionError

    cls: type[AutoscalerError] | None = None
    text = f"{what}: {type(exc).__name__}: {exc}"
    if isinstance(exc, ClientError):
        err: dict[str, Any] = exc.response.get("Error", {})
        status = int((exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0)
        code = str(err.get("Code", ""))
        cls = from_aws_code(code, status)
        text = f"{what}: {code}: {err.get('Message', str(exc))}"
    elif isinstance(exc, BotoConnectionError | HTTPClientError | CredentialRetrievalError):
        cls = Unavailable  # connect/read timeouts, endpoint unreachable, connection closed, credentials not fetched yet
    elif isinstance(exc, NoCredentialsError):
        cls = AccessDenied
    elif isinstance(exc, BotoCoreError):
        cls = InvalidRequest  # ParamValidationError and the other client-side rejections: the request itself is wrong
    else:
        kube_status = getattr(exc, "status", None)
        if type(exc).__name__ == "ApiException":  # the kubernetes client's, without importing it
            cls = from_kube_status(int(kube_status or 0))
        elif _is_transport_error(exc):
            cls = Unavailable
    return cls(text) if cls is not None else None


def raising_project_errors(what: str, work: Callable[[], T]) -> T:
    """``work()``, its SDK errors raised as the project's (a task handler's boundary: Step Functions sees only those)."""
    try:
        return work()
    except Exception as exc:
        mapped = to_project_error(exc, what)
        if mapped is None or mapped is exc:
            raise
        raise mapped from exc
