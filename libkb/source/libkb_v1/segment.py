"""A libkb v1 segment, read: its records block by block, and the deep check of every byte and record.

Restore takes the records a block at a time (``block_records``: one msgpack
call per block), after checking the block heads that pick them and each
decoded block against its head (:mod:`.blocks`). The deep check decodes the
same way, then compares three accounts of the segment: what its records
give, what its footer states and what the partition index states.
"""

from __future__ import annotations

from collections.abc import Iterator

from libkb.format.models import SegmentEntry, parse_segment_key
from libkb.format.segment import (
    CODEC_NAMES,
    Record,
    SegmentFooter,
    SegmentHeader,
    SegmentReader,
    block_records,
    pass_block,
)
from libkb.format.transforms import TransformChain
from libkb.source.base import SegmentCheck, StoredSegment
from libkb.source.checks import STAT_NAMES, disagreements, scan_records
from libkb.source.libkb_v1.blocks import checked_blocks, checked_records

_NAMES = (*STAT_NAMES, "raw bytes")


class V1Segment(StoredSegment):
    """The bytes of one segment listed as ``entry``; nothing is decoded until asked."""

    def __init__(self, entry: SegmentEntry, data: bytes, chain: TransformChain | None = None) -> None:
        self.entry = entry
        self.key = entry.key
        self.data = data
        #: An encrypted segment's decrypting chain (its data key unwrapped, its seal checked).
        self.chain = chain

    def batches(self, start: int, end: int) -> Iterator[list[Record]]:
        """The blocks that reach into the range, their heads and records checked (:mod:`.blocks`)."""
        reader = SegmentReader(self.data, name=self.key, chain=self.chain)
        blocks = checked_blocks(self.key, self.entry, reader)
        codec, decoder = reader.header.codec, reader.decoder()
        first = next((i for i, b in enumerate(blocks) if b.last_offset >= start), len(blocks))
        stop = next((i for i in range(first, len(blocks)) if blocks[i].first_offset >= end), len(blocks))
        # One block more on either side: that its head rightly leaves it out is checked too.
        checked_from = max(first - 1, 0)
        # zstd-stream: the blocks since the restart point go through the decoder first.
        for i in range(reader.decode_from(blocks, checked_from, decoder), checked_from):
            pass_block(self.data, blocks[i], codec, name=self.key, decoder=decoder)
        for i in range(checked_from, min(stop + 1, len(blocks))):
            info = blocks[i]
            decoded = block_records(self.data, info, codec, name=self.key, decoder=decoder)
            records = checked_records(self.key, info, decoded)
            if first <= i < stop:
                yield records

    def verify(self) -> SegmentCheck:
        """Every checksum and record; header, footer and index must agree (raises on a corrupt segment)."""
        reader = SegmentReader(self.data, name=self.key, chain=self.chain)
        reader.verify()
        header, footer, entry = reader.header, reader.footer, self.entry
        problems = self._header_problems(header)
        decoder = reader.decoder()
        blocks = (
            block_records(self.data, info, header.codec, name=self.key, decoder=decoder)
            for info in reader.blocks()
        )
        scan = scan_records(self.key, blocks, entry.base_offset, footer.end_offset)
        problems += scan.problems
        stated = _stats(footer)
        actual = (*scan.stats(), sum(b.raw_len for b in reader.blocks()))
        problems += disagreements(self.key, _NAMES, ("footer says", stated), ("the records give", actual))
        problems += disagreements(
            self.key, _NAMES, ("index says", _stats(entry)), ("the footer says", stated)
        )
        problems += self._range_and_codec(header, footer)
        return SegmentCheck(problems, scan.count)

    def _header_problems(self, header: SegmentHeader) -> list[str]:
        parsed = parse_segment_key(self.key)
        if parsed is None:
            raise ValueError(f"{self.key}: not a segment key")
        stated = (header.topic, header.partition, header.base_offset)
        if stated == (parsed[1], parsed[2], self.entry.base_offset):
            return []
        return [f"{self.key}: header says {header.topic}/{header.partition} from offset {header.base_offset}"]

    def _range_and_codec(self, header: SegmentHeader, footer: SegmentFooter) -> list[str]:
        entry, problems = self.entry, []
        if entry.end_offset != footer.end_offset:
            problems.append(
                f"{self.key}: index says end offset {entry.end_offset}, the footer {footer.end_offset}"
            )
        if CODEC_NAMES[header.codec] != entry.codec:
            problems.append(
                f"{self.key}: index says codec {entry.codec}, the header {CODEC_NAMES[header.codec]}"
            )
        return problems


def _stats(of: SegmentFooter | SegmentEntry) -> tuple[int, int, int, int, int, int]:
    return (
        of.record_count,
        of.first_offset,
        of.last_offset,
        of.min_timestamp,
        of.max_timestamp,
        of.raw_bytes,
    )
