"""The backup engine against a real Apache Kafka broker.

Every test compares what is stored with what a ``read_committed`` consumer
reads from the same partitions: offsets, timestamps and their type, keys and
values (null is not empty), headers in order with duplicates and nulls.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from integration.kafka_data import consume_all, produce, stored_index, stored_records, use_packer
from integration.services.endpoints import KafkaEndpoint
from libkb.backup.engine import BackupEngine, BackupResult
from libkb.backup.lease import LeaseHeldError, current_lease, lease_is_live
from libkb.catalog import describe_backup, list_backups, validate_backup
from libkb.config import JobConfig, parse_config
from libkb.format.models import Manifest, groups_from_json, groups_key, lease_key, manifest_key
from libkb.storage import MemoryConfig, StorageBackend, create_backend_from_config

pytestmark = pytest.mark.kafka


def job(
    kafka: KafkaEndpoint, storage: dict[str, Any], topics: list[str], backup_id: str = "bk", **backup: Any
) -> JobConfig:
    return parse_config(
        {
            "backup_id": backup_id,
            "source": {"bootstrap_servers": kafka.bootstrap_servers, "topics": {"include": topics}},
            "storage": storage,
            "backup": backup,
        },
        source="test",
    )


def check_exact(kafka: KafkaEndpoint, backend: StorageBackend, topic: str, partitions: int) -> int:
    """Stored records equal the topic's; coverage tiles each partition with no holes."""
    expected = consume_all(kafka.bootstrap_servers, topic, partitions)
    got = stored_records(backend, "bk", topic, partitions)
    for p in range(partitions):
        assert got[p] == expected[p], f"partition {p} differs"
        index = stored_index(backend, "bk", topic, p) if expected[p] else None
        if index is not None:
            assert index.coverage_problems() == []
    return sum(len(v) for v in expected.values())


@pytest.fixture(params=["intake", "c", "python"])
def packer(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test reading in C (the default), with the C packer over ``consume()``, and with the
    pure-Python packer."""
    return use_packer(str(request.param), monkeypatch)


@pytest.fixture
def memory() -> StorageBackend:
    return create_backend_from_config(MemoryConfig())


@pytest.fixture
def topic_factory(kafka_topic_factory: Any) -> Any:
    """Topics that keep records forever: the test data has 2020 timestamps, which the
    default 7-day retention would delete while the test runs."""

    def make(partitions: int = 1, config: dict[str, str] | None = None) -> str:
        return str(
            kafka_topic_factory(partitions=partitions, config={"retention.ms": "-1", **(config or {})})
        )

    return make


def test_records_are_stored_exactly(
    kafka_service: KafkaEndpoint, topic_factory: Any, memory: StorageBackend, packer: str
) -> None:
    topic = topic_factory(partitions=3)
    produce(kafka_service.bootstrap_servers, topic, 5000, partitions=3)
    progress: list[Any] = []
    result = BackupEngine(
        job(kafka_service, {"backend": "memory"}, [topic], segment_max_bytes=30_000, block_bytes=4096),
        backend=memory,
        progress=progress.append,
    ).run()
    assert result.status == "complete" and result.ok
    assert result.records == 5000
    assert result.segments >= 3 * 2  # rotation by bytes happened
    assert check_exact(kafka_service, memory, topic, 3) == 5000
    assert progress and progress[-1].records == 5000 and progress[-1].partitions_done == 3

    manifest = Manifest.from_json(memory.get(manifest_key("bk")))
    info = manifest.topics[topic]
    assert (info.partitions, info.replication_factor) == (3, 1)
    assert info.configs.get("retention.ms") == "-1"
    assert manifest.runs[-1].status == "complete"
    assert manifest.runs[-1].records == 5000


def test_rotation_by_records_and_many_partitions(
    kafka_service: KafkaEndpoint, topic_factory: Any, memory: StorageBackend, packer: str
) -> None:
    topic = topic_factory(partitions=12)
    empty = topic_factory(partitions=2)
    produce(kafka_service.bootstrap_servers, topic, 3000, partitions=12)
    result = BackupEngine(
        job(kafka_service, {"backend": "memory"}, [topic, empty], segment_max_records=40, block_bytes=2048),
        backend=memory,
    ).run()
    assert result.status == "complete"
    assert result.partitions == 14
    assert check_exact(kafka_service, memory, topic, 12) == 3000
    for p in range(12):
        index = stored_index(memory, "bk", topic, p)
        assert [s.record_count for s in index.segments] == [40] * 6 + [10]  # 250 records, 40 at most
        assert (index.start_offset, index.end_offset) == (0, 250)
    assert stored_records(memory, "bk", empty, 2) == {0: [], 1: []}


def test_resume_appends_only_new_records(
    kafka_service: KafkaEndpoint, topic_factory: Any, tmp_path: Path
) -> None:
    topic = topic_factory(partitions=2)
    storage = {"backend": "filesystem", "path": str(tmp_path)}
    produce(kafka_service.bootstrap_servers, topic, 1000, partitions=2)
    first = BackupEngine(job(kafka_service, storage, [topic])).run()
    produce(kafka_service.bootstrap_servers, topic, 600, partitions=2, start=1000)
    second = BackupEngine(job(kafka_service, storage, [topic])).run()
    third = BackupEngine(job(kafka_service, storage, [topic])).run()
    assert (first.records, second.records, third.records) == (1000, 600, 0)
    backend = create_backend_from_config(job(kafka_service, storage, [topic]).storage)
    assert check_exact(kafka_service, backend, topic, 2) == 1600
    runs = Manifest.from_json(backend.get(manifest_key("bk"))).runs
    assert [r.status for r in runs] == ["complete"] * 3


def test_transactional_topic_aborted_records_and_open_transaction(
    kafka_service: KafkaEndpoint, topic_factory: Any, memory: StorageBackend
) -> None:
    topic = topic_factory(partitions=1)
    bootstrap = kafka_service.bootstrap_servers

    def producer(tid: str) -> Producer:
        p = Producer({"bootstrap.servers": bootstrap, "transactional.id": tid})
        p.init_transactions(30)
        return p

    tx = producer(f"{topic}-tx")
    for batch, commit in ((0, True), (1, False), (2, True)):
        tx.begin_transaction()
        for i in range(100):
            tx.produce(topic, key=f"{batch}-{i}".encode(), value=b"x" * i)
        tx.flush(30)  # so aborted records really reach the log
        if commit:
            tx.commit_transaction(30)
        else:
            tx.abort_transaction(30)
    # An open transaction must not make a snapshot wait for it.
    hanging = producer(f"{topic}-open")
    hanging.begin_transaction()
    hanging.produce(topic, key=b"open", value=b"uncommitted")
    hanging.flush(10)

    # The snapshot must finish on its own while the transaction stays open
    # (a liveness bound, not a speed check: a hang would wait forever).
    results: list[BackupResult] = []
    runner = threading.Thread(
        target=lambda: results.append(
            BackupEngine(job(kafka_service, {"backend": "memory"}, [topic]), backend=memory).run()
        )
    )
    runner.start()
    runner.join(120)
    assert not runner.is_alive(), "the backup waited for the open transaction"
    result = results[0]
    assert result.status == "complete"
    stored = stored_records(memory, "bk", topic, 1)[0]
    assert [r[3] for r in stored] == [f"{b}-{i}".encode() for b in (0, 2) for i in range(100)]
    # Offsets of the aborted batch and transaction markers lie inside the
    # covered range: coverage is explicit, not inferred from the records.
    index = stored_index(memory, "bk", topic, 0)
    assert index.coverage_problems() == []
    everything = consume_all(bootstrap, topic, 1, isolation="read_uncommitted")[0]
    aborted = [r[0] for r in everything if r[3] is not None and r[3].startswith(b"1-")]
    assert len(aborted) == 100
    assert index.start_offset == 0 and index.end_offset is not None
    assert max(aborted) < index.end_offset <= everything[-1][0]  # the open transaction is not covered
    hanging.abort_transaction(30)


def test_compacted_topic_with_gaps(
    kafka_service: KafkaEndpoint, topic_factory: Any, memory: StorageBackend
) -> None:
    topic = topic_factory(
        partitions=1,
        config={
            "cleanup.policy": "compact",
            "segment.ms": "100",
            "min.cleanable.dirty.ratio": "0.01",
            "delete.retention.ms": "100",
            "min.compaction.lag.ms": "0",
        },
    )
    producer = Producer({"bootstrap.servers": kafka_service.bootstrap_servers})
    deadline = time.monotonic() + 90
    expected: list[Any] = []
    while time.monotonic() < deadline:
        for i in range(200):
            # Mostly repeated keys, plus one key per batch that survives compaction,
            # so the cleaned log keeps scattered records with gaps between them.
            key = f"k{i % 10}" if i else f"unique-{time.monotonic_ns()}"
            producer.produce(topic, key=key.encode(), value=f"{i}".encode())
        producer.flush(10)
        time.sleep(1)
        expected = consume_all(kafka_service.bootstrap_servers, topic, 1)[0]
        offsets = [r[0] for r in expected]
        if len(offsets) > 20 and offsets[-1] + 1 > len(offsets) + 100:
            break  # the cleaner has removed records: there are gaps
    else:
        pytest.fail("the log cleaner did not compact the topic within 90 s")
    result = BackupEngine(job(kafka_service, {"backend": "memory"}, [topic]), backend=memory).run()
    assert result.status == "complete"
    stored = stored_records(memory, "bk", topic, 1)[0]
    assert stored == consume_all(kafka_service.bootstrap_servers, topic, 1)[0]
    offsets = [r[0] for r in stored]
    assert any(b - a > 1 for a, b in itertools.pairwise(offsets))  # gaps kept visible
    index = stored_index(memory, "bk", topic, 0)
    assert index.coverage_problems() == []
    assert index.start_offset == 0 and index.end_offset == offsets[-1] + 1


def test_consumer_group_offsets_are_snapshotted(
    kafka_service: KafkaEndpoint, topic_factory: Any, memory: StorageBackend
) -> None:
    topic = topic_factory(partitions=2)
    produce(kafka_service.bootstrap_servers, topic, 100, partitions=2)
    group = f"{topic}-readers"
    consumer = Consumer({"bootstrap.servers": kafka_service.bootstrap_servers, "group.id": group})
    consumer.commit(offsets=[TopicPartition(topic, 0, 17), TopicPartition(topic, 1, 33)], asynchronous=False)
    consumer.close()
    BackupEngine(job(kafka_service, {"backend": "memory"}, [topic]), backend=memory).run()
    _, groups = groups_from_json(memory.get(groups_key("bk")))
    assert {g.group: g.offsets for g in groups}[group] == {topic: {0: 17, 1: 33}}


def test_continuous_mode_follows_new_records_and_stops_cleanly(
    kafka_service: KafkaEndpoint, topic_factory: Any, memory: StorageBackend
) -> None:
    topic = topic_factory(partitions=2)
    produce(kafka_service.bootstrap_servers, topic, 200, partitions=2)
    engine = BackupEngine(
        job(kafka_service, {"backend": "memory"}, [topic], continuous=True, segment_max_interval_ms=300),
        backend=memory,
    )
    results: list[BackupResult] = []
    runner = threading.Thread(target=lambda: results.append(engine.run()))
    runner.start()
    try:
        _wait(lambda: sum(map(len, stored_records(memory, "bk", topic, 2).values())) == 200)
        produce(kafka_service.bootstrap_servers, topic, 300, partitions=2, start=200)
        _wait(lambda: sum(map(len, stored_records(memory, "bk", topic, 2).values())) == 500)
        # A second run on the same backup id is refused while this one runs.
        with pytest.raises(LeaseHeldError, match="is being written by run"):
            BackupEngine(job(kafka_service, {"backend": "memory"}, [topic]), backend=memory).run()
    finally:
        engine.stop()
        runner.join(60)
    assert results and results[0].status == "stopped" and results[0].ok
    assert check_exact(kafka_service, memory, topic, 2) == 500


def _wait(condition: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


_RUNNER = textwrap.dedent(
    """
    import json, sys
    from libkb.backup.engine import BackupEngine
    from libkb.config import parse_config
    result = BackupEngine(parse_config(json.loads(sys.argv[1]), source="runner")).run()
    print(result.status, result.records, flush=True)
    """
)


def _spawn(config: dict[str, Any]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _RUNNER, json.dumps(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )


def test_kill_9_mid_run_then_resume_is_exact(
    kafka_service: KafkaEndpoint, topic_factory: Any, tmp_path: Path
) -> None:
    topic = topic_factory(partitions=2)
    produce(kafka_service.bootstrap_servers, topic, 20_000, partitions=2)
    config = {
        "backup_id": "bk",
        "source": {"bootstrap_servers": kafka_service.bootstrap_servers, "topics": {"include": [topic]}},
        "storage": {"backend": "filesystem", "path": str(tmp_path)},
        "backup": {
            "segment_max_records": 500,
            "block_bytes": 4096,
            "rate_limit_bytes_per_sec": 1_500_000,  # slow enough to be killed mid-way
            "lease_ttl_secs": 5,
        },
    }
    backend = create_backend_from_config(parse_config(config).storage)
    victim = _spawn(config)
    _wait(lambda: len([k for k in backend.list("bk/") if k.endswith(".kbs")]) >= 6, timeout=60)
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    stored_before = sum(map(len, stored_records(backend, "bk", topic, 2).values()))
    assert 0 < stored_before < 20_000

    # The dead run's lease is still there: a new run is refused until it expires.
    with pytest.raises(LeaseHeldError):
        BackupEngine(parse_config(config)).run()
    assert describe_backup(backend, "bk").manifest.status == "running"  # it may still be alive
    time.sleep(10.5)  # ttl + the takeover grace of one more ttl
    # Its lease expired: list and describe show the dead run as interrupted, without writing.
    assert [s.status for s in list_backups(backend)] == ["interrupted"]
    assert describe_backup(backend, "bk").manifest.status == "interrupted"
    assert Manifest.from_json(backend.get("bk/manifest.json")).runs[-1].status == "running"
    # What the dead run stored is valid as it stands, before any repair.
    report = validate_backup(backend, "bk", deep=True)
    assert report.ok, report.problems
    config["backup"]["rate_limit_bytes_per_sec"] = None  # type: ignore[index]
    result = BackupEngine(parse_config(config)).run()
    assert result.status == "complete"
    assert check_exact(kafka_service, backend, topic, 2) == 20_000
    # The resuming run recorded the dead one's end as interrupted.
    runs = Manifest.from_json(backend.get("bk/manifest.json")).runs
    assert [r.status for r in runs] == ["interrupted", "complete"]


def test_sigterm_interrupts_a_snapshot_consistently(
    kafka_service: KafkaEndpoint, topic_factory: Any, tmp_path: Path
) -> None:
    topic = topic_factory(partitions=1)
    produce(kafka_service.bootstrap_servers, topic, 10_000)
    config = {
        "backup_id": "bk",
        "source": {"bootstrap_servers": kafka_service.bootstrap_servers, "topics": {"include": [topic]}},
        "storage": {"backend": "filesystem", "path": str(tmp_path)},
        "backup": {"segment_max_records": 500, "block_bytes": 4096, "rate_limit_bytes_per_sec": 100_000},
    }
    engine = BackupEngine(parse_config(config))
    results: list[BackupResult] = []
    runner = threading.Thread(target=lambda: results.append(engine.run()))
    runner.start()
    backend = create_backend_from_config(parse_config(config).storage)
    _wait(lambda: len([k for k in backend.list("bk/") if k.endswith(".kbs")]) >= 2)
    engine.stop()
    runner.join(60)
    assert results[0].status == "interrupted" and not results[0].ok
    stored = stored_records(backend, "bk", topic, 1)[0]
    assert 0 < len(stored) < 10_000
    assert stored == consume_all(kafka_service.bootstrap_servers, topic, 1)[0][: len(stored)]
    lease = current_lease(backend, lease_key("bk"))
    assert lease is not None and lease[1] is not None and lease[1].released  # released, not left to expire
    assert not lease_is_live(backend, lease_key("bk"))
    manifest = Manifest.from_json(backend.get(manifest_key("bk")))
    assert manifest.runs[-1].status == "interrupted"
    # Running again completes the snapshot without duplicates.
    assert BackupEngine(parse_config(config | {"backup": {}})).run().status == "complete"
    assert check_exact(kafka_service, backend, topic, 1) == 10_000


def test_lag_metric_reaches_zero(
    kafka_service: KafkaEndpoint, topic_factory: Any, memory: StorageBackend
) -> None:
    topic = topic_factory(partitions=2)
    produce(kafka_service.bootstrap_servers, topic, 2000, partitions=2)
    engine = BackupEngine(
        job(kafka_service, {"backend": "memory"}, [topic], backup_id="lag", continuous=True), backend=memory
    )
    results: list[BackupResult] = []
    runner = threading.Thread(target=lambda: results.append(engine.run()))
    runner.start()
    try:

        def lag(p: int) -> float | None:
            return engine.metrics.registry.get_sample_value(
                "kafka_backup_lag_records", {"topic": topic, "partition": str(p), "backup_id": "lag"}
            )

        _wait(lambda: lag(0) == 0 and lag(1) == 0)
    finally:
        engine.stop()
        runner.join(60)
    assert results[0].records == 2000


def test_offsets_deleted_by_retention_between_runs_are_recorded(
    kafka_service: KafkaEndpoint, topic_factory: Any, memory: StorageBackend
) -> None:
    from confluent_kafka.admin import AdminClient

    topic = topic_factory(partitions=1)
    admin = AdminClient({"bootstrap.servers": kafka_service.bootstrap_servers})

    def delete_before(offset: int) -> None:
        """What retention does: move the partition's start offset."""
        for future in admin.delete_records([TopicPartition(topic, 0, offset)]).values():
            future.result(30)

    produce(kafka_service.bootstrap_servers, topic, 100)
    delete_before(20)  # a first backup starts where the log now starts
    first = BackupEngine(job(kafka_service, {"backend": "memory"}, [topic]), backend=memory).run()
    assert first.records == 80 and first.missing_ranges == []
    produce(kafka_service.bootstrap_servers, topic, 100, start=100)
    delete_before(150)  # offsets 100-149 vanish before the next run reads them
    second = BackupEngine(job(kafka_service, {"backend": "memory"}, [topic]), backend=memory).run()
    assert second.records == 50
    assert second.missing_ranges and "offsets 100-149 were deleted by retention" in second.missing_ranges[0]
    index = stored_index(memory, "bk", topic, 0)
    assert [(m.start, m.end, m.reason) for m in index.missing] == [(100, 150, "retention")]
    assert index.coverage_problems() == []
    assert (index.start_offset, index.end_offset) == (20, 200)
    assert [r[0] for r in stored_records(memory, "bk", topic, 1)[0]] == [*range(20, 100), *range(150, 200)]


@pytest.mark.parametrize("cut", [15_000, 20_000], ids=["middle", "to-the-end"])
def test_offsets_deleted_by_retention_while_the_run_reads_them_are_recorded(
    kafka_service: KafkaEndpoint, topic_factory: Any, memory: StorageBackend, cut: int
) -> None:
    """Retention overtakes a slow backup: the lost offsets become a missing range, not a silent gap.

    librdkafka normally prefetches 32 MiB; this consumer prefetches ~64 KiB, so
    that a small topic is enough for the log start to move past what the
    consumer has fetched while the rate-limited run is still reading.
    """
    from confluent_kafka.admin import AdminClient

    from libkb.config import SourceOptions
    from libkb.kafka.clients import make_consumer

    topic = topic_factory(partitions=1)
    produce(kafka_service.bootstrap_servers, topic, 20_000)  # ~1.1 MB
    expected = consume_all(kafka_service.bootstrap_servers, topic, 1)[0]
    admin = AdminClient({"bootstrap.servers": kafka_service.bootstrap_servers})
    deleted = threading.Event()

    def delete_before_cut(progress: Any) -> None:
        if not deleted.is_set() and progress.records > 0:
            deleted.set()
            for future in admin.delete_records([TopicPartition(topic, 0, cut)]).values():
                future.result(30)

    def small_prefetch(source: SourceOptions, extra: dict[str, Any]) -> Consumer:
        return make_consumer(
            source,
            {
                **extra,
                "queued.max.messages.kbytes": 64,
                "fetch.max.bytes": 65536,
                "max.partition.fetch.bytes": 16384,
                "message.max.bytes": 65536,
            },
        )

    config = job(
        kafka_service, {"backend": "memory"}, [topic], block_bytes=4096, rate_limit_bytes_per_sec=200_000
    )
    result = BackupEngine(
        config, backend=memory, progress=delete_before_cut, consumer_factory=small_prefetch
    ).run()
    assert deleted.is_set()
    assert result.status == "complete"
    index = stored_index(memory, "bk", topic, 0)
    [lost] = index.missing
    assert lost.reason == "retention" and lost.end == cut and 0 < lost.start < cut
    assert len(result.missing_ranges) == 1
    assert (
        f"offsets {lost.start}-{cut - 1} were deleted by retention while the backup was reading"
        in (result.missing_ranges[0])
    )
    assert index.coverage_problems() == []
    assert (index.start_offset, index.end_offset) == (0, 20_000)
    stored = stored_records(memory, "bk", topic, 1)[0]
    assert stored == expected[: lost.start] + expected[cut:]  # every other record, exactly
    report = validate_backup(memory, "bk", deep=True)
    assert report.ok, report.problems
    assert any(f"offsets [{lost.start}, {cut})" in w for w in report.warnings), report.warnings


def test_progress_keeps_coming_while_storage_is_slow(
    kafka_service: KafkaEndpoint, topic_factory: Any, memory: StorageBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Waiting for slow storage is the loop working: progress (the CLI's liveness tick) continues.

    Storage here takes no upload until the run has reported progress three
    times while stuck behind a full byte budget; a loop that went silent there
    would make Kubernetes restart a backup that is only waiting for storage.
    """
    topic = topic_factory(partitions=1)
    produce(kafka_service.bootstrap_servers, topic, 40_000)  # ~2.2 MB, more than the 1 MiB budget
    stuck = threading.Event()
    release = threading.Event()
    ticks_while_stuck: list[int] = []
    real_put_stream = memory.put_stream

    def blocked_put_stream(key: str, chunks: Any) -> Any:
        stuck.set()
        assert release.wait(60), "the run never reported progress while storage was stuck"
        return real_put_stream(key, chunks)

    def progress(p: Any) -> None:
        if stuck.is_set() and not release.is_set():
            ticks_while_stuck.append(p.records)
            if len(ticks_while_stuck) >= 3:
                release.set()

    monkeypatch.setattr(memory, "put_stream", blocked_put_stream)
    # Uncompressed: compressed blocks hold only their stored bytes, which would fit the budget.
    config = job(
        kafka_service,
        {"backend": "memory"},
        [topic],
        block_bytes=4096,
        max_bytes_in_flight=1024 * 1024,
        compression="none",
    )
    result = BackupEngine(config, backend=memory, progress=progress).run()
    assert result.status == "complete" and result.records == 40_000
    assert len(ticks_while_stuck) >= 3
    assert len(set(ticks_while_stuck[1:])) == 1  # no record moved while the budget was full
    assert check_exact(kafka_service, memory, topic, 1) == 40_000


def test_continuous_mode_picks_up_new_topics_and_partitions(
    kafka_service: KafkaEndpoint, kafka_topic_factory: Any, memory: StorageBackend
) -> None:
    """A continuous backup of ``prefix-*`` also backs up topics and partitions created while it runs."""
    from confluent_kafka.admin import AdminClient, NewPartitions  # type: ignore[attr-defined]

    prefix = f"disc-{time.time_ns()}"
    first = kafka_topic_factory(partitions=1, config={"retention.ms": "-1"}, name=f"{prefix}-a")
    produce(kafka_service.bootstrap_servers, first, 100)
    engine = BackupEngine(
        job(
            kafka_service,
            {"backend": "memory"},
            [f"{prefix}-*"],
            continuous=True,
            segment_max_interval_ms=300,
            topic_refresh_secs=1,
        ),
        backend=memory,
    )
    results: list[BackupResult] = []
    runner = threading.Thread(target=lambda: results.append(engine.run()))
    runner.start()
    try:
        _wait(lambda: len(stored_records(memory, "bk", first, 1)[0]) == 100)
        second = kafka_topic_factory(partitions=2, config={"retention.ms": "-1"}, name=f"{prefix}-b")
        produce(kafka_service.bootstrap_servers, second, 300, partitions=2)
        admin = AdminClient({"bootstrap.servers": kafka_service.bootstrap_servers})
        for future in admin.create_partitions([NewPartitions(first, 2)]).values():
            future.result(30)
        produce(kafka_service.bootstrap_servers, first, 50, partitions=2, start=100)  # 25 to each

        def stored_count() -> int:
            try:
                a = stored_records(memory, "bk", first, 2)
                b = stored_records(memory, "bk", second, 2)
            except Exception:  # the new partitions' indexes are not written yet
                return -1
            return sum(map(len, a.values())) + sum(map(len, b.values()))

        _wait(lambda: stored_count() == 100 + 50 + 300)
    finally:
        engine.stop()
        runner.join(60)
    assert results and results[0].status == "stopped" and results[0].ok
    assert sorted(results[0].topics) == [first, second]
    assert results[0].partitions == 4
    assert check_exact(kafka_service, memory, first, 2) == 150
    expected_b = consume_all(kafka_service.bootstrap_servers, second, 2)
    assert stored_records(memory, "bk", second, 2) == expected_b
    manifest = Manifest.from_json(memory.get(manifest_key("bk")))
    assert manifest.topics[first].partitions == 2 and manifest.topics[second].partitions == 2


def test_unreadable_consumer_groups_fail_the_run_clearly_with_the_records_stored(
    kafka_service: KafkaEndpoint, topic_factory: Any, memory: StorageBackend
) -> None:
    """A client without Describe on groups: the error says what to do, the records stay stored."""
    from confluent_kafka import KafkaError, KafkaException

    from libkb.backup.engine import BackupError
    from libkb.kafka.admin import KafkaAdmin
    from libkb.kafka.clients import make_admin

    class NoGroupAccess(KafkaAdmin):
        def group_offsets(self, topics: Any, *, wait_secs: float | None = None) -> Any:
            raise KafkaException(
                KafkaError(KafkaError.GROUP_AUTHORIZATION_FAILED, "consumer group 'billing': not authorized")
            )

    topic = topic_factory(partitions=2)
    produce(kafka_service.bootstrap_servers, topic, 300, partitions=2)
    config = job(kafka_service, {"backend": "memory"}, [topic])
    admin = NoGroupAccess(make_admin(config.source))  # type: ignore[arg-type]
    with pytest.raises(BackupError) as info:
        BackupEngine(config, backend=memory, admin=admin).run()
    message = str(info.value)
    assert "records are stored" in message and "'billing'" in message
    assert "backup.consumer_group_snapshot: false" in message
    assert check_exact(kafka_service, memory, topic, 2) == 300
    assert Manifest.from_json(memory.get(manifest_key("bk"))).runs[-1].status == "failed"
    # As the message says: without the group snapshot the next run completes, reading nothing again.
    again = job(kafka_service, {"backend": "memory"}, [topic], consumer_group_snapshot=False)
    result = BackupEngine(again, backend=memory).run()
    assert result.status == "complete" and result.records == 0


def test_compression_level_is_applied_and_none_stores_raw_blocks(
    kafka_service: KafkaEndpoint, topic_factory: Any
) -> None:
    topic = topic_factory(partitions=1)
    produce(kafka_service.bootstrap_servers, topic, 5000)
    stored = {}
    levels: dict[str, dict[str, Any]] = {
        "none": {"compression": "none"},
        "zstd-1": {"compression": "zstd", "compression_level": 1},
        "zstd-19": {"compression": "zstd", "compression_level": 19},
    }
    for label, options in levels.items():
        backend = create_backend_from_config(MemoryConfig())
        config = job(kafka_service, {"backend": "memory"}, [topic], **options)
        result = BackupEngine(config, backend=backend).run()
        assert check_exact(kafka_service, backend, topic, 1) == 5000
        [entry] = stored_index(backend, "bk", topic, 0).segments
        assert entry.codec == {"none": "none", "zstd": "zstd-stream"}[options["compression"]]
        stored[label] = result.stored_bytes
    assert stored["zstd-19"] < stored["zstd-1"] < stored["none"]
