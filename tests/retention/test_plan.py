"""The retention planner: every selector, their combination, and the keep rules' promises.

Partitions are written out by hand: segment ``(base, end, newest timestamp,
size)``, one record per offset unless said otherwise.
"""

from __future__ import annotations

import pytest

from libkb.config.fields import parse_duration
from libkb.config.models import RetentionOptions
from libkb.errors import ConfigError
from libkb.format.models import MissingRange, PartitionIndex, PrunedRange, SegmentEntry, segment_key
from libkb.retention import RetentionPolicy, format_duration, plan_retention

DAY = 86_400_000


def seg(
    p: int, base: int, end: int, newest: int, size: int = 100, records: int | None = None
) -> SegmentEntry:
    count = end - base if records is None else records
    return SegmentEntry(
        segment_key("b", "t", p, base), base, end, count, base if count else -1, end - 1 if count else -1,
        newest - 10 if count else -1, newest if count else -1, size, size * 2, "zstd",
    )  # fmt: skip


def index(p: int, *segments: SegmentEntry) -> PartitionIndex:
    return PartitionIndex("t", p, list(segments))


def cuts(indexes: dict[tuple[str, int], PartitionIndex], policy: RetentionPolicy) -> dict[int, int]:
    """Partition -> how many of its oldest segments the plan cuts."""
    return {c.partition: len(c.segments) for c in plan_retention(indexes, policy).cuts}


P0 = index(0, seg(0, 0, 10, 1000), seg(0, 10, 20, 2000), seg(0, 20, 30, 3000), seg(0, 30, 40, 4000))
P1 = index(1, seg(1, 0, 5, 1500), seg(1, 5, 9, 2500), seg(1, 9, 12, 3500))
BOTH = {("t", 0): P0, ("t", 1): P1}


def test_older_than_cuts_the_segments_whose_records_are_all_older() -> None:
    assert cuts(BOTH, RetentionPolicy(cutoff_ms=2500)) == {0: 2, 1: 1}  # 2500 itself is not older
    assert cuts(BOTH, RetentionPolicy(cutoff_ms=2501)) == {0: 2, 1: 2}
    assert cuts(BOTH, RetentionPolicy(cutoff_ms=999)) == {}
    plan = plan_retention(BOTH, RetentionPolicy(cutoff_ms=10**9))
    assert [len(c.segments) for c in plan.cuts] == [4, 3]  # all: the resume position is the index's end
    assert plan.stored_bytes == 700 and plan.bytes == 700


def test_a_cut_is_always_the_oldest_prefix_even_with_timestamps_out_of_order() -> None:
    # The second segment's records are older than the first's: it cannot go before the first does.
    p = index(0, seg(0, 0, 10, 5000), seg(0, 10, 20, 1000), seg(0, 20, 30, 6000))
    assert cuts({("t", 0): p}, RetentionPolicy(cutoff_ms=4000)) == {}
    assert cuts({("t", 0): p}, RetentionPolicy(cutoff_ms=5500)) == {0: 2}


def test_records_without_timestamps_stop_an_age_cut_but_empty_segments_do_not() -> None:
    unknown = index(0, seg(0, 0, 10, 1000), seg(0, 10, 20, -1), seg(0, 20, 30, 2000))
    assert cuts({("t", 0): unknown}, RetentionPolicy(cutoff_ms=9000)) == {0: 1}
    empty = index(0, seg(0, 0, 10, 1000), seg(0, 10, 12, 0, records=0), seg(0, 12, 30, 2000))
    assert cuts({("t", 0): empty}, RetentionPolicy(cutoff_ms=1500)) == {0: 2}


def test_max_total_bytes_cuts_the_oldest_segments_across_partitions_until_the_rest_fits() -> None:
    # 700 bytes stored; at most 350 may stay: 4 segments go, oldest first: 1000, 1500, 2000, 2500.
    plan = plan_retention(BOTH, RetentionPolicy(max_total_bytes=350))
    assert {c.partition: len(c.segments) for c in plan.cuts} == {0: 2, 1: 2}
    assert plan.cap_met and plan.stored_bytes - plan.bytes == 300
    assert cuts(BOTH, RetentionPolicy(max_total_bytes=700)) == {}
    assert cuts(BOTH, RetentionPolicy(max_total_bytes=0)) == {0: 4, 1: 3}


def test_keep_segments_protects_the_newest_of_each_partition_from_every_selector() -> None:
    assert cuts(BOTH, RetentionPolicy(cutoff_ms=10**9, keep_segments=2)) == {0: 2, 1: 1}
    assert cuts(BOTH, RetentionPolicy(cutoff_ms=10**9, keep_segments=5)) == {}
    plan = plan_retention(BOTH, RetentionPolicy(max_total_bytes=0, keep_segments=1))
    assert {c.partition: c.kept_segments for c in plan.cuts} == {0: 1, 1: 1}
    assert not plan.cap_met  # what keep_segments keeps exceeds the cap: said, not broken


def test_selectors_combine_as_either_and_keep_still_wins() -> None:
    # Age alone takes 1000 and 1500; the cap (400 may stay) then takes 2000 too.
    assert cuts(BOTH, RetentionPolicy(cutoff_ms=1600, max_total_bytes=400)) == {0: 2, 1: 1}
    # The cap is met by age already: nothing more goes.
    assert cuts(BOTH, RetentionPolicy(cutoff_ms=2600, max_total_bytes=400)) == {0: 2, 1: 2}
    assert cuts(BOTH, RetentionPolicy(cutoff_ms=2600, max_total_bytes=0, keep_segments=3)) == {0: 1}


def test_a_cut_says_what_goes_and_what_stays() -> None:
    earlier = PrunedRange(0, 20, 2, 20, 200, 1, 2000, 5, "x")
    already = PartitionIndex("t", 0, P0.segments[2:], [], 4, [earlier])
    plan = plan_retention({("t", 0): already}, RetentionPolicy(cutoff_ms=3001, reason="why"))
    (cut,) = plan.cuts
    assert (cut.start, cut.end, cut.records, cut.bytes) == (20, 30, 10, 100)
    assert (cut.min_timestamp, cut.max_timestamp, cut.kept_segments, cut.kept_bytes) == (2990, 3000, 1, 100)
    assert cut.oldest_kept_ms == 3990
    assert cut.to_dict()["start_offset"] == 20 and plan.policy.reason == "why"


def test_a_prune_needs_a_selector() -> None:
    with pytest.raises(ConfigError, match="needs a selector"):
        RetentionPolicy(keep_segments=3)
    with pytest.raises(ConfigError, match="cannot be negative"):
        RetentionPolicy(cutoff_ms=1, keep_segments=-1)


def test_the_policy_of_backup_retention_and_its_reason() -> None:
    options = RetentionOptions(max_age_ms=30 * DAY, max_total_bytes=10**9, keep_segments=2)
    policy = RetentionPolicy.from_options(options, now_ms=100 * DAY)
    assert policy.cutoff_ms == 70 * DAY and policy.max_total_bytes == 10**9 and policy.keep_segments == 2
    assert policy.reason == "backup.retention: max_age 30d, max_total_bytes 1000000000, keep_segments 2"
    # The same rule at another moment gives the same reason: successive cuts extend one pruned range.
    assert RetentionPolicy.from_options(options, now_ms=101 * DAY).reason == policy.reason


@pytest.mark.parametrize(
    ("text", "ms"),
    [("30d", 30 * DAY), ("12h", 12 * 3_600_000), ("90s", 90_000), ("2w", 14 * DAY), ("1d12h", 36 * 3600_000)],
)
def test_durations_read_and_write_back(text: str, ms: int) -> None:
    assert parse_duration(text) == ms
    assert parse_duration(format_duration(ms)) == ms


@pytest.mark.parametrize("bad", ["30", "", "d", "30 days", "-1d", "0d", "1.5d", 30])
def test_a_bad_duration_says_how_to_write_one(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


def test_pruning_an_index_records_one_range_per_rule_and_absorbs_missing_ranges() -> None:
    p = index(0, seg(0, 0, 10, 1000), seg(0, 15, 20, 2000), seg(0, 20, 30, 3000), seg(0, 30, 40, 4000))
    p.missing = [MissingRange(10, 15, "retention")]
    first = p.prune(p.segments[:1], 7, "rule")
    assert (first.start, first.end) == (0, 10) and p.missing == [MissingRange(10, 15, "retention")]
    assert p.format_version == 4 and p.retained_start == 10
    p.prune(p.segments[:1], 8, "rule")  # across the missing range: it goes with the pruned range
    assert p.missing == [] and p.pruned == [PrunedRange(0, 20, 2, 15, 200, 990, 2000, 8, "rule")]
    p.prune(p.segments[:1], 9, "another rule")
    assert [(r.start, r.end, r.reason) for r in p.pruned] == [(0, 20, "rule"), (20, 30, "another rule")]
    assert (p.start_offset, p.retained_start, p.end_offset) == (0, 30, 40)
    assert p.coverage_problems() == []
    assert PartitionIndex.from_json(p.to_json()) == p
    with pytest.raises(ValueError, match="not its oldest"):
        p.prune([seg(0, 0, 10, 1000)], 10, "stale plan")
    assert len(p.segments) == 1  # a refused cut changes nothing


def test_a_pruned_range_after_stored_offsets_is_a_coverage_problem() -> None:
    bad = PartitionIndex("t", 0, [seg(0, 0, 10, 1)], [], 4, [PrunedRange(10, 20, 1, 10, 1, 1, 1, 1, "x")])
    assert any("follows stored offsets" in p for p in bad.coverage_problems())
