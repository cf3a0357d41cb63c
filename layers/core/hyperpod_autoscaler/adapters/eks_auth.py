"""EKS bearer tokens for a Lambda function, as ``aws eks get-token`` makes them.

The token is ``k8s-aws-v1.`` followed by the base64url encoding (no padding) of a presigned STS ``GetCallerIdentity`` URL
whose signature covers the ``x-k8s-aws-id: <cluster name>`` header. EKS accepts such a token for 15 minutes after it was
signed; a token is reused across warm invocations and renewed after ``RENEW_AFTER_SECONDS``.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from typing import Any

TOKEN_PREFIX = "k8s-aws-v1."
CLUSTER_ID_HEADER = "x-k8s-aws-id"
PRESIGN_EXPIRES_SECONDS = 60
RENEW_AFTER_SECONDS = 600  # EKS honours a token for 15 minutes from signing: renew well before


def _retrieve_cluster_id(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    if CLUSTER_ID_HEADER in params:
        context[CLUSTER_ID_HEADER] = params.pop(CLUSTER_ID_HEADER)


def _inject_cluster_id(request: Any, **_: Any) -> None:
    if CLUSTER_ID_HEADER in request.context:
        request.headers[CLUSTER_ID_HEADER] = request.context[CLUSTER_ID_HEADER]


def presigned_url(cluster_name: str, region: str, session: Any = None) -> str:
    import boto3

    session = session or boto3.session.Session(region_name=region)
    sts = session.client(
        "sts",
        region_name=region,
        endpoint_url=f"https://sts.{region}.amazonaws.com",
    )
    sts.meta.events.register("provide-client-params.sts.GetCallerIdentity", _retrieve_cluster_id)
    sts.meta.events.register("before-sign.sts.GetCallerIdentity", _inject_cluster_id)
    return str(
        sts.generate_presigned_url(
            "get_caller_identity",
            Params={CLUSTER_ID_HEADER: cluster_name},
            ExpiresIn=PRESIGN_EXPIRES_SECONDS,
            HttpMethod="GET",
        )
    )


def token_from_url(url: str) -> str:
    return TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


def url_from_token(token: str) -> str:
    """The presigned URL inside a token (what EKS's authenticator does first)."""
    if not token.startswith(TOKEN_PREFIX):
        raise ValueError("not an EKS token")
    body = token[len(TOKEN_PREFIX) :]
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()


class EksTokenSource:
    """A token per cluster, cached for the container's life and renewed before it expires (thread-safe)."""

    def __init__(
        self, cluster_name: str, region: str, session: Any = None, now: Callable[[], float] = time.time
    ) -> None:
        self.cluster_name = cluster_name
        self.region = region
        self.session = session
        self._now = now
        self._token: str | None = None
        self._minted_at = 0.0
        self._lock = threading.Lock()

    def token(self) -> str:
        with self._lock:
            if self._token is None or self._now() - self._minted_at >= RENEW_AFTER_SECONDS:
                self._token = token_from_url(presigned_url(self.cluster_name, self.region, self.session))
                self._minted_at = self._now()
            return self._token
