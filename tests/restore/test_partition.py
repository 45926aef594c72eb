"""The partition restorer without a broker: what it produces, what it skips, the mapping it records."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import cast

import pytest
from confluent_kafka import Producer

from libkb.errors import FormatError
from libkb.format.models import SegmentEntry, segment_key
from libkb.format.segment import Record, SegmentReader, decode_footer, encode_segment
from libkb.metrics import RunMetrics
from libkb.ratelimit import RateLimiter
from libkb.restore.mapping import PartitionMapping
from libkb.restore.partition import PartitionRestorer, RestoreContext
from libkb.restore.plan import PartitionTask
from libkb.restore.progress import RunCounters
from libkb.source import open_backup
from libkb.storage import MemoryConfig, StorageBackend, create_backend_from_config

Headers = list[tuple[str, bytes | None]] | None
Sent = tuple[str, int, bytes | None, bytes | None, int, Headers]


class FakeProducer:
    """Keeps what a Producer would send; a call number in ``full_at`` meets a full local queue once."""

    def __init__(self, full_at: tuple[int, ...] = (), stop_after: int | None = None) -> None:
        self.sent: list[Sent] = []
        self.polls = 0
        self.calls = 0
        self.full_at = set(full_at)
        self.stop_after = stop_after
        self.stop = threading.Event()

    def produce(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        partition: int,
        callback: object,
        on_delivery: object,
        timestamp: int,
        headers: Headers,
    ) -> None:
        self.calls += 1
        if self.calls in self.full_at:
            raise BufferError("Local: Queue full")
        assert callback is None and on_delivery is None  # the producer's own on_delivery reports
        self.sent.append((topic, partition, key, value, timestamp, headers))
        if self.stop_after is not None and len(self.sent) >= self.stop_after:
            self.stop.set()

    def poll(self, timeout: float = -1) -> int:
        self.polls += 1
        return 0


def rec(offset: int, timestamp: int | None = None, ts_type: int = 1, headers: Headers = None) -> Record:
    ts = 1_000 + offset if timestamp is None else timestamp
    key = None if offset % 5 == 0 else f"k{offset}".encode()
    return (offset, ts, ts_type, key, f"v{offset}".encode(), headers)


# Two segments: [0, 40) with offsets 0-29 and 33-39 (a gap), [40, 100) with 40-99; ~8 records a block.
RECORDS = [*(rec(o) for o in range(30)), *(rec(o) for o in range(33, 40)), *(rec(o) for o in range(40, 100))]


@pytest.fixture
def backend() -> Iterator[StorageBackend]:
    with create_backend_from_config(MemoryConfig()) as b:
        yield b


def put(backend: StorageBackend, base: int, end: int, recs: list[Record]) -> SegmentEntry:
    data = encode_segment("src", 0, base, end, recs, block_bytes=150)
    key = segment_key("b1", "src", 0, base)
    backend.put(key, data)
    return SegmentEntry.from_footer(key, base, decode_footer(data), len(data), "zstd")


@pytest.fixture
def segments(backend: StorageBackend) -> tuple[SegmentEntry, ...]:
    return (put(backend, 0, 40, RECORDS[:37]), put(backend, 40, 100, RECORDS[37:]))


class Run:
    """One partition restored into dst[3] from target offset 500; what came of it."""

    def __init__(
        self,
        backend: StorageBackend,
        segments: tuple[SegmentEntry, ...],
        *,
        start: int = 0,
        end: int = 100,
        window: tuple[int | None, int | None] = (None, None),
        skip: int = 0,
        headers: bool = False,
        limited: bool = False,
        producer: FakeProducer | None = None,
    ) -> None:
        self.producer = producer or FakeProducer()
        self.mapping = PartitionMapping("src", 0, "dst", 3, 500)
        self.counters = RunCounters()
        self.metrics = RunMetrics()
        task = PartitionTask("src", 0, "dst", 3, start, end, segments, window)
        limiter = RateLimiter(records_per_sec=10**9 if limited else None, stop=self.producer.stop)
        with ThreadPoolExecutor(2) as pool:
            ctx = RestoreContext(
                open_backup(backend, "b1"),
                cast(Producer, self.producer),
                pool,
                limiter,
                self.producer.stop,
                self.counters,
                self.metrics,
                "b1",
                headers,
            )
            self.restorer = PartitionRestorer(task, self.mapping, skip, ctx)
            self.restorer.run()

    @property
    def offsets(self) -> list[int]:
        """The source offset of each record sent, from the ``v{offset}`` values."""
        return [int((s[3] or b"")[1:]) for s in self.producer.sent]

    def metric(self, name: str) -> float | None:
        return self.metrics.registry.get_sample_value(name, {"backup_id": "b1"})


def test_everything_goes_out_in_order_with_the_record_fields(
    backend: StorageBackend, segments: tuple[SegmentEntry, ...]
) -> None:
    run = Run(backend, segments)
    assert run.offsets == [r[0] for r in RECORDS]
    topic, partition, key, value, timestamp, headers = run.producer.sent[1]
    assert (topic, partition, key, value, timestamp, headers) == ("dst", 3, b"k1", b"v1", 1_001, None)
    assert run.producer.sent[0][2] is None  # a null key stays null
    assert run.mapping.runs == [(0, 500, 30), (33, 530, 67)]  # the gap starts a new run
    assert (run.counters.records, run.counters.segments, run.counters.partitions_done) == (97, 2, 1)
    nbytes = sum(len(r[3] or b"") + len(r[4] or b"") for r in RECORDS)
    assert run.counters.bytes == nbytes
    assert run.metric("kafka_restore_records_total") == 97
    assert run.metric("kafka_restore_bytes_total") == nbytes
    assert run.metric("kafka_restore_segments_read_total") == 2


def test_record_by_record_gives_the_same_as_whole_blocks(
    backend: StorageBackend, segments: tuple[SegmentEntry, ...]
) -> None:
    whole = Run(backend, segments)
    limited = Run(backend, segments, limited=True)  # a rate limit sends it record by record
    assert limited.producer.sent == whole.producer.sent
    assert limited.mapping.runs == whole.mapping.runs
    assert limited.counters.bytes == whole.counters.bytes


def test_offset_range_cuts_blocks_at_both_edges(
    backend: StorageBackend, segments: tuple[SegmentEntry, ...]
) -> None:
    run = Run(backend, segments, start=13, end=71)
    assert run.offsets == [*range(13, 30), *range(33, 71)]
    assert run.mapping.runs == [(13, 500, 17), (33, 517, 38)]
    assert run.counters.segments == 2


def test_time_window_is_inclusive_and_leaves_gaps_in_the_mapping(
    backend: StorageBackend, segments: tuple[SegmentEntry, ...]
) -> None:
    run = Run(backend, segments, window=(1_020, 1_050))
    assert run.offsets == [*range(20, 30), *range(33, 51)]
    assert run.mapping.runs == [(20, 500, 10), (33, 510, 18)]


def test_timestamps_without_a_type_or_value_go_out_as_zero(backend: StorageBackend) -> None:
    recs = [rec(0, ts_type=0), rec(1, timestamp=-1), rec(2, ts_type=2)]
    run = Run(backend, (put(backend, 0, 3, recs),), end=3)
    assert [s[4] for s in run.producer.sent] == [0, 0, 1_002]  # the broker then stamps them


def test_resume_skips_what_an_earlier_run_wrote_but_maps_it(
    backend: StorageBackend, segments: tuple[SegmentEntry, ...]
) -> None:
    run = Run(backend, segments, skip=35)
    assert run.offsets == [*range(38, 40), *range(40, 100)]  # the 35 records 0-29, 33-37 are in the target
    assert run.restorer.skipped == 35 and run.counters.skipped == 35
    assert run.mapping.runs == [(0, 500, 30), (33, 530, 67)]  # the same mapping as an uninterrupted run
    assert run.counters.records == 62


def test_original_offset_headers_are_added_after_the_record_headers(backend: StorageBackend) -> None:
    recs = [rec(7, headers=[("h", b"1"), ("h", None)])]
    run = Run(backend, (put(backend, 7, 8, recs),), start=7, end=8, headers=True)
    (sent,) = run.producer.sent
    assert sent[5] == [
        ("h", b"1"),
        ("h", None),
        ("x-original-offset", (7).to_bytes(8, "little", signed=True)),
        ("x-original-timestamp", (1_007).to_bytes(8, "little", signed=True)),
        ("x-source-partition", (0).to_bytes(4, "little", signed=True)),
    ]


@pytest.mark.parametrize("limited", [False, True])
def test_a_full_local_queue_is_polled_and_the_record_sent_again(
    backend: StorageBackend, segments: tuple[SegmentEntry, ...], limited: bool
) -> None:
    run = Run(backend, segments, limited=limited, producer=FakeProducer(full_at=(3, 4, 50)))
    assert run.offsets == [r[0] for r in RECORDS]  # none lost, none twice
    assert run.producer.polls == 3


def test_a_stop_ends_after_the_current_block_with_the_mapping_of_what_was_sent(
    backend: StorageBackend, segments: tuple[SegmentEntry, ...]
) -> None:
    run = Run(backend, segments, producer=FakeProducer(stop_after=1))
    sent = len(run.producer.sent)
    assert 1 <= sent < 20  # one block
    assert run.offsets == list(range(sent))
    assert run.mapping.runs == [(0, 500, sent)]
    assert run.counters.records == sent and run.counters.segments == 1


def test_a_corrupt_block_fails_naming_the_segment_before_any_of_its_records_is_sent(
    backend: StorageBackend, segments: tuple[SegmentEntry, ...]
) -> None:
    data = bytearray(backend.get(segments[1].key))
    block = list(SegmentReader(bytes(data)).blocks())[2]
    data[block.position + block.length - 3] ^= 0x40  # in its payload
    backend.put(segments[1].key, bytes(data))
    producer = FakeProducer()
    with pytest.raises(FormatError, match=segments[1].key):
        Run(backend, segments, producer=producer)
    assert [int((s[3] or b"")[1:]) for s in producer.sent][-1] == block.first_offset - 1
