"""Google credentials: a configured credentials file, else application default
credentials (google-auth, the ``gcp`` extra); none for an emulator. Tokens
are refreshed by google-auth behind one lock."""

from __future__ import annotations

import json
import os
import threading
import warnings
from typing import Any

import requests
from libcloud.common.types import InvalidCredsError

from libkb.errors import ConfigError
from libkb.storage.drivers.common.errors import clip_text
from libkb.storage.settings import GcsConfig

#: OAuth scope for reading and writing objects.
GCS_SCOPES = ("https://www.googleapis.com/auth/devstorage.read_write",)


class GoogleTokenSource:
    """Thread-safe ``Authorization`` headers from google-auth credentials.

    google-auth credentials are not thread-safe; one lock serialises the
    refresh (done when ``credentials.valid`` turns false, i.e. a few minutes
    before expiry). Refresh failures become ``InvalidCredsError`` (or a
    requests ``ConnectionError`` for a network failure) so no google-auth
    exception reaches the adapter.
    """

    def __init__(self, credentials: Any, request: Any = None) -> None:
        self.credentials = credentials
        self._request = request
        self._lock = threading.Lock()

    def _transport(self) -> Any:
        if self._request is None:
            from google.auth.transport.requests import Request

            self._request = Request()
        return self._request

    def headers(self) -> dict[str, str]:
        with self._lock:
            creds = self.credentials
            if not creds.valid:
                self._refresh()
            out: dict[str, str] = {}
            creds.apply(out)
            return out

    def _refresh(self) -> None:
        try:
            self.credentials.refresh(self._transport())
        except Exception as exc:
            name = type(exc).__name__
            text = clip_text(str(exc), 500)
            if name == "TransportError":
                raise requests.ConnectionError(
                    f"could not reach the Google token endpoint ({text})"
                ) from None
            raise InvalidCredsError(
                f"could not refresh Google credentials ({name}: {text}); check "
                "service_account_path / GOOGLE_APPLICATION_CREDENTIALS or "
                "'gcloud auth application-default login'"
            ) from None

    def __repr__(self) -> str:
        return f"<GoogleTokenSource {type(self.credentials).__name__}>"


def _google_auth_missing(what: str) -> ConfigError:
    return ConfigError(
        f"{what} needs google-auth: install the 'libkb[gcp]' extra (or point "
        "storage.endpoint at an emulator, which needs no credentials)",
        key="storage.service_account_path",
    )


def _load_credentials_file(path: str) -> Any:
    """Credentials from a JSON file the operator configured.

    Service-account and authorized-user files are loaded with their own
    classes; other types (external accounts for workload identity federation)
    go through google-auth's generic loader, whose deprecation warning is
    about files from untrusted sources, which a configured path is not.
    """
    with open(path, encoding="utf-8") as fh:
        info = json.load(fh)
    kind = info.get("type") if isinstance(info, dict) else None
    if kind == "service_account":
        from google.oauth2 import service_account

        sa = service_account.Credentials
        return sa.from_service_account_info(  # type: ignore[no-untyped-call]
            info, scopes=list(GCS_SCOPES)
        )
    if kind == "authorized_user":
        from google.oauth2 import credentials as user_credentials

        user = user_credentials.Credentials
        return user.from_authorized_user_info(  # type: ignore[no-untyped-call]
            info, scopes=list(GCS_SCOPES)
        )
    import google.auth

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        creds, _ = google.auth.load_credentials_from_file(  # type: ignore[no-untyped-call]
            path, scopes=list(GCS_SCOPES)
        )
    return creds


def resolve_gcs_credentials(cfg: GcsConfig) -> Any:
    """google-auth credentials for ``cfg``, or None for an emulator without credentials.

    Order: ``service_account_path``, ``GOOGLE_APPLICATION_CREDENTIALS``, then
    (for the real service only) application default credentials.
    """
    path = cfg.service_account_path or os.environ.get("GOOGLE_APPLICATION_CREDENTIALS") or None
    if path is None and cfg.endpoint:
        return None
    try:
        import google.auth
        import google.auth.exceptions
    except ImportError:
        raise _google_auth_missing(
            "a service account file" if path else "application default credentials"
        ) from None
    if path is not None:
        key = "storage.service_account_path" if cfg.service_account_path else "GOOGLE_APPLICATION_CREDENTIALS"
        if not os.path.isfile(path):
            raise ConfigError(f"credentials file {path!r} does not exist", key=key)
        try:
            return _load_credentials_file(path)
        except (google.auth.exceptions.GoogleAuthError, ValueError, KeyError, OSError) as exc:
            # The message names the file and the problem, never the key material.
            raise ConfigError(
                f"cannot load credentials from {path!r}: {type(exc).__name__}", key=key
            ) from None
    try:
        creds, _ = google.auth.default(scopes=list(GCS_SCOPES))
    except google.auth.exceptions.DefaultCredentialsError:
        raise ConfigError(
            "no Google credentials: set service_account_path in the storage config or "
            "GOOGLE_APPLICATION_CREDENTIALS, run 'gcloud auth application-default login', "
            "or run on GCE/GKE with a service account",
            key="storage.service_account_path",
        ) from None
    return creds
