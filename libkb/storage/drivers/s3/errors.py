"""S3 error responses as the Libcloud exceptions the adapter maps.

Messages carry the service's error code and message, never request headers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests
from libcloud.common.exceptions import BaseHTTPError, RateLimitReachedError
from libcloud.storage.types import ContainerDoesNotExistError, ObjectDoesNotExistError

from libkb.storage.drivers.common.errors import invalid_creds_error, rate_limit_headers
from libkb.storage.drivers.s3.parsing import local_name, xml_ns, xml_root


def parse_error_body(body: bytes) -> tuple[str | None, str | None]:
    """``(Code, Message)`` of an S3 ``<Error>`` document, or ``(None, None)``."""
    root = xml_root(body)
    if root is None or local_name(root.tag) != "Error":
        return None, None
    ns = xml_ns(root)
    code = root.findtext(ns + "Code")
    message = root.findtext(ns + "Message")
    return (code or None), (message or None)


#: Status to use for an ``<Error>`` embedded in a 200 response (copy/complete).
_EMBEDDED_ERROR_STATUS = {"SlowDown": 503, "ServiceUnavailable": 503, "InternalError": 500}


def error_from_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    driver: Any,
    bucket: str,
    key: str | None,
    operation: str,
    missing: str | None = None,
) -> Exception:
    """Map an S3 error response to the Libcloud exception the contract names.

    ``missing`` says what a body-less 404 means ("object" or "bucket"; HEAD has
    no body). Only 404 is "does not exist"; 401/403 -> ``InvalidCredsError``;
    429 -> ``RateLimitReachedError``; everything else -> ``BaseHTTPError`` with
    the status in ``.code`` (503 SlowDown stays recognisable as transient).
    Messages carry the service's code and message, never request headers.
    """
    code, message = parse_error_body(body)
    lower_headers = {k.lower(): v for k, v in headers.items()}
    where = f"s3://{bucket}/{key}" if key is not None else f"s3://{bucket}"
    detail = f"{code}: {message}" if code and message else (code or message or "")
    text = f"S3 {operation} {where} failed: HTTP {status}" + (f" {detail}" if detail else "")

    if status == 404:
        gone: Exception | None = None
        if code == "NoSuchBucket" or (code is None and missing == "bucket"):
            gone = ContainerDoesNotExistError(value=text, driver=driver, container_name=bucket)
        elif code == "NoSuchKey" or (code is None and missing == "object" and key is not None):
            gone = ObjectDoesNotExistError(value=text, driver=driver, object_name=key)
        if gone is not None:
            return gone
    if status in (401, 403):
        if code is None and operation == "head":
            text += (
                " (access denied; S3 also answers 403 for a missing key when the"
                " credentials lack s3:ListBucket)"
            )
        return invalid_creds_error(text, status, driver=driver)
    bucket_region = lower_headers.get("x-amz-bucket-region")
    if status in (301, 307, 400) and bucket_region:
        text += f" (the bucket is in region {bucket_region!r}; set storage.region)"
    if status == 429:
        rate: Exception = RateLimitReachedError(headers=rate_limit_headers(lower_headers))
        rate.message = text  # type: ignore[attr-defined]
        rate.args = (text,)
        return rate
    failure: Exception = BaseHTTPError(status, text, lower_headers)
    return failure


def _embedded_error(body: bytes, *, driver: Any, bucket: str, key: str, operation: str) -> Exception | None:
    """S3 may answer 200 and put an ``<Error>`` in the body (copy, complete)."""
    code, _message = parse_error_body(body)
    if code is None:
        return None
    status = _EMBEDDED_ERROR_STATUS.get(code, 500)
    if code == "NoSuchKey":
        status = 404
    return error_from_response(status, {}, body, driver=driver, bucket=bucket, key=key, operation=operation)


def checked_body(response: requests.Response, *, driver: Any, bucket: str, key: str, operation: str) -> bytes:
    """The body of a 200 answer, raising the ``<Error>`` S3 may have put in it
    (copy, complete: the status is sent before the work is done)."""
    body = response.content
    response.close()
    embedded = _embedded_error(body, driver=driver, bucket=bucket, key=key, operation=operation)
    if embedded is not None:
        raise embedded
    return body
