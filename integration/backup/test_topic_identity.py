"""A topic deleted and re-created under its name, against a real broker: its topic id tells the logs apart.

The backup stops by default, before and after the new log passes the old
end offset (offsets alone catch only the first); with
``backup.on_topic_recreated: new_incarnation`` it stores the new log as the
topic's next incarnation, and a restore gives back each incarnation exactly.
A restore whose target topic is re-created between its runs stops too.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition

from integration.kafka_data import consume_all, produce, stored_records
from integration.services.endpoints import KafkaEndpoint
from integration.services.kafka import create_kafka_topic, delete_kafka_topic
from libkb.backup.engine import BackupEngine
from libkb.backup.incarnations import TopicRecreatedError
from libkb.catalog import describe_backup, validate_backup
from libkb.config import JobConfig, parse_config
from libkb.errors import ConfigError
from libkb.format.models import Manifest, groups_from_json, groups_key, manifest_key
from libkb.format.segment import Record
from libkb.restore.engine import RestoreEngine
from libkb.restore.result import RestoreError, RestoreResult
from libkb.storage import MemoryConfig, StorageBackend, create_backend_from_config

pytestmark = pytest.mark.kafka

KEEP = {"retention.ms": "-1"}  # the test data has 2020 timestamps


def backup_job(kafka: KafkaEndpoint, topic: str, **backup: Any) -> JobConfig:
    return parse_config(
        {
            "backup_id": "bk",
            "source": {"bootstrap_servers": kafka.bootstrap_servers, "topics": {"include": [topic]}},
            "storage": {"backend": "memory"},
            "backup": {"segment_max_records": 200, **backup},
        },
        source="test",
    )


def restore_job(kafka: KafkaEndpoint, include: list[str], **restore: Any) -> JobConfig:
    return parse_config(
        {
            "mode": "restore",
            "backup_id": "bk",
            "target": {"bootstrap_servers": kafka.bootstrap_servers, "topics": {"include": include}},
            "storage": {"backend": "memory"},
            "restore": {"create_topics": True, **restore},
        },
        source="test",
    )


def recreate(kafka: KafkaEndpoint, topic: str, partitions: int) -> None:
    """Delete ``topic`` and create it again under its name (the broker finishes a delete asynchronously)."""
    delete_kafka_topic(kafka, topic)
    deadline = time.monotonic() + 60
    while True:
        try:
            create_kafka_topic(kafka, topic, partitions=partitions, config=KEEP)
            return
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def commit(kafka: KafkaEndpoint, group: str, topic: str, offset: int) -> None:
    consumer = Consumer({"bootstrap.servers": kafka.bootstrap_servers, "group.id": group})
    try:
        consumer.commit(offsets=[TopicPartition(topic, 0, offset)], asynchronous=False)
    finally:
        consumer.close()


def content(records: list[Record]) -> list[tuple[Any, ...]]:
    """Everything but the offset and the timestamp type: what a restore reproduces."""
    return [(r[1], r[3], r[4], r[5]) for r in records]


@pytest.fixture
def memory() -> StorageBackend:
    return create_backend_from_config(MemoryConfig())


def test_recreated_topic_stops_the_backup_or_becomes_a_new_incarnation(
    kafka_service: KafkaEndpoint, kafka_topic_factory: Any, memory: StorageBackend
) -> None:
    kafka = kafka_service
    topic = kafka_topic_factory(partitions=2, config=KEEP)
    produce(kafka.bootstrap_servers, topic, 400, partitions=2)  # 200 per partition
    first_log = consume_all(kafka.bootstrap_servers, topic, 2)
    assert BackupEngine(backup_job(kafka, topic), backend=memory).run().status == "complete"
    old_id = Manifest.from_json(memory.get(manifest_key("bk"))).topics[topic].topic_id
    assert old_id is not None

    recreate(kafka, topic, partitions=1)
    produce(kafka.bootstrap_servers, topic, 50, start=1000)  # below the old end offset (200)
    stored_before = memory.get(manifest_key("bk"))
    with pytest.raises(TopicRecreatedError) as before:
        BackupEngine(backup_job(kafka, topic), backend=memory).run()
    new_id = Manifest.from_json(memory.get(manifest_key("bk"))).topics[topic].topic_id
    assert new_id == old_id  # nothing recorded
    message = str(before.value)
    assert "\n" not in message and topic in message and old_id in message
    assert "backup.on_topic_recreated: new_incarnation" in message

    produce(kafka.bootstrap_servers, topic, 300, start=2000)  # now past the old end: offsets cannot tell
    with pytest.raises(TopicRecreatedError, match="was deleted and re-created"):
        BackupEngine(backup_job(kafka, topic), backend=memory).run()
    assert memory.get(manifest_key("bk")) == stored_before  # the refused runs wrote nothing

    job = backup_job(kafka, topic, on_topic_recreated="new_incarnation")
    assert BackupEngine(job, backend=memory).run().status == "complete"
    manifest = Manifest.from_json(memory.get(manifest_key("bk")))
    assert manifest.format_version == 5
    assert manifest.incarnations(topic) == [topic, f"{topic}@2"]
    assert manifest.topics[topic].topic_id == old_id
    assert manifest.topics[f"{topic}@2"].topic_id not in (None, old_id)
    assert manifest.topics[f"{topic}@2"].partitions == 1
    second_log = consume_all(kafka.bootstrap_servers, topic, 1)
    assert len(second_log[0]) == 350
    # the two logs never mix: each incarnation holds its own log, offset for offset
    assert stored_records(memory, "bk", topic, 2) == first_log
    assert stored_records(memory, "bk", f"{topic}@2", 1) == second_log

    # a later run continues the latest incarnation; a group's offsets are positions in it
    produce(kafka.bootstrap_servers, topic, 20, start=3000)
    commit(kafka, "readers", topic, 300)
    assert BackupEngine(job, backend=memory).run().records == 20
    second_log = consume_all(kafka.bootstrap_servers, topic, 1)
    assert stored_records(memory, "bk", f"{topic}@2", 1) == second_log
    groups = dict((g.group, g.offsets) for g in groups_from_json(memory.get(groups_key("bk")))[1])
    assert groups["readers"] == {f"{topic}@2": {0: 300}}

    report = validate_backup(memory, "bk", deep=True)
    assert report.ok, report.problems
    described = describe_backup(memory, "bk")
    assert [i.number for i in described.incarnations[topic]] == [1, 2]

    _restore_each_incarnation(kafka, kafka_topic_factory, memory, topic, first_log, second_log)


def _restore_each_incarnation(
    kafka: KafkaEndpoint,
    kafka_topic_factory: Any,
    memory: StorageBackend,
    topic: str,
    first_log: dict[int, list[Record]],
    second_log: dict[int, list[Record]],
) -> None:
    with pytest.raises(ConfigError, match=r"restore\.incarnations: .* holds 2 incarnations of topic"):
        RestoreEngine(restore_job(kafka, [topic]), backend=memory).run()

    old_target = f"{topic}-first"
    new_target = f"{topic}-second"
    kafka_topic_factory(partitions=2, config=KEEP, name=old_target)
    kafka_topic_factory(partitions=1, config=KEEP, name=new_target)
    job = restore_job(kafka, [topic], incarnations={topic: 1}, topic_mapping={topic: old_target})
    assert RestoreEngine(job, backend=memory).run().records == 400
    job = restore_job(kafka, [topic], incarnations={topic: "latest"}, topic_mapping={topic: new_target})
    result: RestoreResult = RestoreEngine(job, backend=memory).run()
    assert result.records == 370
    readers = [t for t in result.group_offsets if t.group == "readers"]
    assert [(t.source_topic, t.source_offset, t.target_topic, t.target_offset) for t in readers] == [
        (f"{topic}@2", 300, new_target, 300)
    ]
    restored_old = consume_all(kafka.bootstrap_servers, old_target, 2)
    restored_new = consume_all(kafka.bootstrap_servers, new_target, 1)
    assert {p: content(r) for p, r in restored_old.items()} == {p: content(r) for p, r in first_log.items()}
    assert content(restored_new[0]) == content(second_log[0])


def test_restore_target_recreated_between_runs_is_refused(
    kafka_service: KafkaEndpoint, kafka_topic_factory: Any, memory: StorageBackend
) -> None:
    kafka = kafka_service
    topic = kafka_topic_factory(partitions=1, config=KEEP)
    produce(kafka.bootstrap_servers, topic, 2000)
    assert BackupEngine(backup_job(kafka, topic), backend=memory).run().status == "complete"
    target = kafka_topic_factory(partitions=1, config=KEEP, name=f"{topic}-copy")

    # a first run, stopped early (slowed down so that the stop comes long before its end)
    job = restore_job(kafka, [topic], topic_mapping={topic: target}, rate_limit_records_per_sec=500)
    engine = RestoreEngine(job, backend=memory)
    threading.Timer(1.0, engine.stop).start()
    assert engine.run().status == "interrupted"
    written = consume_all(kafka.bootstrap_servers, target, 1)[0]
    assert 0 < len(written) < 2000

    recreate(kafka, target, partitions=1)
    produce(kafka.bootstrap_servers, target, 2500, start=5000)  # past what the restore had written
    with pytest.raises(RestoreError) as refused:
        RestoreEngine(restore_job(kafka, [topic], topic_mapping={topic: target}), backend=memory).run()
    message = str(refused.value)
    assert "\n" not in message
    assert f"target topic {target!r} was deleted and re-created" in message
    assert "restore.restore_id" in message
    assert len(consume_all(kafka.bootstrap_servers, target, 1)[0]) == 2500  # nothing written
