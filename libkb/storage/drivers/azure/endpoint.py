"""Where the blob service is: public Azure, a sovereign cloud or custom domain,
or Azurite (whose account is a path prefix)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from libkb.errors import ConfigError


@dataclass(frozen=True, slots=True)
class AzureEndpoint:
    """Where the blob service is: scheme, host, port and Azurite's account path."""

    secure: bool
    host: str
    port: int
    account_prefix: str | None

    @property
    def url(self) -> str:
        scheme = "https" if self.secure else "http"
        default = 443 if self.secure else 80
        port = "" if self.port == default else f":{self.port}"
        path = f"/{self.account_prefix}" if self.account_prefix else ""
        return f"{scheme}://{self.host}{port}{path}"


def resolve_azure_endpoint(account_name: str, endpoint: str | None) -> AzureEndpoint:
    """The endpoint for ``cfg.endpoint``: None means public Azure, else the URL as given."""
    if not endpoint:
        return AzureEndpoint(True, f"{account_name}.blob.core.windows.net", 443, None)
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"endpoint {endpoint!r} is not an http(s) URL of a blob service "
            "(e.g. https://acct.blob.core.windows.net or http://127.0.0.1:10000/devstoreaccount1)",
            key="storage.endpoint",
        )
    if parts.query or parts.fragment:
        raise ConfigError(
            f"endpoint {endpoint!r} must not have a query or fragment (no SAS tokens here)",
            key="storage.endpoint",
        )
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    prefix = parts.path.strip("/") or None
    return AzureEndpoint(secure, parts.hostname, port, prefix)
