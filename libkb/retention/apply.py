"""Making a cut: the index that drops the segments is stored first, then the segments are deleted.

This order is what makes a prune safe to kill at any instant. Before the
index is stored nothing has changed; after it, the backup no longer refers to
the segments, and those not yet deleted are leftovers inside a pruned range:
readers ignore them, ``validate`` warns of them, and the next prune or backup
run deletes them (``libkb.backup.state.load_index``). A pruned segment is
never adopted back into an index, since its offsets lie inside the index's
pruned range.

Whoever makes the cut stores the index through ``write_index``, which fences
the write with its ownership of the partition (the backup's lease) and
applies the change to its own copy of the index.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from libkb.format.encryption import key_object_key
from libkb.format.models import PartitionIndex, PrunedRange
from libkb.metrics import RunMetrics
from libkb.retention.plan import PartitionCut
from libkb.storage import NotFoundError, StorageBackend, StorageError

log = logging.getLogger("libkb.retention")

#: Stores the index with a change applied: ``write_index(change)``.
IndexWriter = Callable[[Callable[[PartitionIndex], None]], object]

#: Segments deleted at once (deletes are small requests; on object stores their latency adds up).
DELETE_WORKERS = 8


@dataclass(slots=True)
class CutResult:
    """What one cut did: the range recorded, and segments that could not be deleted (leftovers)."""

    pruned: PrunedRange
    deleted: int = 0
    undeleted: list[str] = field(default_factory=list)
    error: str | None = None


def apply_cut(
    backend: StorageBackend,
    cut: PartitionCut,
    write_index: IndexWriter,
    *,
    when_ms: int,
    reason: str,
    metrics: RunMetrics,
    backup_id: str,
) -> CutResult:
    """Store the index without the cut's segments (a pruned range instead), then delete them.

    Raises whatever ``write_index`` raises, with nothing deleted; a ValueError
    when the index no longer starts with the cut's segments. A segment that
    cannot be deleted is left for the next prune (``CutResult.undeleted``).
    """
    recorded: list[PrunedRange] = []

    def change(index: PartitionIndex) -> None:
        recorded.append(index.prune(list(cut.segments), when_ms, reason))
        report_oldest(metrics, backup_id, index)

    write_index(change)
    result = CutResult(recorded[0])
    keys = [s.key for s in cut.segments]
    encrypted = {s.key for s in cut.segments if s.encryption}
    with ThreadPoolExecutor(min(DELETE_WORKERS, len(keys)), "libkb-prune") as pool:
        outcomes = list(pool.map(lambda key: _delete(backend, key, key in encrypted), keys))
    for key, error in zip(keys, outcomes, strict=True):
        if error is None:
            result.deleted += 1
        else:
            result.undeleted.append(key)
            result.error = result.error or error
    gone = [s for s, error in zip(cut.segments, outcomes, strict=True) if error is None]
    metrics.pruned_segments.labels(backup_id).inc(len(gone))
    metrics.pruned_bytes.labels(backup_id).inc(sum(s.size for s in gone))
    if result.undeleted:
        log.warning(
            "%s/%d: %d pruned segment(s) could not be deleted (%s); the next prune or run deletes them",
            cut.topic,
            cut.partition,
            len(result.undeleted),
            result.error,
        )
    return result


def _delete(backend: StorageBackend, key: str, encrypted: bool = False) -> str | None:
    """Delete one segment (then its key object); the error, if storage refused (gone already is fine)."""
    try:
        with contextlib.suppress(NotFoundError):
            backend.delete(key)
        if encrypted:
            with contextlib.suppress(NotFoundError):
                backend.delete(key_object_key(key))
    except StorageError as exc:
        return str(exc)
    return None


def report_oldest(metrics: RunMetrics, backup_id: str, index: PartitionIndex) -> None:
    """Set the partition's oldest retained timestamp (seconds), if it holds a timestamped record."""
    stamps = [s.min_timestamp for s in index.segments if s.record_count and s.min_timestamp >= 0]
    if stamps:
        gauge = metrics.oldest_retained.labels(index.topic, str(index.partition), backup_id)
        gauge.set(min(stamps) / 1000)
