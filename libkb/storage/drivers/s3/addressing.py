"""Where an S3 request goes, and the one encoding of its path and query.

The path and query built here are both sent and signed, so a key is encoded
exactly once.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from libkb.errors import ConfigError

DEFAULT_REGION = "us-east-1"
_DNS_BUCKET = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$")


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


def copy_source(bucket: str, key: str) -> str:
    """``x-amz-copy-source`` value: URL-encoded ``/bucket/key``."""
    return "/" + quote(bucket, safe="") + "/" + quote_path(key)
