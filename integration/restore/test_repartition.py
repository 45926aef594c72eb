"""Restoring into another partition count against a real broker, checked record by record.

Keys are placed as the Java client places them: libkb's murmur2 is checked
against the Java client itself (kafka-clients from the test Kafka install,
run by ``java``), and the source topic is written by librdkafka's
Java-compatible ``murmur2_random`` partitioner, so every key lives in one
source partition as it would in production.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from integration.kafka_data import BASE_TS, consume_all, produce
from integration.restore.test_restore_engine import _RUNNER, backup, content, restore
from integration.services.endpoints import KafkaEndpoint
from integration.services.kafka import KafkaService
from libkb.config import parse_config
from libkb.format.segment import Record
from libkb.kafka.admin import KafkaAdmin
from libkb.kafka.partitioner import murmur2, partition_for_key
from libkb.restore.engine import RestoreEngine
from libkb.restore.groups import GroupOffsetError
from libkb.storage import MemoryConfig, StorageBackend, create_backend_from_config

pytestmark = pytest.mark.kafka

#: Prints, for each hex key on stdin, Utils.murmur2 and BuiltInPartitioner.partitionForKey per count.
_JAVA = """
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.HexFormat;
import org.apache.kafka.clients.producer.internals.BuiltInPartitioner;
import org.apache.kafka.common.utils.Utils;

public class Partitions {
    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        StringBuilder out = new StringBuilder();
        for (String line; (line = in.readLine()) != null; ) {
            byte[] key = HexFormat.of().parseHex(line.trim());
            out.append(Utils.murmur2(key));
            for (String n : args) {
                out.append(' ').append(BuiltInPartitioner.partitionForKey(key, Integer.parseInt(n)));
            }
            out.append('\\n');
        }
        System.out.print(out);
    }
}
"""


def test_murmur2_partitions_are_the_java_clients_for_random_keys(tmp_path: Path) -> None:
    service = KafkaService()
    service.install()  # the cached Kafka jars (kafka-clients among them)
    assert service.home is not None
    java = shutil.which("java")
    assert java, "java is needed (the test Kafka runs on it)"
    source = tmp_path / "Partitions.java"
    source.write_text(_JAVA)
    rng = random.Random(20240611)
    keys = [rng.randbytes(rng.randrange(0, 70)) for _ in range(3000)] + [b"", b"key", "ünï".encode()]
    counts = [1, 2, 3, 5, 7, 12, 64, 1000]
    done = subprocess.run(
        [java, "-cp", str(service.home / "libs" / "*"), str(source), *map(str, counts)],
        input="".join(k.hex() + "\n" for k in keys),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = done.stdout.splitlines()
    assert len(lines) == len(keys)
    for key, line in zip(keys, lines, strict=True):
        hashed, *partitions = map(int, line.split())
        assert murmur2(key) == hashed, key.hex()
        assert [partition_for_key(key, n) for n in counts] == partitions, key.hex()


@pytest.fixture
def memory() -> StorageBackend:
    return create_backend_from_config(MemoryConfig())


def _keyed(i: int) -> bytes | None:
    return None if i % 10 == 3 else (b"" if i % 10 == 7 else f"user-{i % 97}".encode())


def produce_by_key(bootstrap: str, topic: str, count: int) -> None:
    """Records placed by librdkafka's Java-compatible partitioner (no key: a random partition)."""
    producer = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random", "linger.ms": 5})
    for i in range(count):
        headers: list[tuple[str, str | bytes | None]] | None = None
        if i % 5 == 0:
            headers = [("n", str(i).encode()), ("null", None)]
        producer.produce(topic, f"v{i}".encode(), _keyed(i), headers=headers, timestamp=BASE_TS + i)
    assert producer.flush(30) == 0


def routed(source: dict[int, list[Record]], partitions: int) -> dict[int, list[Record]]:
    """Each target partition's records: source partitions one after another, each in offset order."""
    out: dict[int, list[Record]] = {p: [] for p in range(partitions)}
    for sp in sorted(source):
        for r in source[sp]:
            out[sp % partitions if r[3] is None else partition_for_key(r[3], partitions)].append(r)
    return out


def test_restore_into_fewer_and_more_partitions_is_exact_record_by_record(
    kafka_service: KafkaEndpoint, kafka_topic_factory: Any, memory: StorageBackend
) -> None:
    bootstrap = kafka_service.bootstrap_servers
    src = str(kafka_topic_factory(partitions=4, config={"retention.ms": "-1"}))
    produce_by_key(bootstrap, src, 3000)
    source = consume_all(bootstrap, src, 4)
    for p, records in source.items():  # librdkafka put every key where the Java client would
        assert all(partition_for_key(r[3], 4) == p for r in records if r[3] is not None)
    group = f"{src}-app"
    committer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    committer.commit(offsets=[TopicPartition(src, 0, 10), TopicPartition(src, 2, 5)], asynchronous=False)
    committer.close()
    backup(kafka_service, {"backend": "memory"}, [src], memory)

    # Into an existing topic of 3 partitions: restore.repartition: auto sees the other count.
    fewer = str(kafka_topic_factory(partitions=3, config={"retention.ms": "-1"}))
    with pytest.raises(
        GroupOffsetError, match=rf"consumer group '{group}' has committed offsets on {src}\[0\]"
    ):
        restore(
            kafka_service,
            {"backend": "memory"},
            [fewer],
            memory,
            topic_mapping={src: fewer},
            reset_consumer_offsets=True,
        )
    assert sum(map(len, consume_all(bootstrap, fewer, 3).values())) == 0  # refused before writing
    result = restore(kafka_service, {"backend": "memory"}, [fewer], memory, topic_mapping={src: fewer})
    assert result.status == "complete" and result.records == 3000 and result.group_offsets == []
    assert [(o.source_partition, o.source_offset) for o in result.untranslated] == [(0, 10), (2, 5)]
    _assert_routed(bootstrap, source, fewer, 3)

    # Into a new topic of 6, as the original tool's repartitioning asks.
    more = f"{src}-six"
    result = restore(
        kafka_service,
        {"backend": "memory"},
        [more],
        memory,
        topic_mapping={src: more},
        create_topics=True,
        repartitioning={more: {"strategy": "murmur2", "target_partitions": 6}},
    )
    assert result.status == "complete" and result.created_topics == [more]
    _assert_routed(bootstrap, source, more, 6)


def _assert_routed(bootstrap: str, source: dict[int, list[Record]], topic: str, partitions: int) -> None:
    got, expected = consume_all(bootstrap, topic, partitions), routed(source, partitions)
    for p in range(partitions):
        assert content(got[p]) == content(expected[p]), f"{topic}[{p}] differs"
        assert [r[0] for r in got[p]] == list(range(len(got[p])))
    for key in {r[3] for rs in source.values() for r in rs if r[3] is not None}:  # per key: same order
        before = [r[4] for rs in source.values() for r in rs if r[3] == key]
        (home,) = {p for p in got for r in got[p] if r[3] == key}
        assert [r[4] for r in got[home] if r[3] == key] == before


def test_kill_9_during_a_restore_by_key_then_rerun_is_exact(
    kafka_service: KafkaEndpoint, kafka_topic_factory: Any, tmp_path: Path
) -> None:
    bootstrap = kafka_service.bootstrap_servers
    src = str(kafka_topic_factory(partitions=2, config={"retention.ms": "-1"}))
    produce(bootstrap, src, 20_000, partitions=2)
    storage = {"backend": "filesystem", "path": str(tmp_path)}
    backup(kafka_service, storage, [src])
    target = str(kafka_topic_factory(partitions=3, config={"retention.ms": "-1"}))
    config: dict[str, Any] = {
        "mode": "restore",
        "backup_id": "bk",
        "target": {"bootstrap_servers": bootstrap, "topics": {"include": [target]}},
        "storage": storage,
        "restore": {"topic_mapping": {src: target}, "rate_limit_records_per_sec": 2000},
    }
    victim = subprocess.Popen(
        [sys.executable, "-c", _RUNNER, json.dumps(config)],
        env={**os.environ, "PYTHONPATH": os.getcwd()},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    admin = KafkaAdmin(AdminClient({"bootstrap.servers": bootstrap}))
    deadline = time.monotonic() + 60
    while (
        sum(e.high for e in admin.offsets([(target, p) for p in range(3)], read_committed=False).values())
        < 5000
    ):
        assert time.monotonic() < deadline and victim.poll() is None, victim.communicate()
        time.sleep(0.1)
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    partial = sum(map(len, consume_all(bootstrap, target, 3).values()))
    assert 0 < partial < 20_000
    (state_file,) = (tmp_path / "bk" / "restores").glob("*/state.json")
    parts = json.loads(state_file.read_text())["partitions"]
    assert sorted(parts) == [f"{src}/*/0", f"{src}/*/1", f"{src}/*/2"]
    assert 0 < sum(p["verified_end"] for p in parts.values()) <= partial

    del config["restore"]["rate_limit_records_per_sec"]
    result = RestoreEngine(parse_config(config)).run()
    assert result.status == "complete" and result.skipped_records == partial
    expected, got = routed(consume_all(bootstrap, src, 2), 3), consume_all(bootstrap, target, 3)
    for p in range(3):
        assert content(got[p]) == content(expected[p]), f"partition {p} differs"
