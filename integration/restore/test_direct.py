"""Whole blocks produced from C (``RecordProducer``) against a real broker.

The target must receive exactly what ``Producer.produce()`` per record gives
it: the same keys, values (null and empty apart), headers and timestamps, in
order; a full local queue must be waited through, a refusal raised as
``produce()`` raises it, and a failed delivery must reach the producer's
``on_delivery`` as before. Misuse is a Python error, never a crash.
"""

from __future__ import annotations

import threading
from typing import Any

import confluent_kafka
import pytest
from confluent_kafka import KafkaError, KafkaException, Producer, cimpl

from integration.kafka_data import BASE_TS, consume_all, tricky_record
from integration.services.endpoints import KafkaEndpoint
from libkb.format._packer import RecordProducer
from libkb.format.records import Record
from libkb.format.segment import (
    CODEC_ZSTD,
    RECORDS_AT,
    SegmentReader,
    decoded_block,
    encode_segment,
)
from libkb.restore import direct
from libkb.restore.direct import DirectProducer, open_direct
from libkb.restore.partition import produce_all
from libkb.restore.producer import Deliveries

pytestmark = pytest.mark.kafka


#: Timestamps before this are the ones sent; later ones were stamped at produce time.
SENT_BEFORE = BASE_TS + 10**9


def block_of(count: int, *, first: int = 0) -> list[Record]:
    """Records of every awkward shape, as a segment reader decodes them (CreateTime, and some with none)."""
    out: list[Record] = []
    for i in range(first, first + count):
        rec = tricky_record(i)
        ts = rec["timestamp"]
        assert isinstance(ts, int)
        ts_type = 0 if i % 11 == 10 else 1  # 0: no timestamp kept: stamped when produced
        out.append((i, ts, ts_type, rec["key"], rec["value"], rec["headers"]))  # type: ignore[arg-type]
    return out


def topic_of(factory: Any, partitions: int, **config: str) -> str:
    """A topic that keeps 2020's records: under the broker's default retention a segment of them
    rolls at the next append and is deleted within a second (the test broker checks every second)."""
    return str(factory(partitions=partitions, config={"retention.ms": "-1", **config}))


def producer(kafka: KafkaEndpoint, on_delivery: Any = None, **extra: Any) -> Producer:
    config = {
        "bootstrap.servers": kafka.bootstrap_servers,
        "linger.ms": 5,
        "enable.idempotence": True,
        **extra,
    }
    if on_delivery is not None:
        config |= {"on_delivery": on_delivery, "delivery.report.only.error": True}
    return Producer(config)


def direct_on(p: Producer, on_delivery: Any = None) -> DirectProducer:
    opened = open_direct(p, on_delivery)
    assert opened is not None, "the C path did not open (was the extension built?)"
    return opened


def decoded_of(records: list[Record]) -> Any:
    """``records`` as a segment reader hands a whole block to the restore: decoded, not unpacked."""
    first, last = records[0][0], records[-1][0]
    blob = encode_segment("t", 0, first, last + 1, records, codec=CODEC_ZSTD, block_bytes=1 << 30)
    (info,) = SegmentReader(blob).blocks()
    return decoded_block(blob, info, CODEC_ZSTD)


#: The two ways a whole block goes out in C: its record tuples, or its decoded bytes.
ENTRIES = ["tuples", "decoded"]


def send(fast: DirectProducer, entry: str, topic: str, partition: int, block: list[Record], poll: Any) -> int:
    if entry == "tuples":
        return fast.produce_block(topic, partition, block, poll)
    sent = fast.produce_decoded(topic, partition, decoded_of(block), poll)
    assert sent is not None, "the C reader declined a plain block"
    return sent


def as_sent(records: list[Record]) -> list[tuple[Any, ...]]:
    """What a consumer must read back: offset, key, value, headers, and the timestamp where one was kept."""
    return [(o, k, v, h, ts if tt else "now") for o, ts, tt, k, v, h in records]


def as_read(records: list[Record]) -> list[tuple[Any, ...]]:
    return [(o, k, v, h, ts if ts < SENT_BEFORE else "now") for o, ts, _, k, v, h in records]


@pytest.mark.parametrize("entry", ENTRIES)
def test_a_block_reads_back_exactly_as_produce_per_record_writes_it(
    kafka_service: KafkaEndpoint, kafka_topic_factory: Any, entry: str
) -> None:
    by_c, by_python = topic_of(kafka_topic_factory, 2), topic_of(kafka_topic_factory, 2)
    p = producer(kafka_service)
    fast = direct_on(p)
    blocks = {0: block_of(1500), 1: block_of(700, first=1500)}
    sent = 0
    for partition, block in blocks.items():
        sent += send(fast, entry, by_c, partition, block, p.poll)
        produce_all(p.produce, p.poll, by_python, partition, block)
    assert p.flush(30) == 0
    assert sent == sum(len(r[3] or b"") + len(r[4] or b"") for b in blocks.values() for r in b)
    got, want = (
        consume_all(kafka_service.bootstrap_servers, by_c, 2),
        consume_all(kafka_service.bootstrap_servers, by_python, 2),
    )
    for partition, block in blocks.items():
        renumbered: list[Record] = [(i, *r[1:]) for i, r in enumerate(block)]  # a fresh topic starts at 0
        assert as_read(got[partition]) == as_sent(renumbered) == as_read(want[partition])


@pytest.mark.parametrize("entry", ENTRIES)
def test_a_full_local_queue_is_polled_until_every_record_is_in(
    kafka_service: KafkaEndpoint, kafka_topic_factory: Any, entry: str
) -> None:
    topic = topic_of(kafka_topic_factory, 1)
    p = producer(kafka_service, **{"queue.buffering.max.messages": 50})
    polls: list[float] = []

    def poll(timeout: float) -> int:
        polls.append(timeout)
        return p.poll(timeout)

    block = block_of(2000)
    send(direct_on(p), entry, topic, 0, block, poll)
    assert p.flush(30) == 0
    assert polls and set(polls) == {direct.FULL_POLL_SECS}
    assert as_read(consume_all(kafka_service.bootstrap_servers, topic, 1)[0]) == as_sent(block)


@pytest.mark.parametrize("entry", ENTRIES)
def test_a_refused_record_raises_as_produce_does_after_those_before_it(
    kafka_service: KafkaEndpoint, kafka_topic_factory: Any, entry: str
) -> None:
    topic = topic_of(kafka_topic_factory, 1)
    p = producer(kafka_service, **{"message.max.bytes": 10_000})
    block = block_of(10)
    block[6] = (6, BASE_TS, 1, b"k", b"x" * 20_000, None)
    with pytest.raises(KafkaException) as raised:
        send(direct_on(p), entry, topic, 0, block, p.poll)
    assert raised.value.args[0].code() == KafkaError.MSG_SIZE_TOO_LARGE
    with pytest.raises(KafkaException) as by_python:
        p.produce(topic, b"x" * 20_000, b"k", 0)
    assert by_python.value.args[0].code() == raised.value.args[0].code()
    assert p.flush(30) == 0
    assert as_read(consume_all(kafka_service.bootstrap_servers, topic, 1)[0]) == as_sent(block[:6])


@pytest.mark.parametrize("entry", ENTRIES)
def test_a_failed_delivery_reaches_on_delivery(
    kafka_service: KafkaEndpoint, kafka_topic_factory: Any, entry: str
) -> None:
    # The broker refuses what the producer lets through: the failure comes as a delivery report.
    topic = topic_of(kafka_topic_factory, 2, **{"max.message.bytes": "20000"})
    stop = threading.Event()
    deliveries = Deliveries(stop)
    p = producer(kafka_service, deliveries, **{"message.max.bytes": 1_000_000, "linger.ms": 0})
    fast = direct_on(p, deliveries)
    send(fast, entry, topic, 0, block_of(20), p.poll)
    assert p.flush(30) == 0
    assert not stop.is_set() and deliveries.failed() == set()  # successes are not reported
    send(fast, entry, topic, 1, [(0, BASE_TS, 1, b"big", b"y" * 100_000, None)], p.poll)
    p.flush(30)
    assert stop.is_set() and deliveries.failed() == {(topic, 1)}
    assert "1 record)" in deliveries.messages()[0]


def test_with_a_delivery_callback_messages_point_into_the_block_until_each_is_reported(
    kafka_service: KafkaEndpoint, kafka_topic_factory: Any
) -> None:
    """No copy of the values: the block is held (and cannot be resized) until the last report."""
    topic = topic_of(kafka_topic_factory, 1)
    stop = threading.Event()
    deliveries = Deliveries(stop)
    p = producer(kafka_service, deliveries, **{"linger.ms": 50})
    records = block_of(3000)
    block = decoded_of(records)
    raw = block.raw
    assert direct_on(p, deliveries).produce_decoded(topic, 0, block, p.poll) is not None
    del block
    with pytest.raises(BufferError):
        raw.extend(b"x")  # librdkafka's messages still point into it
    assert p.flush(30) == 0
    raw.extend(b"x")  # every delivery was reported: the block is no longer held
    assert not stop.is_set()
    assert as_read(consume_all(kafka_service.bootstrap_servers, topic, 1)[0]) == as_sent(records)


def test_a_block_the_c_reader_declines_is_left_to_python_and_nothing_is_produced(
    kafka_service: KafkaEndpoint, kafka_topic_factory: Any
) -> None:
    topic = topic_of(kafka_topic_factory, 1)
    p = producer(kafka_service)
    fast = direct_on(p)
    gap = block_of(30)
    del gap[10]  # a compacted block: its records go out one by one, from Python
    declined = decoded_of(gap)
    assert fast.produce_decoded(topic, 0, declined, p.poll) is None
    assert declined.records() == gap  # made and checked in Python instead
    broken = decoded_of(block_of(5))
    broken.raw[RECORDS_AT] = 0x95  # its first record has five fields (corrupt past the checksum)
    assert fast.produce_decoded(topic, 0, broken, p.poll) is None
    assert p.flush(30) == 0 and consume_all(kafka_service.bootstrap_servers, topic, 1)[0] == []


def test_consecutive_offsets_are_checked_in_c() -> None:
    block = block_of(5, first=40)
    assert DirectProducer.consecutive(block) and DirectProducer.consecutive([])
    assert not DirectProducer.consecutive([*block[:2], *block[3:]])
    assert not DirectProducer.consecutive([block[1], block[0]])


def test_misuse_is_an_error_not_a_crash(kafka_service: KafkaEndpoint, kafka_topic_factory: Any) -> None:
    topic = topic_of(kafka_topic_factory, 1)
    p = producer(kafka_service)
    c = RecordProducer(p, Producer, None, cimpl.__file__)
    with pytest.raises(TypeError, match="record 1: the value is str"):
        c.produce(topic, 0, [(0, 0, 0, None, b"v", None), (1, 0, 0, None, "text", None)], 0)
    with pytest.raises(TypeError, match="record 0 is not a 6-tuple"):
        c.produce(topic, 0, [(0, 0, 0, None)], 0)
    with pytest.raises(TypeError, match="header"):
        c.produce(topic, 0, [(0, 0, 0, None, b"v", [("h",)])], 0)
    with pytest.raises(IndexError):
        c.produce(topic, 0, [], 1)
    raw = decoded_of(block_of(3)).raw
    with pytest.raises(IndexError):
        c.produce_packed(topic, 0, raw, 5, 0, 2, 3, 4)  # start beyond the records
    with pytest.raises(IndexError):
        c.produce_packed(topic, 0, raw, len(raw) + 1, 0, 2, 3, 0)
    with pytest.raises(TypeError):
        c.produce_packed(topic, 0, "text", 5, 0, 2, 3, 0)  # type: ignore[arg-type]
    assert c.produce(topic, 0, [], 0) == (0, 0, 0)
    with pytest.raises(TypeError, match="not a"):
        RecordProducer(object(), Producer, None, cimpl.__file__)
    consumer = confluent_kafka.Consumer(
        {"bootstrap.servers": kafka_service.bootstrap_servers, "group.id": "x"}
    )
    try:
        with pytest.raises(TypeError, match="not a"):
            RecordProducer(consumer, Producer, None, cimpl.__file__)
    finally:
        consumer.close()
    assert p.flush(30) == 0 and consume_all(kafka_service.bootstrap_servers, topic, 1)[0] == []


def test_where_the_c_path_does_not_open(
    kafka_service: KafkaEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = producer(kafka_service)
    assert open_direct(object(), None) is None  # a test double
    monkeypatch.setenv(direct.ENV, "produce")
    assert open_direct(p, None) is None
    monkeypatch.delenv(direct.ENV)
    monkeypatch.setattr(confluent_kafka, "__version__", "3.0.0")
    assert open_direct(p, None) is None
