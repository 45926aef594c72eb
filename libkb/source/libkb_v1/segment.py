"""A libkb v1 segment, read: its records block by block, and the deep check of every byte and record.

Restore takes the records a block at a time (``block_records``: one msgpack
call per block), after checking the block heads that pick them and each
decoded block against its head (:mod:`.blocks`); of a segment read from a
restart point on (format version 8, :mod:`.restarts`) it has the tail
alone. The deep check reads whole segments, decodes the same way, then
compares three accounts of the segment: what its records give, what its
footer states and what the partition index states (its restart points too).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from operator import itemgetter

from libkb.format.models import SegmentEntry, parse_segment_key
from libkb.format.restarts import RestartPoint
from libkb.format.segment import (
    CODEC_NAMES,
    CODEC_ZSTD_STREAM,
    BlockInfo,
    DecodedBlock,
    Record,
    SegmentFooter,
    SegmentHeader,
    SegmentReader,
    block_records,
    decoded_block,
    pass_block,
)
from libkb.format.transforms import TransformChain
from libkb.source.base import SegmentCheck, StoredSegment
from libkb.source.checks import STAT_NAMES, disagreements, scan_records
from libkb.source.libkb_v1.blocks import checked_blocks, checked_records
from libkb.source.libkb_v1.restarts import point_problems

_NAMES = (*STAT_NAMES, "raw bytes")
_TIMESTAMP = itemgetter(1)


class V1Segment(StoredSegment):
    """The bytes of one segment listed as ``entry``; nothing is decoded until asked.

    ``data`` is the whole segment, or with ``start`` its tail from that restart point on, read
    with ``header``: the header its key and ``entry`` state (a tail does not hold it).
    """

    def __init__(
        self,
        entry: SegmentEntry,
        data: bytes,
        chain: TransformChain | None = None,
        *,
        header: SegmentHeader | None = None,
        start: RestartPoint | None = None,
    ) -> None:
        self.entry = entry
        self.key = entry.key
        self.data = data
        self.read_bytes = len(data)
        #: An encrypted segment's decrypting chain (its data key unwrapped, its seal checked).
        self.chain = chain
        self.header = header
        self.start = start

    def _reader(self) -> SegmentReader:
        return SegmentReader(self.data, name=self.key, chain=self.chain, header=self.header, start=self.start)

    def batches(self, start: int, end: int) -> Iterator[list[Record]]:
        """The blocks read that reach into the range, their heads and records checked (:mod:`.blocks`)."""
        for block in self._in_range(start, end):
            yield block.records()

    def decoded(self, start: int, end: int) -> Iterator[DecodedBlock]:
        """As :meth:`batches`, each block decompressed only: its records are made (and checked) when
        asked, unless a C producer takes the block as it is (and checks it the same way)."""
        return self._in_range(start, end)

    def _in_range(self, start: int, end: int) -> Iterator[DecodedBlock]:
        reader = self._reader()
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
            block = decoded_block(self.data, info, codec, name=self.key, decoder=decoder, blocks=blocks)
            block.check = partial(checked_records, self.key, info)
            if first <= i < stop:
                yield block
            else:
                block.records()

    def verify(self) -> SegmentCheck:
        """Every checksum and record; header, footer and index must agree (raises on a corrupt segment).

        A whole segment only (what :meth:`LibkbV1Source.load` reads without ``wanted``).
        """
        reader = self._reader()
        reader.verify()
        header, footer, entry = reader.header, reader.footer, self.entry
        problems = self._header_problems(header)
        infos = list(reader.blocks())
        stamps: list[tuple[int, int]] = []
        scan = scan_records(
            self.key, self._decoded(reader, infos, stamps), entry.base_offset, footer.end_offset
        )
        problems += scan.problems
        stated = _stats(footer)
        actual = (*scan.stats(), sum(b.raw_len for b in infos))
        problems += disagreements(self.key, _NAMES, ("footer says", stated), ("the records give", actual))
        problems += disagreements(
            self.key, _NAMES, ("index says", _stats(entry)), ("the footer says", stated)
        )
        problems += self._range_and_codec(header, footer)
        if entry.restarts is not None:
            stream = reader.decoder() if header.codec == CODEC_ZSTD_STREAM else None
            problems += point_problems(self.key, entry.restarts, infos, stamps, self.data, stream)
        return SegmentCheck(problems, scan.count)

    def _decoded(
        self, reader: SegmentReader, infos: list[BlockInfo], stamps: list[tuple[int, int]]
    ) -> Iterator[list[Record]]:
        """Each block's records in turn; each block's smallest and largest timestamp go to ``stamps``."""
        decoder, codec = reader.decoder(), reader.header.codec
        for info in infos:
            records = block_records(self.data, info, codec, name=self.key, decoder=decoder, blocks=infos)
            times = list(map(_TIMESTAMP, records))
            stamps.append((min(times, default=-1), max(times, default=-1)))
            yield records

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
