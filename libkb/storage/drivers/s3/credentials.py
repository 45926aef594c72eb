"""S3 credentials: config, then environment, then botocore's chain.

Providers hand out current credentials before every request; no ``repr``
shows a secret.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from libkb.storage.errors import BackendError, PermissionDeniedError
from libkb.storage.settings import S3Config


@dataclass(frozen=True, slots=True)
class Credentials:
    """One set of AWS-style credentials. ``repr`` never shows the secret or token."""

    access_key: str
    secret_key: str = field(repr=False)
    token: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        masked = self.access_key[:4] + "..." if len(self.access_key) > 8 else "***"
        return f"Credentials(access_key={masked!r})"


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
