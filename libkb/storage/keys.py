"""Key rules, identical on every backend and checked before any I/O.

A key is non-empty UTF-8 of at most 1024 bytes (with the backend's prefix),
made of ``/``-separated segments; no segment is empty, ``.`` or ``..`` or over
255 bytes; no NUL or other control character; no leading ``/``; no ``\\``
(Azure Blob Storage turns it into ``/``, so ``a\\b`` and ``a/b`` would be one
blob there and two objects elsewhere). These rules are what every service and
filesystem can hold alike, so a backup written to one backend can be copied to
any other.
"""

from __future__ import annotations

from libkb.storage.errors import InvalidPathError

MAX_KEY_BYTES = 1024
MAX_SEGMENT_BYTES = 255

_FIX = "use '/'-separated names without empty, '.' or '..' parts"


def _check_chars(text: str, what: str, backend: str | None) -> None:
    if "\\" in text:
        raise InvalidPathError(
            f"{what} contains a backslash",
            backend=backend,
            key=text,
            hint="use '/' to separate parts; Azure turns '\\' into '/'",
        )
    for ch in text:
        if ord(ch) < 0x20 or ord(ch) == 0x7F:
            raise InvalidPathError(
                f"{what} contains the control character {ch!r}",
                backend=backend,
                key=text,
                hint="remove control characters from the key",
            )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidPathError(
            f"{what} is not valid UTF-8 ({exc.reason})", backend=backend, key=text
        ) from None


def _check_segments(text: str, segments: list[str], what: str, backend: str | None) -> None:
    for seg in segments:
        if seg in ("", ".", ".."):
            raise InvalidPathError(
                f"{what} has an empty, '.' or '..' segment", backend=backend, key=text, hint=_FIX
            )
        if len(seg.encode("utf-8")) > MAX_SEGMENT_BYTES:
            raise InvalidPathError(
                f"{what} has a segment longer than {MAX_SEGMENT_BYTES} bytes",
                backend=backend,
                key=text,
                hint="shorten that part of the key",
            )


def validate_key(key: object, *, backend: str | None = None, prefix: str = "") -> str:
    """Return ``key`` if it obeys the key rules, else raise :class:`InvalidPathError`."""
    if not isinstance(key, str):
        raise InvalidPathError(
            f"a key must be a str, not {type(key).__name__}", backend=backend, key=repr(key)
        )
    if not key:
        raise InvalidPathError("the key is empty", backend=backend, key=key)
    _check_chars(key, "the key", backend)
    if key.startswith("/"):
        raise InvalidPathError(
            "the key starts with '/'", backend=backend, key=key, hint="drop the leading '/'"
        )
    _check_segments(key, key.split("/"), "the key", backend)
    full = full_name(prefix, key)
    if len(full.encode("utf-8")) > MAX_KEY_BYTES:
        raise InvalidPathError(
            f"the key is longer than {MAX_KEY_BYTES} bytes (backend prefix included)",
            backend=backend,
            key=key,
            hint="use a shorter key or prefix",
        )
    return key


def validate_list_prefix(prefix: object, *, backend: str | None = None) -> str:
    """Check a listing prefix: any start of a valid key (the last part may be partial)."""
    if not isinstance(prefix, str):
        raise InvalidPathError(
            f"a prefix must be a str, not {type(prefix).__name__}",
            backend=backend,
            key=repr(prefix),
        )
    if not prefix:
        return prefix
    _check_chars(prefix, "the listing prefix", backend)
    if prefix.startswith("/"):
        raise InvalidPathError(
            "the listing prefix starts with '/'", backend=backend, key=prefix, hint="drop the '/'"
        )
    # Every complete segment (all but the last) must be a valid segment.
    _check_segments(prefix, prefix.split("/")[:-1], "the listing prefix", backend)
    return prefix


def normalize_base_prefix(prefix: str | None, *, backend: str | None = None) -> str:
    """Turn a configured backend prefix into '' or 'seg/seg' (no slashes at the ends)."""
    if prefix is None:
        return ""
    stripped = prefix.strip("/")
    if not stripped:
        return ""
    _check_chars(stripped, "the backend prefix", backend)
    _check_segments(stripped, stripped.split("/"), "the backend prefix", backend)
    return stripped


def full_name(base_prefix: str, key: str) -> str:
    """The object name in the bucket for ``key`` under a normalized base prefix."""
    return f"{base_prefix}/{key}" if base_prefix else key


def relative_name(base_prefix: str, name: str) -> str:
    """Inverse of :func:`full_name` for names listed under the base prefix."""
    if not base_prefix:
        return name
    return name[len(base_prefix) + 1 :]


def utf8_sort_key(key: str) -> bytes:
    """Sort key that orders like S3 and GCS do: by UTF-8 bytes."""
    return key.encode("utf-8")
