"""Azure credentials: a SAS token or an account key, else Azure AD bearer
tokens from any azure-identity ``TokenCredential`` (``DefaultAzureCredential``
by default).

Libcloud only knows client-secret AD auth, and its ``AuthType.AZURE_AD``
("azureAD") does not even match the ``"azureAd"`` its driver tests for, so
the driver's own AD path is bypassed.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Protocol

import requests
from libcloud.common.types import InvalidCredsError

from libkb.errors import ConfigError
from libkb.storage.drivers.azure.sas import SAS_TOKEN_ENV, SasToken, parse_sas_token
from libkb.storage.drivers.common.errors import clip_text
from libkb.storage.settings import AzureConfig

#: OAuth scope for Azure Storage data-plane tokens.
AZURE_STORAGE_SCOPE = "https://storage.azure.com/.default"

#: Refresh a bearer token this many seconds before it expires.
TOKEN_REFRESH_MARGIN_SECS = 300


class TokenCredential(Protocol):
    """The azure-identity credential protocol (``get_token(*scopes)``)."""

    def get_token(self, *scopes: str, **kwargs: Any) -> Any: ...


class AzureTokenSource:
    """Thread-safe bearer-token cache over an azure-identity credential.

    One token serves every thread's connection; it is fetched again
    ``TOKEN_REFRESH_MARGIN_SECS`` before it expires (one fetch at a time).
    Credential failures become ``InvalidCredsError`` (or a requests
    ``ConnectionError`` when the token endpoint cannot be reached) so that no
    azure-core exception reaches the adapter.
    """

    def __init__(
        self,
        credential: TokenCredential,
        *,
        scope: str = AZURE_STORAGE_SCOPE,
        clock: Any = time.time,
        owns_credential: bool = False,
    ) -> None:
        self.credential = credential
        self.scope = scope
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_on = 0.0
        self.owns_credential = owns_credential

    def authorization(self) -> str:
        with self._lock:
            if self._token is None or self._clock() + TOKEN_REFRESH_MARGIN_SECS >= self._expires_on:
                self._token, self._expires_on = self._fetch()
            return f"Bearer {self._token}"

    def _fetch(self) -> tuple[str, float]:
        try:
            tok = self.credential.get_token(self.scope)
        except Exception as exc:  # azure-core/azure-identity errors
            name = type(exc).__name__
            text = clip_text(str(exc), 500)
            if name in (
                "ServiceRequestError",
                "ServiceResponseError",
                "ServiceRequestTimeoutError",
            ):
                raise requests.ConnectionError(
                    f"could not reach the Azure token endpoint ({name}: {text})"
                ) from None
            raise InvalidCredsError(
                f"could not get an Azure AD token for {self.scope} ({name}: {text}); "
                "set account_key / AZURE_STORAGE_KEY, or configure a service principal "
                "(AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET), managed/workload "
                "identity or 'az login'"
            ) from None
        return str(tok.token), float(tok.expires_on)

    def close(self) -> None:
        if self.owns_credential:
            close = getattr(self.credential, "close", None)
            if callable(close):
                close()

    def __repr__(self) -> str:
        return f"<AzureTokenSource {type(self.credential).__name__} scope={self.scope}>"


def _default_azure_credential() -> TokenCredential:
    """azure-identity's DefaultAzureCredential, or a ConfigError naming the fixes."""
    try:
        from azure.identity import DefaultAzureCredential
    except ImportError:
        raise ConfigError(
            "no Azure account key: set account_key in the storage config or the "
            "AZURE_STORAGE_KEY environment variable, or install the 'libkb[azure]' extra "
            "(azure-identity) to use Azure AD credentials (service principal, managed or "
            "workload identity, Azure CLI)",
            key="storage.account_key",
        ) from None
    cred: TokenCredential = DefaultAzureCredential()
    return cred


def _configured_azure_credential(cfg: AzureConfig) -> TokenCredential | None:
    """The identity the config names (service principal, workload or managed identity), if any.

    Same order as the original tool: a client secret, then workload identity;
    ``client_id``/``tenant_id`` fall back to ``AZURE_CLIENT_ID``/``AZURE_TENANT_ID``.
    """
    if not (cfg.client_secret or cfg.use_workload_identity or cfg.use_managed_identity):
        return None
    try:
        from azure import identity
    except ImportError:
        raise ConfigError(
            "install the 'libkb[azure]' extra (azure-identity) to sign in with an Azure AD identity",
            key="storage.client_secret" if cfg.client_secret else "storage.use_workload_identity",
        ) from None
    client_id = cfg.client_id or os.environ.get("AZURE_CLIENT_ID")
    tenant_id = cfg.tenant_id or os.environ.get("AZURE_TENANT_ID")
    if cfg.client_secret:
        if not (client_id and tenant_id):
            raise ConfigError(
                "a service principal needs client_id and tenant_id too (or AZURE_CLIENT_ID and "
                "AZURE_TENANT_ID)",
                key="storage.client_secret",
            )
        cred: TokenCredential = identity.ClientSecretCredential(tenant_id, client_id, cfg.client_secret)
    elif cfg.use_workload_identity:
        cred = identity.WorkloadIdentityCredential(tenant_id=tenant_id, client_id=client_id)
    else:
        cred = identity.ManagedIdentityCredential(client_id=client_id)
    return cred


def resolve_sas_token(cfg: AzureConfig) -> SasToken | None:
    """The SAS token to sign requests with: ``sas_token``, else (when the config
    has no account key either) ``AZURE_STORAGE_SAS_TOKEN``.

    As in the original tool a token comes before an account key; the
    configuration comes before the environment. An expired token is refused
    here, naming the container, before any request.
    """
    if cfg.sas_token:
        token = parse_sas_token(cfg.sas_token)
    elif not cfg.account_key and os.environ.get(SAS_TOKEN_ENV):
        token = parse_sas_token(os.environ[SAS_TOKEN_ENV], origin=SAS_TOKEN_ENV)
    else:
        return None
    if token.expired():
        raise ConfigError(f"the SAS token {token.expired_text(cfg.container_name)}", key=token.origin)
    return token


def resolve_azure_auth(
    cfg: AzureConfig, credential: TokenCredential | None = None
) -> tuple[str | None, AzureTokenSource | None]:
    """``(account_key, None)`` or ``(None, token_source)``: the account key from
    config, then ``AZURE_STORAGE_KEY``, then ``credential``, the identity the
    config names, or DefaultAzureCredential (bearer tokens)."""
    key = cfg.account_key or os.environ.get("AZURE_STORAGE_KEY") or None
    if key and credential is None:
        return key, None
    owns = credential is None
    cred = credential or _configured_azure_credential(cfg) or _default_azure_credential()
    return None, AzureTokenSource(cred, owns_credential=owns)
