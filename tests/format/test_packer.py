"""The message packer: the C and Python versions write msgpack's bytes and stop at the same places."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgpack
import pytest
from confluent_kafka import KafkaError, Message
from hypothesis import given, settings
from hypothesis import strategies as st

from libkb.format import packer
from libkb.format.packer import (
    STOP_BOUND,
    STOP_END,
    STOP_EVENT,
    STOP_FULL,
    STOP_OTHER,
    STOP_UNUSUAL,
    py_pack_messages,
)

IMPLEMENTATIONS: list[Callable[..., Any]] = [py_pack_messages]
if packer._c_pack_messages is not None:
    IMPLEMENTATIONS.append(packer._c_pack_messages)


def test_the_c_packer_is_built() -> None:
    """CI builds the extension (setup.py marks it optional for machines without a compiler)."""
    assert packer.ACCELERATED, "libkb/format/_packer.c was not built; is a C compiler installed?"


def msg(
    offset: int,
    *,
    partition: int = 0,
    topic: str = "t",
    key: Any = b"k",
    value: Any = b"v",
    headers: Any = None,
    ts: tuple[int, int] = (1, 1_700_000_000_000),
    error: KafkaError | None = None,
) -> Message:
    return Message(
        topic=topic,
        partition=partition,
        offset=offset,
        key=key,
        value=value,
        headers=headers,
        timestamp=ts,
        error=error,
    )


def reference(msgs: list[Message]) -> bytes:
    packer_ = msgpack.Packer(use_bin_type=True)
    return b"".join(
        packer_.pack((m.offset(), m.timestamp()[1], m.timestamp()[0], m.key(), m.value(), m.headers()))
        for m in msgs
    )


ints = st.one_of(
    st.integers(-(1 << 63), (1 << 63) - 1),
    st.sampled_from([0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, -1, -32, -33, -128, -129]),
    st.sampled_from([-32768, -32769, -(2**31), -(2**31) - 1, 2**63 - 1, -(2**63)]),
)
blobs = st.one_of(st.none(), st.binary(max_size=300), st.sampled_from([b"x" * 65535, b"y" * 65536]))
names = st.one_of(st.text(max_size=40), st.sampled_from(["n" * 31, "n" * 32, "n" * 255, "n" * 256]))
headers = st.one_of(st.none(), st.lists(st.tuples(names, blobs), max_size=20))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, (1 << 63) - 1) | st.sampled_from([0, 127, 128, 2**32]),
            ints,
            st.sampled_from([0, 1, 2]),
            blobs,
            blobs,
            headers,
        ),
        min_size=1,
        max_size=12,
    )
)
def test_bytes_match_msgpack(rows: list[tuple[Any, ...]]) -> None:
    msgs = [msg(o, ts=(tt, ts), key=k, value=v, headers=h) for o, ts, tt, k, v, h in rows]
    expected = reference(msgs)
    offsets = [m.offset() for m in msgs]
    timestamps = [m.timestamp()[1] for m in msgs]
    for pack in IMPLEMENTATIONS:
        out = bytearray(b"garbage-before" + bytes(7))
        got = pack(msgs, 0, out, 14, 1 << 30, None, 0, -1)
        nxt, pos, count, first, last, low, high, reason = got
        assert (nxt, count, reason) == (len(msgs), len(msgs), STOP_END)
        assert bytes(out[:14]) == b"garbage-before"
        assert bytes(out[14:pos]) == expected, pack
        assert (first, last, low, high) == (offsets[0], offsets[-1], min(timestamps), max(timestamps))


@pytest.mark.parametrize("pack", IMPLEMENTATIONS)
def test_stops(pack: Callable[..., Any]) -> None:
    eof = KafkaError(KafkaError._PARTITION_EOF)
    msgs = [
        msg(0),
        msg(1),
        msg(2, partition=1),  # another partition
        msg(3, partition=1, error=eof),  # an event
        msg(5, partition=1),
        msg(9, partition=1),  # at the end offset 9
    ]
    out = bytearray(16)
    assert pack(msgs, 0, out, 0, 1 << 20, None, 0, -1)[::7] == (2, STOP_OTHER)
    assert pack(msgs, 2, out, 0, 1 << 20, None, 1, -1)[::7] == (3, STOP_EVENT)
    assert pack(msgs, 4, out, 0, 1 << 20, None, 1, 9)[::7] == (5, STOP_BOUND)
    assert pack(msgs, 4, out, 0, 1 << 20, None, 1, -1)[::7] == (6, STOP_END)
    # topic checked only when given
    mixed = [msg(0, topic="a"), msg(1, topic="b")]
    assert pack(mixed, 0, out, 0, 1 << 20, None, 0, -1)[0] == 2
    assert pack(mixed, 0, out, 0, 1 << 20, "a", 0, -1)[::7] == (1, STOP_OTHER)


@pytest.mark.parametrize("pack", IMPLEMENTATIONS)
def test_stop_bounds_the_run_as_a_shorter_list_would(pack: Callable[..., Any]) -> None:
    """The reader's room left in a segment (``segment_max_records``): no slice of the batch."""
    msgs = [msg(i) for i in range(6)]
    out = bytearray()
    nxt, pos, count, first, last, *_, reason = pack(msgs, 1, out, 0, 1 << 20, None, 0, -1, 4)
    assert (nxt, count, first, last, reason) == (4, 3, 1, 3, STOP_END)
    assert bytes(out[:pos]) == reference(msgs[1:4])
    assert pack(msgs, 1, bytearray(), 0, 1 << 20, None, 0, -1, 99)[::7] == (6, STOP_END)  # past the end
    assert pack(msgs, 1, bytearray(), 0, 1 << 20, None, 0, -1, None)[::7] == (6, STOP_END)
    assert pack(msgs, 2, bytearray(), 0, 1 << 20, None, 0, -1, 2)[::7] == (2, STOP_END)  # no room


@pytest.mark.parametrize("pack", IMPLEMENTATIONS)
def test_full_block_stops_after_the_record_that_fills_it(pack: Callable[..., Any]) -> None:
    msgs = [msg(i, value=b"v" * 100) for i in range(10)]
    out = bytearray(8)
    nxt, pos, count, *_, reason = pack(msgs, 0, out, 0, 250, None, 0, -1)
    assert (nxt, count, reason) == (3, 3, STOP_FULL)
    assert 250 <= pos < 400
    assert bytes(out[:pos]) == reference(msgs[:3])
    # the list ends exactly when the block is full: still FULL, so the caller seals
    assert pack(msgs[:3], 0, bytearray(), 0, 250, None, 0, -1)[7] == STOP_FULL


@pytest.mark.parametrize("pack", IMPLEMENTATIONS)
@pytest.mark.parametrize(
    "odd",
    [
        {"key": "text"},  # str key: not what a raw consumer returns
        {"value": bytearray(b"x")},
        {"headers": [("h", "text value")]},
    ],
)
def test_unusual_fields_stop_without_writing(pack: Callable[..., Any], odd: dict[str, Any]) -> None:
    msgs = [msg(0), msg(1, **odd), msg(2)]
    out = bytearray(4)
    nxt, pos, count, *_, reason = pack(msgs, 0, out, 0, 1 << 20, None, 0, -1)
    assert (nxt, count, reason) == (1, 1, STOP_UNUSUAL)
    assert bytes(out[:pos]) == reference(msgs[:1])


@pytest.mark.parametrize("pack", IMPLEMENTATIONS)
def test_duck_typed_messages(pack: Callable[..., Any]) -> None:
    """Anything with Message's methods works (test doubles, wrappers)."""

    class Fake:
        def __init__(self, offset: int) -> None:
            self._offset = offset

        def error(self) -> None:
            return None

        def topic(self) -> str:
            return "t"

        def partition(self) -> int:
            return 0

        def offset(self) -> int:
            return self._offset

        def timestamp(self) -> tuple[int, int]:
            return (0, -1)

        def key(self) -> None:
            return None

        def value(self) -> bytes:
            return b""

        def headers(self) -> list[tuple[str, bytes | None]]:
            return [("a", None), ("a", b"")]

    fakes = [Fake(i) for i in range(3)]
    out = bytearray()
    nxt, pos, count, first, last, low, high, reason = pack(fakes, 0, out, 0, 1 << 20, "t", 0, -1)
    assert (nxt, count, first, last, low, high, reason) == (3, 3, 0, 2, -1, -1, STOP_END)
    expected = b"".join(
        msgpack.packb((i, -1, 0, None, b"", [("a", None), ("a", b"")]), use_bin_type=True) for i in range(3)
    )
    assert bytes(out[:pos]) == expected


@pytest.mark.parametrize("pack", IMPLEMENTATIONS)
def test_a_message_subclass_keeps_its_overrides_next_to_plain_messages(pack: Callable[..., Any]) -> None:
    """The C packer calls Message's getters directly only for Message itself: a subclass's win."""

    class Masked(Message):
        def value(self) -> bytes:
            return b"masked"

    def masked(offset: int) -> Message:
        return Masked(topic="t", partition=0, offset=offset, key=b"k", value=b"v", timestamp=(1, 5))

    msgs = [msg(0), masked(1), msg(2), masked(3)]
    out = bytearray()
    nxt, pos, *_ = pack(msgs, 0, out, 0, 1 << 20, None, 0, -1)
    assert nxt == 4
    assert bytes(out[:pos]) == reference(msgs)
    assert reference(msgs).count(b"masked") == 2


@pytest.mark.parametrize("pack", IMPLEMENTATIONS)
def test_a_raising_method_propagates(pack: Callable[..., Any]) -> None:
    class Broken:
        def error(self) -> None:
            raise RuntimeError("boom")

    out = bytearray(b"keep")
    with pytest.raises(RuntimeError, match="boom"):
        pack([Broken()], 0, out, 4, 1 << 20, None, 0, -1)
    assert bytes(out[:4]) == b"keep"
