"""What the prune tests share: a backup to prune, and the checks that it is whole and exact after.

The backup is :data:`tests.fakes.jobs.TOPIC` backed up from the fake cluster
(three partitions of 120 records, a record a second from ``BASE_TS``,
segments of at most 40 records), so each partition has several segments to
prune and a time range to cut in.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from integration.kafka_data import BASE_TS
from libkb.backup import lease
from libkb.backup.state import load_index
from libkb.catalog import validate_backup
from libkb.format.models import PartitionIndex, PrunedRange, parse_segment_key
from libkb.format.segment import Record
from libkb.source import open_backup
from libkb.storage import StorageBackend
from tests.fakes import FakeKafka
from tests.fakes.cluster import FakeCluster
from tests.fakes.jobs import (
    BACKUP_ID,
    PARTITIONS,
    TOPIC,
    backup_engine,
    content,
    restore_engine,
    source_kafka,
)

#: A moment inside the backed-up records' times: the first segment of each partition is older.
CUTOFF_MS = BASE_TS + 150_000


def backed_up(backend: StorageBackend, **options: Any) -> FakeKafka:
    """The topic backed up into ``backend`` (a snapshot); the fake cluster it came from."""
    from tests.fakes.jobs import backup_config

    kafka = source_kafka()
    result = backup_engine(kafka, backend, backup_config(**options)).run()
    assert result.status == "complete"
    return kafka


def copy_into(source: StorageBackend, target: StorageBackend) -> None:
    for key in source.list(""):
        target.put(key, source.get(key))


def coverage(backend: StorageBackend) -> dict[int, PartitionIndex]:
    """Each partition as a restore reads it (the index, with segments a run left unindexed)."""
    return {p: load_index(backend, BACKUP_ID, TOPIC, p, repair=False)[0] for p in range(PARTITIONS)}


def kept(cluster: FakeCluster, indexes: dict[int, PartitionIndex]) -> dict[int, list[Record]]:
    """The source records a backup whose coverage is ``indexes`` must still hold: from its retained start."""
    out = {}
    for p, index in indexes.items():
        start = index.retained_start if index.retained_start is not None else 0
        out[p] = [r.stored() for r in cluster.records(TOPIC, p) if r.offset >= start]
    return out


def assert_valid(backend: StorageBackend) -> list[str]:
    """A deep validation finds no problem; its warnings."""
    report = validate_backup(backend, BACKUP_ID, deep=True)
    assert report.ok, report.problems
    return report.warnings


def assert_restores_kept(backend: StorageBackend, cluster: FakeCluster) -> None:
    """A restore gives exactly the records the backup keeps, partition by partition, in order."""
    want = kept(cluster, coverage(backend))
    target = FakeKafka()
    result = restore_engine(target, backend).run()
    assert result.status == "complete"
    made = f"{TOPIC}-restored" in target.cluster.topics  # not when nothing is left to restore
    for p in range(PARTITIONS):
        restored = [r.stored() for r in target.cluster.records(f"{TOPIC}-restored", p)] if made else []
        assert content(restored) == content(want[p])


def assert_reads_kept(backend: StorageBackend, cluster: FakeCluster) -> None:
    """What a restore reads (the segment source, every block checked) is exactly the records kept.

    The restore engine's own path without Kafka: a fraction of its time, for
    checks repeated at every instant.
    """
    source = open_backup(backend, BACKUP_ID)
    want = kept(cluster, coverage(backend))
    for p in range(PARTITIONS):
        index = source.readable_coverage(TOPIC, p)
        read = [
            r
            for entry in index.segments
            for batch in source.load(entry).batches(entry.base_offset, entry.end_offset)
            for r in batch
        ]
        assert read == want[p]


def stored_segments(backend: StorageBackend) -> list[str]:
    return [k for k in backend.list(f"{BACKUP_ID}/") if parse_segment_key(k) is not None]


def without_times(ranges: list[PrunedRange]) -> list[tuple[int, int, int, int, int, str]]:
    """Pruned ranges minus when they were made (runs at different instants record different times)."""
    return [(r.start, r.end, r.segments, r.records, r.bytes, r.reason) for r in ranges]


@contextlib.contextmanager
def later(monkeypatch: pytest.MonkeyPatch, seconds: float = 3600) -> Iterator[None]:
    """Leases see the clock ``seconds`` ahead: a killed run's lease has expired, as it would by then."""
    real = lease._now_ms
    monkeypatch.setattr(lease, "_now_ms", lambda: real() + int(seconds * 1000))
    try:
        yield
    finally:
        monkeypatch.setattr(lease, "_now_ms", real)
