"""The Rust tool's segment codec, read: the C decoder against the Python reference, batches, errors."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from libkb.format import rust_segment
from libkb.format.rust_segment import (
    ACCELERATED,
    SegmentRecords,
    open_segment,
    py_decode_records,
)
from libkb.format.segment import Record, SegmentError
from tests.source.rust_fixtures import encode_record, encode_segment, records, with_tool_headers

DECODERS = [py_decode_records] + ([rust_segment.decode_records] if ACCELERATED else [])


def test_the_c_decoder_is_built() -> None:
    """CI builds the extension (setup.py marks it optional for machines without a compiler)."""
    assert ACCELERATED, "libkb/format/_rustrec.c was not built; is a C compiler installed?"


blobs = st.none() | st.binary(max_size=40)
headers = st.none() | st.lists(
    st.tuples(st.text(max_size=8), st.none() | st.binary(max_size=12)), min_size=1, max_size=4
)


@st.composite
def record_lists(draw: st.DrawFn) -> list[Record]:
    count = draw(st.integers(1, 12))
    offsets = sorted(draw(st.sets(st.integers(0, 1 << 40), min_size=count, max_size=count)))
    out: list[Record] = []
    for offset in offsets:
        rec: Record = (offset, draw(st.integers(-1, 1 << 45)), 1, draw(blobs), draw(blobs), draw(headers))
        out.append(with_tool_headers(rec) if draw(st.booleans()) else rec)
    return out


def decode_all(decoder: object, area: bytes, count: int, batch: int, strip: bool) -> tuple[list[Record], int]:
    pos, tools = 0, 0
    got: list[Record] = []
    while pos < len(area):
        recs, pos, n = decoder(area, pos, len(area), batch, count - len(got), -1, strip)  # type: ignore[operator]
        assert recs, "no progress"
        got += recs
        tools += n
    return got, tools


@settings(max_examples=150, deadline=None)
@given(record_lists(), st.integers(1, 300), st.booleans())
def test_decoders_agree_and_give_back_the_records(recs: list[Record], batch: int, strip: bool) -> None:
    area = b"".join(map(encode_record, recs))
    expected = [(o, t, 1, k, v, h or None) for o, t, _, k, v, h in recs]
    results = [decode_all(d, area, len(recs), batch, False) for d in DECODERS]
    assert all(r == (expected, results[0][1]) for r in results)
    stripped = [decode_all(d, area, len(recs), batch, True) for d in DECODERS]
    assert stripped[0] == stripped[-1]


@settings(max_examples=300, deadline=None)
@given(record_lists(), st.data())
def test_decoders_agree_on_damaged_bytes(recs: list[Record], data: st.DataObject) -> None:
    """A byte changed anywhere: both decoders give the same records, or both raise the same error."""
    area = bytearray(b"".join(map(encode_record, recs)))
    at = data.draw(st.integers(0, len(area) - 1))
    area[at] = data.draw(st.integers(0, 255))
    outcomes = []
    for decoder in DECODERS:
        try:
            outcomes.append(decoder(bytes(area), 0, len(area), 1 << 20, len(recs), -1, True))
        except ValueError as exc:
            outcomes.append(str(exc))
    assert outcomes[0] == outcomes[-1]


@pytest.mark.parametrize("decoder", DECODERS)
def test_malformed_records_raise_naming_the_byte(decoder: object) -> None:
    good = encode_record((5, 1, 1, b"k", b"v", None))
    cases = {
        struct.pack("<I", 10) + bytes(10): "the record at byte 0 of the record area states a length of 10",
        good
        + good: f"the record at byte {len(good)} of the record area has offset 5, which does not follow 5",
        good[:20] + struct.pack("<i", 99) + good[24:]: "its key or value runs past its length",
        struct.pack("<I", len(good) - 3) + good[4:] + b"\0": "bytes past its headers",
    }
    for area, message in cases.items():
        with pytest.raises(ValueError, match=message):
            decoder(area, 0, len(area), 1 << 20, 10, -1, True, 0)  # type: ignore[operator]


@pytest.mark.parametrize("codec", ["zstd", "lz4", "none"])
def test_a_segment_decodes_in_batches_with_records_split_across_pieces(codec: str) -> None:
    big = [(o, o, 1, b"k", bytes([o % 251]) * 70_000, None) for o in range(3)]  # each bigger than a batch
    recs = records(0, 200) + [(o + 200, *r[1:]) for o, r in enumerate(big)]
    data = encode_segment(recs, codec)
    header = open_segment(data, "seg")
    reader = SegmentRecords(data, header, "seg", strip=True, batch_bytes=4096)
    batches = list(reader)
    assert [r for b in batches for r in b] == recs
    assert len(batches) > 5 and reader.raw_bytes == sum(len(encode_record(r)) for r in recs)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: d[:20], "truncated: 20 bytes, not even a header"),
        (lambda d: b"XBAK" + d[4:], "not a kafka-backup \\(Rust\\) segment"),
        (lambda d: d[:4] + b"\x02" + d[5:], "segment format version 2"),
        (lambda d: d[:5] + b"\x07" + d[6:], "unknown codec 7"),
        (lambda d: d[:-1], "footer magic is missing"),
        (lambda d: d[:-20] + bytes([d[-20] ^ 1]) + d[-19:], "checksum mismatch"),
    ],
)
def test_a_damaged_segment_is_refused_naming_it(damage: object, message: str) -> None:
    data = encode_segment(records(0, 20), "zstd")
    with pytest.raises(SegmentError, match=f"^seg-name: .*{message}"):
        open_segment(damage(data), "seg-name")  # type: ignore[operator]


def test_a_header_that_disagrees_with_the_records_is_refused() -> None:
    recs = records(10, 5)
    data = bytearray(encode_segment(recs, "none"))
    struct.pack_into("<Q", data, 8, 6)  # 6 records stated, 5 stored
    import zlib

    struct.pack_into("<I", data, len(data) - 8, zlib.crc32(bytes(data[:-8])))
    with pytest.raises(
        SegmentError, match=r"^seg: the header states 6 records at offsets 10-14, which cannot"
    ):
        open_segment(bytes(data), "seg")
    struct.pack_into("<q", data, 24, 15)  # the offsets could hold 6: the records say otherwise
    struct.pack_into("<I", data, len(data) - 8, zlib.crc32(bytes(data[:-8])))
    header = open_segment(bytes(data), "seg")
    with pytest.raises(SegmentError, match="holds 5 records up to offset 14, its header says 6"):
        list(SegmentRecords(bytes(data), header, "seg", strip=True))
