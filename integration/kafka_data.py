"""Test data for the engines: records with every awkward feature, read back exactly.

``Record`` tuples are libkb's stored form:
``(offset, timestamp, timestamp_type, key, value, headers)``.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import TypeGuard

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, Producer, TopicPartition

from libkb.backup import intake
from libkb.format import segment
from libkb.format.models import PartitionIndex, index_key
from libkb.format.packer import ACCELERATED, py_pack_messages
from libkb.format.segment import Record, SegmentReader
from libkb.storage import NotFoundError, StorageBackend

BASE_TS = 1_600_000_000_000  # CreateTime in 2020: old timestamps must survive


def tricky_record(i: int) -> dict[str, object]:
    """Tombstones, null vs empty keys/values, binary keys, null and duplicate headers."""
    kind = i % 8
    key: bytes | None = f"key-{i % 50}".encode()
    value: bytes | None = f"value-{i}-".encode() * (1 + i % 5)
    headers: list[tuple[str, bytes | None]] | None = None
    if kind == 1:
        value = None  # tombstone
    elif kind == 2:
        key = None
    elif kind == 3:
        key, value = b"", b""
    elif kind == 4:
        key = bytes([0, 255, 1, 254, i % 256])
    elif kind == 5:
        headers = [("h", b"1"), ("h", b"2"), ("null", None), ("empty", b""), ("h", b"1")]
    elif kind == 6:
        headers = [("ünïcode", "välue".encode()), ("bin", bytes(range(16)))]
    return {"key": key, "value": value, "headers": headers, "timestamp": BASE_TS + i * 1000}


def produce(bootstrap: str, topic: str, count: int, *, partitions: int = 1, start: int = 0) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "enable.idempotence": True})
    for i in range(start, start + count):
        rec = tricky_record(i)
        producer.produce(topic, partition=i % partitions, **rec)  # type: ignore[arg-type]
        if i % 1000 == 0:
            producer.poll(0)
    assert producer.flush(30) == 0


def consume_all(
    bootstrap: str, topic: str, partitions: int, *, isolation: str = "read_committed", timeout: float = 60
) -> dict[int, list[Record]]:
    """Everything a consumer reads from the start to the end of each partition."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{time.time_ns()}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": isolation,
        }
    )
    # From the log start: offset 0 of a trimmed (or purged) partition would reset to its end.
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    out: dict[int, list[Record]] = defaultdict(list)
    at_end: set[int] = set()
    deadline = time.monotonic() + timeout
    try:
        while len(at_end) < partitions:
            assert time.monotonic() < deadline, "timed out reading the topic"
            for msg in consumer.consume(1000, 0.5):
                err = msg.error()
                if err is not None:
                    assert err.code() == KafkaError._PARTITION_EOF, err
                    at_end.add(message_partition(msg))
                    continue
                at_end.discard(message_partition(msg))
                out[message_partition(msg)].append(message_record(msg))
    finally:
        consumer.close()
    return {p: out.get(p, []) for p in range(partitions)}


def message_partition(msg: Message) -> int:
    """The partition of a consumed message or partition event (always set on those)."""
    partition = msg.partition()
    assert partition is not None, msg
    return partition


def _stored_headers(headers: object) -> TypeGuard[list[tuple[str, bytes | None]]]:
    """Headers as a consumer hands them over: a list of (name, bytes or None) pairs."""
    return isinstance(headers, list) and all(
        isinstance(h, tuple)
        and len(h) == 2
        and isinstance(h[0], str)
        and (h[1] is None or isinstance(h[1], bytes))
        for h in headers
    )


def message_record(msg: Message) -> Record:
    """A consumed record (not an error event) in libkb's stored form."""
    offset, headers = msg.offset(), msg.headers()
    assert offset is not None, msg
    assert headers is None or _stored_headers(headers), headers
    ts_type, ts = msg.timestamp()
    return (offset, ts, ts_type, msg.key(), msg.value(), headers)


def stored_index(backend: StorageBackend, backup_id: str, topic: str, partition: int) -> PartitionIndex:
    key = index_key(backup_id, topic, partition)
    return PartitionIndex.from_json(backend.get(key), name=key)


def stored_records(
    backend: StorageBackend, backup_id: str, topic: str, partitions: int
) -> dict[int, list[Record]]:
    """Every record in the backup, partition by partition, checksums verified."""
    out: dict[int, list[Record]] = {}
    for p in range(partitions):
        try:
            index = stored_index(backend, backup_id, topic, p)
        except NotFoundError:
            out[p] = []
            continue
        records: list[Record] = []
        for entry in index.segments:
            reader = SegmentReader(backend.get(entry.key), name=entry.key)
            reader.verify()
            records.extend(reader.records())
        out[p] = records
    return out


def use_packer(name: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Back up reading librdkafka's messages in C (``"intake"``, the default), with the C packer
    over ``consume()``'s Messages (``"c"``), or with the pure-Python packer (``"python"``)."""
    if name != "intake":
        monkeypatch.setenv(intake.ENV, "consume")
    if name == "python":
        monkeypatch.setattr(segment, "pack_messages", py_pack_messages)
    elif not ACCELERATED:
        pytest.fail("the C packer (libkb/format/_packer.c) was not built")
    return name
