"""A partition's stored state, reconciled with what is really in storage.

The index lags the segments by design (a segment is stored before the index
that lists it), so after a crash the listing can show segments the index
does not. Those that continue the tiling are adopted from their footers; a
hole before one (an index lost, so its missing ranges with it) is recorded as
a missing range. Only a leftover whose offsets are all stored in indexed
segments, or that a prune already removed from the index (its deletion was
interrupted), is ever removed: stored records are never deleted, and a pruned
segment never comes back.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from libkb.format.encryption import ALGORITHM, key_object_key
from libkb.format.models import (
    MissingRange,
    PartitionIndex,
    SegmentEntry,
    index_key,
    parse_segment_key,
    partition_prefix,
)
from libkb.format.segment import CODEC_NAMES, FOOTER_SIZE, decode_footer, decode_header
from libkb.storage import NotFoundError, StorageBackend

log = logging.getLogger("libkb.backup")
_HEADER_READ = 1024


def read_segment_entry(backend: StorageBackend, key: str, base: int) -> SegmentEntry:
    """Stats of a stored segment from its header and footer (two range reads)."""
    size = backend.size(key)
    header = decode_header(backend.get_range(key, 0, min(size, _HEADER_READ)), name=key)
    footer = decode_footer(backend.get_range(key, max(0, size - FOOTER_SIZE), size), name=key)
    if header.base_offset != base:
        raise ValueError(f"{key}: header says base offset {header.base_offset}")
    encryption = ALGORITHM if header.encrypted else None
    return SegmentEntry.from_footer(key, base, footer, size, CODEC_NAMES[header.codec], encryption)


ADOPT, AFTER_HOLE, LEFTOVER, OVERLAP = "adopt", "after-hole", "leftover", "overlap"
PRUNED = "pruned"


def judge_strays(
    end: int | None, strays: list[SegmentEntry], pruned_end: int | None = None
) -> Iterator[tuple[SegmentEntry, str, int | None]]:
    """How a run treats segments its index (covering up to ``end``) does not list, in offset order.

    Yields (segment, verdict, where the coverage ended before it).

    ``ADOPT``: continues the coverage. ``AFTER_HOLE``: adopted too, after offsets
    nothing accounts for. ``PRUNED``: inside the index's pruned ranges (which
    end at ``pruned_end``): a prune removed it from the index and was stopped
    before deleting it. ``LEFTOVER``: a copy of offsets already indexed.
    ``OVERLAP``: reaches past the index from inside it; left alone.
    """
    for entry in sorted(strays, key=lambda e: e.base_offset):
        if pruned_end is not None and entry.base_offset < pruned_end:
            yield entry, PRUNED, end
            continue
        if end is not None and entry.base_offset < end:
            yield entry, LEFTOVER if entry.end_offset <= end else OVERLAP, end
            continue
        yield entry, AFTER_HOLE if end is not None and entry.base_offset > end else ADOPT, end
        end = entry.end_offset


def pruned_end(index: PartitionIndex) -> int | None:
    """Where the index's pruned prefix ends (None: nothing pruned)."""
    return max((p.end for p in index.pruned), default=None)


def load_index(
    backend: StorageBackend, backup_id: str, topic: str, partition: int, *, repair: bool = True
) -> tuple[PartitionIndex, bool]:
    """The partition's index with unlisted segments adopted; True if it changed.

    With ``repair``, leftovers are deleted: copies of indexed offsets, and
    segments a prune removed from the index but did not get to delete.
    """
    key = index_key(backup_id, topic, partition)
    try:
        index = PartitionIndex.from_json(backend.get(key), name=key)
    except NotFoundError:
        index = PartitionIndex(topic, partition)
    known = {s.key for s in index.segments}
    cut = pruned_end(index)
    stray = []
    for name in backend.iter_keys(partition_prefix(backup_id, topic, partition)):
        parsed = parse_segment_key(name)
        if parsed is None or name in known:
            continue
        if cut is not None and parsed[3] < cut:
            _remove_pruned(backend, name, repair)  # judged by its key alone: no need to open it
        else:
            stray.append((parsed[3], name))
    changed = False
    entries = [read_segment_entry(backend, name, base) for base, name in stray]
    for entry, verdict, end in judge_strays(index.end_offset, entries, cut):
        name = entry.key
        if verdict == LEFTOVER and repair:
            log.warning("removing %s: its offsets are already stored in indexed segments", name)
            _delete_segment(backend, name, bool(entry.encryption))
            continue
        if verdict in (LEFTOVER, OVERLAP):
            log.warning("leaving %s alone: it overlaps the indexed segments; validate the backup", name)
            continue
        end = index.end_offset
        if verdict == AFTER_HOLE and end is not None:
            # A hole the index would have explained (retention), but the index is gone or
            # stale: keep the segments and make the hole explicit rather than guess.
            index.missing.append(
                MissingRange(end, entry.base_offset, "unknown: found while rebuilding the index")
            )
            log.warning(
                "offsets %d-%d of %s/%d are not stored; recorded as missing",
                end,
                entry.base_offset - 1,
                topic,
                partition,
            )
        index.segments.append(entry)
        changed = True
        log.info("adopted %s, stored before the index listed it", name)
    return index, changed


def _remove_pruned(backend: StorageBackend, name: str, repair: bool) -> None:
    """A segment inside the index's pruned ranges: never adopted; deleted when repairing."""
    if repair:
        log.warning("removing %s: it was pruned (the prune that removed it from the index was stopped)", name)
        _delete_segment(backend, name, True)  # judged by its key alone: its key object may exist


def _delete_segment(backend: StorageBackend, name: str, encrypted: bool) -> None:
    """Delete a segment, then its key object (an encrypted one's; never before the segment)."""
    with contextlib.suppress(NotFoundError):
        backend.delete(name)
    if encrypted:
        with contextlib.suppress(NotFoundError):
            backend.delete(key_object_key(name))
