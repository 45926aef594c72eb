"""Taking over a backup id the Rust kafka-backup wrote, end to end against a real broker.

The Rust tool's part is written by ``tests/rust_format.py`` (checked byte for
byte against the tool's own backups) from the topic's first records; then
``kafka-backup backup`` is refused on that id, continues it once told to,
and continues it again; the two parts list, validate and restore as one
backup, and the Rust tool's files never change.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka import Producer

from integration.kafka_data import consume_all
from integration.services import KafkaEndpoint
from libkb.catalog import describe_backup, list_backups, validate_backup
from libkb.cli import main
from libkb.storage import FilesystemConfig, create_backend_from_config
from tests.rust_format import RustBackupWriter, RustRecord, as_stored

pytestmark = pytest.mark.kafka
BID = "legacy"


@pytest.fixture(autouse=True)
def _cli_logging() -> Iterator[None]:
    from libkb.cli.logs import unconfigure

    yield
    unconfigure()


def _produce(bootstrap: str, topic: str, start: int, count: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for i in range(start, start + count):
        producer.produce(
            topic,
            key=f"k{i}".encode(),
            value=f"v{i}".encode(),
            partition=i % 2,
            headers=[("n", str(i).encode())],
        )
    assert producer.flush(30) == 0


def _rust_files(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((root / BID).rglob("*"))
        if p.is_file() and "libkb" not in p.relative_to(root / BID).parts[:1]
    }


def test_a_rust_backup_id_is_refused_then_adopted_and_read_as_one(
    kafka_service: KafkaEndpoint, kafka_topic_factory: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bs = kafka_service.bootstrap_servers
    topic = kafka_topic_factory(partitions=2, config={"retention.ms": "-1"})
    _produce(bs, topic, 0, 40)  # 20 per partition
    source = consume_all(bs, topic, 2)
    root = tmp_path / "store"
    with create_backend_from_config(FilesystemConfig(path=str(root))) as backend:
        writer = RustBackupWriter(backend, BID, compression="zstd", segment_max_records=5)
        for partition, records in source.items():  # the Rust tool backed up the first 12 of each
            writer.write_partition(
                topic,
                partition,
                (as_stored(RustRecord(o, ts, k, v, list(h or []))) for o, ts, _, k, v, h in records[:12]),
                partition_count=2,
            )
        writer.write_manifest()
    before = _rust_files(root)
    job: dict[str, Any] = {
        "mode": "backup",
        "backup_id": BID,
        "source": {"bootstrap_servers": [bs], "topics": {"include": [topic]}},
        "storage": {"backend": "filesystem", "path": str(root)},
        "backup": {"consumer_group_snapshot": False},
    }
    job_file = tmp_path / "backup.yaml"
    job_file.write_text(yaml.safe_dump(job))

    assert main(["backup", "--config", str(job_file)]) == 1
    err = capsys.readouterr().err
    assert (
        f"backup {BID!r} was written by kafka-backup (Rust)" in err
        and "backup.adopt_rust_backup: true" in err
    )
    assert _rust_files(root) == before

    job["backup"]["adopt_rust_backup"] = True
    job_file.write_text(yaml.safe_dump(job))
    assert main(["backup", "--config", str(job_file)]) == 0, capsys.readouterr().err
    _produce(bs, topic, 40, 10)
    assert main(["backup", "--config", str(job_file)]) == 0, capsys.readouterr().err  # and again
    assert _rust_files(root) == before  # the Rust tool's files never change

    with create_backend_from_config(FilesystemConfig(path=str(root))) as backend:
        assert [(s.backup_id, s.records) for s in list_backups(backend)] == [(BID, 50)]
        report = validate_backup(backend, BID, deep=True)
        assert report.ok, report.problems
        assert report.checked_records == 50
        described = describe_backup(backend, BID)
        assert described.provenance is not None and "continued by libkb" in described.provenance.writer
        assert [(p.start_offset, p.end_offset) for p in described.partitions] == [(0, 25), (0, 25)]

    target = kafka_topic_factory(partitions=2, config={"retention.ms": "-1"})
    restore = {
        "mode": "restore",
        "backup_id": BID,
        "target": {"bootstrap_servers": [bs], "topics": {"include": [target]}},
        "storage": {"backend": "filesystem", "path": str(root)},
        "restore": {"topic_mapping": {topic: target}},
    }
    restore_file = tmp_path / "restore.yaml"
    restore_file.write_text(yaml.safe_dump(restore))
    assert main(["restore", "--config", str(restore_file)]) == 0, capsys.readouterr().err
    restored = consume_all(bs, target, 2)
    everything = consume_all(bs, topic, 2)
    for partition in (0, 1):
        # key, value, headers and timestamps exactly (the Rust tool's own headers left out)
        assert [r[1:] for r in restored[partition]] == [r[1:] for r in everything[partition]]
        assert len(restored[partition]) == 25
