"""S3 and S3-compatible object storage (AWS, MinIO, SeaweedFS, Ceph, Garage).

:class:`S3Driver` is a Libcloud ``StorageDriver`` that implements libkb's driver
contract (:mod:`libkb.storage.drivers.base`). It does not build on Libcloud
3.9.1's ``S3StorageDriver`` because of defects measured there (DESIGN.md):
path-style only, ``?Version=`` added to GETs (SeaweedFS answers 501), non-AWS
regions rejected, ``User-Agent`` signed (moto rejects it), every non-200 on HEAD
reported as "does not exist", sequential 5 MiB multipart uploads, response
bodies decoded with a guessed charset, and no copy/conditional put.

What it keeps from Libcloud: the driver/connection class shapes, ``Container``
and ``Object``, and the exception classes the adapter maps
(``ObjectDoesNotExistError``, ``ContainerDoesNotExistError``,
``InvalidCredsError``, ``BaseHTTPError``/``RateLimitReachedError`` with the HTTP
status in ``.code``, ``LibcloudError``).

Design notes:

- Signing is a pure function (:func:`sign_v4`) over exactly the bytes sent: the
  URL path and query are encoded once, by :func:`quote_path` and
  :func:`canonical_query`, and used both for the wire and for the signature.
- Libcloud ``Connection`` objects keep per-request state and are not
  thread-safe, so each thread gets its own :class:`S3Connection`; all of them
  share one pooled ``requests.Session`` (keep-alive across threads).
- No retries here: Libcloud's retry wrapper and urllib3's are off. The adapter
  retries whole calls; inside long operations (multipart parts, resumed
  downloads) the driver calls ``self.libkb_call`` per repeatable request.
- Secrets never reach ``repr``, logs or exception messages: credentials live in
  a provider object whose ``repr`` hides them, and error messages carry only
  the service's error code and message.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import ipaddress
import logging
import os
import re
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import partial
from http.cookiejar import DefaultCookiePolicy
from typing import Any, Protocol
from urllib.parse import quote, unquote, unquote_plus, urlsplit
from xml.etree import ElementTree
from xml.sax.saxutils import escape as xml_escape

import libcloud
import requests
import urllib3.exceptions
from libcloud.common.base import Connection
from libcloud.common.exceptions import BaseHTTPError, RateLimitReachedError
from libcloud.common.types import InvalidCredsError, LibcloudError
from libcloud.http import LibcloudConnection
from libcloud.storage.base import Container, Object, StorageDriver
from libcloud.storage.types import ContainerDoesNotExistError, ObjectDoesNotExistError
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from libkb.errors import ConfigError
from libkb.storage.drivers.base import LibkbDriverMixin
from libkb.storage.errors import BackendError, PermissionDeniedError
from libkb.storage.settings import MiB, ResilienceConfig, S3Config, TransferConfig

__all__ = [
    "Credentials",
    "S3Connection",
    "S3Driver",
    "S3Endpoint",
    "build_s3_driver",
    "canonical_query",
    "error_from_response",
    "quote_path",
    "resolve_credentials",
    "resolve_endpoint",
    "resolve_region",
    "sign_v4",
]

log = logging.getLogger(__name__)

GiB = 1024 * MiB
DEFAULT_REGION = "us-east-1"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
#: S3 limits: parts per upload, smallest non-final part, largest single PUT/copy.
MAX_PARTS = 10_000
MIN_PART_SIZE = 5 * MiB
MAX_SINGLE_PUT = 5 * GiB
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
_DNS_BUCKET = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$")
_USER_AGENT = f"libkb/0.1 libcloud/{libcloud.__version__} requests/{requests.__version__}"


# --------------------------------------------------------------------------
# Pure helpers: addressing, encoding, signing, parsing (unit-tested, no I/O)
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class S3Endpoint:
    """Where requests go: scheme, ``host[:port]`` as sent in ``Host``, base path."""

    scheme: str
    netloc: str
    base_path: str = ""

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.netloc}{self.base_path}"

    @property
    def hostname(self) -> str:
        return urlsplit(f"//{self.netloc}").hostname or ""


def resolve_region(cfg_region: str | None, env: Mapping[str, str]) -> str:
    """Region for signing: config, then AWS_REGION / AWS_DEFAULT_REGION, then us-east-1.

    Any name is accepted (``garage``, ``minio``...): S3-compatible servers use
    it only in the signature scope.
    """
    for value in (cfg_region, env.get("AWS_REGION"), env.get("AWS_DEFAULT_REGION")):
        if value and value.strip():
            return value.strip()
    return DEFAULT_REGION


def resolve_endpoint(endpoint: str | None, region: str, *, allow_http: bool) -> S3Endpoint:
    """Parse ``cfg.endpoint`` or derive AWS's regional endpoint.

    ``http://`` is refused unless ``allow_http`` (never a silent downgrade); a
    scheme-less ``host:port`` means https.
    """
    if not endpoint:
        suffix = ".amazonaws.com.cn" if region.startswith("cn-") else ".amazonaws.com"
        return S3Endpoint("https", f"s3.{region}{suffix}")
    text = endpoint.strip()
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ConfigError(
            f"endpoint scheme must be http or https, not {parts.scheme!r}", key="storage.endpoint"
        )
    if scheme == "http" and not allow_http:
        raise ConfigError(
            "endpoint uses plain http; set allow_http: true to permit unencrypted traffic",
            key="storage.endpoint",
        )
    if not parts.hostname:
        raise ConfigError(f"endpoint {endpoint!r} has no host", key="storage.endpoint")
    if parts.username or parts.password:
        raise ConfigError(
            "endpoint must not contain credentials; use access_key/secret_key",
            key="storage.endpoint",
        )
    if parts.query or parts.fragment:
        raise ConfigError("endpoint must not have a query or fragment", key="storage.endpoint")
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    port = parts.port
    default_port = 443 if scheme == "https" else 80
    netloc = host if port in (None, default_port) else f"{host}:{port}"
    base_path = parts.path.rstrip("/")
    return S3Endpoint(scheme, netloc, quote(unquote(base_path), safe="/~"))


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def bucket_address(endpoint: S3Endpoint, bucket: str, *, path_style: bool) -> tuple[str, str]:
    """``(netloc, path_prefix)`` for a bucket.

    Virtual-hosted (``bucket.host``) unless ``path_style``, or the bucket name
    is not a DNS label (uppercase, ``_``, dots over https which break the TLS
    wildcard), or the endpoint is an IP address; those fall back to path style,
    as the AWS SDKs do.
    """
    quoted_bucket = quote(bucket, safe="")
    path_prefix = f"{endpoint.base_path}/{quoted_bucket}"
    if path_style or _is_ip(endpoint.hostname) or endpoint.hostname == "localhost":
        return endpoint.netloc, path_prefix
    if not _DNS_BUCKET.match(bucket) or ".." in bucket or _is_ip(bucket):
        return endpoint.netloc, path_prefix
    if "." in bucket and endpoint.scheme == "https":
        return endpoint.netloc, path_prefix
    return f"{bucket}.{endpoint.netloc}", endpoint.base_path


def quote_path(key: str) -> str:
    """Percent-encode an object key for the URL path: the form S3 signs.

    Everything but unreserved characters and ``/`` is encoded (UTF-8), so
    ``+ & ? # % ~`` and spaces survive the trip.
    """
    return quote(key, safe="/~")


def canonical_query(params: Mapping[str, str]) -> str:
    """SigV4 canonical query string; also sent verbatim on the wire."""
    pairs = sorted((quote(k, safe="~"), quote(str(v), safe="~")) for k, v in params.items())
    return "&".join(f"{k}={v}" for k, v in pairs)


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


@dataclass(frozen=True, slots=True)
class Credentials:
    """One set of AWS-style credentials. ``repr`` never shows the secret or token."""

    access_key: str
    secret_key: str = field(repr=False)
    token: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        masked = self.access_key[:4] + "..." if len(self.access_key) > 8 else "***"
        return f"Credentials(access_key={masked!r})"


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


def _xml_root(body: bytes) -> ElementTree.Element | None:
    if not body or not body.lstrip().startswith(b"<"):
        return None
    try:
        return ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return None


def _ns(root: ElementTree.Element) -> str:
    tag = root.tag
    return tag[: tag.index("}") + 1] if tag.startswith("{") else ""


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_error_body(body: bytes) -> tuple[str | None, str | None]:
    """``(Code, Message)`` of an S3 ``<Error>`` document, or ``(None, None)``."""
    root = _xml_root(body)
    if root is None or _local(root.tag) != "Error":
        return None, None
    ns = _ns(root)
    code = root.findtext(ns + "Code")
    message = root.findtext(ns + "Message")
    return (code or None), (message or None)


def etag_unquoted(value: str | None) -> str | None:
    """The e-tag without quotes (and without a weak ``W/`` prefix), or None."""
    if not value:
        return None
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"') or None


def http_date_to_ms(value: str | None) -> int:
    """RFC 7231 date (``Last-Modified``) to epoch milliseconds; 0 if absent/invalid."""
    if not value:
        return 0
    try:
        dt = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return 0
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return calendar.timegm(dt.utctimetuple()) * 1000 + dt.microsecond // 1000


def iso_to_ms(value: str | None) -> int:
    """ISO-8601 (listing ``LastModified``, e.g. ``2024-05-01T12:34:56.789Z``) to epoch ms."""
    if not value:
        return 0
    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return 0
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return calendar.timegm(dt.utctimetuple()) * 1000 + dt.microsecond // 1000


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
        exc: Exception = InvalidCredsError(value=text, driver=driver)
        exc.http_code = status  # type: ignore[attr-defined]
        exc.code = status  # type: ignore[attr-defined]
        return exc
    bucket_region = lower_headers.get("x-amz-bucket-region")
    if status in (301, 307, 400) and bucket_region:
        text += f" (the bucket is in region {bucket_region!r}; set storage.region)"
    if status == 429:
        rate: Exception = RateLimitReachedError(headers=lower_headers)
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


@dataclass(slots=True)
class ListPage:
    """One ListObjectsV2 page: ``(key, size, etag, mtime_ms)`` entries and the next token."""

    entries: list[tuple[str, int, str | None, int]]
    truncated: bool
    next_token: str | None


def parse_list_v2(body: bytes) -> ListPage:
    """Parse a ListObjectsV2 result; decodes keys when the server url-encoded them.

    Keys are decoded only if the response says ``EncodingType=url`` (a server
    that ignored the request parameter returns raw keys, which must not be
    decoded again).
    """
    root = _xml_root(body)
    if root is None or _local(root.tag) != "ListBucketResult":
        raise LibcloudError(value="S3 list: unexpected response (not a ListBucketResult)")
    ns = _ns(root)
    encoded = (root.findtext(ns + "EncodingType") or "").lower() == "url"
    entries = []
    for item in root.iterfind(ns + "Contents"):
        raw_key = item.findtext(ns + "Key") or ""
        name = unquote_plus(raw_key) if encoded else raw_key
        size = int(item.findtext(ns + "Size") or 0)
        etag = etag_unquoted(item.findtext(ns + "ETag"))
        mtime = iso_to_ms(item.findtext(ns + "LastModified"))
        entries.append((name, size, etag, mtime))
    truncated = (root.findtext(ns + "IsTruncated") or "false").strip().lower() == "true"
    token = root.findtext(ns + "NextContinuationToken") or None
    return ListPage(entries, truncated, token)


def complete_multipart_xml(etags: list[str]) -> bytes:
    """Body of CompleteMultipartUpload; part numbers are the 1-based positions."""
    parts = "".join(
        f"<Part><PartNumber>{n}</PartNumber><ETag>{xml_escape(etag)}</ETag></Part>"
        for n, etag in enumerate(etags, start=1)
    )
    return f"<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>".encode()


def copy_source(bucket: str, key: str) -> str:
    """``x-amz-copy-source`` value: URL-encoded ``/bucket/key``."""
    return "/" + quote(bucket, safe="") + "/" + quote_path(key)


def plan_parts(size: int, part_size: int) -> list[tuple[int, int]]:
    """``(start, end_exclusive)`` ranges covering ``size`` bytes in ``part_size`` steps."""
    return [(start, min(start + part_size, size)) for start in range(0, size, part_size)]


# --------------------------------------------------------------------------
# Credentials
# --------------------------------------------------------------------------


class CredentialProvider(Protocol):
    """Hands out current credentials; called before every signed request."""

    source: str

    def get(self) -> Credentials: ...


class StaticCredentials:
    """Credentials from config or environment."""

    def __init__(self, credentials: Credentials, source: str) -> None:
        self._credentials = credentials
        self.source = source

    def get(self) -> Credentials:
        return self._credentials

    def __repr__(self) -> str:
        return f"<StaticCredentials from {self.source}>"


class BotocoreCredentials:
    """botocore's chain (profiles, SSO, web identity/IRSA, ECS, instance roles).

    ``get_frozen_credentials`` refreshes expiring credentials under botocore's
    own lock, so this is safe to call from every thread before each request.
    """

    def __init__(self, botocore_credentials: Any) -> None:
        self._creds = botocore_credentials
        self.source = f"botocore ({getattr(botocore_credentials, 'method', 'chain')})"

    def get(self) -> Credentials:
        try:
            frozen = self._creds.get_frozen_credentials()
        except Exception as exc:  # botocore raises many types while refreshing
            raise BackendError(
                f"could not refresh AWS credentials from {self.source}: {type(exc).__name__}",
                backend="s3",
                hint="check the AWS profile / role configuration",
                transient=True,
            ) from None
        return Credentials(frozen.access_key, frozen.secret_key, frozen.token or None)

    def __repr__(self) -> str:
        return f"<BotocoreCredentials from {self.source}>"


_NO_CREDENTIALS_HINT = (
    "set storage.access_key and storage.secret_key (and session_token for temporary "
    "credentials), or the AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and "
    "AWS_SESSION_TOKEN) environment variables, or install libkb[aws] to use AWS "
    "profiles, web identity (IRSA) or instance roles"
)


def _load_botocore_credentials() -> Any:
    try:
        import botocore.session
    except ImportError:
        return None
    try:
        return botocore.session.get_session().get_credentials()
    except Exception as exc:  # a broken profile file, an unreachable STS...
        raise PermissionDeniedError(
            f"the AWS credential chain (botocore) failed: {type(exc).__name__}",
            backend="s3",
            hint="check AWS_PROFILE and the AWS config/credentials files, or set "
            "storage.access_key and storage.secret_key",
        ) from None


def resolve_credentials(
    cfg: S3Config,
    env: Mapping[str, str],
    botocore_loader: Callable[[], Any] = _load_botocore_credentials,
) -> CredentialProvider:
    """Config, then environment, then botocore's chain; else PermissionDeniedError.

    A half-given pair (access key without secret) is an error, not a reason to
    fall through to the next source with other credentials.
    """
    sources = (
        ("config", cfg.access_key, cfg.secret_key, cfg.session_token, "storage."),
        (
            "environment",
            env.get("AWS_ACCESS_KEY_ID"),
            env.get("AWS_SECRET_ACCESS_KEY"),
            env.get("AWS_SESSION_TOKEN"),
            "",
        ),
    )
    for source, access, secret, token, scope in sources:
        if access and secret:
            return StaticCredentials(Credentials(access, secret, token or None), source)
        if access or secret:
            have, lack = ("access_key", "secret_key") if access else ("secret_key", "access_key")
            if source == "environment":
                have = "AWS_ACCESS_KEY_ID" if access else "AWS_SECRET_ACCESS_KEY"
                lack = "AWS_SECRET_ACCESS_KEY" if access else "AWS_ACCESS_KEY_ID"
            raise PermissionDeniedError(
                f"{scope}{have} is set but {scope}{lack} is not",
                backend="s3",
                hint="set both, or neither to use the next credential source",
            )
    chain = botocore_loader()
    if chain is not None:
        return BotocoreCredentials(chain)
    raise PermissionDeniedError("no S3 credentials found", backend="s3", hint=_NO_CREDENTIALS_HINT)


# --------------------------------------------------------------------------
# Connection: per thread, shared pooled session
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# Upload buffering
# --------------------------------------------------------------------------


class _ChunkBuffer:
    """FIFO of byte chunks that hands out exact-size parts with one copy each."""

    def __init__(self) -> None:
        self._pieces: deque[memoryview] = deque()
        self.size = 0

    def add(self, chunk: bytes | bytearray | memoryview) -> None:
        if isinstance(chunk, bytes):
            view = memoryview(chunk)
        elif isinstance(chunk, (bytearray, memoryview)):
            # Copy: the producer may reuse a mutable buffer after yielding it.
            view = memoryview(bytes(chunk))
        else:
            raise TypeError(f"upload chunks must be bytes-like, not {type(chunk).__name__}")
        if view.nbytes:
            self._pieces.append(view)
            self.size += view.nbytes

    def take(self, n: int) -> bytes:
        out: list[memoryview] = []
        need = n
        while need:
            piece = self._pieces[0]
            if piece.nbytes <= need:
                out.append(self._pieces.popleft())
                need -= piece.nbytes
            else:
                out.append(piece[:need])
                self._pieces[0] = piece[need:]
                need = 0
        self.size -= n
        if len(out) == 1:
            whole = out[0].obj
            if isinstance(whole, bytes) and len(whole) == n:
                return whole  # a producer chunk of exactly part size: no copy
        return b"".join(out)


# --------------------------------------------------------------------------
# The driver
# --------------------------------------------------------------------------


def _close_pool(pool: ThreadPoolExecutor | None, session: requests.Session) -> None:
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)
    session.close()


class S3Driver(LibkbDriverMixin, StorageDriver):  # type: ignore[misc]
    """Libcloud storage driver for S3 and S3-compatible servers (see module doc)."""

    name = "S3"
    website = "https://aws.amazon.com/s3/"
    hash_type = "md5"
    supports_chunked_encoding = False
    libkb_name = "s3"
    connectionCls = S3Connection

    #: Largest source a single CopyObject may copy (S3's limit); bigger sources
    #: are copied with UploadPartCopy. Instance-overridable for tests.
    max_single_copy_bytes: int = MAX_SINGLE_PUT
    #: Smallest part of a multipart copy (server-side, so large parts are cheap).
    copy_part_size: int = 512 * MiB

    def __init__(
        self,
        *,
        endpoint: S3Endpoint,
        region: str,
        credentials: CredentialProvider,
        path_style: bool = False,
        resilience: ResilienceConfig | None = None,
        transfer: TransferConfig | None = None,
        sign_payload: bool = False,
        ca_bundle: str | None = None,
    ) -> None:
        # BaseDriver.__init__ is not called: it would keep key/secret as plain
        # attributes and build one shared (thread-unsafe) connection.
        self.key = None
        self.secret = None
        self.secure = endpoint.scheme == "https"
        self.api_version = None
        self.region = region
        self.endpoint = endpoint
        self.path_style = path_style
        self.sign_payload = sign_payload
        self.credential_source = credentials.source
        self._credentials = credentials
        self._resilience = resilience or ResilienceConfig()
        transfer = transfer or TransferConfig()
        if transfer.part_size < MIN_PART_SIZE:
            raise ConfigError(
                f"part_size must be at least {MIN_PART_SIZE} bytes (5 MiB) for S3",
                key="storage.transfer.part_size",
            )
        if transfer.part_size > MAX_SINGLE_PUT:
            raise ConfigError("part_size must be at most 5 GiB", key="storage.transfer.part_size")
        if transfer.max_concurrency < 1:
            raise ConfigError("max_concurrency must be at least 1", key="storage.transfer.max_concurrency")
        self._transfer = transfer
        self._single_put_limit = min(transfer.single_put_threshold, MAX_SINGLE_PUT)
        self._session = make_session(max(16, 4 * transfer.max_concurrency), ca_bundle)
        self._local = threading.local()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._closed = False
        self._finalizer = weakref.finalize(self, _close_pool, None, self._session)

    def __repr__(self) -> str:
        style = "path" if self.path_style else "virtual"
        return f"<S3Driver {self.endpoint.url} region={self.region} addressing={style}>"

    # -- plumbing ---------------------------------------------------------

    @property
    def connection(self) -> S3Connection:
        """This thread's connection (Libcloud connections are not thread-safe)."""
        conn: S3Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise LibcloudError(value="S3 driver is closed", driver=self)
            conn = S3Connection(
                endpoint=self.endpoint,
                region=self.region,
                credentials=self._credentials,
                path_style=self.path_style,
                session=self._session,
                timeout=self._resilience.timeout_secs,
                sign_payload=self.sign_payload,
            )
            conn.driver = self
            self._local.conn = conn
        return conn

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._closed:
                raise LibcloudError(value="S3 driver is closed", driver=self)
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=max(2, 2 * self._transfer.max_concurrency),
                    thread_name_prefix="libkb-s3",
                )
                self._finalizer.detach()
                self._finalizer = weakref.finalize(self, _close_pool, self._pool, self._session)
            return self._pool

    def _request(
        self,
        method: str,
        bucket: str,
        key: str | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        return self.connection.s3_request(method, bucket, key, **kwargs)

    def _fail(
        self,
        response: requests.Response,
        *,
        bucket: str,
        key: str | None,
        operation: str,
        missing: str | None = None,
    ) -> Exception:
        body = b"" if response.request.method == "HEAD" else response.content
        response.close()
        return error_from_response(
            response.status_code,
            response.headers,
            body,
            driver=self,
            bucket=bucket,
            key=key,
            operation=operation,
            missing=missing,
        )

    def _object_from_headers(self, container: Container, name: str, headers: Mapping[str, str]) -> Object:
        length = headers.get("content-length")
        size = int(length) if length is not None else 0
        raw_etag = headers.get("etag")
        extra: dict[str, Any] = {
            "mtime_ms": http_date_to_ms(headers.get("last-modified")),
            "etag": raw_etag,
            "last_modified": headers.get("last-modified"),
            "content_type": headers.get("content-type"),
        }
        meta = {k[len("x-amz-meta-") :]: v for k, v in headers.items() if k.lower().startswith("x-amz-meta-")}
        return Object(
            name=name,
            size=size,
            hash=etag_unquoted(raw_etag),
            extra=extra,
            meta_data=meta,
            container=container,
            driver=self,
        )

    # -- containers ---------------------------------------------------------

    def get_container(self, container_name: str) -> Container:
        """HEAD the bucket. 404 -> ContainerDoesNotExistError.

        A 403 still returns the container, as Libcloud does: HEAD bucket needs
        s3:ListBucket, which object-only policies lack; real auth failures show
        on the first object call.
        """
        response = self._request("HEAD", container_name)
        if response.status_code == 403:
            response.close()
        elif response.status_code >= 300:
            raise self._fail(response, bucket=container_name, key=None, operation="head", missing="bucket")
        return Container(name=container_name, extra={}, driver=self)

    def iterate_containers(self) -> Iterator[Container]:
        """ListBuckets (not used by the adapter; handy for tools and tests)."""
        response = self._request("GET", "")
        if response.status_code != 200:
            raise self._fail(response, bucket="", key=None, operation="list buckets")
        root = _xml_root(response.content)
        if root is None:
            return
        ns = _ns(root)
        for item in root.iterfind(f"{ns}Buckets/{ns}Bucket"):
            created = item.findtext(ns + "CreationDate")
            yield Container(
                name=item.findtext(ns + "Name") or "",
                extra={"creation_date": created},
                driver=self,
            )

    def create_container(self, container_name: str) -> Container:
        """Create a bucket (tests, benchmarks); sends the region unless us-east-1."""
        body = None
        if self.region != DEFAULT_REGION:
            body = (
                "<CreateBucketConfiguration><LocationConstraint>"
                f"{xml_escape(self.region)}</LocationConstraint></CreateBucketConfiguration>"
            ).encode()
        response = self._request("PUT", container_name, data=body)
        if response.status_code != 200:
            raise self._fail(response, bucket=container_name, key=None, operation="create bucket")
        response.close()
        return Container(name=container_name, extra={}, driver=self)

    def delete_container(self, container: Container) -> bool:
        response = self._request("DELETE", container.name)
        if response.status_code not in (200, 204):
            raise self._fail(
                response,
                bucket=container.name,
                key=None,
                operation="delete bucket",
                missing="bucket",
            )
        response.close()
        return True

    # -- objects: metadata, listing, delete ----------------------------------

    def get_object(self, container_name: str, object_name: str) -> Object:
        """One HEAD. On 404 a second HEAD on the bucket tells a missing object from
        a missing bucket (HEAD responses have no error body to say which)."""
        response = self._request("HEAD", container_name, object_name)
        response.close()
        status = response.status_code
        container = Container(name=container_name, extra={}, driver=self)
        if status == 200:
            return self._object_from_headers(container, object_name, response.headers)
        if status == 404:
            self.get_container(container_name)  # raises ContainerDoesNotExistError
            missing = "object"
        else:
            missing = None
        raise error_from_response(
            status,
            response.headers,
            b"",
            driver=self,
            bucket=container_name,
            key=object_name,
            operation="head",
            missing=missing,
        )

    def iterate_container_objects(
        self, container: Container, prefix: str | None = None, ex_prefix: str | None = None
    ) -> Iterator[Object]:
        """Lazily page through ListObjectsV2 (1000 keys per request) under a plain prefix."""
        prefix = prefix if prefix is not None else ex_prefix
        bucket = container.name
        params: dict[str, str] = {"list-type": "2", "encoding-type": "url", "max-keys": "1000"}
        if prefix:
            params["prefix"] = prefix
        last_key: str | None = None
        while True:
            response = self._request("GET", bucket, params=params)
            if response.status_code != 200:
                raise self._fail(
                    response, bucket=bucket, key=prefix or "", operation="list", missing="bucket"
                )
            page = parse_list_v2(response.content)
            for name, size, etag, mtime in page.entries:
                last_key = name
                yield Object(
                    name=name,
                    size=size,
                    hash=etag,
                    extra={"mtime_ms": mtime, "etag": etag},
                    meta_data={},
                    container=container,
                    driver=self,
                )
            if not page.truncated:
                return
            params = dict(params)
            if page.next_token:
                params["continuation-token"] = page.next_token
                params.pop("start-after", None)
            elif last_key is not None:
                params["start-after"] = last_key
            else:
                raise LibcloudError(
                    value=f"S3 list s3://{bucket}: truncated page without a continuation token",
                    driver=self,
                )

    def delete_object(self, obj: Object) -> bool:
        """DELETE; S3 answers 204 whether or not the key existed."""
        bucket = obj.container.name
        response = self._request("DELETE", bucket, obj.name)
        if response.status_code not in (200, 204):
            raise self._fail(response, bucket=bucket, key=obj.name, operation="delete", missing="object")
        response.close()
        return True

    # -- downloads -------------------------------------------------------------

    def _open_get(
        self,
        bucket: str,
        key: str,
        start: int = 0,
        end: int | None = None,
        if_match: str | None = None,
    ) -> requests.Response | None:
        """GET (a range of) an object, streaming. None when the range is empty (416)."""
        headers: dict[str, str] = {}
        ranged = start > 0 or end is not None
        if ranged:
            headers["Range"] = f"bytes={start}-" + (str(end - 1) if end is not None else "")
        if if_match:
            headers["If-Match"] = f'"{if_match}"'
        response = self._request("GET", bucket, key, headers=headers, stream=True)
        status = response.status_code
        if status == 416:
            response.close()
            return None
        if status == 200 or (status == 206 and ranged):
            if status == 200 and start > 0:
                # The server ignored the Range header: never return wrong bytes.
                response.close()
                raise LibcloudError(
                    value=f"S3 get s3://{bucket}/{key}: server ignored the Range header",
                    driver=self,
                )
            return response
        raise self._fail(response, bucket=bucket, key=key, operation="get", missing="object")

    def _body_chunks(
        self,
        response: requests.Response | None,
        bucket: str,
        key: str,
        start: int,
        end: int | None,
        chunk_size: int,
    ) -> Iterator[bytes]:
        """Yield the body, at most up to ``end``.

        On a connection failure mid-stream, resume with a ranged GET pinned to
        the same e-tag (each resume goes through ``libkb_call``), at most
        ``max_attempts - 1`` times per stream.
        """
        if response is None:
            return
        etag = etag_unquoted(response.headers.get("etag"))
        position = start
        length = response.headers.get("content-length")
        limit: int | None = start + int(length) if length is not None else None
        if end is not None:  # a 200 means the server sent the whole object from 0
            limit = end if limit is None else min(limit, end)
        resumes_left = max(0, self._resilience.max_attempts - 1)
        current = response
        try:
            while limit is None or position < limit:
                amount = chunk_size if limit is None else min(chunk_size, limit - position)
                try:
                    chunk = current.raw.read(amount, decode_content=False)
                except (
                    urllib3.exceptions.ProtocolError,
                    urllib3.exceptions.ReadTimeoutError,
                    urllib3.exceptions.SSLError,
                    OSError,
                ) as exc:
                    current.close()
                    if resumes_left <= 0 or not etag:
                        raise _as_requests_error(exc) from exc
                    resumes_left -= 1
                    log.info(
                        "resuming download of s3://%s/%s at byte %d after %s",
                        bucket,
                        key,
                        position,
                        type(exc).__name__,
                    )
                    reopened: requests.Response | None = self.libkb_call(
                        partial(self._open_get, bucket, key, position, limit, etag)
                    )
                    if reopened is None:
                        return
                    current = reopened
                    continue
                if not chunk:
                    if limit is not None and position < limit:
                        raise requests.exceptions.ChunkedEncodingError(
                            f"S3 get s3://{bucket}/{key}: body ended at byte {position} of {limit}"
                        )
                    return
                position += len(chunk)
                yield chunk
        finally:
            current.close()

    def download_object_as_stream(self, obj: Object, chunk_size: int | None = None) -> Iterator[bytes]:
        """Stream the object. The GET is sent (and 404 raised) by this call."""
        bucket = obj.container.name
        size = chunk_size or MiB
        response = self._open_get(bucket, obj.name)
        return self._body_chunks(response, bucket, obj.name, 0, None, size)

    def download_object_range_as_stream(
        self,
        obj: Object,
        start_bytes: int,
        end_bytes: int | None = None,
        chunk_size: int | None = None,
    ) -> Iterator[bytes]:
        """Stream ``[start_bytes, end_bytes)``; empty when the range starts past the end."""
        if start_bytes < 0 or (end_bytes is not None and end_bytes < start_bytes):
            raise ValueError(f"invalid byte range {start_bytes}..{end_bytes}")
        bucket = obj.container.name
        size = chunk_size or MiB
        if end_bytes is not None and end_bytes == start_bytes:
            return iter(())
        response = self._open_get(bucket, obj.name, start_bytes, end_bytes)
        return self._body_chunks(response, bucket, obj.name, start_bytes, end_bytes, size)

    # -- writes -------------------------------------------------------------------

    def _put(
        self,
        bucket: str,
        key: str,
        data: bytes,
        extra_headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        headers = {"Content-Type": "application/octet-stream"}
        if extra_headers:
            headers.update(extra_headers)
        return self._request("PUT", bucket, key, headers=headers, data=bytes(data))

    def ex_put_object(self, container: Container, object_name: str, data: bytes) -> None:
        """Single PUT with Content-Length; atomic on S3."""
        bucket = container.name
        response = self._put(bucket, object_name, data)
        if response.status_code != 200:
            raise self._fail(response, bucket=bucket, key=object_name, operation="put")
        response.close()

    def ex_put_object_if_absent(self, container: Container, object_name: str, data: bytes) -> bool:
        """PUT with ``If-None-Match: *``. 412 -> False.

        409 ConditionalRequestConflict means a concurrent conditional write to
        the same key is in flight: retry briefly (the other writer then wins
        with 412); if it persists, False when the object now exists, else raise.
        """
        bucket = container.name
        attempts = 5
        for attempt in range(attempts):
            response = self._put(bucket, object_name, data, {"If-None-Match": "*"})
            status = response.status_code
            if status in (200, 412):
                response.close()
                return status == 200
            if status != 409:
                raise self._fail(response, bucket=bucket, key=object_name, operation="put")
            response.close()
            if attempt < attempts - 1:
                time.sleep(0.05 * 2**attempt)
        try:
            self.get_object(bucket, object_name)
        except ObjectDoesNotExistError:
            raise BaseHTTPError(
                409,
                f"S3 put s3://{bucket}/{object_name} failed: HTTP 409 ConditionalRequestConflict persisted",
                {},
            ) from None
        return False

    def ex_copy_object(self, container: Container, src_name: str, dest_name: str) -> None:
        """Server-side copy; ObjectDoesNotExistError if ``src`` is missing.

        Sources over 5 GiB are copied with parallel UploadPartCopy requests
        pinned to the source's e-tag, so a concurrently replaced source fails
        the copy instead of mixing versions.
        """
        bucket = container.name
        try:
            src = self.get_object(bucket, src_name)
        except ObjectDoesNotExistError:
            raise ObjectDoesNotExistError(
                value=f"S3 copy: the source s3://{bucket}/{src_name} does not exist",
                driver=self,
                object_name=src_name,
            ) from None
        if src_name == dest_name:
            return
        if src.size > self.max_single_copy_bytes:
            self._multipart_copy(bucket, src, dest_name)
            return
        headers = {"x-amz-copy-source": copy_source(bucket, src_name)}
        if src.hash:
            headers["x-amz-copy-source-if-match"] = f'"{src.hash}"'
        response = self._request("PUT", bucket, dest_name, headers=headers)
        if response.status_code != 200:
            if response.status_code == 404:
                raise self._fail(response, bucket=bucket, key=src_name, operation="copy")
            raise self._fail(response, bucket=bucket, key=dest_name, operation="copy")
        body = response.content
        response.close()
        embedded = _embedded_error(body, driver=self, bucket=bucket, key=dest_name, operation="copy")
        if embedded is not None:
            raise embedded

    def _multipart_copy(self, bucket: str, src: Object, dest_name: str) -> None:
        part = max(self.copy_part_size, self._transfer.part_size, -(-src.size // MAX_PARTS))
        ranges = plan_parts(src.size, part)
        source = copy_source(bucket, src.name)
        upload_id = self.libkb_call(lambda: self._initiate(bucket, dest_name))
        pool = self._executor()
        futures: list[Future[str]] = []
        try:
            for number, (start, end) in enumerate(ranges, start=1):
                headers = {
                    "x-amz-copy-source": source,
                    "x-amz-copy-source-range": f"bytes={start}-{end - 1}",
                }
                if src.hash:
                    headers["x-amz-copy-source-if-match"] = f'"{src.hash}"'
                futures.append(
                    pool.submit(
                        self.libkb_call,
                        partial(self._copy_part, bucket, dest_name, upload_id, number, headers),
                    )
                )
            etags = [f.result() for f in futures]
            self._complete(bucket, dest_name, upload_id, etags)
        except BaseException as exc:
            self._abort_after_failure(bucket, dest_name, upload_id, futures, exc)
            raise

    def _copy_part(self, bucket: str, key: str, upload_id: str, number: int, headers: dict[str, str]) -> str:
        params = {"partNumber": str(number), "uploadId": upload_id}
        response = self._request("PUT", bucket, key, params=params, headers=headers)
        if response.status_code != 200:
            raise self._fail(response, bucket=bucket, key=key, operation="copy part")
        body = response.content
        response.close()
        embedded = _embedded_error(body, driver=self, bucket=bucket, key=key, operation="copy")
        if embedded is not None:
            raise embedded
        root = _xml_root(body)
        etag = root.findtext(_ns(root) + "ETag") if root is not None else None
        if not etag:
            raise LibcloudError(value=f"S3 copy part {number}: no ETag in response", driver=self)
        return etag

    # -- multipart upload -------------------------------------------------------------

    def _initiate(self, bucket: str, key: str) -> str:
        response = self._request(
            "POST",
            bucket,
            key,
            params={"uploads": ""},
            headers={"Content-Type": "application/octet-stream"},
        )
        if response.status_code != 200:
            raise self._fail(response, bucket=bucket, key=key, operation="initiate upload")
        root = _xml_root(response.content)
        response.close()
        upload_id = root.findtext(_ns(root) + "UploadId") if root is not None else None
        if not upload_id:
            raise LibcloudError(value="S3 initiate upload: no UploadId in response", driver=self)
        return upload_id

    def _upload_part(self, bucket: str, key: str, upload_id: str, number: int, data: bytes) -> str:
        params = {"partNumber": str(number), "uploadId": upload_id}
        response = self._request("PUT", bucket, key, params=params, data=data)
        if response.status_code != 200:
            raise self._fail(response, bucket=bucket, key=key, operation="upload part")
        response.close()
        etag = response.headers.get("etag")
        if not etag:
            raise LibcloudError(value=f"S3 upload part {number}: no ETag", driver=self)
        return etag

    def _complete(self, bucket: str, key: str, upload_id: str, etags: list[str]) -> None:
        body = complete_multipart_xml(etags)
        attempt = 0

        def complete() -> None:
            nonlocal attempt
            attempt += 1
            response = self._request(
                "POST",
                bucket,
                key,
                params={"uploadId": upload_id},
                headers={"Content-Type": "application/xml"},
                data=body,
            )
            if response.status_code == 404 and attempt > 1 and self._completed(bucket, key, len(etags)):
                # An earlier attempt completed but its answer was lost.
                response.close()
                return
            if response.status_code != 200:
                raise self._fail(response, bucket=bucket, key=key, operation="complete upload")
            text = response.content
            response.close()
            embedded = _embedded_error(text, driver=self, bucket=bucket, key=key, operation="complete upload")
            if embedded is not None:
                raise embedded

        self.libkb_call(complete)

    def _completed(self, bucket: str, key: str, parts: int) -> bool:
        try:
            obj = self.get_object(bucket, key)
        except ObjectDoesNotExistError:
            return False
        return bool(obj.hash and obj.hash.endswith(f"-{parts}"))

    def _abort(self, bucket: str, key: str, upload_id: str) -> None:
        response = self._request("DELETE", bucket, key, params={"uploadId": upload_id})
        if response.status_code not in (200, 204, 404):
            raise self._fail(response, bucket=bucket, key=key, operation="abort upload")
        response.close()

    def _abort_after_failure(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        futures: list[Future[str]],
        exc: BaseException,
    ) -> None:
        """Cancel queued parts, wait for running ones (a part finishing after the
        abort would resurrect the upload), then abort; keep the original error."""
        for future in futures:
            future.cancel()
        wait_futures(futures)
        try:
            self.libkb_call(lambda: self._abort(bucket, key, upload_id))
        except Exception as abort_exc:
            log.warning(
                "could not abort multipart upload of s3://%s/%s (%s); a lifecycle rule "
                "for incomplete uploads will clean it up",
                bucket,
                key,
                type(abort_exc).__name__,
            )
            exc.add_note(f"aborting the multipart upload also failed: {abort_exc}")

    def ex_upload_stream(self, container: Container, object_name: str, chunks: Iterable[bytes]) -> None:
        """Upload from chunks of any size with bounded memory.

        Up to ``single_put_threshold`` bytes: one PUT. Beyond: multipart with
        ``part_size`` parts, ``max_concurrency`` in flight on the driver's pool;
        the producer blocks when they are all busy, so about
        ``(max_concurrency + 1) * part_size`` bytes are held. Any error,
        including one raised by ``chunks``, aborts the upload: nothing becomes
        visible.
        """
        bucket = container.name
        buffer = _ChunkBuffer()
        iterator = iter(chunks)
        overflow = False
        for chunk in iterator:
            buffer.add(chunk)
            if buffer.size > self._single_put_limit:
                overflow = True
                break
        if not overflow:
            data = buffer.take(buffer.size)

            def put() -> None:
                self.ex_put_object(container, object_name, data)

            self.libkb_call(put)
            return
        self._multipart_upload(bucket, object_name, buffer, iterator)

    def _multipart_upload(
        self, bucket: str, key: str, buffer: _ChunkBuffer, iterator: Iterator[bytes]
    ) -> None:
        part_size = self._transfer.part_size
        slots = threading.Semaphore(self._transfer.max_concurrency)
        failed = threading.Event()
        futures: list[Future[str]] = []
        pool = self._executor()
        upload_id: str = self.libkb_call(lambda: self._initiate(bucket, key))

        def on_done(future: Future[str]) -> None:
            slots.release()
            if future.cancelled() or future.exception() is not None:
                failed.set()

        def submit(data: bytes) -> None:
            number = len(futures) + 1
            if number > MAX_PARTS:
                raise BackendError(
                    f"the stream is larger than {MAX_PARTS} parts of {part_size} bytes",
                    backend="s3",
                    key=key,
                    hint="raise storage.transfer.part_size",
                )
            slots.acquire()
            if failed.is_set():
                slots.release()
                _raise_first_failure(futures)
            try:
                future = pool.submit(
                    self.libkb_call, partial(self._upload_part, bucket, key, upload_id, number, data)
                )
            except BaseException:
                slots.release()
                raise
            futures.append(future)
            future.add_done_callback(on_done)

        try:
            while buffer.size >= part_size:
                submit(buffer.take(part_size))
            for chunk in iterator:
                buffer.add(chunk)
                while buffer.size >= part_size:
                    submit(buffer.take(part_size))
            if buffer.size or not futures:
                submit(buffer.take(buffer.size))
            etags = [f.result() for f in futures]
            self._complete(bucket, key, upload_id, etags)
        except BaseException as exc:
            self._abort_after_failure(bucket, key, upload_id, futures, exc)
            raise

    def upload_object_via_stream(
        self,
        iterator: Iterable[bytes],
        container: Container,
        object_name: str,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Object:
        """Libcloud API on top of :meth:`ex_upload_stream` (extra/headers ignored)."""
        self.ex_upload_stream(container, object_name, iterator)
        return self.get_object(container.name, object_name)

    # -- lifecycle ------------------------------------------------------------------

    def ex_close(self) -> None:
        """Stop the thread pool and close pooled connections. Idempotent."""
        with self._pool_lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        self._session.close()
        self._finalizer.detach()


def _raise_first_failure(futures: list[Future[str]]) -> None:
    for future in futures:
        if future.done() and not future.cancelled():
            error = future.exception()
            if error is not None:
                raise error
    raise LibcloudError(value="S3 multipart upload: a part failed")


def _as_requests_error(exc: BaseException) -> requests.RequestException:
    """Map a urllib3/socket error raised while reading a body as requests does."""
    if isinstance(exc, urllib3.exceptions.ReadTimeoutError):
        return requests.exceptions.ConnectionError(exc)
    if isinstance(exc, urllib3.exceptions.SSLError):
        return requests.exceptions.SSLError(exc)
    if isinstance(exc, urllib3.exceptions.ProtocolError):
        return requests.exceptions.ChunkedEncodingError(exc)
    return requests.exceptions.ConnectionError(exc)


def build_s3_driver(
    cfg: S3Config, *, env: Mapping[str, str] | None = None, sign_payload: bool = False
) -> S3Driver:
    """Build the driver from validated settings (container name = ``cfg.bucket``).

    Resolves region, endpoint and credentials now, so a missing credential or
    a forbidden http endpoint fails at startup with a clear message.
    """
    environ = os.environ if env is None else env
    region = resolve_region(cfg.region, environ)
    endpoint = resolve_endpoint(cfg.endpoint, region, allow_http=bool(cfg.allow_http))
    credentials = resolve_credentials(cfg, environ)
    return S3Driver(
        endpoint=endpoint,
        region=region,
        credentials=credentials,
        path_style=cfg.path_style,
        resilience=cfg.resilience,
        transfer=cfg.transfer,
        sign_payload=sign_payload,
        ca_bundle=environ.get("AWS_CA_BUNDLE") or None,
    )
