"""Restart points (format version 8): recorded by the writer, carried by index entries, picked by readers.

Bytes only: the engines' use of them (ranged reads) is tested in ``tests/restore/test_ranged_reads.py``.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from libkb.errors import FormatError
from libkb.format.models import PartitionIndex, SegmentEntry, segment_key
from libkb.format.restarts import RestartPoint, first_wanted
from libkb.format.segment import (
    CODEC_LZ4,
    CODEC_NAMES,
    CODEC_ZSTD_STREAM,
    FOOTER_SIZE,
    RESTART_POINTS_VERSION,
    ZSTD_STREAM_VERSION,
    Record,
    SegmentReader,
    stated_header,
)
from tests.format.make_compat_fixture import blocks_segment

KEY = segment_key("b", "clicks", 2, 100)


def block(first: int, count: int, stamps: list[int]) -> list[Record]:
    return [
        (first + i, stamps[i], 1, b"k%d" % (first + i), b"payload %d " % (first + i) * 20, None)
        for i in range(count)
    ]


#: Six blocks of three records from offset 100 (offsets 103 and 113 hold none), timestamps out of order.
BLOCKS = [
    block(100, 3, [50, 10, 30]),
    block(104, 3, [60, 20, 40]),
    block(107, 3, [5, 90, 70]),
    block(110, 3, [80, 85, 81]),
    block(114, 3, [200, 100, 150]),
    block(117, 3, [120, 110, 130]),
]


def written(
    codec: int, restart_blocks: int, blocks: list[list[Record]] = BLOCKS
) -> tuple[bytes, SegmentEntry]:
    """A segment of ``blocks`` as the store pipeline writes one, and its index entry."""
    data, writer, footer = blocks_segment(("clicks", 2, 100, 120), blocks, codec, 0, restart_blocks)
    return data, SegmentEntry.from_footer(
        KEY, 100, footer, len(data), CODEC_NAMES[codec], None, writer.restarts
    )


@pytest.mark.parametrize("codec", [CODEC_ZSTD_STREAM, CODEC_LZ4])
def test_the_writer_records_each_interval_where_it_starts_and_what_it_holds(codec: int) -> None:
    data, entry = written(codec, 2)
    heads = [b.position for b in SegmentReader(data).blocks()]
    assert entry.restarts == (
        RestartPoint(heads[0], 0, 100, 0, 10, 60),
        RestartPoint(heads[2], 2, 107, 6, 5, 90),
        RestartPoint(heads[4], 4, 114, 12, 100, 200),
    )
    assert heads[0] == stated_header("clicks", 2, 100, codec, 0).size
    _, alone = written(codec, 6)
    assert alone.restarts is None  # one interval: the entry lists none, its index stays at a lower version


def test_the_first_interval_that_may_hold_a_wanted_record() -> None:
    _, entry = written(CODEC_ZSTD_STREAM, 2)
    points = entry.restarts
    assert points is not None
    assert first_wanted(points, 100) == 0
    assert first_wanted(points, 106) == 0  # offset 106 is in interval 0
    assert first_wanted(points, 107) == 1
    assert first_wanted(points, 100, low=61) == 1  # interval 0's newest is 60
    assert first_wanted(points, 100, low=91) == 2
    # Timestamps are not ordered: interval 1's oldest (5) is older than interval 0's, and counts.
    assert first_wanted(points, 100, low=0, high=5) == 1
    assert first_wanted(points, 100, low=95, high=99) == 2  # in no interval: the last, read for nothing
    assert first_wanted(points, 115, low=0) == 2


@pytest.mark.parametrize("codec", [CODEC_ZSTD_STREAM, CODEC_LZ4])
def test_a_tail_read_from_a_restart_point_decodes_alone_and_keeps_its_place(codec: int) -> None:
    data, entry = written(codec, 2)
    assert entry.restarts is not None
    point = entry.restarts[1]
    header = stated_header("clicks", 2, 100, codec, 0)
    reader = SegmentReader(data[point.position :], name=KEY, header=header, start=point)
    blocks = list(reader.blocks())
    whole = list(SegmentReader(data).blocks())[2:]
    assert [(b.at, b.context, b.first_offset) for b in blocks] == [
        (b.at, b.context, b.first_offset) for b in whole
    ]
    assert list(reader.records()) == [r for b in BLOCKS[2:] for r in b]
    with pytest.raises(ValueError, match="only a whole segment"):
        reader.verify()
    with pytest.raises(ValueError, match="header its index entry states"):
        SegmentReader(data[point.position :], start=point)


def test_an_index_entry_carries_its_points_as_arrays_and_needs_version_8() -> None:
    _, entry = written(CODEC_ZSTD_STREAM, 2)
    index = PartitionIndex("clicks", 2, [entry])
    body = json.loads(index.to_json())
    assert body["format_version"] == RESTART_POINTS_VERSION
    assert body["segments"][0]["restarts"][1] == [entry.restarts[1].position, 2, 107, 6, 5, 90]  # type: ignore[index]
    assert PartitionIndex.from_json(index.to_json()).segments == [entry]
    plain = PartitionIndex("clicks", 2, [replace(entry, restarts=None)])
    assert json.loads(plain.to_json())["format_version"] == ZSTD_STREAM_VERSION
    assert "restarts" not in json.loads(plain.to_json())["segments"][0]
    body["format_version"] = ZSTD_STREAM_VERSION
    with pytest.raises(
        FormatError, match=f"{KEY}: restart points need format version 8, the index says version 7"
    ):
        PartitionIndex.from_json(json.dumps(body).encode(), name="index.json")


def _broken(change: Any) -> bytes:
    _, entry = written(CODEC_ZSTD_STREAM, 2)
    body = json.loads(PartitionIndex("clicks", 2, [entry]).to_json())
    change(body["segments"][0]["restarts"], body["segments"][0])
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p, e: e.update(restarts={"0": 1}), r"segments\[0\]\.restarts: expected an array, found dict"),
        (lambda p, e: p[1].pop(), r"segments\[0\]\.restarts\[1\]: expected an array of 6 integers"),
        (lambda p, e: p[1].__setitem__(3, True), r"restarts\[1\]: expected an array of 6 integers"),
        (lambda p, e: p[0].__setitem__(0, 10), "the first restart point is not block 0, after the header"),
        (lambda p, e: p.__setitem__(0, [*p[0][:2], 101, *p[0][3:]]), "first restart point is not block 0"),
        (lambda p, e: p.__setitem__(slice(1, 3), [p[2], p[1]]), "does not follow the one at byte"),
        (lambda p, e: p[2].__setitem__(0, e["size"] - FOOTER_SIZE), "lies past the segment's last block"),
        (lambda p, e: p[2].__setitem__(5, 201), "timestamps disagree with the segment's"),
        (lambda p, e: p.__setitem__(slice(1, 3), []), "fewer than two restart points"),
    ],
)
def test_restart_points_that_cannot_be_are_refused_naming_the_index(change: Any, message: str) -> None:
    with pytest.raises(FormatError, match=rf"^index\.json: .*{message}"):
        PartitionIndex.from_json(_broken(change), name="index.json")
