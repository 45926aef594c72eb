"""The storage API tour shared by the ``storage_*.py`` examples (not run by itself).

Every backend runs the very same code: only the configuration differs. The
tour writes only keys under ``libkb-example/`` and deletes them at the end.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from libkb.storage import NotFoundError, StorageBackend

MiB = 1024 * 1024
#: Every key the tour writes starts with this.
PREFIX = "libkb-example"


def tour(backend: StorageBackend, *, stream_mib: int = 3) -> None:
    """put/get/exists/head/put_if_absent/copy, a streamed put/get, list, delete."""
    hello = f"{PREFIX}/hello.txt"
    copied = f"{PREFIX}/copies/hello.txt"
    big = f"{PREFIX}/stream.bin"
    print(f"backend: {backend!r}")

    # Whole objects: put overwrites, get reads all of it.
    backend.put(hello, b"hello, libkb!")
    print(f"put {hello}: 13 bytes")
    print(f"get {hello}: {backend.get(hello)!r}")
    print(f"exists {hello}: {backend.exists(hello)}")
    meta = backend.head(hello)
    print(f"head {hello}: size={meta.size} last_modified={meta.last_modified} e_tag={meta.e_tag}")
    # Create-only write: False because the object is already there.
    print(f"put_if_absent {hello}: {backend.put_if_absent(hello, b'second writer')}")
    backend.copy(hello, copied)
    print(f"copy {hello} -> {copied}")

    # Streams: bounded memory both ways (multipart/blocks for big objects).
    sent = hashlib.sha256()

    def chunks() -> Iterator[bytes]:
        for i in range(stream_mib):
            chunk = bytes([i % 256]) * MiB
            sent.update(chunk)
            yield chunk

    backend.put_stream(big, chunks())
    # On S3 an e-tag ending in "-N" shows a multipart upload of N parts.
    e_tag = backend.head(big).e_tag
    print(f"put_stream {big}: {stream_mib * MiB} bytes in {stream_mib} chunks, e_tag={e_tag}")
    received = hashlib.sha256()
    total = 0
    for chunk in backend.get_stream(big, chunk_size=256 * 1024):
        received.update(chunk)
        total += len(chunk)
    if received.digest() != sent.digest():
        raise RuntimeError(f"{big}: the bytes read back differ from the bytes written")
    print(f"get_stream {big}: {total} bytes, sha256 matches")
    print(f"get_range {big} [{MiB}, {MiB + 4}): {backend.get_range(big, MiB, MiB + 4)!r}")

    # Listing is by plain string prefix, recursive, sorted.
    keys = backend.list(f"{PREFIX}/")
    print(f"list {PREFIX}/: {keys}")
    for key in keys:
        backend.delete(key)
        print(f"delete {key}")
    print(f"exists {hello}: {backend.exists(hello)}")
    try:
        backend.get(hello)
    except NotFoundError as exc:  # also a FileNotFoundError
        print(f"get {hello}: NotFoundError: {exc}")
    print("done")
