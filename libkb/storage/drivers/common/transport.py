"""HTTP plumbing shared by libkb's Libcloud drivers (Azure, GCS).

Libcloud 3.9.1 gets a few things wrong for a library that runs many requests
in parallel behind its own retry policy; this module fixes them in one place:

- :class:`LibkbHTTPConnection` passes the timeout on raw (streamed) requests
  too (Libcloud sends those with no timeout, so a stalled download hangs).
- :class:`NoRetry` switches Libcloud's own retry loop off for good (the
  adapter's tenacity policy must be the only one, or attempts multiply).
- :class:`PerThreadConnectionMixin` gives every thread its own Libcloud
  ``Connection`` (they keep per-request state and a ``requests.Session``, so
  sharing one between threads mixes up requests).
- :func:`http_error` turns an HTTP failure into the exceptions the adapter
  maps: ``InvalidCredsError`` for 401/403, else ``BaseHTTPError`` with ``.code``.
- :func:`rechunk`, :func:`run_parallel` and :func:`iter_response` support
  bounded-memory streaming both ways.

Nothing here logs, and no message built here carries a credential.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import requests
from libcloud.common.exceptions import exception_from_message
from libcloud.common.types import InvalidCredsError
from libcloud.http import LibcloudConnection

T = TypeVar("T")

#: Chunk size for downloads when the caller gives none: big enough that the
#: per-chunk Python overhead is negligible.
DEFAULT_DOWNLOAD_CHUNK = 1024 * 1024

#: Longest service error text kept in an exception message.
MAX_ERROR_TEXT = 300


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


class PerThreadConnectionMixin:
    """Gives each thread its own Libcloud connection (and so its own HTTP session).

    Libcloud's ``Connection`` stores the current action, method and context on
    itself and its ``LibcloudConnection`` keeps the last response, so one
    instance must never serve two threads at once. Subclasses implement
    :meth:`_libkb_new_connection`; ``self.connection`` then returns the calling
    thread's instance, created on first use. Connections of finished threads
    are dropped with the thread (only weak references are kept here).
    """

    def _libkb_new_connection(self) -> Any:
        raise NotImplementedError

    def _libkb_local(self) -> threading.local:
        local: threading.local | None = self.__dict__.get("_libkb_tls")
        if local is None:
            local = self.__dict__.setdefault("_libkb_tls", threading.local())
        assert local is not None
        return local

    def _libkb_registry(self) -> weakref.WeakSet[Any]:
        reg: weakref.WeakSet[Any] | None = self.__dict__.get("_libkb_conns")
        if reg is None:
            reg = self.__dict__.setdefault("_libkb_conns", weakref.WeakSet())
        assert reg is not None
        return reg

    @property
    def connection(self) -> Any:
        local = self._libkb_local()
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = self._libkb_new_connection()
            local.conn = conn
            self._libkb_registry().add(conn)
        return conn

    @connection.setter
    def connection(self, value: Any) -> None:
        self._libkb_local().conn = value
        if value is not None:
            self._libkb_registry().add(value)

    def _libkb_close_connections(self) -> None:
        """Close the HTTP sessions of every thread's connection."""
        for conn in list(self._libkb_registry()):
            inner = getattr(conn, "connection", None)
            session = getattr(inner, "session", None)
            if session is not None:
                session.close()
        self._libkb_registry().clear()
        self.__dict__.pop("_libkb_tls", None)


def clip_text(text: str | bytes | None, limit: int = MAX_ERROR_TEXT) -> str:
    """First line of a service message, shortened, for exception texts."""
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def http_error(
    status: int,
    message: str,
    headers: Mapping[str, str] | None = None,
    *,
    driver: Any = None,
) -> Exception:
    """The exception for a failed HTTP response.

    401/403 become ``InvalidCredsError`` (with ``.code``/``.http_code`` set to
    the real status); everything else ``BaseHTTPError`` carrying ``.code``
    (``RateLimitReachedError`` for 429), so the adapter can tell transient
    (429/5xx) from permanent failures.
    """
    text = f"HTTP {status}: {message}" if message else f"HTTP {status}"
    if status in (401, 403):
        err: Exception = InvalidCredsError(text, driver=driver)
        err.http_code = status  # type: ignore[attr-defined]
        err.code = status  # type: ignore[attr-defined]
        return err
    exc: Exception = exception_from_message(code=status, message=text, headers=dict(headers or {}))
    if status == 429:
        exc.message = text  # type: ignore[attr-defined]
        exc.args = (text,)
    return exc


def rechunk(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """Regroup byte chunks into pieces of exactly ``size`` bytes (the last may be shorter).

    Holds at most ``size`` bytes plus the caller's current chunk.
    """
    if size <= 0:
        raise ValueError("chunk size must be positive")
    buf = bytearray()
    for chunk in chunks:
        view = memoryview(chunk).cast("B")
        n = len(view)
        pos = 0
        if buf:
            take = min(size - len(buf), n)
            buf += view[:take]
            pos = take
            if len(buf) == size:
                yield bytes(buf)
                buf = bytearray()
        while n - pos >= size:
            if pos == 0 and n == size and isinstance(chunk, bytes):
                yield chunk
            else:
                yield bytes(view[pos : pos + size])
            pos += size
        if pos < n:
            buf += view[pos:]
    if buf:
        yield bytes(buf)


def run_parallel(
    executor: Executor,
    items: Iterable[T],
    work: Callable[[int, T], Any],
    max_in_flight: int,
    abort: threading.Event,
) -> list[Any]:
    """Run ``work(index, item)`` for each item with at most ``max_in_flight`` running.

    Items are pulled from ``items`` only when a slot is free, so memory stays
    bounded. On the first failure (in a worker or in ``items`` itself) ``abort``
    is set, queued work is cancelled, running work is awaited, and the error
    is raised. Returns the results in item order.
    """
    pending: set[Future[Any]] = set()
    index_of: dict[Future[Any], int] = {}
    results: dict[int, Any] = {}

    def collect(done: Iterable[Future[Any]]) -> None:
        for fut in done:
            pending.discard(fut)
            results[index_of.pop(fut)] = fut.result()

    try:
        source = iter(items)
        index = 0
        while True:
            # Wait for a free slot *before* pulling the next item, so at most
            # max_in_flight items (plus the one being assembled) are in memory.
            while len(pending) >= max(1, max_in_flight):
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                collect(done)
            try:
                item = next(source)
            except StopIteration:
                break
            fut = executor.submit(work, index, item)
            index_of[fut] = index
            pending.add(fut)
            index += 1
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            collect(done)
    except BaseException:
        abort.set()
        for fut in pending:
            fut.cancel()
        wait(pending)
        raise
    return [results[i] for i in range(len(results))]


def iter_response(
    response: requests.Response,
    chunk_size: int | None,
    *,
    skip: int = 0,
    limit: int | None = None,
) -> Iterator[bytes]:
    """Yield a streamed body in big chunks, optionally dropping the first ``skip``
    bytes and stopping after ``limit`` bytes (for servers that answer a range
    request with the whole object). Closes the response when done or abandoned.
    """
    size = chunk_size or DEFAULT_DOWNLOAD_CHUNK
    try:
        for chunk in response.iter_content(size):
            if not chunk:
                continue
            if skip:
                if len(chunk) <= skip:
                    skip -= len(chunk)
                    continue
                chunk = chunk[skip:]
                skip = 0
            if limit is not None:
                if len(chunk) >= limit:
                    if limit:
                        yield chunk[:limit]
                    return
                limit -= len(chunk)
            yield chunk
    finally:
        response.close()


def empty_stream() -> Iterator[bytes]:
    """An iterator with no chunks (empty ranges)."""
    return iter(())


def http_date_to_ms(value: str | None) -> int | None:
    """RFC 1123 HTTP date (``Last-Modified``) to epoch milliseconds."""
    if not value:
        return None
    dt = parsedate_to_datetime(value)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def rfc3339_to_ms(value: str | None) -> int | None:
    """RFC 3339 timestamp (``2024-01-02T03:04:05.123456789Z``) to epoch milliseconds."""
    if not value:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # datetime takes at most 6 fractional digits; servers may send 9.
    if "." in text:
        head, _, rest = text.partition(".")
        digits = ""
        for ch in rest:
            if not ch.isdigit():
                break
            digits += ch
        tz = rest[len(digits) :]
        text = f"{head}.{(digits + '000000')[:6]}{tz}"
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def redact_url_error(exc: requests.RequestException, secret: str) -> requests.RequestException:
    """The same requests exception type with ``secret`` (e.g. an upload session id)
    removed from its message, for exceptions whose text includes the request URL."""
    text = str(exc).replace(secret, "<redacted>") if secret else str(exc)
    return type(exc)(text)
