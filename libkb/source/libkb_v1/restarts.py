"""The restart points an index entry lists (format version 8): where a read starts, and their deep check.

A restore that keeps only some of a segment (an offset range or a time
window starting inside it) reads it from the start of the first restart
interval that may hold a kept record to its end, with one ranged read
(:func:`start_point`); an entry without points is read whole. The points
come from the index, like the segment's own time range that lets a restore
skip a whole segment; ``validate --deep`` checks every point against the
segment's blocks and records (:func:`point_problems`), and a restore checks
the blocks it reads against the point it started at (:mod:`.blocks`).
"""

from __future__ import annotations

from libkb.format.models import SegmentEntry
from libkb.format.restarts import RestartPoint, first_wanted
from libkb.format.segment import BlockDecoder, BlockInfo, block_kind
from libkb.format.transforms import TransformError
from libkb.format.zstream import KIND_ALONE, KIND_RAW, KIND_RESTART
from libkb.source.base import Wanted


def start_point(entry: SegmentEntry, wanted: Wanted | None) -> RestartPoint | None:
    """Where to start reading ``entry`` for ``wanted``; None: from the start (read it whole)."""
    if wanted is None or not entry.restarts:
        return None
    i = first_wanted(entry.restarts, wanted.start, wanted.low, wanted.high)
    return entry.restarts[i] if i else None


def point_problems(
    key: str,
    points: tuple[RestartPoint, ...],
    blocks: list[BlockInfo],
    stamps: list[tuple[int, int]],
    data: bytes,
    decoder: BlockDecoder | None,
) -> list[str]:
    """How the index's restart points differ from the whole segment ``data``'s blocks.

    ``stamps``: each block's smallest and largest record timestamp; ``decoder``: a zstd-stream
    segment's (None for other codecs, whose blocks all decode alone).
    """
    problems: list[str] = []
    before = [0]
    for b in blocks:
        before.append(before[-1] + b.record_count)
    ends = [p.block_index for p in points[1:]] + [len(blocks)]
    for point, end in zip(points, ends, strict=True):
        index = point.block_index
        if index >= len(blocks) or end > len(blocks):
            return [f"{key}: the index lists a restart point at block {index}, past its last block"]
        block, times = blocks[index], stamps[index:end]
        found = (
            block.position,
            block.first_offset,
            before[index],
            min(t[0] for t in times),
            max(t[1] for t in times),
        )
        stated = (
            point.position,
            point.first_offset,
            point.records_before,
            point.min_timestamp,
            point.max_timestamp,
        )
        if found != stated:
            problems.append(
                f"{key}: the index's restart point at block {index} states (byte, first offset, records "
                f"before, min and max timestamp) {stated}, the segment has {found}"
            )
        elif decoder is not None and not _starts_frames(data, blocks[index:], decoder):
            problems.append(
                f"{key}: the index lists a restart point at block {index}, where zstd-stream decoding "
                "cannot start (its first compressed block continues an earlier frame)"
            )
    return problems


def _starts_frames(data: bytes, blocks: list[BlockInfo], decoder: BlockDecoder) -> bool:
    """Whether the first compressed block of ``blocks`` starts a frame (raw and alone ones need none)."""
    for info in blocks:
        try:
            kind = block_kind(data, info, decoder)
        except TransformError:
            return False
        if kind not in (KIND_RAW, KIND_ALONE):
            return kind == KIND_RESTART
    return True
