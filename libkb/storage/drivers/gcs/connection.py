"""The Libcloud connection to the JSON API."""

from __future__ import annotations

from typing import Any

from libcloud.common.base import Connection

from libkb.storage.drivers.common.downloads import StreamedResponse
from libkb.storage.drivers.common.transport import LibkbHTTPConnection, NoRetry, ReleaseBodyMixin
from libkb.storage.drivers.gcs.credentials import GoogleTokenSource
from libkb.storage.drivers.gcs.endpoint import GcsEndpoint
from libkb.storage.drivers.gcs.errors import GcsJsonResponse


class GcsJsonConnection(ReleaseBodyMixin, Connection):  # type: ignore[misc]
    """Connection to the JSON API: bearer header from a token source (or none),
    exact paths, timeouts on streams, no Libcloud retries."""

    conn_class = LibkbHTTPConnection
    responseCls = GcsJsonResponse
    rawResponseCls = StreamedResponse
    retryCls = NoRetry

    def __init__(
        self,
        endpoint: GcsEndpoint,
        token_source: GoogleTokenSource | None,
        timeout: float | None = None,
    ) -> None:
        super().__init__(secure=endpoint.secure, host=endpoint.host, port=endpoint.port, timeout=timeout)
        self.base_path = endpoint.base_path
        self.token_source = token_source

    #: ``storage.kms_key_name``: the Cloud KMS key every object libkb writes is encrypted with.
    kms_key_name: str | None = None

    def request(self, action: str, params: Any = None, *args: Any, **kwargs: Any) -> Any:
        """Name the KMS key on every object write: ``kmsKeyName`` on an upload (media, multipart,
        or a resumable upload's start), ``destinationKmsKeyName`` on a copy (``rewriteTo``)."""
        if self.kms_key_name and kwargs.get("method") == "POST":
            params = dict(params or {})
            if "uploadType" in params:
                params["kmsKeyName"] = self.kms_key_name
            elif "/rewriteTo/" in action:
                params["destinationKmsKeyName"] = self.kms_key_name
        return super().request(action, params, *args, **kwargs)

    def morph_action_hook(self, action: str) -> str:
        # Paths are already percent-encoded; Libcloud's urljoin would collapse them.
        return f"{self.base_path}{action}"

    def add_default_headers(self, headers: dict[str, str]) -> dict[str, str]:
        if self.token_source is not None:
            headers.update(self.token_source.headers())
        return headers

    def __repr__(self) -> str:
        return f"<GcsJsonConnection {self.host}:{self.port}{self.base_path}>"
