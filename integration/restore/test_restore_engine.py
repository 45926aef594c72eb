"""The restore engine against a real Apache Kafka broker: exact, resumable, translated.

Records are compared field by field (key and value with null distinct from
empty, headers in order with duplicates and nulls, timestamp and its type).
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import msgpack
import pytest
from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from integration.kafka_data import BASE_TS, consume_all, message_partition, message_record, produce
from integration.services.endpoints import KafkaEndpoint
from integration.storage.configs import azure_config, gcs_config, s3_config
from libkb.backup.engine import BackupEngine
from libkb.catalog import BackupNotFoundError, validate_backup
from libkb.config import parse_config
from libkb.errors import ConfigError, FormatError
from libkb.format.models import TOPIC_IDS_VERSION, PartitionIndex, index_key, manifest_key
from libkb.format.segment import (
    RESTART_POINTS_VERSION,
    ZSTD_STREAM_VERSION,
    Record,
    SegmentError,
    SegmentReader,
)
from libkb.kafka.admin import KafkaAdmin
from libkb.restore import direct
from libkb.restore import engine as restore_engine
from libkb.restore.engine import RestoreEngine, RestoreError, RestoreResult
from libkb.restore.topics import TargetTopicError
from libkb.storage import (
    FilesystemConfig,
    MemoryConfig,
    StorageBackend,
    StorageBackendConfig,
    create_backend_from_config,
)
from libkb.storage.settings import BackendConfig
from tests.fuzz.segments import pack_items, raw_block, replace_block

pytestmark = pytest.mark.kafka


def _storage_dict(config: BackendConfig) -> dict[str, Any]:
    """A storage: mapping for parse_config from a typed config (round trip through the loader)."""
    from dataclasses import fields

    out: dict[str, Any] = {"backend": config.backend}
    for f in fields(config):
        value = getattr(config, f.name)
        if f.name in ("resilience", "transfer"):
            value = {k.name: getattr(value, k.name) for k in fields(value)}
        if value is not None:
            out[f.name] = value
    return out


def backup(
    kafka: KafkaEndpoint,
    storage: dict[str, Any],
    topics: list[str],
    backend: StorageBackend | None = None,
    **opts: Any,
) -> None:
    config = parse_config(
        {
            "backup_id": "bk",
            "source": {"bootstrap_servers": kafka.bootstrap_servers, "topics": {"include": topics}},
            "storage": storage,
            "backup": {"block_bytes": 8192, "segment_max_records": 700, **opts},
        }
    )
    assert BackupEngine(config, backend=backend).run().status == "complete"


def restore(
    kafka: KafkaEndpoint,
    storage: dict[str, Any],
    include: list[str],
    backend: StorageBackend | None = None,
    backup_id: str = "bk",
    **opts: Any,
) -> RestoreResult:
    config = parse_config(
        {
            "mode": "restore",
            "backup_id": backup_id,
            "target": {"bootstrap_servers": kafka.bootstrap_servers, "topics": {"include": include}},
            "storage": storage,
            "restore": opts,
        }
    )
    return RestoreEngine(config, backend=backend).run()


def content(records: list[Record]) -> list[tuple[Any, ...]]:
    """Everything but the offset: what a restore must reproduce exactly."""
    return [r[1:] for r in records]


@pytest.fixture
def topic_factory(kafka_topic_factory: Any) -> Any:
    def make(partitions: int = 1, config: dict[str, str] | None = None, name: str | None = None) -> str:
        return str(
            kafka_topic_factory(
                partitions=partitions, config={"retention.ms": "-1", **(config or {})}, name=name
            )
        )

    return make


@pytest.fixture
def memory() -> StorageBackend:
    return create_backend_from_config(MemoryConfig())


def _storage(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> tuple[dict[str, Any], StorageBackend | None]:
    """A storage: mapping for a job file, and the backend to hand the engines (memory only)."""
    if kind == "filesystem":
        return {"backend": "filesystem", "path": str(tmp_path)}, None
    if kind == "memory":
        return {"backend": "memory"}, create_backend_from_config(MemoryConfig())
    if kind in ("minio", "seaweedfs"):
        config: BackendConfig = s3_config(request.getfixturevalue(f"{kind}_bucket"))
    elif kind == "azurite":
        config = azure_config(request.getfixturevalue("azurite_container"))
    else:
        config = gcs_config(request.getfixturevalue("gcs_bucket"))
    return _storage_dict(config), None


# The MinIO case also runs in CI's docker phase (Kafka and MinIO in containers).
@pytest.fixture(
    params=["filesystem", "memory", pytest.param("minio", marks=pytest.mark.docker), "azurite", "gcs"]
)
def any_storage(
    request: pytest.FixtureRequest, tmp_path: Path
) -> tuple[dict[str, Any], StorageBackend | None]:
    return _storage(request.param, request, tmp_path)


@pytest.fixture(params=["filesystem", "memory", "minio", "seaweedfs", "azurite", "gcs"])
def every_storage(
    request: pytest.FixtureRequest, tmp_path: Path
) -> tuple[dict[str, Any], StorageBackend | None]:
    """``any_storage`` and SeaweedFS too (a second S3 implementation)."""
    return _storage(request.param, request, tmp_path)


def test_round_trip_on_every_backend_is_exact(
    kafka_service: KafkaEndpoint,
    topic_factory: Any,
    any_storage: tuple[dict[str, Any], StorageBackend | None],
) -> None:
    storage, backend = any_storage
    source = topic_factory(partitions=3)
    produce(kafka_service.bootstrap_servers, source, 3000, partitions=3)
    backup(kafka_service, storage, [source], backend)
    target = f"{source}-restored"
    result = restore(
        kafka_service, storage, [target], backend, topic_mapping={source: target}, create_topics=True
    )
    assert result.status == "complete" and result.ok
    assert result.records == 3000 and result.created_topics == [target]
    expected = consume_all(kafka_service.bootstrap_servers, source, 3)
    got = consume_all(kafka_service.bootstrap_servers, target, 3)
    for p in range(3):
        assert content(got[p]) == content(expected[p])
        assert [r[0] for r in got[p]] == [r[0] for r in expected[p]]  # fresh topic: offsets match too
    # No extra headers: the records are exactly the originals.
    assert all(
        r[5] is None or not any(h[0].startswith(("x-libkb", "x-original-", "x-source-")) for h in r[5])
        for p in got
        for r in got[p]
    )
    # Re-running the same restore changes nothing.
    again = restore(
        kafka_service, storage, [target], backend, topic_mapping={source: target}, create_topics=True
    )
    assert again.status == "complete"
    assert consume_all(kafka_service.bootstrap_servers, target, 3) == got


@pytest.mark.parametrize("path", ["c", "python"])
def test_whole_blocks_restore_exactly_from_c_and_from_python(
    kafka_service: KafkaEndpoint,
    topic_factory: Any,
    memory: StorageBackend,
    monkeypatch: pytest.MonkeyPatch,
    path: str,
) -> None:
    """Whole blocks go out through the C path (``libkb.restore.direct``) or ``produce()`` per record."""
    if path == "python":
        monkeypatch.setenv(direct.ENV, "produce")
    opened: list[object] = []

    def open_direct(*args: Any) -> object:
        opened.append(direct.open_direct(*args))
        return opened[-1]

    monkeypatch.setattr(restore_engine, "open_direct", open_direct)
    source = topic_factory(partitions=3)
    produce(kafka_service.bootstrap_servers, source, 3000, partitions=3)
    backup(kafka_service, {"backend": "memory"}, [source], memory)
    target = f"{source}-restored"
    result = restore(
        kafka_service,
        {"backend": "memory"},
        [target],
        memory,
        topic_mapping={source: target},
        create_topics=True,
    )
    assert result.status == "complete" and result.records == 3000
    assert (opened[0] is None) == (path == "python")
    expected = consume_all(kafka_service.bootstrap_servers, source, 3)
    got = consume_all(kafka_service.bootstrap_servers, target, 3)
    assert got == expected  # offsets, timestamps, keys, values and headers


def _check_lz4_stored(store: StorageBackend, topic: str, partitions: int) -> None:
    """The backup validates deep, and every segment is lz4 in a format version 2 object.

    The manifest is version 5: it records the topic's id (KIP-516), not because of lz4.
    """
    report = validate_backup(store, "bk", deep=True)
    assert report.ok and report.checked_records == 2000, report.problems
    assert json.loads(store.get(manifest_key("bk")))["format_version"] == TOPIC_IDS_VERSION
    for p in range(partitions):
        index = PartitionIndex.from_json(store.get(index_key("bk", topic, p)))
        assert index.format_version == 2 and len(index.segments) >= 2
        for entry in index.segments:
            header = SegmentReader(store.get(entry.key), name=entry.key).header
            assert (entry.codec, header.codec, header.version) == ("lz4", 2, 2)


def test_lz4_round_trip_on_every_backend_is_exact(
    kafka_service: KafkaEndpoint,
    topic_factory: Any,
    every_storage: tuple[dict[str, Any], StorageBackend | None],
) -> None:
    """``compression: lz4``: stored as lz4 (format version 2), deep-valid, restored record for record."""
    storage, backend = every_storage
    source = topic_factory(partitions=2)
    produce(kafka_service.bootstrap_servers, source, 2000, partitions=2)
    backup(kafka_service, storage, [source], backend, compression="lz4")
    if backend is not None:
        _check_lz4_stored(backend, source, 2)
    else:
        with create_backend_from_config(StorageBackendConfig.from_dict(storage)) as store:
            _check_lz4_stored(store, source, 2)
    target = f"{source}-restored"
    result = restore(
        kafka_service, storage, [target], backend, topic_mapping={source: target}, create_topics=True
    )
    assert result.status == "complete" and result.records == 2000
    expected = consume_all(kafka_service.bootstrap_servers, source, 2)
    got = consume_all(kafka_service.bootstrap_servers, target, 2)
    for p in range(2):
        assert content(got[p]) == content(expected[p])
        assert [r[0] for r in got[p]] == [r[0] for r in expected[p]]


def _check_stream_stored(store: StorageBackend, topic: str, partitions: int, records: int) -> None:
    """Deep-valid; zstd-stream segments (format version 7, their index version 8: several restart
    intervals each, listed), the incompressible blocks raw or alone."""
    report = validate_backup(store, "bk", deep=True)
    assert report.ok and report.checked_records == records, report.problems
    kinds = set()
    for p in range(partitions):
        index = PartitionIndex.from_json(store.get(index_key("bk", topic, p)))
        assert index.format_version == RESTART_POINTS_VERSION and all(e.restarts for e in index.segments)
        assert {e.codec for e in index.segments} == {"zstd-stream"}
        for entry in index.segments:
            data = store.get(entry.key)
            assert data[4] == ZSTD_STREAM_VERSION  # the segment's own version
            kinds |= {data[b.position + 32] for b in SegmentReader(data, name=entry.key).blocks()}
    assert {1, 2} <= kinds and kinds & {0, 3}  # continue, restart; the incompressible: raw or alone


@pytest.mark.parametrize("kind", ["minio", "azurite", "gcs"])
def test_zstd_stream_round_trip_of_the_bench_data_sets_on_cloud_backends(
    kafka_service: KafkaEndpoint,
    topic_factory: Any,
    kind: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    """``compression: zstd`` (zstd-stream): cyclic, CDC, random and producer-compressed records, exact."""
    datasets = _bench_datasets()
    storage, _ = _storage(kind, request, tmp_path)
    source = topic_factory(partitions=2)
    total = 0
    for shape in ("cyclic", "cdc", "random", "zstd-producer", "lz4-producer"):
        total += datasets.produce(kafka_service.bootstrap_servers, source, 2, shape, 120_000)[0]
    backup(kafka_service, storage, [source], zstd_restart_blocks=4, segment_max_records=100_000)
    with create_backend_from_config(StorageBackendConfig.from_dict(storage)) as store:
        _check_stream_stored(store, source, 2, total)
    target = f"{source}-restored"
    result = restore(kafka_service, storage, [target], topic_mapping={source: target}, create_topics=True)
    assert result.status == "complete" and result.records == total
    expected = consume_all(kafka_service.bootstrap_servers, source, 2)
    got = consume_all(kafka_service.bootstrap_servers, target, 2)
    for p in range(2):
        assert content(got[p]) == content(expected[p])


def _bench_datasets() -> Any:
    bench = str(Path(__file__).resolve().parents[2] / "bench")
    if bench not in sys.path:
        sys.path.insert(0, bench)
    import importlib

    return importlib.import_module("datasets")


def test_guide_restore_test_example_works_as_written(
    kafka_service: KafkaEndpoint, topic_factory: Any, memory: StorageBackend
) -> None:
    orders = topic_factory(name=f"orders-{time.monotonic_ns()}")
    payments = topic_factory(name=f"payments-{time.monotonic_ns()}")
    other = topic_factory()
    for t in (orders, payments, other):
        produce(kafka_service.bootstrap_servers, t, 50)
    backup(kafka_service, {"backend": "memory"}, [orders, payments, other], memory)
    mapping = {orders: f"test-restore-{orders}", payments: f"test-restore-{payments}"}
    result = restore(
        kafka_service,
        {"backend": "memory"},
        ["test-restore-*"],
        memory,
        backup_id="latest",
        topic_mapping=mapping,
        create_topics=True,
    )
    assert result.status == "complete"
    assert sorted(result.created_topics) == sorted(mapping.values())
    assert result.plan is not None and other in result.plan.skipped_topics
    for src, dst in mapping.items():
        assert content(consume_all(kafka_service.bootstrap_servers, dst, 1)[0]) == content(
            consume_all(kafka_service.bootstrap_servers, src, 1)[0]
        )


def test_time_window_is_inclusive_at_both_ends(
    kafka_service: KafkaEndpoint, topic_factory: Any, memory: StorageBackend
) -> None:
    source = topic_factory()
    produce(kafka_service.bootstrap_servers, source, 200)  # record i has timestamp BASE_TS + i*1000
    backup(kafka_service, {"backend": "memory"}, [source], memory)
    target = topic_factory()
    start, end = BASE_TS + 50 * 1000, BASE_TS + 120 * 1000
    iso_start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start / 1000))
    result = restore(
        kafka_service,
        {"backend": "memory"},
        [target],
        memory,
        topic_mapping={source: target},
        time_window_start=iso_start,
        time_window_end=end,
    )
    got = consume_all(kafka_service.bootstrap_servers, target, 1)[0]
    assert [r[1] for r in got] == [BASE_TS + i * 1000 for i in range(50, 121)]
    assert result.records == 71


def test_offset_ranges_and_partition_mapping(
    kafka_service: KafkaEndpoint, topic_factory: Any, memory: StorageBackend
) -> None:
    source = topic_factory(partitions=2)
    produce(kafka_service.bootstrap_servers, source, 400, partitions=2)
    backup(kafka_service, {"backend": "memory"}, [source], memory)
    target = topic_factory(partitions=3)
    restore(
        kafka_service,
        {"backend": "memory"},
        [target],
        memory,
        topic_mapping={source: target},
        offset_ranges={source: {"0": [10, 25], "1": [0, 200]}},
        partition_mapping={source: {"0": 2, "1": 0}},
    )
    expected = consume_all(kafka_service.bootstrap_servers, source, 2)
    got = consume_all(kafka_service.bootstrap_servers, target, 3)
    assert content(got[2]) == content([r for r in expected[0] if 10 <= r[0] < 25])
    assert content(got[0]) == content(expected[1])
    assert got[1] == []


def test_compacted_and_transactional_round_trips(
    kafka_service: KafkaEndpoint, topic_factory: Any, memory: StorageBackend
) -> None:
    tx_topic = topic_factory()
    tx = Producer(
        {"bootstrap.servers": kafka_service.bootstrap_servers, "transactional.id": f"{tx_topic}-tx"}
    )
    tx.init_transactions(30)
    for batch, commit in ((0, True), (1, False), (2, True)):
        tx.begin_transaction()
        for i in range(50):
            tx.produce(tx_topic, key=f"{batch}-{i}".encode(), value=None if i % 5 == 0 else b"v")
        tx.flush(30)
        tx.commit_transaction(30) if commit else tx.abort_transaction(30)
    compact = topic_factory(config={"cleanup.policy": "compact"})
    producer = Producer({"bootstrap.servers": kafka_service.bootstrap_servers})
    for i in range(300):
        producer.produce(compact, key=f"k{i % 30}".encode(), value=None if i % 7 == 0 else f"{i}".encode())
    producer.flush(10)
    backup(kafka_service, {"backend": "memory"}, [tx_topic, compact], memory)
    targets = {tx_topic: f"{tx_topic}-r", compact: f"{compact}-r"}
    restore(
        kafka_service,
        {"backend": "memory"},
        list(targets.values()),
        memory,
        topic_mapping=targets,
        create_topics=True,
    )
    for src, dst in targets.items():
        assert content(consume_all(kafka_service.bootstrap_servers, dst, 1)[0]) == content(
            consume_all(kafka_service.bootstrap_servers, src, 1)[0]
        )
    restored_tx = consume_all(kafka_service.bootstrap_servers, targets[tx_topic], 1)[0]
    assert len(restored_tx) == 100 and all(
        r[3] is not None and not r[3].startswith(b"1-") for r in restored_tx
    )


def _group_position(kafka: KafkaEndpoint, group: str, topic: str, partitions: int) -> list[Record]:
    """What a consumer of ``group`` reads next on ``topic`` (from its committed offsets)."""
    consumer = Consumer(
        {
            "bootstrap.servers": kafka.bootstrap_servers,
            "group.id": group,
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
        }
    )
    committed = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
    consumer.assign(committed)
    out: list[Record] = []
    eof: set[int] = set()
    deadline = time.monotonic() + 30
    while len(eof) < partitions and time.monotonic() < deadline:
        for msg in consumer.consume(500, 0.5):
            err = msg.error()
            if err:
                if err.code() == KafkaError._PARTITION_EOF:
                    eof.add(message_partition(msg))
                continue
            out.append(message_record(msg))
    consumer.close()
    return out


def test_consumer_group_resumes_exactly_on_the_target(
    kafka_service: KafkaEndpoint, topic_factory: Any, memory: StorageBackend
) -> None:
    # Compaction-like gaps: a window filter removes records, so offsets shift on the target.
    source = topic_factory(partitions=2)
    produce(kafka_service.bootstrap_servers, source, 400, partitions=2)
    group = f"{source}-app"
    committed = {0: 73, 1: 150}
    consumer = Consumer({"bootstrap.servers": kafka_service.bootstrap_servers, "group.id": group})
    consumer.commit(offsets=[TopicPartition(source, p, o) for p, o in committed.items()], asynchronous=False)
    consumer.close()
    backup(kafka_service, {"backend": "memory"}, [source], memory)
    target = f"{source}-restored"
    window_start = BASE_TS + 30 * 1000  # drops the first records of each partition
    result = restore(
        kafka_service,
        {"backend": "memory"},
        [target],
        memory,
        topic_mapping={source: target},
        create_topics=True,
        time_window_start=window_start,
        consumer_groups=[group],
        reset_consumer_offsets=True,
    )
    assert result.groups_reset == [group]
    source_records = consume_all(kafka_service.bootstrap_servers, source, 2)
    unread = [
        r[1:] for p in (0, 1) for r in source_records[p] if r[0] >= committed[p] and r[1] >= window_start
    ]
    assert sorted(content(_group_position(kafka_service, group, target, 2))) == sorted(unread)
    translated = {(t.source_partition): t.target_offset for t in result.group_offsets}
    assert set(translated) == {0, 1}


def test_refusals_are_clear(kafka_service: KafkaEndpoint, topic_factory: Any, memory: StorageBackend) -> None:
    source = topic_factory(partitions=3)
    produce(kafka_service.bootstrap_servers, source, 300, partitions=3)
    backup(kafka_service, {"backend": "memory"}, [source], memory)
    small = topic_factory(partitions=1)  # (restore.repartition: auto would restore it by key)
    with pytest.raises(
        TargetTopicError, match=r"has 1 partitions but the restore needs 3.*repartition: true"
    ):
        restore(
            kafka_service,
            {"backend": "memory"},
            [small],
            memory,
            topic_mapping={source: small},
            repartition=False,
        )
    with pytest.raises(TargetTopicError, match=r"does not exist; create it or set restore\.create_topics"):
        restore(
            kafka_service,
            {"backend": "memory"},
            ["absent-*"],
            memory,
            topic_mapping={source: f"absent-{source}"},
        )
    with pytest.raises(BackupNotFoundError, match=r"no backup 'nope'.*backups there: bk"):
        restore(kafka_service, {"backend": "memory"}, ["*"], memory, backup_id="nope")
    with pytest.raises(RestoreError, match="restored into themselves"):
        restore(kafka_service, {"backend": "memory"}, [source], memory)
    with pytest.raises(ConfigError, match="is not a topic of backup"):
        restore(kafka_service, {"backend": "memory"}, ["*"], memory, topic_mapping={"unknown": "x"})
    # Old records: an existing target that would delete them at once is refused.
    short = topic_factory(partitions=3, config={"retention.ms": "3600000"})
    with pytest.raises(TargetTopicError, match=r"retention\.ms=3600000"):
        restore(kafka_service, {"backend": "memory"}, [short], memory, topic_mapping={source: short})
    # A corrupt segment is named.
    index = json.loads(memory.get(index_key("bk", source, 1)))
    seg = index["segments"][0]["key"]
    data = bytearray(memory.get(seg))
    data[len(data) // 2] ^= 0xFF
    memory.put(seg, bytes(data))
    fresh = f"{source}-fresh"
    with pytest.raises(FormatError, match=seg.replace(".", r"\.")):
        restore(
            kafka_service,
            {"backend": "memory"},
            [fresh],
            memory,
            topic_mapping={source: fresh},
            create_topics=True,
        )


def test_a_segment_with_valid_checksums_and_a_bad_record_is_named_with_its_offsets(
    kafka_service: KafkaEndpoint, topic_factory: Any, memory: StorageBackend
) -> None:
    """A writer's bug or a crafted file: every checksum holds, a record has a text key. The restore
    stops with a SegmentError naming the object and the block's offsets, before producing that block."""
    source = topic_factory(partitions=1)
    produce(kafka_service.bootstrap_servers, source, 50, partitions=1)
    backup(kafka_service, {"backend": "memory"}, [source], memory)
    index = PartitionIndex.from_json(memory.get(index_key("bk", source, 0)))
    key = index.segments[0].key
    items = list(msgpack.Unpacker(io.BytesIO(raw_block(memory.get(key), 0)), raw=False))
    items[3][3] = "a text key"
    data = replace_block(memory.get(key), 0, pack_items(items))
    memory.put(key, data)
    index.segments[0] = dataclasses.replace(index.segments[0], size=len(data))
    memory.put(index_key("bk", source, 0), index.to_json())
    fresh = f"{source}-fresh"
    with pytest.raises(SegmentError) as raised:
        restore(
            kafka_service,
            {"backend": "memory"},
            [fresh],
            memory,
            topic_mapping={source: fresh},
            create_topics=True,
        )
    assert str(raised.value).startswith(f"{key}: the block of offsets 0-")
    assert "undecodable record: key or value is not bytes or nil" in str(raised.value)


def test_created_topic_keeps_old_records(
    kafka_service: KafkaEndpoint, topic_factory: Any, memory: StorageBackend
) -> None:
    # 7 days' retention, records from 2020, which the test broker checks every second. A segment
    # rolls once its first record is older than segment.ms (kept from rolling here), and retention
    # deletes a segment, the active one too, once its newest record is older than retention.ms:
    # one record of today, last, keeps them all until the backup has read them.
    source = topic_factory(config={"retention.ms": "604800000", "segment.ms": "315360000000000"})
    produce(kafka_service.bootstrap_servers, source, 10)
    today = Producer({"bootstrap.servers": kafka_service.bootstrap_servers})
    today.produce(source, b"today", b"k")
    assert today.flush(30) == 0
    backup(kafka_service, {"backend": "memory"}, [source], memory)
    target = f"{source}-old"
    result = restore(
        kafka_service,
        {"backend": "memory"},
        [target],
        memory,
        topic_mapping={source: target},
        create_topics=True,
    )
    assert result.records == 11, "the backup did not hold all 11 records: the source lost some first"
    assert any("retention.ms=-1" in n for n in result.notes)
    time.sleep(3)  # the broker checks retention every second in the test cluster
    assert len(consume_all(kafka_service.bootstrap_servers, target, 1)[0]) == 11


def test_log_append_time_target_stamps_broker_time(
    kafka_service: KafkaEndpoint, topic_factory: Any, memory: StorageBackend
) -> None:
    """As README.rst states: such a target replaces the original timestamps; all else stays exact."""
    source = topic_factory()
    produce(kafka_service.bootstrap_servers, source, 50)
    backup(kafka_service, {"backend": "memory"}, [source], memory)
    target = topic_factory(config={"message.timestamp.type": "LogAppendTime"})
    started = int(time.time() * 1000)
    result = restore(kafka_service, {"backend": "memory"}, [target], memory, topic_mapping={source: target})
    assert result.records == 50
    original = consume_all(kafka_service.bootstrap_servers, source, 1)[0]
    restored = consume_all(kafka_service.bootstrap_servers, target, 1)[0]
    assert [r[3:] for r in restored] == [r[3:] for r in original]  # keys, values, headers, order
    assert all(r[1] < started for r in original)  # the test data's old CreateTime stamps
    now = int(time.time() * 1000)
    assert all(r[2] == TIMESTAMP_LOG_APPEND_TIME and started - 5_000 <= r[1] <= now for r in restored)


def test_dry_run_writes_nothing(
    kafka_service: KafkaEndpoint, topic_factory: Any, memory: StorageBackend
) -> None:
    source = topic_factory()
    produce(kafka_service.bootstrap_servers, source, 100)
    backup(kafka_service, {"backend": "memory"}, [source], memory)
    target = f"{source}-dry"
    result = restore(
        kafka_service, {"backend": "memory"}, [target], memory, topic_mapping={source: target}, dry_run=True
    )
    assert result.status == "planned" and result.records == 100
    assert result.plan is not None and result.plan.tasks[0].target_topic == target
    assert not any("/restores/" in k for k in memory.list())


_RUNNER = textwrap.dedent(
    """
    import json, sys
    from libkb.config import parse_config
    from libkb.restore.engine import RestoreEngine
    engine = RestoreEngine(parse_config(json.loads(sys.argv[1])))
    engine.checkpoint_secs = 0.5  # so that the run is killed after some checkpoints
    result = engine.run()
    print(result.status, result.records, result.skipped_records, flush=True)
    """
)


def test_kill_9_during_restore_then_rerun_is_exact(
    kafka_service: KafkaEndpoint, topic_factory: Any, tmp_path: Path
) -> None:
    source = topic_factory(partitions=2)
    produce(kafka_service.bootstrap_servers, source, 20_000, partitions=2)
    storage = {"backend": "filesystem", "path": str(tmp_path)}
    backup(kafka_service, storage, [source])
    target = topic_factory(partitions=2)
    config = {
        "mode": "restore",
        "backup_id": "bk",
        "target": {"bootstrap_servers": kafka_service.bootstrap_servers, "topics": {"include": [target]}},
        "storage": storage,
        "restore": {"topic_mapping": {source: target}, "rate_limit_records_per_sec": 2000},
    }
    victim = subprocess.Popen(
        [sys.executable, "-c", _RUNNER, json.dumps(config)],
        env={**os.environ, "PYTHONPATH": os.getcwd()},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    admin = KafkaAdmin(AdminClient({"bootstrap.servers": kafka_service.bootstrap_servers}))

    def written() -> int:
        ends = admin.offsets([(target, 0), (target, 1)], read_committed=False)
        return sum(e.high for e in ends.values())

    deadline = time.monotonic() + 60
    while written() < 5000:
        assert time.monotonic() < deadline and victim.poll() is None, victim.communicate()
        time.sleep(0.1)
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    partial = sum(map(len, consume_all(kafka_service.bootstrap_servers, target, 2).values()))
    assert 0 < partial < 20_000
    (state_file,) = (tmp_path / "bk" / "restores").glob("*/state.json")
    verified = [p["verified_end"] for p in json.loads(state_file.read_text())["partitions"].values()]
    assert 0 < sum(verified) <= partial  # checkpoints vouched for part of it: the re-run reads back the rest
    del config["restore"]["rate_limit_records_per_sec"]  # type: ignore[attr-defined]
    result = RestoreEngine(parse_config(config)).run()
    assert result.status == "complete"
    assert result.skipped_records == partial
    expected = consume_all(kafka_service.bootstrap_servers, source, 2)
    got = consume_all(kafka_service.bootstrap_servers, target, 2)
    for p in (0, 1):
        assert content(got[p]) == content(expected[p])


def test_filesystem_config_round_trip_helper() -> None:
    """The storage helper used above turns typed configs back into loadable mappings."""
    config = FilesystemConfig(path="/x", prefix="p")
    assert StorageBackendConfig.from_dict(_storage_dict(config)) == config


def test_group_with_active_members_is_refused(
    kafka_service: KafkaEndpoint, topic_factory: Any, memory: StorageBackend
) -> None:
    from libkb.restore.groups import GroupOffsetError

    source = topic_factory()
    produce(kafka_service.bootstrap_servers, source, 50)
    group = f"{source}-busy"
    committer = Consumer({"bootstrap.servers": kafka_service.bootstrap_servers, "group.id": group})
    committer.commit(offsets=[TopicPartition(source, 0, 10)], asynchronous=False)
    committer.close()
    backup(kafka_service, {"backend": "memory"}, [source], memory)
    target = topic_factory()
    member = Consumer({"bootstrap.servers": kafka_service.bootstrap_servers, "group.id": group})
    member.subscribe([target])
    deadline = time.monotonic() + 30
    while not member.assignment() and time.monotonic() < deadline:
        member.poll(0.2)  # join the group: it now has an active member
    try:
        with pytest.raises(GroupOffsetError, match="active member"):
            restore(
                kafka_service,
                {"backend": "memory"},
                [target],
                memory,
                topic_mapping={source: target},
                consumer_groups=[group],
                reset_consumer_offsets=True,
            )
    finally:
        member.close()
