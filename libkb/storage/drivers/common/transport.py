"""Fixes to Libcloud's HTTP transport, for a library that runs many requests
in parallel behind its own retry policy (Libcloud 3.9.1):

- :class:`LibkbHTTPConnection` passes the timeout on raw (streamed) requests
  too (Libcloud sends those with no timeout, so a stalled download hangs).
- :class:`NoRetry` switches Libcloud's own retry loop off for good (the
  adapter's tenacity policy must be the only one, or attempts multiply).
- :class:`ReleaseBodyMixin` stops a connection pinning the last sent body.

Nothing here logs, and no message built here carries a credential.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import requests
from libcloud.http import LibcloudConnection

T = TypeVar("T")


def _space_as_pct20(url: str) -> str:
    """Libcloud encodes query strings with ``quote_plus``; a literal '+' is then
    always ``%2B``, so any '+' left is a space. Send it as ``%20``, which every
    service reads as a space (Azure signs and compares decoded values)."""
    path, sep, query = url.partition("?")
    return f"{path}?{query.replace('+', '%20')}" if sep else url


class LibkbHTTPConnection(LibcloudConnection):  # type: ignore[misc]
    """Libcloud's requests-based connection, with the timeout on every request.

    ``LibcloudConnection.prepared_request`` (used for ``raw=True`` requests,
    i.e. streamed downloads) calls ``Session.send`` without a timeout and
    without the environment's proxy settings. Query
    strings send spaces as ``%20`` (see :func:`_space_as_pct20`).
    """

    def request(
        self,
        method: str,
        url: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        raw: bool = False,
        stream: bool = False,
        hooks: Any = None,
    ) -> None:
        super().request(
            method,
            _space_as_pct20(url),
            body=body,
            headers=headers,
            raw=raw,
            stream=stream,
            hooks=hooks,
        )

    def prepared_request(
        self,
        method: str,
        url: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        raw: bool = False,
        stream: bool = False,
    ) -> None:
        headers = self._normalize_headers(headers=headers)
        full = "".join([self.host, _space_as_pct20(url)])
        req = requests.Request(method, full, data=body, headers=headers)
        prepped = self.session.prepare_request(req)
        # Session.send skips the environment (HTTPS_PROXY, NO_PROXY) that
        # Session.request applies; merge it so streams use the same proxy.
        settings = self.session.merge_environment_settings(prepped.url, {}, stream, self.verification, None)
        self.response = self.session.send(prepped, timeout=self.session.timeout, **settings)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.host}>"


class NoRetry:
    """A Libcloud ``retryCls`` that never retries.

    Libcloud retries when ``LIBCLOUD_RETRY_FAILED_HTTP_REQUESTS`` is set in the
    environment; the adapter's policy (``libkb_call``) must be the only one.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __call__(self, func: Callable[..., T]) -> Callable[..., T]:
        return func


class ReleaseBodyMixin:
    """For Libcloud ``Connection`` subclasses: drop the request body after sending.

    ``Connection.request`` keeps the last body in ``self.data`` and the last
    ``requests`` response (whose prepared request holds the body) on the
    HTTP connection; with one connection per upload thread that pins one
    part per thread in memory after its upload is done.
    """

    def request(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().request(*args, **kwargs)  # type: ignore[misc]
        finally:
            self.data = None
            last = getattr(getattr(self, "connection", None), "response", None)
            prepared = getattr(last, "request", None)
            if prepared is not None:
                prepared.body = None
