"""Test data, job configs and the checks the engine tests share.

The records come from ``integration.kafka_data.tricky_record`` (null vs empty
keys and values, binary keys, duplicate and null headers), written to a
:class:`FakeCluster` with offset gaps and a few LogAppendTime stamps.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, cast

from confluent_kafka import TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME

from integration.kafka_data import stored_records, tricky_record
from libkb.backup.engine import BackupEngine, BackupResult
from libkb.backup.lease import LeaseHeldError
from libkb.catalog import validate_backup
from libkb.config import JobConfig, parse_config
from libkb.format.models import Manifest, RunInfo, manifest_key, parse_lease_key
from libkb.format.segment import Record
from libkb.restore.engine import RestoreEngine
from libkb.storage import StorageBackend
from tests.fakes import FakeKafka
from tests.fakes.cluster import FakeCluster, Headers

BACKUP_ID = "bk"
TOPIC = "orders"
PARTITIONS = 3
PER_PARTITION = 120
#: Small blocks and segments: a partition's records span several of each.
SMALL = {"block_bytes": 1024, "segment_max_records": 40}


def fill(
    cluster: FakeCluster, topic: str = TOPIC, partitions: int = PARTITIONS, count: int = PER_PARTITION
) -> None:
    """A topic whose partitions hold ``count`` records each, with offset gaps inside and at the end.

    Every 11th record is followed by two offsets without a record (compacted
    away, transaction markers); every 13th is stamped LogAppendTime.
    """
    cluster.create_topic(topic, partitions, {"retention.ms": "-1", "min.insync.replicas": "1"})
    for i in range(count * partitions):
        rec = tricky_record(i)
        kind = TIMESTAMP_LOG_APPEND_TIME if i % 13 == 0 else TIMESTAMP_CREATE_TIME
        key, value = cast(bytes | None, rec["key"]), cast(bytes | None, rec["value"])
        headers, timestamp = cast(Headers | None, rec["headers"]), cast(int, rec["timestamp"])
        cluster.append(topic, i % partitions, key, value, headers, timestamp, kind)
        if i % 11 == 0:
            cluster.skip(topic, i % partitions, 2)
    for p in range(partitions):
        cluster.skip(topic, p, 1)  # a transaction marker ends each partition


def source_kafka() -> FakeKafka:
    """The source cluster of the tests: :data:`TOPIC` filled, partition 2 trimmed by retention."""
    kafka = FakeKafka()
    fill(kafka.cluster)
    kafka.cluster.delete_records(TOPIC, 2, 10)
    kafka.cluster.commit("billing", TOPIC, 0, 17)
    kafka.cluster.commit("billing", TOPIC, 1, 200)  # past the end: a consumer that read everything
    return kafka


def backup_config(*, lease_ttl_secs: float | None = None, **backup: Any) -> JobConfig:
    """A backup of :data:`TOPIC` into memory (the engine is handed the backend itself)."""
    config = parse_config(
        {
            "backup_id": BACKUP_ID,
            "source": {"bootstrap_servers": ["fake:9092"], "topics": {"include": [TOPIC]}},
            "storage": {"backend": "memory"},
            "backup": {**SMALL, **backup},
        },
        source="test",
    )
    if lease_ttl_secs is not None:  # below the config's minimum: set past the loader
        config = dataclasses.replace(
            config, backup=dataclasses.replace(config.backup, lease_ttl_secs=lease_ttl_secs)
        )
    return config


def restore_config(include: list[str] | None = None, **restore: Any) -> JobConfig:
    """A restore of the backup into a new topic ``orders-restored`` (created by the restore)."""
    options = {"topic_mapping": {TOPIC: f"{TOPIC}-restored"}, "create_topics": True, **restore}
    return parse_config(
        {
            "mode": "restore",
            "backup_id": BACKUP_ID,
            "target": {"bootstrap_servers": ["fake:9092"], "topics": {"include": include or ["*"]}},
            "storage": {"backend": "memory"},
            "restore": options,
        },
        source="test",
    )


def backup_engine(kafka: FakeKafka, backend: StorageBackend, config: JobConfig | None = None) -> BackupEngine:
    return BackupEngine(
        config or backup_config(),
        backend=backend,
        admin=kafka.admin(),
        consumer_factory=kafka.consumer_factory,
    )


def restore_engine(
    kafka: FakeKafka, backend: StorageBackend | None, config: JobConfig | None = None
) -> RestoreEngine:
    """A restore engine on the fake cluster; with ``backend`` None it makes its own from the config."""
    return RestoreEngine(
        config or restore_config(),
        backend=backend,
        admin=kafka.admin(),
        producer_factory=kafka.producer_factory,
        consumer_factory=kafka.consumer_factory,
    )


def run_backup(engine: BackupEngine, wait_for_lease: float = 0.0) -> BackupResult:
    """``engine.run()``; with ``wait_for_lease``, retried while a dead run's short lease expires."""
    deadline = time.monotonic() + wait_for_lease
    while True:
        try:
            return engine.run()
        except LeaseHeldError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.1)


def expected_records(cluster: FakeCluster, topic: str = TOPIC) -> dict[int, list[Record]]:
    """What a backup of the topic must hold, partition by partition."""
    return {
        p: [r.stored() for r in cluster.records(topic, p)]
        for p in range(len(cluster.topics[topic].partitions))
    }


def assert_backup_exact(backend: StorageBackend, cluster: FakeCluster) -> None:
    """Every record of the source is stored exactly once, in order, and the backup validates deep."""
    expected = expected_records(cluster)
    assert stored_records(backend, BACKUP_ID, TOPIC, len(expected)) == expected
    assert_backup_valid(backend)


def assert_backup_valid(backend: StorageBackend) -> None:
    """Storage holds a valid backup, or (a run that failed before its manifest) none but a lease."""
    if not backend.exists(manifest_key(BACKUP_ID)):
        assert all(parse_lease_key(k) for k in backend.list(f"{BACKUP_ID}/")), backend.list(f"{BACKUP_ID}/")
        return
    report = validate_backup(backend, BACKUP_ID, deep=True)
    assert report.ok, report.problems


def runs(backend: StorageBackend) -> list[RunInfo]:
    return Manifest.from_json(backend.get(manifest_key(BACKUP_ID))).runs


def content(records: list[Record]) -> list[tuple[Any, ...]]:
    """What a restore reproduces: timestamp, key, value, headers (the type becomes CreateTime)."""
    return [(ts, key, value, headers) for _, ts, _, key, value, headers in records]
