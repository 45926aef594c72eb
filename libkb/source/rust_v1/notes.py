"""What the Rust tool's format cannot keep, said plainly once, and whether its records carry its own headers.

The losses were found by comparing the fixtures' backups with the records a
consumer read (docs/format.rst, "Reading the Rust tool's backups"). Whether a
backup's records carry the tool's ``x-original-*`` headers depends on its
``include_offset_headers`` setting, which the manifest does not record:
:func:`tool_header_note` reads the first record of the smallest segment.
"""

from __future__ import annotations

import zstandard

from libkb.errors import FormatError
from libkb.format.models import SegmentEntry
from libkb.format.rust_segment import (
    HEADER_SIZE,
    TOOL_HEADERS,
    SegmentRecords,
    decode_records,
    open_segment,
    read_header,
    tool_tail,
)
from libkb.format.segment import Record
from libkb.storage import StorageBackend, StorageError

#: What every backup of the Rust tool loses, whatever its settings.
LOSSES = (
    "timestamp types are not stored: records are restored as CreateTime with their stored timestamp, and "
    "for a topic with message.timestamp.type=LogAppendTime the tool stored the producer's timestamp, "
    "not the broker's append time consumers saw",
    "null header values were stored as empty values",
    "a header name repeated within a record kept only its last value, at the first one's place",
    "records were read with read_uncommitted: records of aborted transactions and transaction markers, "
    "where a topic had any, were stored, and are restored, as ordinary records",
    "topic configs and replication factors are not stored: topics a restore creates get the broker's "
    "defaults",
    "a run's status is not recorded: the manifest lists each segment as soon as it is stored, so a run "
    "that stopped midway looks finished",
    "the source cluster's id is not recorded: a restore cannot tell that its target is the cluster the "
    "backup came from, so it cannot refuse to write topics back into themselves there; map them to new "
    "names (restore.topic_mapping)",
)

#: Compressed bytes read to get at a segment's first record (a zstd block is at most 128 KiB).
PEEK_BYTES = 256 * 1024


def tool_header_note(backend: StorageBackend, entry: SegmentEntry) -> str | None:
    """Whether the first record of ``entry`` carries the tool's headers, as a note (None if unreadable)."""
    try:
        record = first_record(backend, entry)
    except (FormatError, StorageError):
        return None  # validate says what is wrong with it
    if record is None:
        return None
    tail = tool_tail(record[5] or [], record[0], record[1])
    if not tail:
        return (
            f"the records carry none of the tool's {', '.join(TOOL_HEADERS)} headers "
            f"(the first record of {entry.key} has none)"
        )
    return (
        f"the records carry the tool's own headers {', '.join(TOOL_HEADERS[:tail])} (as the first record "
        f"of {entry.key} shows): restores leave them out; restore.keep_rust_tool_headers: true keeps them"
    )


def first_record(backend: StorageBackend, entry: SegmentEntry) -> Record | None:
    """The segment's first record: from its first bytes where the codec allows, else from all of it."""
    name = f"{entry.key} (offsets {entry.first_offset}-{entry.last_offset})"
    if entry.codec in ("none", "zstd") and entry.size > PEEK_BYTES:
        head = backend.get_range(entry.key, 0, PEEK_BYTES)
        header = read_header(head, name)
        area = head[HEADER_SIZE:]
        if header.codec == "zstd":
            try:
                area = zstandard.ZstdDecompressor().decompressobj().decompress(area)
            except zstandard.ZstdError:
                area = b""
        try:
            records = decode_records(area, 0, len(area), 1, 1, header.start_offset - 1, False)[0]
        except ValueError:
            records = []
        if records:
            return records[0]
    data = backend.get(entry.key)
    header = open_segment(data, name)
    for batch in SegmentRecords(data, header, name, strip=False, batch_bytes=65536):
        return batch[0]
    return None
