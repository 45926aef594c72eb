"""libkb.catalog on backups written by the format encoders: list, describe, validate."""

from __future__ import annotations

import pytest

from libkb.catalog import BackupNotFoundError, describe_backup, list_backups, validate_backup
from libkb.errors import LibkbError
from libkb.format.models import MissingRange, PartitionIndex, index_key, manifest_key, segment_key
from libkb.storage import StorageBackend
from tests.cli.stored import BASE_TS, flip_byte, put_segment, records, write_backup


def test_list_finds_backups_by_manifest_and_sums_index_stats(backend: StorageBackend) -> None:
    write_backup(backend, "b1")
    write_backup(backend, "b2", {"solo": 1}, segments=1)
    backend.put("notes/readme.txt", b"not a backup")
    backend.put("top-level.txt", b"neither")
    summaries = list_backups(backend)
    assert [s.backup_id for s in summaries] == ["b1", "b2"]
    b1 = summaries[0]
    indexes = [
        PartitionIndex.from_json(backend.get(index_key("b1", t, p)))
        for t, p in [("orders", 0), ("orders", 1), ("events", 0)]
    ]
    assert b1.topics == ["events", "orders"]
    assert b1.partitions == 3
    assert b1.records == 60 == sum(i.record_count for i in indexes)
    assert b1.stored_bytes == sum(i.size for i in indexes) > 0
    assert (b1.status, b1.format_version, b1.error) == ("complete", 1, None)
    assert b1.to_dict()["created"].endswith("Z")
    assert summaries[1].records == 10


def test_list_shows_a_backup_with_a_corrupt_manifest_as_unreadable(backend: StorageBackend) -> None:
    write_backup(backend, "good")
    backend.put(manifest_key("bad"), b"{not json")
    bad, good = list_backups(backend)
    assert (bad.backup_id, bad.status) == ("bad", "unreadable")
    assert bad.error is not None and "bad/manifest.json" in bad.error
    assert good.status == "complete"


def test_list_of_an_empty_location(backend: StorageBackend) -> None:
    assert list_backups(backend) == []


def test_describe_reports_coverage_per_partition_and_group_snapshot(backend: StorageBackend) -> None:
    write_backup(
        backend,
        "b1",
        {"orders": 3},
        empty=[("orders", 2)],
        missing={("orders", 1): MissingRange(0, 5, "retention")},
    )
    d = describe_backup(backend, "b1")
    assert d.manifest.topics["orders"].configs == {"cleanup.policy": "compact"}
    p0, p1, p2 = d.partitions
    assert (p0.start_offset, p0.end_offset, p0.records, p0.segments) == (0, 32, 20, 2)
    assert (p0.min_timestamp, p0.max_timestamp) == (BASE_TS, BASE_TS + 28)
    assert p0.stored_bytes > 0 and p0.raw_bytes > p0.stored_bytes
    assert (p1.start_offset, p1.end_offset) == (0, 37)
    assert p1.missing == [MissingRange(0, 5, "retention")]
    assert (p2.indexed, p2.start_offset, p2.records) == (False, None, 0)
    assert d.records == 40 and d.segments == 4
    assert d.groups is not None and d.groups.groups[0].offsets == {"orders": {0: 7, 1: 3}}
    body = d.to_dict()
    assert body["topics"]["orders"]["replication_factor"] == 3
    assert body["consumer_groups"]["groups"]["billing"]["orders"] == {"0": 7, "1": 3}
    assert body["runs"][0]["status"] == "complete"


def test_describe_without_group_snapshot(backend: StorageBackend) -> None:
    write_backup(backend, "b1", groups=False)
    assert describe_backup(backend, "b1").groups is None


def test_unknown_backup_id_names_it_and_the_existing_ones(backend: StorageBackend) -> None:
    write_backup(backend, "alpha")
    write_backup(backend, "beta")
    for call in (lambda: describe_backup(backend, "gamma"), lambda: validate_backup(backend, "gamma")):
        with pytest.raises(BackupNotFoundError) as info:
            call()
        assert isinstance(info.value, LibkbError) and isinstance(info.value, FileNotFoundError)
        text = str(info.value)
        assert "'gamma'" in text and "alpha, beta" in text


@pytest.mark.parametrize("deep", [False, True])
def test_a_sound_backup_validates(backend: StorageBackend, deep: bool) -> None:
    write_backup(
        backend, "b1", missing={("orders", 1): MissingRange(0, 5, "retention")}, empty=[("events", 0)]
    )
    report = validate_backup(backend, "b1", deep=deep)
    assert report.problems == []
    assert report.ok
    assert (report.checked_partitions, report.checked_segments) == (2, 4)
    assert report.checked_records == (40 if deep else 0)
    assert any("[0, 5)" in w and "retention" in w for w in report.warnings)


def test_flipped_byte_is_caught_by_deep_validation_only(backend: StorageBackend) -> None:
    write_backup(backend, "b1")
    key = segment_key("b1", "orders", 1, 10)
    flip_byte(backend, key)
    assert validate_backup(backend, "b1").ok
    report = validate_backup(backend, "b1", deep=True)
    assert len(report.problems) == 1
    assert key in report.problems[0] and "checksum" in report.problems[0]


def test_deleted_segment(backend: StorageBackend) -> None:
    write_backup(backend, "b1")
    key = segment_key("b1", "orders", 0, 0)
    backend.delete(key)
    problems = validate_backup(backend, "b1").problems
    assert problems == [f"{key}: listed in {index_key('b1', 'orders', 0)} but not stored"]


def test_truncated_segment_has_the_wrong_size(backend: StorageBackend) -> None:
    write_backup(backend, "b1")
    key = segment_key("b1", "events", 0, 10)
    backend.put(key, backend.get(key)[:-5])
    (problem,) = validate_backup(backend, "b1").problems
    assert problem.startswith(key) and "the index says" in problem


def test_hole_in_coverage(backend: StorageBackend) -> None:
    write_backup(backend, "b1", segments=3)
    ikey = index_key("b1", "orders", 0)
    index = PartitionIndex.from_json(backend.get(ikey))
    dropped = index.segments.pop(1)
    backend.put(ikey, index.to_json())
    backend.delete(dropped.key)
    (problem,) = validate_backup(backend, "b1").problems
    assert problem.startswith(ikey) and f"hole [{dropped.base_offset}, {dropped.end_offset})" in problem


def test_segment_stored_by_a_killed_run_before_its_index_is_a_warning(backend: StorageBackend) -> None:
    """A run stores a segment, then the index; killed in between, the backup is still valid."""
    write_backup(backend, "b1")  # orders/0 is indexed up to offset 32
    unlisted = put_segment(backend, "b1", "orders", 0, 32, 40, records(32, 8)).key
    report = validate_backup(backend, "b1", deep=True)
    assert report.ok, report.problems
    (warning,) = [w for w in report.warnings if w.startswith(unlisted)]
    assert warning.endswith("restores already include it, and the next backup run adopts it into the index")
    assert report.checked_segments == 6 + 1  # deep: its bytes are read as well
    flip_byte(backend, unlisted)
    problems = validate_backup(backend, "b1", deep=True).problems
    assert any(p.startswith(unlisted) for p in problems)


def test_first_segment_stored_before_any_index_is_a_warning(backend: StorageBackend) -> None:
    write_backup(backend, "b1", segments=1)
    backend.delete(index_key("b1", "orders", 1))  # killed before its first index write
    report = validate_backup(backend, "b1")
    assert report.ok, report.problems
    assert any("not yet listed in" in w for w in report.warnings)


@pytest.mark.parametrize(
    ("base", "end", "words"),
    [
        (40, 48, "nothing accounts for"),  # offsets 32-39 unexplained
        (20, 40, "overlaps the indexed segments"),
    ],
)
def test_unlisted_segment_that_does_not_continue_the_index_is_a_problem(
    backend: StorageBackend, base: int, end: int, words: str
) -> None:
    write_backup(backend, "b1")
    unlisted = put_segment(backend, "b1", "orders", 0, base, end, records(base, end - base)).key
    (problem,) = validate_backup(backend, "b1").problems
    assert problem.startswith(unlisted) and "not listed in" in problem and words in problem


def test_two_unlisted_segments_mean_the_index_lost_one(backend: StorageBackend) -> None:
    write_backup(backend, "b1")
    first = put_segment(backend, "b1", "orders", 0, 32, 40, records(32, 8)).key
    second = put_segment(backend, "b1", "orders", 0, 40, 48, records(40, 8)).key
    report = validate_backup(backend, "b1")
    assert any(w.startswith(first) for w in report.warnings)
    (problem,) = report.problems
    assert problem.startswith(second) and "lost it" in problem


def test_leftover_copy_of_indexed_offsets_is_a_warning(backend: StorageBackend) -> None:
    write_backup(backend, "b1")
    copy = put_segment(backend, "b1", "orders", 0, 5, 10, records(5, 5)).key
    report = validate_backup(backend, "b1")
    assert report.ok, report.problems
    assert any(w.startswith(copy) and "next backup run deletes it" in w for w in report.warnings)


def test_index_missing_while_segments_are_stored(backend: StorageBackend) -> None:
    write_backup(backend, "b1")
    ikey = index_key("b1", "orders", 1)
    backend.delete(ikey)
    problems = validate_backup(backend, "b1").problems
    assert any(p.startswith(ikey) and "missing" in p for p in problems)
    assert sum("not listed in" in p for p in problems) == 2  # its two segments are now orphans


def test_index_for_a_partition_the_manifest_does_not_have(backend: StorageBackend) -> None:
    write_backup(backend, "b1")
    write_backup(backend, "other", {"orders": 3}, groups=False)
    extra = index_key("b1", "orders", 2)
    backend.put(extra, backend.get(index_key("other", "orders", 2)))
    problems = validate_backup(backend, "b1").problems
    assert any(p.startswith(extra) and "not in the manifest" in p for p in problems)


def test_unreadable_index_and_manifest_are_problems(backend: StorageBackend) -> None:
    write_backup(backend, "b1")
    ikey = index_key("b1", "events", 0)
    backend.put(ikey, b"[]")
    backend.put(manifest_key("b1"), b"garbage")
    problems = validate_backup(backend, "b1").problems
    assert any(p.startswith(ikey) for p in problems)
    assert any(p.startswith(manifest_key("b1")) for p in problems)


def test_index_stats_that_disagree_with_the_segment_are_caught_deep(backend: StorageBackend) -> None:
    write_backup(backend, "b1")
    ikey = index_key("b1", "orders", 0)
    body = backend.get(ikey).replace(b'"record_count":10', b'"record_count":11', 1)
    backend.put(ikey, body)
    assert validate_backup(backend, "b1").ok
    (problem,) = validate_backup(backend, "b1", deep=True).problems
    assert problem == f"{segment_key('b1', 'orders', 0, 0)}: index says records 11, the footer says 10"


def test_records_outside_the_range_or_out_of_order_are_caught_deep(backend: StorageBackend) -> None:
    write_backup(backend, "b1", {"t": 1}, segments=1, groups=False)
    recs = records(0, 5)
    recs[2], recs[3] = recs[3], recs[2]
    entry = put_segment(backend, "b1", "t", 0, 0, 10, recs)
    backend.put(index_key("b1", "t", 0), PartitionIndex("t", 0, [entry]).to_json())
    problems = validate_backup(backend, "b1", deep=True).problems
    assert any(entry.key in p and "offset 2 follows 3" in p for p in problems)
