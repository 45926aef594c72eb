"""A Rust-tool segment, read: its records in batches for a restore, and the deep check of every record.

Before any record is handed out, the whole object's CRC must hold and its
header must state what the manifest entry the restore planned with states
(count, first and last offset, codec); the records must then be exactly
those (:class:`~libkb.format.rust_segment.SegmentRecords`). Errors are
:class:`~libkb.format.segment.SegmentError` naming the object and the
offsets the manifest gives it, as libkb's own segments' do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from libkb.format.models import SegmentEntry
from libkb.format.rust_segment import RustSegmentHeader, SegmentRecords, open_segment
from libkb.format.segment import Record, SegmentError
from libkb.source.base import SegmentCheck, StoredSegment
from libkb.source.checks import STAT_NAMES, disagreements, scan_records
from libkb.source.rust_v1.manifest import RustSegmentMeta

#: Called with (segment key, records that carried the tool's headers) once a segment is read.
ToolCount = Callable[[str, int], None]


def segment_name(entry: SegmentEntry) -> str:
    """How errors name a segment: its key and the offsets the manifest gives it."""
    return f"{entry.key} (offsets {entry.first_offset}-{entry.last_offset})"


class RustSegment(StoredSegment):
    """The bytes of the segment the manifest lists as ``entry``; nothing is decoded until asked."""

    def __init__(self, entry: SegmentEntry, data: bytes, *, strip: bool, counted: ToolCount) -> None:
        self.entry = entry
        self.key = entry.key
        self.data = data
        self.read_bytes = len(data)
        self.strip = strip
        self._counted = counted

    def batches(self, start: int, end: int) -> Iterator[list[Record]]:
        """Batches of about 1 MiB of record bytes that reach into ``[start, end)``, in offset order."""
        records = SegmentRecords(self.data, self.checked_header(), segment_name(self.entry), strip=self.strip)
        try:
            for batch in records:
                if batch[-1][0] < start:
                    continue
                if batch[0][0] >= end:
                    return
                yield batch
        finally:
            self._counted(self.key, records.tool_records)

    def checked_header(self) -> RustSegmentHeader:
        """The segment's header, once the CRC holds and the header agrees with the manifest entry."""
        name, entry = segment_name(self.entry), self.entry
        header = open_segment(self.data, name)
        problems = _header_problems(name, entry, header)
        if problems:
            raise SegmentError("; ".join(problems))
        return header

    def verify(self, meta: RustSegmentMeta) -> SegmentCheck:
        """Every byte and record against the header and the manifest (raises on a corrupt segment)."""
        name, entry = segment_name(self.entry), self.entry
        header = open_segment(self.data, name)
        problems = _header_problems(name, entry, header)
        records = SegmentRecords(self.data, header, name, strip=False)
        firsts: list[Record] = []
        last: list[Record] = []

        def watched() -> Iterator[list[Record]]:
            for batch in records:
                if not firsts:
                    firsts.append(batch[0])
                last[:] = batch[-1:]
                yield batch

        scan = scan_records(name, watched(), entry.base_offset, entry.end_offset)
        problems += scan.problems
        stated = (meta.record_count, meta.start_offset, meta.end_offset)
        problems += disagreements(
            name, STAT_NAMES[:3], ("manifest says", stated), ("the records give", scan.stats()[:3])
        )
        found = (firsts[0][1] if firsts else -1, last[0][1] if last else -1, records.raw_bytes)
        problems += disagreements(
            name,
            ("first record's timestamp", "last record's timestamp", "uncompressed size"),
            ("manifest says", (meta.start_timestamp, meta.end_timestamp, meta.uncompressed_size)),
            ("the segment holds", found),
        )
        return SegmentCheck(problems, scan.count)


def _header_problems(name: str, entry: SegmentEntry, header: RustSegmentHeader) -> list[str]:
    stated = (entry.record_count, entry.first_offset, entry.last_offset)
    found = (header.record_count, header.start_offset, header.end_offset)
    problems = disagreements(name, STAT_NAMES[:3], ("manifest says", stated), ("its header", found))
    if header.codec != entry.codec:
        problems.append(f"{name}: manifest says compression {entry.codec}, its header {header.codec}")
    return problems
