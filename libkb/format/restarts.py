"""Restart points (format version 8): where a reader may start decoding a segment, and what lies there.

Why: a time-window restore that starts in the middle of a segment would
otherwise read the whole object to find where the window begins (block
heads carry offsets, not timestamps). So the writer records, for every
*restart interval* of a segment (every ``restart_blocks`` blocks, from block
0), where it starts and what it holds, and the partition index entry carries
them (``SegmentEntry.restarts``). A restore picks the first interval that
may hold a wanted record (:func:`first_wanted`) and reads from its start to
the end of the object with one ranged read.

A point is a valid place to start decoding with a fresh decoder: codecs 0-2
decode every block alone; with zstd-stream the writer starts a new frame at
the first compressed block of each interval (:mod:`libkb.format.zstream`).
In JSON a point is one array of six integers, in :class:`RestartPoint`'s
field order (docs/format.rst, "Partition index"). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import astuple, dataclass
from itertools import pairwise

from libkb.errors import FormatError


@dataclass(frozen=True, slots=True)
class RestartPoint:
    """One restart interval of a segment: where it starts, and the offsets and times it holds."""

    #: Byte position in the segment of the interval's first block head.
    position: int
    #: That block's index in the segment, from 0 (an encrypted block's associated data binds it).
    block_index: int
    #: That block's first offset.
    first_offset: int
    #: Records in the segment before it.
    records_before: int
    #: The smallest and largest record timestamp in the interval (as the footer counts them).
    min_timestamp: int
    max_timestamp: int

    def to_json(self) -> list[int]:
        return list(astuple(self))


#: Fields of a point, in the order of its JSON array.
POINT_FIELDS = len(RestartPoint.__slots__)


class RestartLog:
    """The writer's account of a segment's restart intervals, block by block as they are added."""

    __slots__ = ("_points", "restart_blocks")

    def __init__(self, restart_blocks: int) -> None:
        if restart_blocks < 1:
            raise ValueError("restart_blocks must be at least 1")
        self.restart_blocks = restart_blocks
        self._points: list[list[int]] = []

    def add(self, position: int, index: int, first: int, before: int, low: int, high: int) -> None:
        """Block ``index`` (with records), at ``position``, after ``before`` records of the segment."""
        if index % self.restart_blocks == 0:
            self._points.append([position, index, first, before, low, high])
        else:
            point = self._points[-1]
            point[4], point[5] = min(point[4], low), max(point[5], high)

    def points(self) -> tuple[RestartPoint, ...] | None:
        """The segment's points, or None when it has one interval (nothing to skip: index unchanged)."""
        if len(self._points) < 2:
            return None
        return tuple(RestartPoint(*p) for p in self._points)


def first_wanted(
    points: Sequence[RestartPoint], start: int, low: int | None = None, high: int | None = None
) -> int:
    """The first interval that may hold a record at offset ``start`` or after, in ``[low, high]``.

    An interval ends where the next begins, so one whose successor starts at
    or below ``start`` holds only earlier offsets. Timestamps need not be
    ordered: an interval is skipped by its own min and max only. If none
    qualifies (the window falls between intervals), the last: a reader then
    reads it and the footer, and keeps nothing.
    """
    for i, point in enumerate(points):
        if i + 1 < len(points) and points[i + 1].first_offset <= start:
            continue
        if (low is not None and point.max_timestamp < low) or (
            high is not None and point.min_timestamp > high
        ):
            continue
        return i
    return len(points) - 1


def points_from_json(value: object, where: str) -> tuple[RestartPoint, ...]:
    """A ``restarts`` array as points; FormatError naming ``where`` unless each is six integers."""
    if not isinstance(value, list):
        raise FormatError(f"{where}: expected an array, found {type(value).__name__}")
    out = []
    for i, item in enumerate(value):
        if not (isinstance(item, list) and len(item) == POINT_FIELDS and all(type(n) is int for n in item)):
            raise FormatError(f"{where}[{i}]: expected an array of {POINT_FIELDS} integers")
        out.append(RestartPoint(*item))
    return tuple(out)


def point_problem(
    points: Sequence[RestartPoint],
    *,
    first_offset: int,
    last_offset: int,
    record_count: int,
    min_timestamp: int,
    max_timestamp: int,
    body: tuple[int, int],
) -> str | None:
    """What makes ``points`` impossible for a segment with these stats (None: nothing).

    ``body``: where the blocks start and end (the header's size; the segment's size less the footer's).
    """
    if len(points) < 2:
        return "fewer than two restart points (a segment of one interval has none)"
    head = points[0]
    if (head.position, head.block_index, head.records_before, head.first_offset) != (
        body[0],
        0,
        0,
        first_offset,
    ):
        return "the first restart point is not block 0, after the header, at the segment's first offset"
    for before, after in pairwise(points):
        if not (
            before.position < after.position
            and before.block_index < after.block_index
            and before.first_offset < after.first_offset
            and before.records_before < after.records_before
        ):
            return f"restart point at byte {after.position} does not follow the one at byte {before.position}"
    last = points[-1]
    if last.position >= body[1] or last.first_offset > last_offset or last.records_before >= record_count:
        return f"restart point at byte {last.position} lies past the segment's last block"
    if any(p.min_timestamp > p.max_timestamp for p in points) or (
        min(p.min_timestamp for p in points),
        max(p.max_timestamp for p in points),
    ) != (min_timestamp, max_timestamp):
        return "the restart points' timestamps disagree with the segment's"
    return None
