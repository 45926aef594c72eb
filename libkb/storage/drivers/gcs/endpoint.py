"""Where the JSON API is: the public service, or an emulator or proxy."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from libkb.errors import ConfigError

#: Public JSON API endpoint.
GCS_DEFAULT_ENDPOINT = "https://storage.googleapis.com"


@dataclass(frozen=True, slots=True)
class GcsEndpoint:
    """JSON API base: scheme, host, port and a path prefix (for proxies/emulators)."""

    secure: bool
    host: str
    port: int
    base_path: str

    @property
    def url(self) -> str:
        scheme = "https" if self.secure else "http"
        default = 443 if self.secure else 80
        port = "" if self.port == default else f":{self.port}"
        return f"{scheme}://{self.host}{port}{self.base_path}"


def resolve_gcs_endpoint(endpoint: str | None) -> GcsEndpoint:
    """``cfg.endpoint`` (e.g. ``http://127.0.0.1:4443``) or the public API."""
    url = endpoint or GCS_DEFAULT_ENDPOINT
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"endpoint {url!r} is not an http(s) URL (e.g. http://127.0.0.1:4443)",
            key="storage.endpoint",
        )
    secure = parts.scheme == "https"
    base = parts.path.rstrip("/")
    for suffix in ("/storage/v1", "/upload/storage/v1"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    return GcsEndpoint(secure, parts.hostname, parts.port or (443 if secure else 80), base)
