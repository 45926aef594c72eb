"""``kafka-backup three-phase-restore`` end to end on a real broker: records, then the groups' offsets.

The target topic already holds records in one partition, so the restored
records land at other offsets than in the source and the groups' offsets
must be translated, not copied. A group with an active member is refused by
phase 3 (``offset-reset execute``'s check) and the command exits 1.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka import Consumer, TopicPartition

from integration.kafka_data import consume_all, produce
from integration.services.endpoints import KafkaEndpoint

pytestmark = pytest.mark.kafka
KEEP = {"retention.ms": "-1"}  # the test records are from 2020
CLI = str(Path(".venv/bin/kafka-backup").resolve())


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=300)


def commit(bootstrap: str, group: str, offsets: list[TopicPartition]) -> None:
    committer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    committer.commit(offsets=offsets, asynchronous=False)
    committer.close()


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> list[int]:
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        found = reader.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
    finally:
        reader.close()
    return [tp.offset for tp in found]


def write_yaml(path: Path, body: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(body))
    return path


def test_three_phase_restore_translates_and_verifies_group_offsets(
    kafka_service: KafkaEndpoint, kafka_topic_factory: Any, tmp_path: Path
) -> None:
    bootstrap = kafka_service.bootstrap_servers
    source = kafka_topic_factory(partitions=2, config=KEEP)
    produce(bootstrap, source, 400, partitions=2)
    billing, audit, idle = f"{source}-billing", f"{source}-audit", f"{source}-idle"
    commit(bootstrap, billing, [TopicPartition(source, 0, 100), TopicPartition(source, 1, 150)])
    commit(bootstrap, audit, [TopicPartition(source, 1, 200)])
    store = tmp_path / "backups"
    storage = {"backend": "filesystem", "path": str(store)}
    backup = write_yaml(
        tmp_path / "backup.yaml",
        {"backup_id": "tp", "source": {"bootstrap_servers": [bootstrap], "topics": {"include": [source]}}}
        | {"storage": storage},
    )
    assert cli("backup", "--config", str(backup)).returncode == 0
    target = kafka_topic_factory(partitions=2, config=KEEP)
    produce(bootstrap, target, 60, partitions=1)  # partition 0 of the target starts at 60, partition 1 at 0
    restore: dict[str, Any] = {
        "mode": "restore",
        "backup_id": "tp",
        "target": {"bootstrap_servers": [bootstrap], "topics": {"include": [target]}},
        "storage": storage,
        "restore": {"topic_mapping": {source: target}, "consumer_groups": [billing, audit]},
    }
    skipped = cli("three-phase-restore", "--config", str(write_yaml(tmp_path / "no-reset.yaml", restore)))
    assert skipped.returncode == 0, skipped.stderr
    assert (
        "phase 3 (offset reset): skipped: 2 group(s), 3 partition offset(s) planned, 0 reset"
        in skipped.stdout
    )
    assert "reset_consumer_offsets is false: phase 3 skipped" in skipped.stdout
    assert committed(bootstrap, billing, target, 2) == [-1001, -1001]  # nothing committed yet

    restore["restore"]["reset_consumer_offsets"] = True
    config = write_yaml(tmp_path / "restore.yaml", restore)
    done = cli("three-phase-restore", "--config", str(config), "--format", "json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)  # stdout holds the report alone; the phases wrote to stderr
    assert report["success"] and report["restore_status"] == "complete" and report["topics"] == [target]
    assert report["offsets"] == {
        "status": "applied",
        "groups": sorted([billing, audit]),
        "partitions_planned": 3,
        "partitions_reset": 3,
        "verified": 3,
        "errors": [],
    }
    assert "committed new offsets for 2 group(s)" in done.stderr
    assert committed(bootstrap, billing, target, 2) == [160, 150]
    assert committed(bootstrap, audit, target, 2) == [-1001, 200]
    assert committed(bootstrap, idle, target, 2) == [-1001, -1001]
    restored = consume_all(bootstrap, target, 2)
    assert len(restored[0]) == 60 + 200 and len(restored[1]) == 200

    text = cli("three-phase-restore", "--config", str(config))  # complete already: phase 3 again, same result
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith("phase 1 (backup): nothing to do")
    assert "three-phase restore of backup tp: success in" in text.stdout
    assert (
        "phase 3 (offset reset): applied: 2 group(s), 3 partition offset(s) planned, 3 reset, 3 verified"
        in text.stdout
    )
    assert len(consume_all(bootstrap, target, 2)[0]) == 260  # nothing restored twice


def test_phase_3_refuses_a_group_with_active_members(
    kafka_service: KafkaEndpoint, kafka_topic_factory: Any, tmp_path: Path
) -> None:
    bootstrap = kafka_service.bootstrap_servers
    source = kafka_topic_factory(partitions=1, config=KEEP)
    produce(bootstrap, source, 50)
    group = f"{source}-busy"
    commit(bootstrap, group, [TopicPartition(source, 0, 20)])
    storage = {"backend": "filesystem", "path": str(tmp_path / "backups")}
    backup = write_yaml(
        tmp_path / "backup.yaml",
        {"backup_id": "busy", "source": {"bootstrap_servers": [bootstrap], "topics": {"include": [source]}}}
        | {"storage": storage},
    )
    assert cli("backup", "--config", str(backup)).returncode == 0
    target = kafka_topic_factory(partitions=1, config=KEEP)
    config = write_yaml(
        tmp_path / "restore.yaml",
        {
            "mode": "restore",
            "backup_id": "busy",
            "target": {"bootstrap_servers": [bootstrap], "topics": {"include": [target]}},
            "storage": storage,
            "restore": {"topic_mapping": {source: target}, "auto_consumer_groups": True},
        },
    )
    member = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "session.timeout.ms": 10000})
    member.subscribe([target])
    deadline = time.monotonic() + 60
    while not member.assignment():
        assert time.monotonic() < deadline, "the consumer never joined its group"
        member.poll(0.5)
    try:
        done = cli("three-phase-restore", "--config", str(config))
    finally:
        member.close()
    assert done.returncode == 1, done.stdout
    assert "phase 2 (restore " in done.stdout and "): complete: 50 records" in done.stdout
    assert "phase 3 (offset reset): failed" in done.stdout
    assert f"consumer group(s) {group!r} (1 member) have active members" in done.stderr
    assert committed(bootstrap, group, target, 1) == [-1001]
