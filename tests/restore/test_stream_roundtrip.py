"""zstd-stream (``compression: zstd``'s default) through the engines, Kafka faked, on each backend kind.

Each data set shape of the benchmarks (bench/datasets.py) is backed up and
restored record for record on the memory and the filesystem backends;
``zstd_mode: block`` still writes format-1 zstd; a flipped byte is named by
``validate --deep`` and by a restore; a restore of an offset range that
starts in the middle of a segment decodes at most one restart interval
before it. (The real-Kafka, real-storage round trip is in
``integration/backup/test_zstd_stream.py``.)
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from integration.kafka_data import stored_index
from libkb.catalog import validate_backup
from libkb.config import JobConfig, parse_config
from libkb.errors import FormatError
from libkb.format.segment import RESTART_POINTS_VERSION, SegmentReader
from libkb.format.zstream import StreamDecoder
from libkb.storage import FilesystemConfig, MemoryConfig, StorageBackend, create_backend_from_config
from tests.cli.stored import flip_byte
from tests.fakes import FakeKafka
from tests.fakes.jobs import BACKUP_ID, TOPIC, backup_engine, content, restore_config, restore_engine
from tests.format.test_zstream import datasets

TARGET = f"{TOPIC}-restored"
SHAPES = ["distinct", "cyclic", "cdc", "random", "lz4-producer", "zstd-producer"]
RESTART = 3


@pytest.fixture(params=["memory", "file"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StorageBackend]:
    config = MemoryConfig() if request.param == "memory" else FilesystemConfig(path=str(tmp_path / "store"))
    with create_backend_from_config(config) as b:
        yield b


def source(shape: str, size: int = 240_000, partitions: int = 2) -> FakeKafka:
    kafka = FakeKafka()
    kafka.cluster.create_topic(TOPIC, partitions, {})
    for n, (key, value, headers) in enumerate(datasets().records(shape, size)):
        kafka.cluster.append(TOPIC, n % partitions, key, value, headers, 1_700_000_000_000 + n)
    return kafka


def config(**backup: Any) -> JobConfig:
    return parse_config(
        {
            "backup_id": BACKUP_ID,
            "source": {"bootstrap_servers": ["fake:9092"], "topics": {"include": [TOPIC]}},
            "storage": {"backend": "memory"},
            "backup": {"block_bytes": 8192, "zstd_restart_blocks": RESTART, **backup},
        },
        source="test",
    )


def restored(kafka: FakeKafka, backend: StorageBackend, **restore: Any) -> FakeKafka:
    target = FakeKafka()
    result = restore_engine(target, backend, restore_config(**restore)).run()
    assert result.status == "complete"
    return target


@pytest.mark.parametrize("shape", SHAPES)
def test_every_data_set_shape_round_trips_in_stream_mode(shape: str, backend: StorageBackend) -> None:
    kafka = source(shape)
    assert backup_engine(kafka, backend, config()).run().status == "complete"
    for p in range(2):
        index = stored_index(backend, BACKUP_ID, TOPIC, p)
        assert {s.codec for s in index.segments} == {"zstd-stream"}
        # Segments of several restart intervals: the index lists them (format version 8).
        assert all(s.restarts for s in index.segments) and index.format_version == RESTART_POINTS_VERSION
    assert validate_backup(backend, BACKUP_ID, deep=True).ok
    target = restored(kafka, backend)
    for p in range(2):
        want = [r.stored() for r in kafka.cluster.records(TOPIC, p)]
        assert content([r.stored() for r in target.cluster.records(TARGET, p)]) == content(want)


def test_zstd_mode_block_writes_format_1_zstd(backend: StorageBackend) -> None:
    kafka = source("cyclic", 120_000, partitions=1)
    assert backup_engine(kafka, backend, config(zstd_mode="block")).run().status == "complete"
    index = stored_index(backend, BACKUP_ID, TOPIC, 0)
    assert {s.codec for s in index.segments} == {"zstd"} and index.format_version == 1
    assert SegmentReader(backend.get(index.segments[0].key)).header.version == 1


def test_a_flipped_byte_is_named_by_deep_validation_and_by_a_restore(backend: StorageBackend) -> None:
    kafka = source("cdc", partitions=1)
    assert backup_engine(kafka, backend, config()).run().status == "complete"
    key = stored_index(backend, BACKUP_ID, TOPIC, 0).segments[0].key
    block = list(SegmentReader(backend.get(key)).blocks())[4]
    flip_byte(backend, key, block.position + 40)
    where = (
        f"in the block of offsets {block.first_offset}-{block.last_offset} "
        f"(block 4, at byte {block.position}) (zstd-stream: the blocks after it up to the next "
        "restart point cannot be decoded either)"
    )
    report = validate_backup(backend, BACKUP_ID, deep=True)
    assert f"{key}: body checksum mismatch (corrupt bytes): {where}" in report.problems
    named = f"{key}: checksum mismatch {where}"
    with pytest.raises(FormatError, match=re.escape(named)):
        restore_engine(FakeKafka(), backend, restore_config()).run()


def test_a_restore_from_mid_segment_decodes_at_most_one_restart_interval_before_it(
    backend: StorageBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    kafka = source("distinct", 400_000, partitions=1)
    assert backup_engine(kafka, backend, config()).run().status == "complete"
    index = stored_index(backend, BACKUP_ID, TOPIC, 0)
    assert len(index.segments) == 1
    blocks = list(SegmentReader(backend.get(index.segments[0].key)).blocks())
    assert len(blocks) > 4 * RESTART
    decoded: list[tuple[int, int]] = []  # (block index, payload bytes) through the zstd-stream decoder
    real = StreamDecoder.decode

    def counting(self: StreamDecoder, payload: Any, index: int, raw_len: int) -> bytes:
        decoded.append((index, len(payload)))
        return real(self, payload, index, raw_len)

    monkeypatch.setattr(StreamDecoder, "decode", counting)
    wanted = 2 * RESTART + 2  # the last block of the third interval
    start, end = blocks[wanted].first_offset + 1, blocks[wanted + 2].last_offset
    target = restored(kafka, backend, offset_ranges={TOPIC: {0: [start, end]}})
    want = [r.stored() for r in kafka.cluster.records(TOPIC, 0) if start <= r.offset < end]
    assert content([r.stored() for r in target.cluster.records(TARGET, 0)]) == content(want)
    # The restore checks the block before its range too: from that block's restart point on, no earlier.
    restart = (wanted - 1) // RESTART * RESTART
    indexes = [i for i, _ in decoded]
    assert indexes == list(range(restart, indexes[-1] + 1)) and wanted + 2 <= indexes[-1] <= wanted + 3
    before = sum(n for i, n in decoded if i < wanted)
    interval = sum(b.length - 32 for b in blocks[restart : restart + RESTART])
    assert before <= interval
