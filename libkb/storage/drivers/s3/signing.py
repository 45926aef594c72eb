"""AWS Signature Version 4: a pure function over exactly the bytes sent."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime

from libkb.storage.drivers.s3.credentials import Credentials

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
#: Headers never signed: hop-by-hop ones, and ``user-agent``, which proxies and
#: SDK wrappers rewrite (moto rejects a signed one). Same list as botocore's.
_UNSIGNED_HEADERS = frozenset(
    {
        "accept-encoding",
        "authorization",
        "connection",
        "content-length",
        "expect",
        "keep-alive",
        "proxy-authorization",
        "te",
        "transfer-encoding",
        "upgrade",
        "user-agent",
        "x-amzn-trace-id",
    }
)


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def sign_v4(
    *,
    method: str,
    host: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    payload_hash: str,
    credentials: Credentials,
    region: str,
    now: datetime,
    service: str = "s3",
) -> dict[str, str]:
    """Return ``headers`` plus Host, x-amz-date, x-amz-content-sha256, the token and
    ``Authorization`` for an AWS Signature Version 4 request.

    ``path`` and ``query`` must be exactly what goes on the wire (already
    encoded). Every given header is signed except :data:`_UNSIGNED_HEADERS`.
    """
    amz_date = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    datestamp = amz_date[:8]
    out: dict[str, str] = {k: v for k, v in headers.items() if k.lower() != "host"}
    out["Host"] = host
    out["x-amz-date"] = amz_date
    out["x-amz-content-sha256"] = payload_hash
    if credentials.token:
        out["x-amz-security-token"] = credentials.token
    signed: dict[str, str] = {}
    for name, value in out.items():
        lname = name.lower()
        if lname not in _UNSIGNED_HEADERS:
            signed[lname] = " ".join(str(value).split())
    names = sorted(signed)
    canonical_headers = "".join(f"{n}:{signed[n]}\n" for n in names)
    signed_headers = ";".join(names)
    canonical_request = "\n".join(
        (method, path or "/", query, canonical_headers, signed_headers, payload_hash)
    )
    scope = f"{datestamp}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        (
            "AWS4-HMAC-SHA256",
            amz_date,
            scope,
            hashlib.sha256(canonical_request.encode("utf-8")).hexdigest(),
        )
    )
    key = _hmac(("AWS4" + credentials.secret_key).encode("utf-8"), datestamp)
    key = _hmac(_hmac(_hmac(key, region), service), "aws4_request")
    signature = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    out["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )
    return out
