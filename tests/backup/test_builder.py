"""The segment builder's rules: sealing; closing by bytes, records, time, end, deleted offsets; the budget."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future

import pytest

from libkb.backup import builder as builder_module
from libkb.backup.budget import SegmentCharge
from libkb.backup.builder import OpenPartition, SegmentBuilder, SegmentLimits
from libkb.backup.plan import PartitionPlan
from libkb.backup.store import PartitionLane
from libkb.config.models import BackupOptions
from libkb.format.models import PartitionIndex, segment_key
from libkb.format.segment import CODEC_ZSTD, Block, RawBlock, SegmentReader, codec_chain
from libkb.format.transforms import BlockContext, TransformChain
from libkb.metrics import RunMetrics
from libkb.ratelimit import RateLimiter
from tests.backup.support import BID, Owner, Store, make_pipeline, memory_store, raw_block

MiB = 1 << 20
VALUE = 900  # bytes per record value: about 920 raw bytes per record
RECORD = len(raw_block(0, size=VALUE).data)


@pytest.fixture
def store() -> Iterator[Store]:
    yield from memory_store()


class Parts:
    """A builder over a real store pipeline on the memory backend."""

    def __init__(
        self,
        store: Store,
        budget: int = MiB,
        *,
        segment_bytes: int = 1 << 30,
        max_records: int | None = None,
        interval_secs: float = 3600.0,
        chain: TransformChain | None = None,
        held_bytes: int = 1 << 62,
    ) -> None:
        self.store = store
        self.pipeline = make_pipeline(store, Owner(), budget=budget, chain=chain)
        self.metrics = RunMetrics()
        self.heartbeats = 0
        self.on_heartbeat: Callable[[], None] = lambda: None
        self.builder = SegmentBuilder(
            self.pipeline,
            SegmentLimits(64 * 1024, segment_bytes, max_records, interval_secs, held_bytes),
            metrics=self.metrics,
            backup_id=BID,
            limiter=RateLimiter(),
            heartbeat=self._heartbeat,
            heartbeat_secs=0.05,
        )

    def _heartbeat(self) -> None:
        self.heartbeats += 1
        self.on_heartbeat()

    def open(self, partition: int = 0, start: int = 0, end: int | None = None) -> OpenPartition:
        lane = PartitionLane("t", partition, PartitionIndex("t", partition))
        return self.builder.open(PartitionPlan("t", partition, start, end), lane)

    def stored(self, partition: int = 0) -> list[tuple[int, int, list[int]]]:
        """(base, end, offsets) of each indexed segment, once every store is done."""
        self.pipeline.wait()
        out = []
        for entry in self.store.index("t", partition).segments:
            offsets = [r[0] for r in SegmentReader(self.store.backend.get(entry.key)).records()]
            out.append((entry.base_offset, entry.end_offset, offsets))
        return out

    def sample(self, name: str) -> float | None:
        return self.metrics.registry.get_sample_value(name, {"backup_id": BID})


@pytest.fixture
def parts(store: Store) -> Iterator[Parts]:
    p = Parts(store)
    yield p
    p.pipeline.close()


def add(st: OpenPartition, *offsets: int, value: Callable[[int], bytes] = lambda _: b"v" * VALUE) -> None:
    for offset in offsets:
        st.enc.add(offset, 1_700_000_000_000 + offset, 1, b"k", value(offset), None)


def test_the_half_budget_rule() -> None:
    limits = SegmentLimits.from_options
    half = limits(BackupOptions(segment_max_bytes=128 * MiB, max_bytes_in_flight=64 * MiB))
    assert (half.segment_bytes, half.held_bytes) == (128 * MiB, 32 * MiB)
    # Never below one block, however small the budget.
    assert limits(BackupOptions(block_bytes=MiB, max_bytes_in_flight=MiB)).held_bytes == MiB
    other = limits(BackupOptions(segment_max_interval_ms=1500, segment_max_records=7, block_bytes=4096))
    assert (other.interval_secs, other.max_records, other.block_bytes) == (1.5, 7, 4096)


def test_a_sealed_block_joins_the_open_segment(parts: Parts) -> None:
    st = parts.open()
    add(st, 0, 1, 2)
    parts.builder.seal(st)
    assert (st.covered_to, st.seg_records, len(st.seg_blocks), st.enc.count) == (3, 3, 1, 0)
    assert parts.builder.records == 3 and parts.builder.bytes == st.seg_raw == 3 * RECORD
    assert parts.pipeline.budget.used == 3 * RECORD  # held until storage takes the block
    assert parts.store.writes() == []  # the segment is still open
    add(st, 3, 4)
    parts.builder.seal(st)
    parts.builder.close(st)
    assert parts.stored() == [(0, 5, [0, 1, 2, 3, 4])]
    assert parts.pipeline.budget.used == 0
    assert (st.seg_base, st.seg_raw, st.seg_records, st.seg_blocks) == (5, 0, 0, [])


def test_a_segment_closes_at_its_byte_limit(store: Store) -> None:
    parts = Parts(store, segment_bytes=2 * RECORD)
    st = parts.open()
    add(st, 0)
    parts.builder.seal(st)
    add(st, 1)
    parts.builder.seal(st)  # two records' bytes: the segment closes
    add(st, 2)
    parts.builder.seal(st)
    assert parts.stored() == [(0, 2, [0, 1])]
    assert st.seg_base == 2 and st.seg_records == 1
    parts.pipeline.close()


def test_a_segment_closes_at_its_record_limit(store: Store) -> None:
    parts = Parts(store, max_records=5)
    st = parts.open()
    add(st, 0, 1, 2)
    assert not parts.builder.full(st)
    parts.builder.seal(st)
    add(st, 3)
    assert not parts.builder.full(st)
    add(st, 4)
    assert parts.builder.full(st)  # the open block counts too
    parts.builder.seal(st)
    assert parts.stored() == [(0, 5, [0, 1, 2, 3, 4])]
    parts.pipeline.close()


def test_segments_open_too_long_close(store: Store) -> None:
    parts = Parts(store, interval_secs=5.0)
    busy, idle, ended = parts.open(0), parts.open(1), parts.open(2, start=4, end=4)
    add(busy, 0, 1)
    before = idle.seg_opened
    parts.builder.close_expired(time.monotonic() + 1)
    assert busy.enc.count == 2  # not yet
    parts.builder.close_expired(time.monotonic() + 10)
    assert parts.stored(0) == [(0, 2, [0, 1])]
    assert idle.seg_opened > before and not parts.store.backend.list("bk/topics/t/partition=1/")
    assert ended.done and not parts.store.backend.list("bk/topics/t/partition=2/")
    parts.pipeline.close()


def test_offsets_passed_without_records_are_covered(parts: Parts) -> None:
    """Transaction markers at the end of the log: an empty segment states they hold no record."""
    st = parts.open()
    parts.builder.passed(st, 5)
    assert st.covered_to == 5
    parts.builder.close(st)
    assert parts.stored() == [(0, 5, [])]
    add(st, 7)
    parts.builder.passed(st, 9)  # a record is open: its block decides the coverage
    assert st.covered_to == 5


def test_the_end_of_a_partition_stores_everything_up_to_it(parts: Parts) -> None:
    st = parts.open(start=0, end=10)
    assert parts.builder.active == 1
    add(st, 0, 1, 2, 6)
    parts.builder.end(st, 10)
    assert st.done and parts.builder.active == 0
    assert parts.stored() == [(0, 10, [0, 1, 2, 6])]
    assert parts.sample("kafka_backup_offset_gaps_total") == 3  # 3, 4, 5 inside the block


def test_deleted_offsets_are_recorded_missing_after_the_segment_before_them(parts: Parts) -> None:
    st = parts.open()
    add(st, 0, 1, 2)
    parts.builder.seal(st)
    parts.builder.skip(st, 20)
    assert (st.seg_base, st.covered_to, st.sealed_last) == (20, 20, 19)
    add(st, 20)
    parts.builder.seal(st)
    parts.builder.close(st)
    assert parts.stored() == [(0, 3, [0, 1, 2]), (20, 21, [20])]
    index = parts.store.index("t", 0)
    assert [(m.start, m.end, m.reason) for m in index.missing] == [(3, 20, "retention")]
    assert index.coverage_problems() == []
    assert parts.sample("kafka_backup_offset_gaps_total") == 0  # a missing range is not a gap


def test_a_full_budget_closes_the_fullest_open_segment(store: Store) -> None:
    parts = Parts(store, budget=3 * RECORD)
    a, b = parts.open(0), parts.open(1)
    for offset in (0, 1):
        add(a, offset)
        parts.builder.seal(a)
    add(b, 0)
    parts.builder.seal(b)
    add(b, 1)
    parts.builder.seal(b)  # the budget is full: a's segment (the fullest) is stored to free it
    assert parts.stored(0) == [(0, 2, [0, 1])]
    assert len(b.seg_blocks) == 2 and b.seg_base == 0 and not store.backend.list("bk/topics/t/partition=1/")
    parts.pipeline.close()


def test_a_full_budget_may_close_the_segment_being_sealed(store: Store) -> None:
    """That segment must end before the block being sealed, which then opens the next one."""
    parts = Parts(store, budget=5 * RECORD // 2)
    places: list[BlockContext] = []
    encode = parts.pipeline.encode

    def recording(raw: RawBlock, context: BlockContext, charge: SegmentCharge) -> Future[Block]:
        places.append(context)
        return encode(raw, context, charge)

    parts.pipeline.encode = recording  # type: ignore[method-assign]
    st = parts.open()
    for offset in (0, 1, 2):
        add(st, offset)
        parts.builder.seal(st)
    parts.builder.close(st)
    assert parts.stored() == [(0, 2, [0, 1]), (2, 3, [2])]
    assert places == [
        BlockContext("t", 0, 0, 0, RECORD),
        BlockContext("t", 0, 0, 1, RECORD),
        BlockContext("t", 0, 2, 0, RECORD),
    ]
    parts.pipeline.close()


def test_waiting_for_storage_keeps_reporting_progress(store: Store) -> None:
    """Uploads hold half the budget: the builder waits for them, and its heartbeat keeps coming."""
    parts = Parts(store, budget=2 * RECORD)
    st = parts.open()
    add(st, 0)
    parts.builder.seal(st)
    gate = store.hold(segment_key(BID, "t", 0, 0))
    parts.builder.close(st)  # its upload holds the block's budget until the gate opens
    parts.on_heartbeat = gate.set
    add(st, 1, 2)
    parts.builder.seal(st)  # two records do not fit next to the held one: wait for storage
    assert parts.heartbeats >= 1
    parts.builder.close(st)
    assert parts.stored() == [(0, 1, [0]), (1, 3, [1, 2])]
    parts.pipeline.close()


class Intake:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def pause(self) -> None:
        self.calls.append("pause")

    def resume(self) -> None:
        self.calls.append("resume")


def test_a_long_wait_for_storage_pauses_the_consumer_until_the_budget_has_room(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(builder_module, "PAUSE_AFTER_SECS", 0.2)
    parts = Parts(store, budget=2 * RECORD)
    intake = parts.builder.intake = Intake()
    st = parts.open()
    add(st, 0)
    parts.builder.seal(st)
    gate = store.hold(segment_key(BID, "t", 0, 0))
    parts.builder.close(st)  # its upload holds the block's budget until the gate opens
    parts.on_heartbeat = lambda: gate.set() if intake.calls == ["pause"] else None
    add(st, 1, 2)
    parts.builder.seal(st)  # storage does not take the block: wait, pause, and resume once it does
    assert intake.calls == ["pause", "resume"]
    parts.builder.close(st)
    assert parts.stored() == [(0, 1, [0]), (1, 3, [1, 2])]
    parts.pipeline.close()


def test_closing_all_stores_every_open_partition(parts: Parts) -> None:
    a, b, done = parts.open(0), parts.open(1), parts.open(2, start=3, end=3)
    add(a, 0, 1)
    parts.builder.seal(a)
    add(a, 2)
    add(b, 0)
    parts.builder.close_all()
    assert parts.stored(0) == [(0, 3, [0, 1, 2])]
    assert parts.stored(1) == [(0, 1, [0])]
    assert done.done and parts.builder.active == 2


def fill(
    parts: Parts,
    states: list[OpenPartition],
    records: int,
    value: Callable[[int], bytes],
    *,
    slow: bool = False,
) -> None:
    """``records`` records into each partition, a block of 64 at a time, partitions interleaved.

    ``slow``: each block compressed before the next is sealed (a consumer slower than compression).
    """
    for first in range(0, records, 64):
        for st in states:
            add(st, *range(first, first + 64), value=value)
            parts.builder.seal(st)
            while slow and parts.pipeline.budget.unencoded:
                time.sleep(0.001)


def test_compressible_segments_fill_to_their_size_at_any_partition_count(store: Store) -> None:
    """The budget counts stored bytes once a block is compressed: segments are not cut at half of it raw.

    Each segment starts a compression frame, so one cut short costs stored bytes.
    """
    parts = Parts(
        store, budget=8 * 64 * RECORD, segment_bytes=64 * 64 * RECORD, chain=codec_chain(CODEC_ZSTD, 3)
    )
    states = [parts.open(p) for p in range(4)]
    fill(parts, states, 64 * 64, lambda offset: b"v" * VALUE)  # 8x the budget per partition, raw
    parts.builder.close_all()
    for p in range(4):
        assert [(base, end) for base, end, _ in parts.stored(p)] == [(0, 64 * 64)]
    assert parts.pipeline.budget.used == parts.pipeline.budget.unencoded == 0
    parts.pipeline.close()


def test_incompressible_segments_still_close_at_half_the_budget(store: Store) -> None:
    budget = 8 * 64 * RECORD
    parts = Parts(
        store,
        budget=budget,
        segment_bytes=64 * 64 * RECORD,
        chain=codec_chain(CODEC_ZSTD, 3),
        held_bytes=budget // 2,
    )
    states = [parts.open(p) for p in range(2)]
    highest = 0
    assert len(states) == 2

    def random_value(offset: int) -> bytes:
        nonlocal highest
        highest = max(highest, parts.pipeline.budget.used)
        return os.urandom(VALUE)

    fill(parts, states, 64 * 32, random_value, slow=True)
    parts.builder.close_all()
    for p in range(2):
        segments = parts.stored(p)
        assert [r for _, _, offsets in segments for r in offsets] == list(range(64 * 32))
        # Half the budget, shared by two filling segments, is 2 blocks' raw bytes; stored, blocks
        # are a little smaller (the records' framing): the third block closes the segment.
        assert [(end - base) // 64 for base, end, _ in segments] == [3] * 10 + [2]
    assert highest <= budget + 64 * RECORD  # the bound: the budget, and one block over it
    parts.pipeline.close()
