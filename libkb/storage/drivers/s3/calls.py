"""What the S3 helper modules (listing, download, multipart, copy) need of the
driver, handed to them as one small value instead of the driver itself, so
they depend on four callables and not on the driver's internals."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from libcloud.storage.base import Object

from libkb.storage.drivers.s3.errors import error_from_response


@dataclass(frozen=True, slots=True)
class S3Calls:
    """The driver's request seam, retry policy and metadata lookup, for one operation.

    The driver makes a new one per operation, so a policy swapped in after
    construction (the adapter sets ``libkb_call``) is the one used.
    """

    #: Sign and send one request: ``send(method, bucket, key=None, *, params,
    #: headers, data, stream)``; the caller checks the status.
    send: Callable[..., requests.Response]
    #: Run one repeatable unit of work under the adapter's retry/breaker policy.
    call: Callable[[Callable[[], Any]], Any]
    #: ``head(bucket, key)``: the object's metadata; ObjectDoesNotExistError if missing.
    head: Callable[[str, str], Object]
    #: The driver, named in the Libcloud exceptions raised (never called).
    owner: object

    def fail(
        self,
        response: requests.Response,
        *,
        bucket: str,
        key: str | None,
        operation: str,
        missing: str | None = None,
    ) -> Exception:
        """The exception for a failed answer, which this closes (see
        :func:`.errors.error_from_response`; a HEAD answer has no body to read)."""
        body = b"" if response.request.method == "HEAD" else response.content
        response.close()
        return error_from_response(
            response.status_code,
            response.headers,
            body,
            driver=self.owner,
            bucket=bucket,
            key=key,
            operation=operation,
            missing=missing,
        )
