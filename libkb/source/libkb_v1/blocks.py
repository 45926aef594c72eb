"""A segment's block heads, checked before a restore lets them pick the blocks it reads.

A restore reads only the blocks that reach into its offset range, picked by
the first and last offsets their heads state. The heads carry no checksum of
their own: ``body_crc`` covers them, but only ``validate --deep`` reads a
whole body, and a payload checksum covers the payload alone. A flipped byte
in a head would make a restore skip records, or stop reading the segment,
and report success. So, a few integers per block and never per record:

- the heads must tile the segment as its footer and the index state it:
  blocks in offset order inside ``[base_offset, end_offset)``, each with at
  least one record and no more than its offsets span, adding up to the
  footer's count, first and last offset (and the footer must agree with the
  index entry the restore planned with);
- every decoded block must hold what its head states: its count (the
  decoder checks it), its first and last record's offsets;
- the block just outside the range on either side, which the heads say the
  restore need not read, is decoded and checked too.

Of a segment read from a restart point on (its tail, format version 8), the
heads read must tile the rest: the first at the point's first offset, the
counts adding up from the records before it to the footer's count and last
offset, the last block ending at the footer; the footer and the index entry
must agree as for a whole segment.
"""

from __future__ import annotations

from libkb.format.models import SegmentEntry
from libkb.format.segment import BlockInfo, Record, SegmentError, SegmentReader


def checked_blocks(key: str, entry: SegmentEntry, reader: SegmentReader) -> list[BlockInfo]:
    """The segment's blocks, once their heads agree with each other, the footer and ``entry``."""
    footer = reader.footer
    stated = (entry.base_offset, entry.end_offset, entry.record_count, entry.first_offset, entry.last_offset)
    found = (
        reader.header.base_offset,
        footer.end_offset,
        footer.record_count,
        footer.first_offset,
        footer.last_offset,
    )
    if stated != found:
        raise SegmentError(f"{key}: the index says {_describe(*stated)}, the segment {_describe(*found)}")
    blocks = list(reader.blocks())
    point = reader.start
    after, total = entry.base_offset - 1, 0
    if point is not None:
        after, total = point.first_offset - 1, point.records_before
        if not blocks or blocks[0].first_offset != point.first_offset:
            there = f"offset {blocks[0].first_offset}" if blocks else "no block"
            raise SegmentError(
                f"{key}: the index's restart point at byte {point.position} (block {point.block_index}) "
                f"states offset {point.first_offset}, the segment holds {there} there (a corrupt index "
                "or block head)"
            )
    for b in blocks:
        span = b.last_offset - b.first_offset + 1
        if not (after < b.first_offset <= b.last_offset < footer.end_offset and 0 < b.record_count <= span):
            raise SegmentError(
                f"{key}: the block at byte {b.at} states offsets {b.first_offset}-{b.last_offset} "
                f"({b.record_count} records), which cannot follow offset {after} in "
                f"[{entry.base_offset}, {footer.end_offset}) (a corrupt block head)"
            )
        after, total = b.last_offset, total + b.record_count
    first = blocks[0].first_offset if blocks else -1
    if point is not None:
        first = footer.first_offset  # before the point: the index says, and the point starts after it
    if (total, first, after if blocks else -1) != (
        footer.record_count,
        footer.first_offset,
        footer.last_offset,
    ):
        raise SegmentError(
            f"{key}: its blocks hold {total} records at offsets {first}-{after}, the footer says "
            f"{footer.record_count} at {footer.first_offset}-{footer.last_offset} (a corrupt block head)"
        )
    return blocks


def checked_records(key: str, info: BlockInfo, records: list[Record]) -> list[Record]:
    """``records``, decoded from the block ``info``, once they are what its head states."""
    if (
        len(records) != info.record_count
        or records[0][0] != info.first_offset
        or records[-1][0] != info.last_offset
    ):
        held = f"{records[0][0]}-{records[-1][0]}" if records else "nothing"
        raise SegmentError(
            f"{key}: the block at byte {info.at} states offsets {info.first_offset}-{info.last_offset} "
            f"({info.record_count} records) but holds {held} ({len(records)}) (a corrupt block head)"
        )
    return records


def _describe(base: int, end: int, count: int, first: int, last: int) -> str:
    return f"{count} records at offsets {first}-{last} in [{base}, {end})"
