"""A restore that starts inside a segment reads it from one restart interval before on (format version 8).

The engines run on the memory and filesystem backends (Kafka faked); a
:class:`~tests.fakes.CountingBackend` counts the bytes each storage read
returns. The bound each test asserts comes from the segment's own bytes
(read whole, beside the restore) and the configured restart interval, not
from the index the restore uses. (The real-Kafka, MinIO round trip is in
``integration/restore/test_ranged_reads.py``.)
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from integration.kafka_data import stored_index
from libkb.catalog import validate_backup
from libkb.config import JobConfig, parse_config
from libkb.errors import FormatError
from libkb.format.models import PartitionIndex, SegmentEntry, index_key
from libkb.format.restarts import RestartPoint
from libkb.format.segment import BlockInfo, Record, SegmentReader, block_records
from libkb.storage import FilesystemConfig, MemoryConfig, StorageBackend, create_backend_from_config
from tests.cli.stored import flip_byte
from tests.encryption.support import encrypted, env_key, new_key
from tests.fakes import CountingBackend, FakeKafka
from tests.fakes.jobs import (
    BACKUP_ID,
    TOPIC,
    backup_config,
    backup_engine,
    content,
    restore_config,
    restore_engine,
)

TARGET = f"{TOPIC}-restored"
RESTART = 4
T0 = 1_700_000_000_000
COMPAT_V7 = Path(__file__).resolve().parent.parent / "data" / "compat" / "v7"
R8 = 1_704_672_000_000  # the v7 fixture's run: metrics[0]'s record at offset n is stamped R8 + n


@pytest.fixture(params=["memory", "file"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StorageBackend]:
    config = MemoryConfig() if request.param == "memory" else FilesystemConfig(path=str(tmp_path / "store"))
    with create_backend_from_config(config) as b:
        yield b


def stamp(n: int) -> int:
    """Record ``n``'s timestamp: rising, but out of order within a few records (producers' clocks)."""
    return T0 + 10 * n + (n % 7) * 25


def one_segment(backend: StorageBackend, count: int = 600, job: JobConfig | None = None) -> FakeKafka:
    """One partition of ``count`` records backed up as one segment of ~1 KiB blocks, a restart
    interval every :data:`RESTART` blocks."""
    kafka = FakeKafka()
    kafka.cluster.create_topic(TOPIC, 1, {})
    for n in range(count):
        value = b'{"user":%d,"page":"/item/%d","agent":"Mozilla/5.0 (X11; Linux x86_64)"}' % (n % 37, n)
        kafka.cluster.append(TOPIC, 0, b"u%d" % (n % 37), value, [("n", b"%d" % n)], stamp(n))
    assert backup_engine(kafka, backend, job or config()).run().status == "complete"
    return kafka


def config(**backup: Any) -> JobConfig:
    return backup_config(block_bytes=1024, segment_max_records=100_000, zstd_restart_blocks=RESTART, **backup)


def the_segment(backend: StorageBackend) -> tuple[SegmentEntry, tuple[RestartPoint, ...]]:
    """The partition's one segment, and the restart points its index entry lists (several)."""
    (entry,) = stored_index(backend, BACKUP_ID, TOPIC, 0).segments
    assert entry.restarts is not None and len(entry.restarts) > 4
    return entry, entry.restarts
    return entry


def blocks_of(data: bytes) -> list[tuple[BlockInfo, list[Record]]]:
    """Every block of a whole segment, with its records."""
    reader = SegmentReader(data)
    decoder, infos = reader.decoder(), list(reader.blocks())
    return [(b, block_records(data, b, reader.header.codec, decoder=decoder)) for b in infos]


def interval_start(data: bytes, first_wanted: Callable[[Record], bool]) -> int:
    """The byte position of the restart interval holding the first record ``first_wanted`` takes."""
    blocks = blocks_of(data)
    holding = next(i for i, (_, records) in enumerate(blocks) if any(map(first_wanted, records)))
    return blocks[holding // RESTART * RESTART][0].position


def restore(backend: StorageBackend, **options: Any) -> tuple[FakeKafka, CountingBackend]:
    counting = CountingBackend(backend)
    target = FakeKafka()
    result = restore_engine(target, counting, restore_config(**options)).run()
    assert result.status == "complete"
    return target, counting


def restored(target: FakeKafka) -> list[tuple[Any, ...]]:
    return content([r.stored() for r in target.cluster.records(TARGET, 0)])


def source_records(kafka: FakeKafka, keep: Callable[[Record], bool]) -> list[tuple[Any, ...]]:
    return content([r.stored() for r in kafka.cluster.records(TOPIC, 0) if keep(r.stored())])


def test_a_time_window_from_mid_segment_reads_at_most_one_restart_interval_before_it(
    backend: StorageBackend,
) -> None:
    kafka = one_segment(backend)
    entry, points = the_segment(backend)
    low, high = stamp(300), stamp(450)

    target, counting = restore(backend, time_window_start=low, time_window_end=high)

    assert restored(target) == source_records(kafka, lambda r: low <= r[1] <= high)
    whole = backend.get(entry.key)
    start = interval_start(whole, lambda r: r[1] >= low)
    # One ranged read, from the start of the interval holding the window's first record to the end.
    assert counting.reads[entry.key] == [("get_range", entry.size - start)]
    assert counting.read(entry.key) <= entry.size - start < entry.size
    assert start > points[1].position  # the window starts past the second interval


def test_an_offset_range_from_mid_segment_reads_from_its_restart_interval(backend: StorageBackend) -> None:
    kafka = one_segment(backend)
    entry, _ = the_segment(backend)
    start, end = 333, 420

    target, counting = restore(backend, offset_ranges={TOPIC: {0: [start, end]}})

    assert restored(target) == source_records(kafka, lambda r: start <= r[0] < end)
    position = interval_start(backend.get(entry.key), lambda r: r[0] >= start)
    assert counting.reads[entry.key] == [("get_range", entry.size - position)]
    assert counting.read(entry.key) < entry.size


def test_a_window_from_the_first_interval_or_no_filter_reads_the_segment_whole(
    backend: StorageBackend,
) -> None:
    kafka = one_segment(backend)
    entry, _ = the_segment(backend)
    target, counting = restore(backend, time_window_start=stamp(3))
    assert restored(target) == source_records(kafka, lambda r: r[1] >= stamp(3))
    assert counting.reads[entry.key] == [("get", entry.size)]
    _, counting = restore(backend, restore_id="again", topic_mapping={TOPIC: "other"})
    assert counting.reads[entry.key] == [("get", entry.size)]


def test_an_encrypted_segment_is_read_from_its_restart_point_too(
    backend: StorageBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = env_key(monkeypatch, "kek-1", new_key())
    kafka = one_segment(backend, job=encrypted(config(), key))
    entry, points = the_segment(backend)
    assert entry.encryption is not None
    low = stamp(400)
    counting = CountingBackend(backend)
    target = FakeKafka()
    job = encrypted(restore_config(time_window_start=low), key)
    assert restore_engine(target, counting, job).run().status == "complete"
    assert restored(target) == source_records(kafka, lambda r: r[1] >= low)
    # Before anything is written every seal is checked (a read of the header and one of the footer);
    # the records come from one ranged read of the tail.
    start = next(p.position for p in points if p.max_timestamp >= low)
    assert start > points[1].position
    tail = entry.size - start
    loads = [n for op, n in counting.reads[entry.key] if n > 1024]
    assert loads == [tail] and ("get", entry.size) not in counting.reads[entry.key]


def test_corruption_in_the_part_read_is_named_and_before_it_is_never_read(backend: StorageBackend) -> None:
    one_segment(backend)
    entry, _ = the_segment(backend)
    blocks = [b for b, _ in blocks_of(backend.get(entry.key))]
    low = stamp(450)
    start = interval_start(backend.get(entry.key), lambda r: r[1] >= low)
    first = next(i for i, b in enumerate(blocks) if b.position == start)
    early, late = blocks[first - 2], blocks[first + 2]

    flip_byte(backend, entry.key, early.position + 40)  # in a payload before the restart point
    target, _ = restore(backend, time_window_start=low)
    assert restored(target)  # never read: the restore has what it needs
    assert any(f"(block {first - 2}, at byte {early.position})" in p for p in validate_backup(
        backend, BACKUP_ID, deep=True
    ).problems)  # fmt: skip

    flip_byte(backend, entry.key, late.position + 40)  # in a payload the restore reads
    named = (
        f"{entry.key}: checksum mismatch in the block of offsets {late.first_offset}-{late.last_offset} "
        f"(block {first + 2}, at byte {late.position})"
    )
    with pytest.raises(FormatError, match=re.escape(named)):
        restore_engine(FakeKafka(), backend, restore_config(time_window_start=low, restore_id="again")).run()


def test_a_corrupt_block_head_in_the_part_read_is_named(backend: StorageBackend) -> None:
    one_segment(backend)
    entry, points = the_segment(backend)
    point = points[3]
    blocks = [b for b, _ in blocks_of(backend.get(entry.key))]
    head = blocks[point.block_index + 1]
    flip_byte(backend, entry.key, head.position + 13)  # its first offset, +16384
    with pytest.raises(
        FormatError, match=rf"{re.escape(entry.key)}: .*at byte {head.position}.*corrupt block head"
    ):
        restore_engine(
            FakeKafka(), backend, restore_config(offset_ranges={TOPIC: {0: [point.first_offset, 10**6]}})
        ).run()


def test_an_index_whose_restart_point_is_off_is_refused_and_named(backend: StorageBackend) -> None:
    """A point that does not start a block where the index says: the restore stops, naming the segment;
    ``validate --deep`` (which reads segments whole) says which point is wrong."""
    one_segment(backend)
    entry, points = the_segment(backend)
    moved = points[2]
    wrong = (*points[:2], replace(moved, position=moved.position + 32), *points[3:])  # inside a payload
    index = stored_index(backend, BACKUP_ID, TOPIC, 0)
    index.segments[0] = replace(entry, restarts=wrong)
    backend.put(index_key(BACKUP_ID, TOPIC, 0), index.to_json())
    with pytest.raises(FormatError, match=re.escape(entry.key)):
        restore_engine(
            FakeKafka(), backend, restore_config(offset_ranges={TOPIC: {0: [moved.first_offset, 10**6]}})
        ).run()
    report = validate_backup(backend, BACKUP_ID, deep=True)
    assert [p for p in report.problems if f"restart point at block {moved.block_index}" in p]


def test_segments_without_restart_points_are_still_read_whole(tmp_path: Path) -> None:
    """A version-7 backup (its index lists no restart points) restored from the middle of a segment."""
    shutil.copytree(COMPAT_V7, tmp_path / "v7")
    with create_backend_from_config(FilesystemConfig(path=str(tmp_path / "v7"))) as backend:
        index = PartitionIndex.from_json(backend.get(index_key("stream", "metrics", 0)))
        (entry,) = index.segments
        assert index.format_version == 7 and entry.restarts is None
        counting = CountingBackend(backend)
        target = FakeKafka()
        job = parse_config(
            {
                "mode": "restore",
                "backup_id": "stream",
                "target": {"bootstrap_servers": ["fake:9092"], "topics": {"include": ["*"]}},
                "storage": {"backend": "filesystem", "path": str(tmp_path / "v7")},
                "restore": {
                    "create_topics": True,
                    "offset_ranges": {"metrics": {0: [6, 10]}},
                    "time_window_start": R8 + 6,
                },
            },
            source="test",
        )
        assert restore_engine(target, counting, job).run().status == "complete"
        assert counting.reads[entry.key] == [("get", entry.size)]
        assert [r.timestamp for r in target.cluster.records("metrics", 0)] == [R8 + 6, R8 + 8]


def _restated(backend: StorageBackend, entry: SegmentEntry, points: tuple[RestartPoint, ...]) -> None:
    index = stored_index(backend, BACKUP_ID, TOPIC, 0)
    index.segments[0] = replace(entry, restarts=points)
    backend.put(index_key(BACKUP_ID, TOPIC, 0), index.to_json())


def test_deep_validation_checks_every_restart_point_against_the_segment(backend: StorageBackend) -> None:
    one_segment(backend)
    entry, points = the_segment(backend)
    assert validate_backup(backend, BACKUP_ID, deep=True).ok
    blocks = blocks_of(backend.get(entry.key))
    # A point one block later: its stats are that block's, but the block continues a zstd frame.
    at = points[2].block_index + 1
    info = blocks[at][0]
    span = [r for _, rs in blocks[at : points[3].block_index] for r in rs]
    later = RestartPoint(
        info.position,
        at,
        info.first_offset,
        sum(len(rs) for _, rs in blocks[:at]),
        min(r[1] for r in span),
        max(r[1] for r in span),
    )
    _restated(backend, entry, (*points[:2], later, *points[3:]))
    problems = validate_backup(backend, BACKUP_ID, deep=True).problems
    assert (
        f"{entry.key}: the index lists a restart point at block {at}, where zstd-stream decoding cannot start"
        in (" ".join(problems))
    )
    # A restore that starts there is refused, naming the segment and the block.
    with pytest.raises(
        FormatError, match=rf"{re.escape(entry.key)}: the block of .*: block {at} continues a zstd context"
    ):
        restore_engine(
            FakeKafka(), backend, restore_config(offset_ranges={TOPIC: {0: [info.first_offset, 10**6]}})
        ).run()

    wrong = replace(points[1], max_timestamp=points[1].max_timestamp - 1)  # a record of it is newer
    _restated(backend, entry, (points[0], wrong, *points[2:]))
    problems = validate_backup(backend, BACKUP_ID, deep=True).problems
    assert [p for p in problems if f"restart point at block {points[1].block_index} states" in p]
