"""The store pipeline on the memory backend: segment before index, per-partition order, the budget."""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
import zstandard

from libkb.backup.budget import ByteBudget, SegmentCharge
from libkb.backup.lease import LeaseLostError
from libkb.backup.store import STREAM_RUN, PartitionLane, StorePipeline, stream_contexts
from libkb.format import zstream
from libkb.format.models import MissingRange, PartitionIndex, index_key, segment_key
from libkb.format.segment import (
    CODEC_NONE,
    CODEC_ZSTD,
    CODEC_ZSTD_STREAM,
    BlockEncoder,
    RawBlock,
    SegmentReader,
    codec_chain,
)
from libkb.format.transforms import BlockContext
from libkb.format.zstream import KIND_CONTINUE, KIND_RESTART, AloneEncoder
from libkb.metrics import RunMetrics
from libkb.storage import StorageError
from tests.backup.support import BID, Owner, Store, make_pipeline, memory_store, raw_block
from tests.format.test_zstream import as_read, shape_records


@pytest.fixture
def store() -> Iterator[Store]:
    yield from memory_store()


@pytest.fixture
def owner() -> Owner:
    return Owner()


@pytest.fixture
def pipeline(store: Store, owner: Owner) -> Iterator[StorePipeline]:
    p = make_pipeline(store, owner)
    yield p
    p.close()


def lane(topic: str = "t", partition: int = 0) -> PartitionLane:
    return PartitionLane(topic, partition, PartitionIndex(topic, partition))


def queue_segment(pipeline: StorePipeline, at: PartitionLane, base: int, end: int) -> int:
    """Queue a segment ``[base, end)`` of one-record blocks, as the builder would; its raw bytes."""
    raws = [raw_block(offset) for offset in range(base, end)]
    raw = sum(len(r.data) for r in raws)
    assert pipeline.budget.try_acquire(raw)
    charge = SegmentCharge(pipeline.budget)
    places = [BlockContext(at.topic, at.partition, base, i, len(r.data)) for i, r in enumerate(raws)]
    blocks = []
    for r, place in zip(raws, places, strict=True):
        charge.add(len(r.data))
        blocks.append(pipeline.encode(r, place, charge))
    pipeline.store_segment(at, base, end, blocks, charge)
    return raw


def seg(base: int, topic: str = "t", partition: int = 0) -> str:
    return segment_key(BID, topic, partition, base)


def test_each_segment_is_stored_before_the_index_that_lists_it(store: Store, pipeline: StorePipeline) -> None:
    p0 = lane()
    for base in (0, 3, 6):
        queue_segment(pipeline, p0, base, base + 3)
    pipeline.wait()
    idx = index_key(BID, "t", 0)
    assert store.writes() == [seg(0), idx, seg(3), idx, seg(6), idx]
    listed = [[s.key for s in index.segments] for index in store.index_writes("t", 0)]
    assert listed == [[seg(0)], [seg(0), seg(3)], [seg(0), seg(3), seg(6)]]
    index = store.index("t", 0)
    assert index.coverage_problems() == [] and (index.start_offset, index.end_offset) == (0, 9)
    assert pipeline.segments == 3 and pipeline.stored_bytes == sum(s.size for s in index.segments)
    assert pipeline.budget.used == 0
    assert [r[0] for r in SegmentReader(store.backend.get(seg(3))).records()] == [3, 4, 5]


def test_a_failed_segment_upload_leaves_no_index_entry(store: Store, pipeline: StorePipeline) -> None:
    p0 = lane()
    store.failing.add(seg(3))
    for base in (0, 3, 6):
        queue_segment(pipeline, p0, base, base + 3)
    with pytest.raises(StorageError, match="storage refused"):
        pipeline.wait()
    assert [s.key for s in store.index("t", 0).segments] == [seg(0)]
    assert not store.backend.exists(seg(3))
    assert not store.backend.exists(seg(6))  # queued after the failure: never stored nor indexed
    assert pipeline.budget.used == 0  # every block's budget given back, failed or not


def test_a_partitions_stores_run_one_after_another(store: Store, pipeline: StorePipeline) -> None:
    """Four upload threads: the second segment of a partition waits; another partition does not."""
    p0, p1 = lane(partition=0), lane(partition=1)
    gate = store.hold(seg(0))
    queue_segment(pipeline, p0, 0, 3)
    queue_segment(pipeline, p0, 3, 6)
    queue_segment(pipeline, p1, 0, 3)
    assert store.started_event(seg(0, partition=1)).wait(10)  # the other partition goes ahead
    assert not store.started_event(seg(3)).wait(0.2)
    pipeline.check()  # nothing failed: nothing to raise
    gate.set()
    pipeline.wait()
    order = store.writes()
    assert order.index(seg(0)) < order.index(seg(3))
    assert [s.key for s in store.index("t", 0).segments] == [seg(0), seg(3)]
    assert [s.key for s in store.index("t", 1).segments] == [seg(0, partition=1)]


def test_a_missing_range_is_indexed_after_the_segments_before_it(
    store: Store, pipeline: StorePipeline
) -> None:
    p0 = lane()
    gate = store.hold(seg(0))
    queue_segment(pipeline, p0, 0, 3)
    pipeline.record_missing(p0, MissingRange(3, 10, "retention"))
    queue_segment(pipeline, p0, 10, 12)
    assert store.started_event(seg(0)).wait(10)
    assert not store.backend.exists(index_key(BID, "t", 0))  # not before the segment before it
    gate.set()
    pipeline.wait()
    writes = store.index_writes("t", 0)
    assert [([s.key for s in w.segments], [(m.start, m.end) for m in w.missing]) for w in writes] == [
        ([seg(0)], []),
        ([seg(0)], [(3, 10)]),
        ([seg(0), seg(10)], [(3, 10)]),
    ]
    assert store.index("t", 0).coverage_problems() == []


def test_a_missing_range_after_a_failed_segment_is_not_indexed(store: Store, pipeline: StorePipeline) -> None:
    p0 = lane()
    store.failing.add(seg(0))
    queue_segment(pipeline, p0, 0, 3)
    pipeline.record_missing(p0, MissingRange(3, 10, "retention"))
    with pytest.raises(StorageError):
        pipeline.wait()
    assert not store.backend.exists(index_key(BID, "t", 0))


def test_segment_and_index_writes_are_fenced_by_ownership(
    store: Store, owner: Owner, pipeline: StorePipeline
) -> None:
    p0 = lane()
    queue_segment(pipeline, p0, 0, 3)
    pipeline.wait()
    assert owner.fences == [("t", 0), ("t", 0)]  # the segment, then the index
    owner.lose()
    queue_segment(pipeline, p0, 3, 6)
    with pytest.raises(LeaseLostError, match=r"segment-00000000000000000003\.kbs is not stored"):
        pipeline.wait()
    assert [s.key for s in store.index("t", 0).segments] == [seg(0)]
    assert not store.backend.exists(seg(3))  # a successor may store its own segment there
    with pytest.raises(LeaseLostError, match="the missing range 6-9 is not indexed"):
        pipeline.store_index(p0, "the missing range 6-9", lambda index: None)


def test_an_error_reaches_the_consuming_thread(store: Store, pipeline: StorePipeline) -> None:
    store.failing.add(seg(0))
    queue_segment(pipeline, lane(), 0, 3)
    assert store.started_event(seg(0)).wait(10)
    with pytest.raises(StorageError):
        for _ in range(100):
            pipeline.check()
            threading.Event().wait(0.05)
    pipeline.wait(quiet=True)  # already raised once: a failed run waits quietly


def charge(pipeline: StorePipeline, raw: RawBlock) -> SegmentCharge:
    """The budget for ``raw`` taken, as the builder takes it before it hands the block over."""
    assert pipeline.budget.try_acquire(len(raw.data))
    held = SegmentCharge(pipeline.budget)
    held.add(len(raw.data))
    return held


def test_nothing_to_transform_keeps_the_buffer_and_costs_no_thread(pipeline: StorePipeline) -> None:
    raw = raw_block(0, count=3)
    done = pipeline.encode(raw, BlockContext("t", 0, 0, 0, len(raw.data)), charge(pipeline, raw))
    assert done.done()
    block = done.result()
    assert block.payload is raw.data and block.crc == zlib.crc32(raw.data)
    assert not pipeline.spare  # the buffer is the stored payload: never reused


def test_compression_runs_off_the_thread_and_recycles_the_buffer(store: Store, owner: Owner) -> None:
    pipeline = make_pipeline(store, owner, chain=codec_chain(CODEC_ZSTD, 3))
    try:
        raw = raw_block(0, count=50)
        held = charge(pipeline, raw)
        block = pipeline.encode(raw, BlockContext("t", 0, 0, 0, len(raw.data)), held).result(10)
        assert zstandard.ZstdDecompressor().decompress(block.payload) == bytes(raw.data)
        assert block.crc == zlib.crc32(block.payload) and block.raw_len == len(raw.data)
        assert list(pipeline.spare) == [raw.data]
        assert pipeline.algorithm == "zstd"
        # Compressed, the block holds only its stored bytes of the budget.
        assert held.held == pipeline.budget.used == len(block.payload) < len(raw.data)
        assert pipeline.budget.unencoded == 0
    finally:
        pipeline.close()


def test_the_budget_admits_one_block_even_above_its_limit() -> None:
    budget = ByteBudget(100)
    assert budget.try_acquire(500)  # nothing held: a block bigger than the budget still passes
    assert not budget.try_acquire(1)
    waiter_done = threading.Event()

    def waiter() -> None:
        while not budget.try_acquire(50):
            budget.wait(5)
        waiter_done.set()

    thread = threading.Thread(target=waiter)
    thread.start()
    budget.release(500)
    assert waiter_done.wait(10)
    thread.join()
    assert budget.used == 50


def stream_pipeline(store: Store, owner: Owner, budget: int, restart_blocks: int = 128) -> StorePipeline:
    return StorePipeline(
        store.backend,
        BID,
        owner,
        codec_chain(CODEC_NONE),
        compression_threads=2,
        upload_threads=2,
        max_bytes_in_flight=budget,
        metrics=RunMetrics(),
        restart_blocks=restart_blocks,
    )


@pytest.mark.parametrize(("budget", "contexts"), [(64 << 20, 8), (8 << 20, 1)])
def test_zstd_stream_keeps_at_most_its_contexts_and_a_dropped_one_restarts(
    store: Store, owner: Owner, budget: int, contexts: int
) -> None:
    """A context holds up to an 8 MiB window: memory must not grow with the partition count."""
    assert stream_contexts(budget) == contexts
    pipeline = stream_pipeline(store, owner, budget)
    try:
        lanes = [lane("t", p) for p in range(3)]
        charges = [SegmentCharge(pipeline.budget) for _ in lanes]
        blocks: dict[int, list[Any]] = {p: [] for p in range(3)}
        for i in range(4):  # three partitions' segments, their blocks interleaved as a run seals them
            for p in range(3):
                raw = raw_block(i * 10, count=10)
                assert pipeline.budget.try_acquire(len(raw.data))
                charges[p].add(len(raw.data))
                blocks[p].append(pipeline.encode(raw, BlockContext("t", p, 0, i, len(raw.data)), charges[p]))
        for p, at in enumerate(lanes):
            pipeline.store_segment(at, 0, 40, blocks[p], charges[p])
        pipeline.wait()
        assert pipeline.budget.used == pipeline.budget.unencoded == 0
        for p in range(3):
            data = store.backend.get(seg(0, partition=p))
            reader = SegmentReader(data)
            assert reader.header.codec == CODEC_ZSTD_STREAM
            kinds = [data[b.position + 32] for b in reader.blocks()]
            assert kinds == ([KIND_RESTART] * 4 if contexts == 1 else [KIND_RESTART] + [KIND_CONTINUE] * 3)
            assert [r[0] for r in reader.records()] == list(range(40))
    finally:
        pipeline.close()


def test_zstd_stream_blocks_queued_faster_than_encoded_keep_their_order_per_context(
    store: Store, owner: Owner
) -> None:
    """A compression thread works through a context's queued blocks a run at a time, in order."""
    pipeline = stream_pipeline(store, owner, 64 << 20)
    try:
        blocks: dict[int, list[Any]] = {p: [] for p in range(4)}
        charges = [SegmentCharge(pipeline.budget) for _ in range(4)]
        for i in range(3 * STREAM_RUN):  # several runs per context, four contexts in turn
            for p in range(4):
                raw = raw_block(i * 10, count=10)
                assert pipeline.budget.try_acquire(len(raw.data))
                charges[p].add(len(raw.data))
                blocks[p].append(pipeline.encode(raw, BlockContext("t", p, 0, i, len(raw.data)), charges[p]))
        for p in range(4):
            pipeline.store_segment(lane("t", p), 0, 30 * STREAM_RUN, blocks[p], charges[p])
        pipeline.wait()
        assert pipeline.budget.used == pipeline.budget.unencoded == 0
        for p in range(4):
            data = store.backend.get(seg(0, partition=p))
            kinds = [data[b.position + 32] for b in SegmentReader(data).blocks()]
            assert kinds == [KIND_RESTART] + [KIND_CONTINUE] * (3 * STREAM_RUN - 1)
            assert [r[0] for r in SegmentReader(data).records()] == list(range(30 * STREAM_RUN))
    finally:
        pipeline.close()


def test_closing_the_pipeline_cancels_the_blocks_no_thread_will_encode(store: Store, owner: Owner) -> None:
    """Nothing waits forever on a block whose context was never drained: it is done or cancelled."""
    pipeline = stream_pipeline(store, owner, 64 << 20)
    charge = SegmentCharge(pipeline.budget)
    futures = []
    for i in range(10 * STREAM_RUN):
        raw = raw_block(i * 10, count=10)
        charge.add(len(raw.data))
        futures.append(pipeline.encode(raw, BlockContext("t", 0, 0, i, len(raw.data)), charge))
    pipeline.close()
    assert all(f.done() for f in futures)
    finished = [f for f in futures if not f.cancelled()]
    assert [f.result().first_offset for f in finished] == [i * 10 for i in range(len(finished))]


def charged_block(pipeline: StorePipeline, charge: SegmentCharge, records: list[Any]) -> RawBlock:
    """``records`` packed as one block, its bytes taken from the budget and added to ``charge``."""
    enc = BlockEncoder(1 << 20)
    for record in records:
        enc.add(*record)
    raw = enc.take()
    assert pipeline.budget.try_acquire(len(raw.data))
    charge.add(len(raw.data))
    return raw


def test_a_partitions_blocks_that_need_no_context_compress_on_every_thread(
    store: Store, owner: Owner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Distinct records: after the probe, a single partition keeps both threads busy."""
    threads: set[str] = set()
    encode = AloneEncoder.encode

    def spy(self: AloneEncoder, data: Any, index: int) -> bytes:
        threads.add(threading.current_thread().name)
        time.sleep(0.01)  # long enough for the other thread to take the next block
        return encode(self, data, index)

    monkeypatch.setattr(AloneEncoder, "encode", spy)
    records = shape_records("distinct", 2 << 20)
    pipeline = stream_pipeline(store, owner, 64 << 20, restart_blocks=8)
    try:
        charge = SegmentCharge(pipeline.budget)
        futures: list[Any] = []
        for index, first in enumerate(range(0, len(records), 100)):
            raw = charged_block(pipeline, charge, records[first : first + 100])
            futures.append(pipeline.encode(raw, BlockContext("t", 0, 0, index, len(raw.data)), charge))
            if index % 8 == 3:
                futures[-1].result(10)  # the probe has decided: the interval's other blocks go alone
        pipeline.store_segment(lane(), 0, len(records), futures, charge)
        pipeline.wait()
        assert len(threads) == 2
        data = store.backend.get(seg(0))
        kinds = [data[b.position + 32] for b in SegmentReader(data).blocks()]
        probe = [KIND_RESTART, KIND_CONTINUE, KIND_CONTINUE, KIND_CONTINUE]
        # The next interval needs no probe of its own: the first found history of no use.
        assert kinds == probe + [KIND_RESTART] * (len(kinds) - 4)
        assert list(SegmentReader(data).records()) == as_read(records)
        assert pipeline.budget.used == pipeline.budget.unencoded == 0
    finally:
        pipeline.close()


def queue_records(
    store: Store, pipeline: StorePipeline, records: list[Any], per_block: int = 100
) -> list[int]:
    """Queue ``records`` as partition 0's next segment, blocks of ``per_block`` records, each once
    the one before is encoded; the stored segment's payload kinds (its records are checked)."""
    charge = SegmentCharge(pipeline.budget)
    futures: list[Any] = []
    for index, first in enumerate(range(0, len(records), per_block)):
        raw = charged_block(pipeline, charge, records[first : first + per_block])
        place = BlockContext("t", 0, records[0][0], index, len(raw.data))
        futures.append(pipeline.encode(raw, place, charge))
        futures[-1].result(10)  # in turn: each probe decides before the next block is queued
    pipeline.store_segment(lane(), records[0][0], records[-1][0] + 1, futures, charge)
    pipeline.wait()
    data = store.backend.get(seg(records[0][0]))
    assert list(SegmentReader(data).records()) == as_read(records)
    return [data[b.position + 32] for b in SegmentReader(data).blocks()]


def test_a_partition_whose_probe_found_no_use_for_history_skips_its_next_probes(
    store: Store, owner: Owner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Short segments (many partitions, one budget) each start an interval: after a probe found
    history of no use, the partition's next segments go without one until the spacing has passed,
    then probe again. The records read back all the same."""
    monkeypatch.setattr(zstream, "PROBE_SPACING", 12)
    records = shape_records("distinct", 4 << 20)
    pipeline = stream_pipeline(store, owner, 64 << 20)
    try:
        segments = [records[i : i + 600] for i in range(0, 3600, 600)]  # 6 blocks each
        found = [queue_records(store, pipeline, part) for part in segments]
    finally:
        pipeline.close()
    probe = [KIND_RESTART, KIND_CONTINUE, KIND_CONTINUE, KIND_CONTINUE]
    alone = [KIND_RESTART] * 6
    # The first segment probes; the 12 blocks after its verdict go alone; then a probe again.
    assert found == [probe + [KIND_RESTART] * 2, alone, alone, probe + [KIND_RESTART] * 2, alone, alone]


def test_history_that_pays_is_probed_for_at_every_interval(store: Store, owner: Owner) -> None:
    """A cycled pool (one partition of 32: it repeats every 256 records): every segment's blocks
    after its first continue the context, as before."""
    records = shape_records("cyclic", 3 << 20, partitions=32)
    pipeline = stream_pipeline(store, owner, 64 << 20)
    try:
        found = [queue_records(store, pipeline, records[i : i + 600]) for i in range(0, 2400, 600)]
    finally:
        pipeline.close()
    assert found == [[KIND_RESTART] + [KIND_CONTINUE] * 5] * 4


def test_records_that_turn_redundant_are_noticed_within_the_spacing(
    store: Store, owner: Owner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Distinct records, then a cycled pool: the first probe after the spacing finds the history,
    and the partition's intervals use it from then on."""
    monkeypatch.setattr(zstream, "PROBE_SPACING", 8)
    distinct = shape_records("distinct", 2 << 20)[:1200]
    pool = shape_records("cyclic", 2 << 20, partitions=32)[:1800]
    cyclic = [(1200 + n, *r[1:]) for n, r in enumerate(pool)]
    pipeline = stream_pipeline(store, owner, 64 << 20)
    try:
        found = [
            queue_records(store, pipeline, part)
            for part in (distinct[:600], distinct[600:], cyclic[:600], cyclic[600:1200], cyclic[1200:])
        ]
    finally:
        pipeline.close()
    probe = [KIND_RESTART, KIND_CONTINUE, KIND_CONTINUE, KIND_CONTINUE]
    assert found[0] == probe + [KIND_RESTART] * 2
    assert found[1] == [KIND_RESTART] * 6  # within the spacing (8 blocks from the verdict): no probe
    assert found[2] == found[3] == found[4] == [KIND_RESTART] + [KIND_CONTINUE] * 5  # history pays
