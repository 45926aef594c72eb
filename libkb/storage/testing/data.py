"""What the conformance tests write: awkward keys, invalid keys and big byte streams."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator

from libkb.storage.base import StorageBackend

#: ``make_backend(prefix=None)``: a backend on this test's store (see :mod:`libkb.storage.testing`).
MakeBackend = Callable[..., StorageBackend]
MiB = 1024 * 1024

#: Keys every backend must store and list as they are: URL-special characters,
#: non-ASCII, look-alikes of encoded separators, dot segments that are not ``.``/``..``.
ODD_KEYS = [
    "with space/and more spaces",
    "plus+and&amp?hash#percent%tilde~",
    "percent-encoded%2Fslash",
    "unicode/ключ/値/émoji-🎉",
    "quotes/'single'\"double\"",
    "semi;colon,comma=equals@at!bang$dollar(paren)[br]{brace}",
    "dots/.hidden/..double-leading/trailing.",
    "x/" + "y" * 200,
]

#: Keys every backend must refuse with InvalidPathError before any I/O (the key rules).
INVALID_KEYS = [
    "",
    "/leading-slash",
    "double//slash",
    "trailing/",
    "a/./b",
    "a/../b",
    "..",
    ".",
    "nul\x00byte",
    "new\nline",
    "tab\tchar",
    "back\\slash",
    "s" * 256,
    "/".join(["k" * 200] * 6),  # 1205 bytes
]


def pattern(size: int, seed: int = 0) -> bytes:
    """Deterministic, incompressible-enough bytes without the cost of os.urandom at size."""
    block = hashlib.sha256(str(seed).encode()).digest() * (MiB // 32)
    whole, rest = divmod(size, len(block))
    return block * whole + block[:rest]


def uneven_chunks(total: int, seed: int = 0) -> Iterator[bytes]:
    """Chunks of awkward sizes, so part boundaries never line up with them."""
    sizes = [1, 7 * MiB + 3, 65_537, 3 * MiB, 13]
    block = pattern(8 * MiB, seed)
    sent, i = 0, 0
    while sent < total:
        size = min(sizes[i % len(sizes)], total - sent)
        offset = (sent * 31) % (len(block) - size) if len(block) > size else 0
        yield block[offset : offset + size]
        sent += size
        i += 1


def first_bytes(chunks: Iterable[bytes], n: int) -> bytes:
    """The first ``n`` bytes of a stream, reading no more chunks than needed."""
    head = bytearray()
    for chunk in chunks:
        if len(head) >= n:
            break
        head += chunk
    return bytes(head[:n])


def sha_of_chunks(chunks: Iterable[bytes]) -> tuple[str, int]:
    """SHA-256 and length of a stream, without holding it."""
    h, n = hashlib.sha256(), 0
    for c in chunks:
        h.update(c)
        n += len(c)
    return h.hexdigest(), n


def secret_values(known: Iterable[str] = ()) -> list[str]:
    """``known`` plus the values of secret-looking environment variables: what no
    ``repr`` or error message may show."""
    return [
        v
        for k, v in os.environ.items()
        if any(s in k for s in ("SECRET", "PASSWORD", "ACCOUNT_KEY", "STORAGE_KEY")) and len(v) > 6
    ] + list(known)
