"""The restore engine on the Rust tool's fixture backups, Kafka faked: exact, windowed, mapped, resumable.

Each restored record is compared with what the Rust format keeps of the
ground truth (:func:`tests.source.rust_fixtures.as_stored`); the real broker
runs the same restores in ``integration/restore/test_rust_backups.py``.
"""

from __future__ import annotations

from typing import Any

import pytest

from libkb.config import JobConfig, parse_config
from libkb.format.segment import Record, SegmentError
from libkb.restore.engine import RestoreEngine
from libkb.storage import MemoryConfig, StorageBackend, create_backend_from_config
from tests.cli.stored import flip_byte
from tests.fakes import FakeKafka, Fault, FaultyBackend
from tests.fakes.jobs import content
from tests.source.rust_fixtures import (
    AUDIT,
    FIXTURES,
    ORDERS,
    group_offsets,
    stored_records,
    upload_fixture,
    with_tool_headers,
)

MAPPING = {ORDERS: f"{ORDERS}-restored", AUDIT: f"{AUDIT}-restored"}


def config(backup_id: str, include: list[str] | None = None, **restore: Any) -> JobConfig:
    return parse_config(
        {
            "mode": "restore",
            "backup_id": backup_id,
            "target": {"bootstrap_servers": ["fake:9092"], "topics": {"include": include or ["*"]}},
            "storage": {"backend": "memory"},
            "restore": {"topic_mapping": MAPPING, "create_topics": True, **restore},
        },
        source="test",
    )


def engine(target: FakeKafka, backend: StorageBackend, cfg: JobConfig) -> RestoreEngine:
    return RestoreEngine(
        cfg,
        backend=backend,
        admin=target.admin(),
        producer_factory=target.producer_factory,
        consumer_factory=target.consumer_factory,
    )


def restored(target: FakeKafka, topic: str, partition: int) -> list[Record]:
    return [r.stored() for r in target.cluster.records(topic, partition)]


@pytest.fixture
def memory() -> StorageBackend:
    return create_backend_from_config(MemoryConfig())


@pytest.mark.parametrize("name", FIXTURES)
def test_every_fixture_restores_exactly_what_its_format_keeps(memory: StorageBackend, name: str) -> None:
    backup_id = upload_fixture(memory, name)
    target = FakeKafka()
    cfg = config(backup_id, reset_consumer_offsets=True)
    result = engine(target, memory, cfg).run()
    expected = stored_records(name)
    assert result.status == "complete" and result.records == sum(map(len, expected.values()))
    for (topic, p), records in expected.items():
        got = restored(target, MAPPING[topic], p)
        assert content(got) == content(records)
        assert [r[0] for r in got] == [r[0] for r in records]  # new topics: the same offsets
    # Topics are created with the broker's defaults: the format keeps no configs.
    assert target.cluster.topics[MAPPING[AUDIT]].configs.get("message.timestamp.type") is None
    # Group offsets: translated through the restore, here to the same offsets.
    assert target.cluster.groups["fxa-consumer"] == {
        (MAPPING[t], p): o for t, parts in group_offsets()["fxa-consumer"].items() for p, o in parts.items()
    }
    notes = "\n".join(result.notes)
    assert "kafka-backup (Rust) segment format 1: null header values were stored as empty values" in notes
    assert "LogAppendTime" in notes
    assert f"left out the Rust tool's own x-original-* headers of {result.records:,} records" in notes


def test_keep_rust_tool_headers_restores_them(memory: StorageBackend) -> None:
    upload_fixture(memory, "none")
    target = FakeKafka()
    result = engine(target, memory, config("fxa-none", keep_rust_tool_headers=True)).run()
    assert result.status == "complete"
    got = restored(target, MAPPING[ORDERS], 2)
    assert content(got) == content([with_tool_headers(r) for r in stored_records("none")[(ORDERS, 2)]])


def test_a_time_window_is_inclusive_on_the_stored_timestamps(memory: StorageBackend) -> None:
    """The Rust tool's own point-in-time restore of this window gave 333/334/334 records, as here."""
    upload_fixture(memory, "zstd")
    target = FakeKafka()
    low, high = 1700000100000, 1700000200000
    result = engine(target, memory, config("fxa-zstd", time_window_start=low, time_window_end=high)).run()
    assert result.status == "complete" and result.records == 1001
    for (topic, p), records in stored_records("zstd").items():
        inside = [r for r in records if low <= r[1] <= high]
        got = restored(target, MAPPING[topic], p) if topic == ORDERS else []
        assert content(got) == content(inside)
        assert (
            len(inside) == {(ORDERS, 0): 333, (ORDERS, 1): 334, (ORDERS, 2): 334, (AUDIT, 0): 0}[(topic, p)]
        )


def test_partition_mapping_and_offset_ranges(memory: StorageBackend) -> None:
    upload_fixture(memory, "lz4")
    target = FakeKafka()
    cfg = config(
        "fxa-lz4",
        ["moved"],
        source_partitions={ORDERS: [0, 2]},
        partition_mapping={ORDERS: {0: 2, 2: 0}},
        offset_ranges={ORDERS: {0: [390, 810]}},  # across three segments' edges
        topic_mapping={ORDERS: "moved"},
    )
    result = engine(target, memory, cfg).run()
    expected = stored_records("lz4")
    assert result.status == "complete" and result.records == 420 + 1000
    assert content(restored(target, "moved", 2)) == content(expected[(ORDERS, 0)][390:810])
    assert content(restored(target, "moved", 0)) == content(expected[(ORDERS, 2)])
    assert restored(target, "moved", 1) == []


def test_a_failed_segment_read_then_a_rerun_is_exact(memory: StorageBackend) -> None:
    upload_fixture(memory, "zstd")
    target = FakeKafka()
    faulty = FaultyBackend(memory, Fault("get", "fxa-orders/partition=1/segment-", nth=2))
    with pytest.raises(Exception, match="injected"):
        engine(target, faulty, config("fxa-zstd")).run()
    assert faulty.injected
    result = engine(target, memory, config("fxa-zstd")).run()
    assert result.status == "complete" and result.skipped_records > 0
    for (topic, p), records in stored_records("zstd").items():
        assert content(restored(target, MAPPING[topic], p)) == content(records)


def test_a_corrupt_segment_stops_the_restore_naming_it_and_a_repaired_copy_resumes(
    memory: StorageBackend,
) -> None:
    upload_fixture(memory, "zstd")
    key = "fxa-zstd/topics/fxa-orders/partition=2/segment-00000000000000000400.bin.zst"
    good = memory.get(key)
    flip_byte(memory, key)
    target = FakeKafka()
    with pytest.raises(
        SegmentError, match=rf"^{key} \(offsets 400-799\): checksum mismatch \(corrupt bytes\)$"
    ):
        engine(target, memory, config("fxa-zstd")).run()
    assert len(restored(target, MAPPING[ORDERS], 2)) == 400  # the segment before it went out whole
    memory.put(key, good)
    result = engine(target, memory, config("fxa-zstd")).run()
    assert result.status == "complete"
    for (topic, p), records in stored_records("zstd").items():
        assert content(restored(target, MAPPING[topic], p)) == content(records)
