"""Azure failures as the Libcloud exceptions the adapter maps: one HEAD still
tells a missing container from a missing blob (``x-ms-error-code``); 401/403
``InvalidCredsError``; other failures ``BaseHTTPError`` with ``.code``
(Libcloud raises code-less ``LibcloudError``)."""

from __future__ import annotations

from typing import Any

import requests
from libcloud.common.azure import AzureResponse
from libcloud.storage.types import ContainerDoesNotExistError, ObjectDoesNotExistError
from libcloud.utils.xml import fixxpath

from libkb.storage.drivers.common.errors import clip_text, http_error

NOT_FOUND_CONTAINER = "ContainerNotFound"


def error_code(headers: dict[str, str], body: Any) -> str | None:
    """Azure's error code: ``x-ms-error-code`` header (also on HEAD), else the XML body."""
    code = headers.get("x-ms-error-code")
    if code:
        return str(code)
    if hasattr(body, "findtext"):
        found = body.findtext(fixxpath(xpath="Code"))
        return str(found) if found else None
    return None


def _error_message(status: int, headers: dict[str, str], body: Any) -> str:
    code = error_code(headers, body)
    message = ""
    if hasattr(body, "findtext"):
        message = clip_text(body.findtext(fixxpath(xpath="Message")))
    elif isinstance(body, (str, bytes)) and body and not str(body).lstrip().startswith("<"):
        message = clip_text(body)
    if code and message:
        return f"{code}: {message}"
    return code or message or "request failed"


def _parse_xml(text: str | bytes) -> Any:
    from libcloud.utils.py3 import ET

    try:
        return ET.XML(text if isinstance(text, bytes) else text.encode("utf-8"))
    except Exception:
        return text


class LibkbAzureResponse(AzureResponse):  # type: ignore[misc]
    """Accepts 2xx and the statuses the driver decides on (404/409/412/416);
    raises ``InvalidCredsError``/``BaseHTTPError`` with the status otherwise."""

    HANDLED = frozenset({404, 409, 412, 416})

    def success(self) -> bool:
        status = int(self.status)
        return 200 <= status <= 299 or status in self.HANDLED

    def parse_body(self) -> Any:
        if not self.body:
            return self.body
        return _parse_xml(self.body)

    def parse_error(self, msg: str | None = None) -> Any:
        body = _parse_xml(self.body) if self.body else ""
        raise http_error(int(self.status), _error_message(int(self.status), self.headers, body))


def blob_error(
    status: int,
    headers: dict[str, str],
    body: Any,
    *,
    driver: Any,
    container_name: str,
    object_name: str | None,
) -> Exception:
    """The Libcloud exception for a failed blob request."""
    if status == 404:
        missing: Exception
        if error_code(headers, body) == NOT_FOUND_CONTAINER or object_name is None:
            missing = ContainerDoesNotExistError(
                value=f"container {container_name!r} does not exist",
                driver=driver,
                container_name=container_name,
            )
        else:
            missing = ObjectDoesNotExistError(
                value=f"blob {object_name!r} does not exist", driver=driver, object_name=object_name
            )
        return missing
    return http_error(status, _error_message(status, headers, body), headers)


def response_error(
    resp: Any, *, driver: Any, container_name: str, object_name: str | None, head: bool = False
) -> Exception:
    """The exception for a failed Libcloud response (``head``: a HEAD answer, which has no body)."""
    body = "" if head else resp.object
    return blob_error(
        resp.status,
        resp.headers,
        body,
        driver=driver,
        container_name=container_name,
        object_name=object_name,
    )


def streamed_error(resp: Any, **kw: Any) -> Exception:
    """The exception for a failed streamed response (reads its small error body)."""
    rr: requests.Response = resp.requests_response
    try:
        body = _parse_xml(rr.content) if rr.content else ""
    finally:
        rr.close()
    return blob_error(int(resp.status), resp.headers, body, **kw)
