"""BlockEncoder: packing runs of messages gives the same bytes and stats as adding records one by one."""

from __future__ import annotations

import itertools
import random
from collections import deque
from typing import Any

import pytest
from confluent_kafka import Message

from libkb.format import packer
from libkb.format.segment import (
    CODEC_NONE,
    CODEC_ZSTD,
    BlockEncoder,
    Record,
    SegmentReader,
    SegmentWriter,
)


def records(n: int, seed: int = 1) -> list[Record]:
    rnd = random.Random(seed)
    out: list[Record] = []
    offset = 100
    for i in range(n):
        offset += rnd.choice([1, 1, 1, 2, 7])  # gaps, as compaction leaves them
        headers = None
        if i % 3 == 0:
            headers = [("h", b"1"), ("h", None), ("ünï", b"")]
        key = None if i % 5 == 0 else f"k{i}".encode()
        value = None if i % 7 == 0 else rnd.randbytes(rnd.randrange(0, 300))
        # Timestamps out of order, and equal to the first one, to exercise min/max.
        ts = 1_700_000_000_000 + rnd.randrange(-5000, 5000)
        out.append((offset, ts, i % 2, key, value, headers))
    return out


def as_messages(recs: list[Record]) -> list[Message]:
    """The records as the consumer would hand them over."""
    # A copy of each header list: Message's hints take str values too, and list is invariant.
    return [
        Message(
            topic="t",
            partition=0,
            offset=o,
            key=k,
            value=v,
            headers=None if h is None else list(h),
            timestamp=(tt, ts),
        )
        for o, ts, tt, k, v, h in recs
    ]


def add_messages(enc: BlockEncoder, recs: list[Record]) -> int:
    enc.add_messages(as_messages(recs), 0, 1 << 30, None, 0, -1)
    return len(enc)


@pytest.mark.parametrize("cuts", [[], [1], [5, 6, 50], list(range(1, 200, 17))])
def test_add_messages_equals_add(cuts: list[int]) -> None:
    recs = records(200)
    one = BlockEncoder()
    for rec in recs:
        one.add(*rec)
    many = BlockEncoder(4096)
    bounds = [0, *cuts, len(recs)]
    for start, stop in itertools.pairwise(bounds):
        add_messages(many, recs[start:stop])
    assert len(many) == len(one) and many.count == one.count == 200
    a, b = one.take(), many.take()
    assert bytes(a.data) == bytes(b.data)
    assert (a.first_offset, a.last_offset) == (b.first_offset, b.last_offset) == (recs[0][0], recs[-1][0])
    timestamps = [r[1] for r in recs]
    assert (a.min_timestamp, a.max_timestamp) == (b.min_timestamp, b.max_timestamp)
    assert (b.min_timestamp, b.max_timestamp) == (min(timestamps), max(timestamps))


def test_take_starts_a_new_block_and_keeps_the_old_bytes() -> None:
    enc = BlockEncoder(1024)
    first = records(10, seed=2)
    add_messages(enc, first)
    raw = enc.take()
    assert enc.count == 0 and len(enc) == 0 and enc.first_offset == enc.last_offset == -1
    assert add_messages(enc, []) == 0
    add_messages(enc, records(30, seed=3))  # grows past the size hint; the taken block is untouched
    kept = bytes(raw.data)
    again = BlockEncoder()
    add_messages(again, first)
    assert kept == bytes(again.take().data)


@pytest.mark.parametrize("codec", [CODEC_NONE, CODEC_ZSTD])
def test_blocks_from_runs_read_back(codec: int) -> None:
    recs = records(500, seed=4)
    writer = SegmentWriter("t", 3, recs[0][0], codec, 0)
    parts: list[bytes | bytearray] = [writer.header]
    enc = BlockEncoder(2048)
    for start in range(0, len(recs), 64):
        if add_messages(enc, recs[start : start + 64]) >= 2048:
            parts += writer.add_block(enc.take().compress(codec, 3))
    if enc.count:
        parts += writer.add_block(enc.take().compress(codec, 3))
    parts.append(writer.finish(recs[-1][0] + 1)[1])
    reader = SegmentReader(b"".join(parts))
    reader.verify()
    assert list(reader.records()) == recs
    assert isinstance(enc.take().compress(CODEC_NONE).payload, bytes | bytearray)


@pytest.mark.parametrize("size", [16, 1 << 16])
def test_a_reused_buffer_leaves_nothing_of_its_old_bytes(size: int) -> None:
    """Engines hand compressed blocks' buffers back for reuse; old bytes never leak into a block."""
    recs = records(200, seed=9)
    spare: deque[bytearray] = deque([bytearray(b"X" * size), bytearray(b"Y" * size)])
    enc = BlockEncoder(4096, spare)
    add_messages(enc, recs)
    first = enc.take()
    for rec in recs:  # the second spare buffer, through the one-record path
        enc.add(*rec)
    second = enc.take()
    fresh = BlockEncoder(4096)
    add_messages(fresh, recs)
    expected = bytes(fresh.take().data)
    assert bytes(first.data) == expected
    assert bytes(second.data) == expected
    assert not spare  # both were used


def test_a_spare_cut_to_its_block_gets_the_full_room_back() -> None:
    """take() cuts a buffer to its block's length; reused, it gets a whole block's room again.

    Packed into as it was, the buffer would grow by doubling at the block's
    last record: a copy of the whole block on the consuming thread, for about
    every other block of a backup.
    """
    recs = records(200, seed=3)
    spare: deque[bytearray] = deque()
    enc = BlockEncoder(4096, spare)
    add_messages(enc, recs[:20])
    cut = enc.take().data
    assert isinstance(cut, bytearray)
    short = len(cut)
    assert short < 4096
    spare.append(cut)
    reuse = BlockEncoder(4096, spare)
    assert not spare and len(cut) == 4096 + 4096 // 8  # the same buffer, its room back
    add_messages(reuse, recs)
    fresh = BlockEncoder(4096)
    add_messages(fresh, recs)
    assert bytes(reuse.take().data) == bytes(fresh.take().data)


@pytest.mark.parametrize("regrow", [packer.regrow, packer._py_regrow], ids=["c", "python"])
def test_regrow_keeps_the_bytes_and_refuses_what_it_cannot_do(regrow: Any) -> None:
    """The spare's room comes back through regrow(): its bytes kept, nothing resized under a view."""
    buf = bytearray(b"0123456789" * 100)
    del buf[25:]
    regrow(buf, 1000)
    assert len(buf) == 1000 and buf[:25] == b"0123456789" * 2 + b"01234"
    regrow(buf, 10)
    assert buf == b"0123456789"
    view = memoryview(buf)
    with pytest.raises(BufferError):
        regrow(buf, 2000)
    view.release()
    if regrow is packer.regrow:
        with pytest.raises(ValueError, match="negative"):
            regrow(buf, -1)
        wrong: Any = b"bytes"
        with pytest.raises(TypeError, match="bytearray"):
            regrow(wrong, 10)
