"""Signed S3 requests: one Libcloud ``Connection`` per thread over one shared
pooled ``requests.Session`` (keep-alive across threads, no retries)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from http.cookiejar import DefaultCookiePolicy
from typing import Any

import libcloud
import requests
from libcloud.common.base import Connection
from libcloud.http import LibcloudConnection
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from libkb.storage.drivers.s3.addressing import S3Endpoint, bucket_address, canonical_query, quote_path
from libkb.storage.drivers.s3.credentials import CredentialProvider
from libkb.storage.drivers.s3.signing import EMPTY_SHA256, UNSIGNED_PAYLOAD, sign_v4

_USER_AGENT = f"libkb/0.1 libcloud/{libcloud.__version__} requests/{requests.__version__}"


class _PooledHTTPConnection(LibcloudConnection):  # type: ignore[misc]
    """Libcloud's transport, but on a shared pooled session and without ``urljoin``.

    ``LibcloudConnection`` makes one ``requests.Session`` per instance and
    resolves URLs with ``urljoin`` (which would rewrite ``..`` segments in
    keys); this one sends the URL as given with a (connect, read) timeout.
    """

    def __init__(self, session: requests.Session, base_url: str, timeout: float) -> None:
        # Deliberately skip LibcloudConnection.__init__: it builds a Session.
        self.host = base_url
        self.session = session
        self.timeout = timeout
        self.response: requests.Response | None = None

    def send(
        self,
        method: str,
        url: str,
        body: bytes | None,
        headers: dict[str, str],
        stream: bool,
    ) -> requests.Response:
        response = self.session.request(
            method,
            url,
            data=body,
            headers=headers,
            stream=stream,
            timeout=(self.timeout, self.timeout),
            allow_redirects=False,
            # Explicit: requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override a session's
            # verify, which would ignore the configured ca_bundle (or AWS_CA_BUNDLE).
            verify=self.session.verify,
        )
        self.response = response
        return response


def make_session(pool_size: int, ca_bundle: str | None = None) -> requests.Session:
    """One keep-alive pool for all threads; no urllib3 retries, no cookies.

    ``ca_bundle`` (``AWS_CA_BUNDLE``, as botocore reads it) verifies https
    endpoints signed by a private CA.
    """
    session = requests.Session()
    if ca_bundle:
        session.verify = ca_bundle
    adapter = HTTPAdapter(
        pool_connections=4,
        pool_maxsize=pool_size,
        max_retries=Retry(total=0, connect=0, read=0, redirect=0, status=0, other=0),
    )
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    session.headers.clear()
    session.headers.update({"User-Agent": _USER_AGENT, "Accept": "*/*", "Accept-Encoding": "identity"})
    session.trust_env = True  # proxies from HTTPS_PROXY/NO_PROXY, CA bundle env vars
    return session


class S3Connection(Connection):  # type: ignore[misc]
    """Libcloud ``Connection`` for one thread: SigV4, path or virtual-hosted addressing.

    :meth:`s3_request` takes the bucket and the key apart, so it can put the
    bucket in the host (virtual-hosted) or the path (path style) and sign
    exactly the host and encoded path it sends. Libcloud's ``request`` is
    disabled: it would add ``?Version=``, sign ``User-Agent``, retry on its own
    and decode bodies with a guessed charset.
    """

    def __init__(
        self,
        *,
        endpoint: S3Endpoint,
        region: str,
        credentials: CredentialProvider,
        path_style: bool,
        session: requests.Session,
        timeout: float,
        sign_payload: bool = False,
    ) -> None:
        super().__init__(secure=endpoint.scheme == "https", host=endpoint.hostname, timeout=timeout)
        self.endpoint = endpoint
        self.region = region
        self.path_style = path_style
        self.sign_payload = sign_payload
        self._credentials = credentials
        self.connection = _PooledHTTPConnection(session, endpoint.url, timeout)

    def __repr__(self) -> str:
        return f"<S3Connection {self.endpoint.url} region={self.region}>"

    def connect(self, host: Any = None, port: Any = None, base_url: Any = None, **kw: Any) -> None:
        """Nothing to do: the pooled session connects lazily."""

    def request(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("S3Connection sends requests with s3_request()")

    def s3_request(
        self,
        method: str,
        bucket: str,
        key: str | None = None,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        data: bytes | None = None,
        stream: bool = False,
    ) -> requests.Response:
        """Sign and send one request; the caller checks the status."""
        netloc, prefix = bucket_address(self.endpoint, bucket, path_style=self.path_style)
        path = prefix + ("/" + quote_path(key) if key is not None else "")
        if not path:
            path = "/"
        query = canonical_query(params or {})
        if data is None:
            payload_hash = EMPTY_SHA256
        elif self.sign_payload:
            payload_hash = hashlib.sha256(data).hexdigest()
        else:
            payload_hash = UNSIGNED_PAYLOAD
        send_headers = dict(headers or {})
        if data is not None:
            send_headers["Content-Length"] = str(len(data))
        signed = sign_v4(
            method=method,
            host=netloc,
            path=path,
            query=query,
            headers=send_headers,
            payload_hash=payload_hash,
            credentials=self._credentials.get(),
            region=self.region,
            now=datetime.now(UTC),
        )
        url = f"{self.endpoint.scheme}://{netloc}{path}" + (f"?{query}" if query else "")
        self.action = path
        self.method = method
        transport: _PooledHTTPConnection = self.connection
        return transport.send(method, url, data, signed, stream)
