"""Errors of the domain. Lambda tasks raise the project's own error types so that Step Functions Retry/Catch match them by
name the same way in AWS and in tests (the exception class name becomes the task's errorType).

``transient`` sorts them for the state machines: a transient error is retried with capped, jittered backoff by every task
(``hpa_testkit.lint_asl`` checks it), a permanent one goes straight to the Catch. ``adapters/errors.py`` maps the SDKs'
errors (botocore, the Kubernetes API, the transport) to these names.
"""

from __future__ import annotations

from typing import ClassVar


class AutoscalerError(Exception):
    """Base of every error the project raises on purpose."""

    transient: ClassVar[bool] = False


class InvalidObject(AutoscalerError):
    """An object (CR, manifest, event, API answer) is malformed. Names the object and the field."""

    def __init__(self, kind: str, name: str, field: str, message: str, uid: str | None = None) -> None:
        self.kind = kind
        self.name = name
        self.field = field
        self.message = message
        self.uid = uid
        """The object's ``metadata.uid`` when known: an Event about it then shows in ``kubectl describe``."""
        where = f"{kind} {name}" if name else kind
        super().__init__(f"{where}: field {field}: {message}" if field else f"{where}: {message}")


class ClusterBusy(AutoscalerError):
    """The HyperPod cluster or group is being updated by someone else (ConflictException, status Updating)."""

    transient = True


class Throttled(AutoscalerError):
    """The API throttled us; retry with backoff."""

    transient = True


class Unavailable(AutoscalerError):
    """An API failed in a way a retry can fix: a 5xx answer (InternalFailure, ServiceUnavailable), a request timeout, a
    connection refused, reset or timed out, an expired Kubernetes list (410) or credential."""

    transient = True


class AccessDenied(AutoscalerError):
    """The caller may not do this (IAM AccessDenied, Kubernetes 403): a deployment problem, retrying will not help."""


class InsufficientCapacity(AutoscalerError):
    """HyperPod could not launch instances of a group (no capacity in the zone, quota, launch failures)."""


class NotFound(AutoscalerError):
    """The cluster, group or node does not exist."""


class InvalidRequest(AutoscalerError):
    """The request was rejected as invalid (ValidationException and the like); retrying will not help."""


class RegistrationTimeout(AutoscalerError):
    """New nodes did not become Running and Ready within the registration timeout."""


class DisruptionAborted(AutoscalerError):
    """A disruption was stopped (karpenter.sh/do-not-disrupt on the node or one of its pods)."""
