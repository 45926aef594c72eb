"""JSON API failures as the Libcloud exceptions the adapter maps: 401/403
``InvalidCredsError``, others ``BaseHTTPError`` with ``.code``; the statuses
the driver decides on are handed back to it."""

from __future__ import annotations

import json
from typing import Any

from libcloud.common.base import JsonResponse
from libcloud.storage.types import ContainerDoesNotExistError

from libkb.storage.drivers.common.errors import clip_text, http_error


def error_message(body: Any, text: str | bytes | None) -> str:
    """The ``error.message`` of a JSON error body, else the body's first line."""
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and err.get("message"):
            return clip_text(str(err["message"]))
        if isinstance(err, str):
            return clip_text(err)
    return clip_text(text)


def json_or_text(text: str) -> Any:
    try:
        return json.loads(text) if text else ""
    except ValueError:
        return text


def gcs_error(status: int, body_text: str, headers: dict[str, str] | None = None) -> Exception:
    """The exception for a failed JSON API response (401/403 -> InvalidCredsError)."""
    return http_error(status, error_message(json_or_text(body_text), body_text), headers)


def container_missing(bucket: str, *, driver: Any) -> Exception:
    """The exception for a bucket that does not exist."""
    err: Exception = ContainerDoesNotExistError(
        value=f"bucket {bucket!r} does not exist", driver=driver, container_name=bucket
    )
    return err


def bucket_error(resp: Any, bucket: str, *, driver: Any) -> Exception:
    """The exception for a failed ``GcsJsonResponse`` about a bucket rather than an
    object: there a 404 can only mean the bucket is missing."""
    if resp.status == 404:
        return container_missing(bucket, driver=driver)
    return http_error(int(resp.status), error_message(resp.object, resp.body), resp.headers)


class GcsJsonResponse(JsonResponse):  # type: ignore[misc]
    """JSON response that hands 404/412/416/308 back to the driver and raises
    ``InvalidCredsError`` (401/403) or ``BaseHTTPError`` (with ``.code``) otherwise."""

    HANDLED = frozenset({308, 404, 409, 412, 416})

    def success(self) -> bool:
        status = int(self.status)
        return 200 <= status <= 299 or status in self.HANDLED

    def parse_body(self) -> Any:
        return json_or_text(self.body)

    def parse_error(self) -> Any:
        raise gcs_error(int(self.status), self.body, self.headers)
