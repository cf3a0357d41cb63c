"""The EKS token matches AWS's documented format: decoded, it is a presigned STS GetCallerIdentity URL for the region's
endpoint that signs the x-k8s-aws-id header."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import boto3
from hyperpod_autoscaler.adapters.eks_auth import (
    TOKEN_PREFIX,
    EksTokenSource,
    presigned_url,
    token_from_url,
    url_from_token,
)


def session() -> boto3.session.Session:
    return boto3.session.Session(
        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret", region_name="us-west-2"
    )


def test_token_decodes_to_a_presigned_get_caller_identity_url() -> None:
    token = token_from_url(presigned_url("hyperpod-eks-demo", "us-west-2", session()))
    assert token.startswith(TOKEN_PREFIX)
    assert "=" not in token[len(TOKEN_PREFIX) :], "base64url without padding"
    url = urlparse(url_from_token(token))
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert url.scheme == "https" and url.netloc == "sts.us-west-2.amazonaws.com"
    assert query["Action"] == "GetCallerIdentity" and query["Version"] == "2011-06-15"
    assert query["X-Amz-Expires"] == "60"
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert "x-k8s-aws-id" in query["X-Amz-SignedHeaders"].split(";")
    assert "host" in query["X-Amz-SignedHeaders"].split(";")
    assert (
        query["X-Amz-Credential"].startswith("AKIDEXAMPLE/")
        and "/us-west-2/sts/aws4_request" in query["X-Amz-Credential"]
    )
    assert len(query["X-Amz-Signature"]) == 64


def test_tokens_are_reused_then_renewed() -> None:
    clock = [1000.0]
    source = EksTokenSource("c", "us-west-2", session(), now=lambda: clock[0])
    first = source.token()
    clock[0] += 300
    assert source.token() == first, "reused across warm invocations"
    clock[0] += 400
    source.token()
    assert source._minted_at == clock[0], "renewed after 10 minutes"
