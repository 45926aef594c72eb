"""The C packer against the Python one on messages of any field types: same bytes, same stop, same error.

What a consumer hands the packer is not stored bytes, but a wrapper or a
future client may hand it anything: ints past 64 bits, text keys, surrogate
header names, tuples of the wrong length. Both packers must stop at the same
message for the same reason, write the same bytes, and whatever they wrote
must read back through the segment reader's record checks.
"""

from __future__ import annotations

import io
from typing import Any

import msgpack
import pytest
from hypothesis import strategies as st

from libkb.format import packer
from libkb.format.records import as_record
from tests.fuzz.budget import fuzz

if not packer.ACCELERATED:  # pragma: no cover - CI builds the extension
    pytest.skip("the C packer is not built", allow_module_level=True)

anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(1 << 70), 1 << 70),
    st.floats(allow_nan=False),
    st.binary(max_size=8),
    st.text(max_size=6),
    st.sampled_from(["\ud800", bytearray(b"x"), memoryview(b"y"), (1, 2), [b"z"]]),
)
headers = st.one_of(
    st.none(),
    anything,
    st.lists(
        st.one_of(st.tuples(st.text(max_size=4) | anything, anything | st.binary(max_size=4)), anything),
        max_size=3,
    ),
)
ints = st.one_of(
    st.integers(-(1 << 64), 1 << 64), st.sampled_from([0, 1, -1, (1 << 63) - 1, -(1 << 63)]), anything
)


class Odd:
    """A message with Message's methods and fields of any type (the packers take any such object)."""

    def __init__(self, offset: Any, key: Any, value: Any, headers: Any, timestamp: Any) -> None:
        self._fields = (offset, key, value, headers, timestamp)

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return "t"

    def partition(self) -> int:
        return 0

    def offset(self) -> Any:
        return self._fields[0]

    def key(self) -> Any:
        return self._fields[1]

    def value(self) -> Any:
        return self._fields[2]

    def headers(self) -> Any:
        return self._fields[3]

    def timestamp(self) -> Any:
        return self._fields[4]


@st.composite
def messages(draw: st.DrawFn) -> list[Odd]:
    return [
        Odd(
            draw(ints),
            draw(anything | st.binary(max_size=4)),
            draw(anything | st.binary(max_size=4)),
            draw(headers),
            (draw(ints), draw(ints)),
        )
        for _ in range(draw(st.integers(1, 4)))
    ]


def _outcome(pack: Any, msgs: list[Odd]) -> tuple[Any, ...]:
    out = bytearray(3)
    try:
        result = pack(msgs, 0, out, 0, 1 << 20, None, 0, -1)
    except Exception as exc:
        return ("raised", type(exc).__name__)
    return (*result, bytes(out[: result[1]]))


def _same(msgs: list[Odd]) -> None:
    c, py = _outcome(packer._c_pack_messages, msgs), _outcome(packer.py_pack_messages, msgs)
    assert c == py
    if c[0] != "raised":
        for item in msgpack.Unpacker(io.BytesIO(c[-1]), raw=False):
            as_record(item)  # what was packed reads back as a record


test_packers_agree_on_any_message, test_packers_agree_on_any_message_soak = fuzz(
    _same, messages(), examples=300
)
