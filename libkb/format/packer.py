"""Packs consumed Kafka messages straight into a block's record bytes.

Backup's consuming thread is the bottleneck of a backup: every record costs a
tuple, six method calls and a msgpack call in Python. :func:`pack_messages`
does the same work in one call per run of records, with an optional C
extension (``libkb/format/_packer.c``, built at install time when a compiler
is there) and this module's Python code as the reference and fallback. Both
produce the bytes of ``msgpack.Packer(use_bin_type=True)`` for the record
tuples of :mod:`libkb.format.segment`; tests compare them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgpack

# Why pack_messages stopped before msgs[next]:
STOP_END = 0  # the list is exhausted
STOP_FULL = 1  # the block reached ``limit`` bytes
STOP_OTHER = 2  # msgs[next] is another topic-partition
STOP_EVENT = 3  # msgs[next] carries an error or event (e.g. partition EOF)
STOP_BOUND = 4  # msgs[next] is at or past ``end_offset``
STOP_UNUSUAL = 5  # msgs[next] has a field the fast path does not pack; pack it one by one

#: (next index, new pos, records packed, first offset, last offset, min ts, max ts, stop reason);
#: offsets and timestamps are -1 when nothing was packed.
PackResult = tuple[int, int, int, int, int, int, int, int]


def py_pack_messages(
    msgs: list[Any],
    start: int,
    out: bytearray,
    pos: int,
    limit: int,
    topic: str | None,
    partition: int,
    end_offset: int,
    stop: int | None = None,
) -> PackResult:
    """Append the records of ``msgs[start:stop]`` to ``out[:pos]`` while they are packable.

    Stops before the first message that is an error/event, of another
    partition (or of another topic when ``topic`` is given), at or past
    ``end_offset`` (when >= 0), or not plain bytes/None/list-of-pairs; and as
    soon as the block holds ``limit`` bytes. The C version also packs from an
    ``Intake`` (``_intake.c``: librdkafka's messages, no objects). ``out[pos:]`` is scratch space:
    the block is ``out[:new pos]``.
    """
    del out[pos:]
    # One per call (a Packer is not thread-safe); records accumulate in its buffer.
    packer = msgpack.Packer(use_bin_type=True, autoreset=False)
    pack, buffer = packer.pack, packer.getbuffer
    count = 0
    size = pos
    reason = STOP_END
    first = last = low = high = -1
    i = start
    n = len(msgs) if stop is None else min(stop, len(msgs))
    while i < n:
        if size >= limit:
            reason = STOP_FULL
            break
        msg = msgs[i]
        if msg.error() is not None:
            reason = STOP_EVENT
            break
        if msg.partition() != partition or (topic is not None and msg.topic() != topic):
            reason = STOP_OTHER
            break
        offset = msg.offset()
        if 0 <= end_offset <= offset:
            reason = STOP_BOUND
            break
        ts_type, ts = msg.timestamp()
        key, value, headers = msg.key(), msg.value(), msg.headers()
        if not (
            type(offset) is type(ts) is type(ts_type) is int
            and _INT64 <= offset < -_INT64
            and _INT64 <= ts < -_INT64
            and _INT64 <= ts_type < -_INT64
            and type(key) in _BIN_OR_NONE
            and type(value) in _BIN_OR_NONE
            and (headers is None or _headers_packable(headers))
        ):
            reason = STOP_UNUSUAL
            break
        pack((offset, ts, ts_type, key, value, headers))
        if not count:
            first, low, high = offset, ts, ts
        elif ts < low:
            low = ts
        elif ts > high:
            high = ts
        count += 1
        size = pos + len(buffer())
        last = offset
        i += 1
    if reason == STOP_END and size >= limit and i > start:
        reason = STOP_FULL
    out += buffer()
    return i, len(out), count, first, last, low, high, reason


_BIN_OR_NONE = (bytes, type(None))
_INT64 = -(1 << 63)


def _headers_packable(headers: Any) -> bool:
    """The header shapes the C packer handles, so both stop at the same messages."""
    if type(headers) is not list:
        return False
    for pair in headers:
        if type(pair) is not tuple or len(pair) != 2 or type(pair[0]) is not str:
            return False
        if type(pair[1]) not in _BIN_OR_NONE:
            return False
        try:
            pair[0].encode("utf-8")
        except UnicodeEncodeError:
            return False
    return True


def _py_regrow(buf: bytearray, size: int) -> None:
    """``buf`` resized to ``size`` bytes (zero-filled here; the C version leaves them as they are)."""
    if size < len(buf):
        del buf[size:]
    else:
        buf += bytes(size - len(buf))


_c_pack_messages: Callable[..., PackResult] | None
new_buffer: Callable[[int], bytearray]
regrow: Callable[[bytearray, int], None]
try:
    from libkb.format._packer import new_buffer, regrow
    from libkb.format._packer import pack_messages as _c_pack_messages
except ImportError:  # no compiler at install time: the Python version, same bytes, slower
    _c_pack_messages = None
    new_buffer = bytearray  # zero-filled: the same, a little slower
    regrow = _py_regrow

#: The fastest available implementation.
pack_messages: Callable[..., PackResult] = _c_pack_messages or py_pack_messages
#: Whether the C extension is in use (benchmarks record it).
ACCELERATED = _c_pack_messages is not None
