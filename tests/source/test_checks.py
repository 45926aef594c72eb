"""The format-independent checks a segment source shares: record scans, disagreements, coverage."""

from __future__ import annotations

from libkb.format.models import MissingRange, PartitionIndex, SegmentEntry
from libkb.format.segment import Record
from libkb.source.checks import STAT_NAMES, coverage_findings, disagreements, scan_records


def rec(offset: int, timestamp: int) -> Record:
    return (offset, timestamp, 1, None, b"v", None)


def test_a_scan_gives_the_stats_of_the_records() -> None:
    scan = scan_records("k", [[rec(5, 30), rec(6, 10)], [rec(9, 20)]], 5, 12)
    assert scan.problems == []
    assert scan.stats() == (3, 5, 9, 10, 30)


def test_a_scan_of_no_records_states_minus_one() -> None:
    assert scan_records("k", [[], []], 5, 12).stats() == (0, -1, -1, -1, -1)


def test_a_scan_flags_order_and_range_record_by_record() -> None:
    scan = scan_records("k", [[rec(4, 0), rec(8, 0), rec(7, 0)], [rec(12, 0)]], 5, 12)
    assert scan.problems == [
        "k: offset 4 follows 4 (offsets must increase)",  # below the base: nothing may come before it
        "k: offset 4 lies outside the segment's range [5, 12)",
        "k: offset 7 follows 8 (offsets must increase)",
        "k: offset 12 lies outside the segment's range [5, 12)",
    ]
    assert scan.count == 4


def test_disagreements_word_each_differing_value() -> None:
    said, got = (3, 5, 9, 10, 30), (3, 5, 8, 10, 31)
    assert disagreements("k", STAT_NAMES, ("footer says", said), ("the records give", got)) == [
        "k: footer says last offset 9, the records give 8",
        "k: footer says max timestamp 30, the records give 31",
    ]
    assert disagreements("k", STAT_NAMES, ("index says", said), ("the footer says", said)) == []


def test_coverage_findings_holes_and_missing_ranges() -> None:
    def seg(base: int, end: int) -> SegmentEntry:
        return SegmentEntry(f"s{base}", base, end, 1, base, base, 0, 0, 10, 10, "zstd")

    index = PartitionIndex("t", 0, [seg(0, 10), seg(15, 20)], [MissingRange(20, 30, "retention")])
    problems, warnings = coverage_findings("idx", index)
    assert problems == ["idx: t/0: hole [10, 15) between s0 and s15"]
    assert warnings == ["idx: offsets [20, 30) of t/0 are not in the backup (retention)"]
