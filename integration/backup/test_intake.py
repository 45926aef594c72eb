"""The C intake (librdkafka's messages read without Message objects) against a real broker.

It must hand the backup exactly what ``consume()`` hands it: the same record
bytes, the same events, in the same order; and it must fail cleanly (never
crash the process) when it is used wrongly.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import confluent_kafka
import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition, cimpl

from integration.kafka_data import BASE_TS, produce
from integration.services.endpoints import KafkaEndpoint
from libkb.backup import intake
from libkb.backup.intake import RawMessage, open_intake
from libkb.format._packer import Intake
from libkb.format.packer import STOP_EVENT, pack_messages

pytestmark = pytest.mark.kafka


@pytest.fixture
def topic(kafka_topic_factory: Any) -> str:
    return str(kafka_topic_factory(partitions=3, config={"retention.ms": "-1"}))


def consumer(kafka: KafkaEndpoint, **extra: Any) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": kafka.bootstrap_servers,
            "group.id": f"intake-{time.time_ns()}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            **extra,
        }
    )


def read_packed(fetch: Any, partitions: int, topic: str | None) -> dict[int, tuple[Any, ...]]:
    """Each partition's records packed run by run, as the reader packs them, until every EOF."""
    out: dict[int, bytearray] = defaultdict(bytearray)
    stats: dict[int, list[int]] = defaultdict(list)
    at_end: set[int] = set()
    deadline = time.monotonic() + 60
    while len(at_end) < partitions:
        assert time.monotonic() < deadline, "timed out"
        batch, n = fetch()
        i = 0
        while i < n:
            msg = batch[i]
            err = msg.error()
            if err is not None:
                assert err.code() == KafkaError._PARTITION_EOF, err
                at_end.add(msg.partition())
                i += 1
                continue
            p = msg.partition()
            buf = out[p]
            i, pos, count, first, last, low, high, _ = pack_messages(
                batch, i, buf, len(buf), 1 << 30, topic, p, -1
            )
            del buf[pos:]
            stats[p] += [count, first, last, low, high]
    return {p: (bytes(out[p]), stats[p]) for p in range(partitions)}


def test_the_intake_packs_what_consume_packs(kafka_service: KafkaEndpoint, topic: str) -> None:
    """Tombstones, null vs empty, binary keys, duplicate/null/non-ASCII headers, 3 partitions."""
    produce(kafka_service.bootstrap_servers, topic, 4000, partitions=3)
    plain = consumer(kafka_service)
    plain.assign([TopicPartition(topic, p, 0) for p in range(3)])

    def consume() -> tuple[list[Any], int]:
        msgs = plain.consume(500, 0.5)
        return msgs, len(msgs)

    try:
        expected = read_packed(consume, 3, topic)
    finally:
        plain.close()

    fast = consumer(kafka_service)
    taker = open_intake(fast)
    assert taker is not None, "the C intake did not open on confluent-kafka's own Consumer"
    try:
        for p in range(3):
            taker.route(topic, p)
        fast.assign([TopicPartition(topic, p, 0) for p in range(3)])
        got = read_packed(lambda: (taker, taker.fetch(500, 0.5)), 3, topic)
        assert fast.consume(100, 0) == []  # nothing went round the intake
    finally:
        taker.close()
        fast.close()
    for p in range(3):
        assert got[p][0] == expected[p][0], f"partition {p}: packed bytes differ"
        assert got[p][1] == expected[p][1], f"partition {p}: counts, offsets or timestamps differ"
    assert sum(len(v[0]) for v in got.values()) > 100_000


def _sized_record(i: int) -> tuple[bytes | None, bytes | None, list[tuple[str, bytes]] | None]:
    """Values whose lengths straddle the varint steps, keys null, empty or set, headers or none."""
    size = (0, 1, 63, 64, 65, 8191, 8192, 8193, 300_000)[i % 9]
    key = (None, b"", f"k{i}".encode())[i % 3]
    value: bytes | None = ((b"\x00" if i % 2 else bytes([i % 251])) * size) if i % 11 else None
    headers = [("n", str(i).encode()), ("z", b"\x00")] if i % 4 == 0 else ([] if i % 4 == 1 else None)
    return key, value, headers


@pytest.mark.parametrize("compression", ["none", "lz4", "zstd", "gzip"])
def test_headers_come_through_whatever_the_record_and_batch(
    kafka_service: KafkaEndpoint, kafka_topic_factory: Any, compression: str
) -> None:
    """Headerless records are told from their own bytes (_intake.c): never a header lost or made up.

    Sizes at each varint step of the value length, null and empty keys and
    values, values of 0x00 bytes (the byte that says "no headers"), and
    batches the producer compressed, which librdkafka reads from a
    decompressed copy.
    """
    topic = kafka_topic_factory(partitions=1)
    producer = Producer(
        {"bootstrap.servers": kafka_service.bootstrap_servers, "compression.type": compression}
    )
    for i in range(200):
        key, value, headers = _sized_record(i)
        producer.produce(topic, key=key, value=value, headers=headers)  # type: ignore[arg-type]
    assert producer.flush(30) == 0
    plain = consumer(kafka_service)
    plain.assign([TopicPartition(topic, 0, 0)])
    try:
        expected = read_packed(lambda: (m := plain.consume(500, 0.5), len(m)), 1, topic)
    finally:
        plain.close()
    c = consumer(kafka_service)
    opened = open_intake(c)
    assert opened is not None
    taker = opened
    seen: list[tuple[Any, ...]] = []

    def views() -> tuple[Any, int]:  # each record as RawMessage gives it, then the batch packed
        n = taker.fetch(500, 0.5)
        seen.extend((m.key(), m.value(), m.headers()) for i in range(n) if (m := taker[i]).error() is None)
        return taker, n

    try:
        taker.route(topic, 0)
        c.assign([TopicPartition(topic, 0, 0)])
        got = read_packed(views, 1, topic)
    finally:
        taker.close()
        c.close()
    assert len(seen) == 200
    for i, (key, value, headers) in enumerate(seen):
        want_key, want_value, want_headers = _sized_record(i)
        assert (key, value) == (want_key, want_value), f"record {i}"
        assert headers == (want_headers or None), f"record {i}: headers"
    assert got[0] == expected[0]


def test_a_run_stops_at_an_event_and_the_event_reads_like_a_message(
    kafka_service: KafkaEndpoint, topic: str
) -> None:
    produce(kafka_service.bootstrap_servers, topic, 30, partitions=3)  # 10 per partition
    c = consumer(kafka_service)
    taker = open_intake(c)
    assert taker is not None
    try:
        taker.route(topic, 1)
        c.assign([TopicPartition(topic, 1, 0)])
        seen: list[RawMessage] = []
        n = 0
        deadline = time.monotonic() + 30
        while not any(m.error() for m in seen):
            assert time.monotonic() < deadline
            n = taker.fetch(100, 0.5)
            seen += [taker[i] for i in range(n)]
        records, eof = seen[:-1], seen[-1]
        assert [m.offset() for m in records] == list(range(10))
        assert all(m.topic() == topic and m.partition() == 1 for m in seen)
        # produce()'s records 1, 4, 7, ...: each shape of tricky_record, as consume() gives it
        assert (records[0].key(), records[0].value()) == (b"key-1", None)
        assert records[0].timestamp() == (1, BASE_TS + 1000)  # CreateTime
        assert records[1].key() == bytes([0, 255, 1, 254, 4]) and records[1].headers() is None
        assert records[3].key() is None
        assert records[4].headers() == [("h", b"1"), ("h", b"2"), ("null", None), ("empty", b""), ("h", b"1")]
        assert (records[6].key(), records[6].value()) == (b"", b"")
        assert records[7].headers() == [("ünïcode", "välue".encode()), ("bin", bytes(range(16)))]
        err = eof.error()
        assert err is not None and err.code() == KafkaError._PARTITION_EOF
        assert not err.fatal() and not err.retriable()  # as confluent-kafka makes a consumed error
        assert eof.offset() == 10
        assert repr(eof) == f"RawMessage({topic}[1] error {KafkaError._PARTITION_EOF})"
        # The last batch ends with the event: packing stops before it, every record before it packed.
        nxt, _, count, *_, reason = pack_messages(taker, 0, bytearray(), 0, 1 << 20, None, 1, -1)
        assert (nxt, count, reason) == (n - 1, n - 1, STOP_EVENT)
    finally:
        taker.close()
        c.close()


def test_a_deleted_offset_comes_through_as_the_reset_error(kafka_service: KafkaEndpoint, topic: str) -> None:
    produce(kafka_service.bootstrap_servers, topic, 9, partitions=3)
    c = consumer(kafka_service, **{"auto.offset.reset": "error"})
    taker = open_intake(c)
    assert taker is not None
    try:
        taker.route(topic, 0)
        c.assign([TopicPartition(topic, 0, 1_000)])  # past the end: out of range
        deadline = time.monotonic() + 30
        codes: list[int] = []
        while not codes:
            assert time.monotonic() < deadline
            n = taker.fetch(10, 0.5)
            codes = [err.code() for i in range(n) if (err := taker[i].error()) is not None]
        assert codes[0] == KafkaError._AUTO_OFFSET_RESET
        out = bytearray()
        assert pack_messages(taker, 0, out, 0, 1 << 20, None, 0, -1)[7] == STOP_EVENT
    finally:
        taker.close()
        c.close()


def test_callbacks_stay_on_the_consumer_queue(kafka_service: KafkaEndpoint, topic: str) -> None:
    """confluent-kafka's callbacks need its own call state: the intake must never run them."""
    produce(kafka_service.bootstrap_servers, topic, 30, partitions=3)
    stats: list[str] = []
    c = consumer(kafka_service, **{"statistics.interval.ms": 100, "stats_cb": stats.append})
    taker = open_intake(c)
    assert taker is not None
    try:
        for p in range(3):
            taker.route(topic, p)
        c.assign([TopicPartition(topic, p, 0) for p in range(3)])
        records = 0
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:  # several statistics intervals
            n = taker.fetch(100, 0.1)
            records += sum(1 for i in range(n) if taker[i].error() is None)
        assert records == 30 and stats == []
        c.consume(10, 0.2)  # the reader serves the consumer's queue between batches
        assert stats, "the statistics waited on the consumer's queue"
    finally:
        taker.close()
        c.close()


def test_misuse_is_an_error_not_a_crash(kafka_service: KafkaEndpoint, topic: str) -> None:
    produce(kafka_service.bootstrap_servers, topic, 3, partitions=3)
    c = consumer(kafka_service)
    taker = open_intake(c)
    assert taker is not None
    taker.route(topic, 0)
    c.assign([TopicPartition(topic, 0, 0)])
    assert taker.fetch(10, 5) >= 1
    with pytest.raises(ValueError, match="at least 1"):
        taker.fetch(0, 0)
    with pytest.raises(IndexError):
        taker[len(taker)]
    with pytest.raises(TypeError, match="list or an Intake"):
        pack_messages(object(), 0, bytearray(), 0, 1, None, 0, -1)
    taker.close()  # always before the consumer's close(), which would wait for what the intake holds
    c.close()
    with pytest.raises(RuntimeError, match="closed"):
        taker.fetch(10, 0)
    with pytest.raises(RuntimeError, match="closed"):
        pack_messages(taker, 0, bytearray(), 0, 1, None, 0, -1)
    with pytest.raises(RuntimeError, match="closed"):
        taker.route(topic, 1)
    taker.close()  # again: nothing to do
    with pytest.raises(TypeError, match="is not a"):
        Intake(object(), Consumer, RawMessage, str(cimpl.__file__))


def test_a_block_that_cannot_grow_is_an_error_and_the_batch_stays(
    kafka_service: KafkaEndpoint, topic: str
) -> None:
    """Packing runs without the GIL and takes it back to grow the block; a failure there is clean."""
    produce(kafka_service.bootstrap_servers, topic, 300, partitions=3)  # 100 per partition
    c = consumer(kafka_service)
    taker = open_intake(c)
    assert taker is not None
    try:
        taker.route(topic, 0)
        c.assign([TopicPartition(topic, 0, 0)])
        n = taker.fetch(100, 10)
        assert n == 100  # a run long enough to be packed without the GIL
        block = bytearray()
        view = memoryview(block)  # someone else's export: the block cannot be resized
        with pytest.raises(BufferError):
            pack_messages(taker, 0, block, 0, 1 << 30, topic, 0, -1)
        view.release()
        # Nothing half-done: the intake is free again and the same batch packs in full.
        i, pos, count, first, last, *_ = pack_messages(taker, 0, block, 0, 1 << 30, topic, 0, -1)
        assert (i, count, first, last) == (100, 100, 0, 99)
        assert 100 * 20 < pos <= len(block)  # grown (doubling) while packing
        again = bytearray()
        assert pack_messages(taker, 0, again, 0, 1 << 30, topic, 0, -1)[1] == pos
        assert again[:pos] == block[:pos]
        assert taker.fetch(10, 5) >= 1  # the partition's end: still usable
    finally:
        taker.close()
        c.close()


def test_where_the_intake_does_not_open(
    kafka_service: KafkaEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert open_intake(object()) is None  # a test double: consume() it is
    c = consumer(kafka_service)
    try:
        monkeypatch.setenv(intake.ENV, "consume")
        assert open_intake(c) is None
        monkeypatch.delenv(intake.ENV)
        with monkeypatch.context() as m:  # a release whose consumer layout is not known
            m.setattr(confluent_kafka, "__version__", "3.0.0")
            assert open_intake(c) is None
        opened = open_intake(c)
        assert opened is not None
        opened.close()
    finally:
        c.close()
    assert open_intake(c) is None  # closed: the consumer's own error, logged, then consume()
