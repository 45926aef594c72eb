"""Shared access signature (SAS) tokens: requests authorised by the token's
query parameters instead of a SharedKey signature.

A token is a secret (its ``sig`` signs for the account key): nothing here
puts it, or any of its parameters, into a message or a ``repr``. What an
error may say is when it expires and which permissions it grants, which
tell an operator what kind of new token to ask for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote_plus, unquote_plus, urlencode

from libkb.errors import ConfigError

#: The environment variable the original tool reads a token from (as libkb does, after the config).
SAS_TOKEN_ENV = "AZURE_STORAGE_SAS_TOKEN"

#: What libkb asks of a container: read, add, create, write, delete and list.
NEEDED_PERMISSIONS = "racwdl"

_PERMISSION_NAMES = {
    "r": "read",
    "a": "add",
    "c": "create",
    "w": "write",
    "d": "delete",
    "l": "list",
}

_SHAPE = "a SAS token is a query string such as sv=...&ss=b&srt=co&sp=racwdl&se=...&sig=..."


@dataclass(frozen=True, slots=True)
class SasToken:
    """A parsed SAS token: its decoded query parameters, in order."""

    params: tuple[tuple[str, str], ...] = field(repr=False)
    #: When it stops working (``se``), if the token says.
    expires: datetime | None = None
    #: Its permission letters (``sp``), if the token says (a stored access policy may).
    permissions: str | None = None
    #: The key it was read from, for messages (``storage.sas_token`` or the environment variable).
    origin: str = "storage.sas_token"

    @property
    def query(self) -> str:
        """The token as a URL query string (for a copy source's URL)."""
        return urlencode(self.params)

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires is not None and self.expires <= (now or datetime.now(UTC))

    def denied_hint(self, container: str | None) -> str:
        """What to do when the service refused a request made with this token (one line)."""
        where = f"container {container!r}" if container else "the container"
        if self.expired():
            return f"the SAS token ({self.origin}) {self.expired_text(container)}"
        grants = f" grants {_names(self.permissions)}" if self.permissions else ""
        return (
            f"the SAS token ({self.origin}) for {where}{grants}: libkb needs {NEEDED_PERMISSIONS} "
            "(read, add, create, write, delete, list; an account SAS also needs resource types "
            "container and object, srt=co); give a token that allows them and is valid now"
        )

    def expired_text(self, container: str | None) -> str:
        """For an expired token: for which container it expired when, and what to give instead."""
        where = f"container {container!r}" if container else "the container"
        expires = _when(self.expires) if self.expires else "an unknown time"
        return (
            f"for {where} expired at {expires}; give a new one with permissions {NEEDED_PERMISSIONS} "
            "(read, add, create, write, delete, list)"
        )

    def __repr__(self) -> str:
        expires = _when(self.expires) if self.expires else "unknown"
        return f"SasToken(expires={expires}, permissions={self.permissions!r})"


def parse_sas_token(text: str, *, origin: str = "storage.sas_token") -> SasToken:
    """Read a token as Azure hands it out, with or without a leading ``?``.

    A ConfigError names ``origin`` and never the token.
    """
    token = text.strip().removeprefix("?")
    if "://" in token:
        raise ConfigError(
            f"give the SAS token alone (the query string after '?'), not a URL; {_SHAPE}", key=origin
        )
    try:
        pairs = parse_qsl(token, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise ConfigError(f"is not a SAS token; {_SHAPE}", key=origin) from None
    names = {name for name, _ in pairs}
    missing = [name for name in ("sv", "sig") if name not in names]
    if missing:
        raise ConfigError(
            f"is not a SAS token: it has no {' and no '.join(missing)} parameter; {_SHAPE}", key=origin
        )
    values = dict(pairs)
    return SasToken(tuple(pairs), _expiry(values.get("se")), values.get("sp"), origin)


def secret_forms(text: str) -> list[str]:
    """The token, and its signature as written, decoded and as a request URL carries it."""
    token = text.strip().removeprefix("?")
    forms = [text, token]
    for part in token.split("&"):
        if part.startswith("sig="):
            written = part[len("sig=") :]
            forms += [written, unquote_plus(written), quote_plus(unquote_plus(written))]
    return [form for form in dict.fromkeys(forms) if form]


def _expiry(value: str | None) -> datetime | None:
    """``se``: an ISO 8601 UTC time or date; None when absent or unreadable (the service decides)."""
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _names(permissions: str) -> str:
    named = [_PERMISSION_NAMES.get(letter, letter) for letter in permissions]
    return f"{permissions} ({', '.join(named)})"
