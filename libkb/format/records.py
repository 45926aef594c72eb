"""The checks every decoded record passes: stored bytes are never trusted to have a record's shape.

A record is ``[offset, timestamp, timestamp_type, key, value, headers]``
(:mod:`libkb.format.segment`); msgpack decodes whatever a corrupt or hostile
block holds, so a reader checks the shape and types before a record reaches
a producer. :func:`as_record` checks one (the reference, with the reason);
:func:`plain_records` checks a whole block's column by column, for the fast path.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any

# A record as stored: (offset, timestamp, timestamp_type, key, value, headers).
Record = tuple[int, int, int, bytes | None, bytes | None, list[tuple[str, bytes | None]] | None]
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


def as_record(item: Any) -> Record:
    """A decoded msgpack item as a :data:`Record`; ValueError unless it has a record's shape and types."""
    if type(item) is not list or len(item) != 6:
        raise ValueError("not an array of six items")
    offset, timestamp, ts_type, key, value, headers = item
    if not (type(offset) is type(timestamp) is type(ts_type) is int):
        raise ValueError("offset, timestamp or timestamp type is not an integer")
    if not all(_INT64_MIN <= n <= _INT64_MAX for n in (offset, timestamp, ts_type)):
        raise ValueError("offset, timestamp or timestamp type is not a 64-bit integer")
    if type(key) not in _BIN_OR_NIL or type(value) not in _BIN_OR_NIL:
        raise ValueError("key or value is not bytes or nil")
    if headers is not None:
        if type(headers) is not list:
            raise ValueError("headers is not an array")
        headers = [as_header(h) for h in headers]
    return (offset, timestamp, ts_type, key, value, headers)


_BIN_OR_NIL = (bytes, type(None))


def as_header(item: Any) -> tuple[str, bytes | None]:
    if (
        type(item) not in (list, tuple)
        or len(item) != 2
        or type(item[0]) is not str
        or type(item[1]) not in _BIN_OR_NIL
    ):
        raise ValueError("a header is not a [name, value] pair of a string and bytes or nil")
    return (item[0], item[1])


_COLUMNS = [itemgetter(i) for i in range(6)]
_INT = {int}
_BIN = {bytes, type(None)}


def plain_records(records: list[Any]) -> bool:
    """Whether every record is a 6-tuple of the types :func:`as_record` accepts (headers: a tuple or nil).

    Column by column, in C loops: a pass per field rather than Python per record.
    """
    if set(map(type, records)) != {tuple} or set(map(len, records)) != {6}:
        return False
    ints = [list(map(_COLUMNS[i], records)) for i in range(3)]
    if not (
        all(set(map(type, column)) == _INT for column in ints)
        and set(map(type, map(_COLUMNS[3], records))) <= _BIN
        and set(map(type, map(_COLUMNS[4], records))) <= _BIN
        and set(map(type, map(_COLUMNS[5], records))) <= {tuple, type(None)}
    ):
        return False
    return all(min(column) >= _INT64_MIN and max(column) <= _INT64_MAX for column in ints)
