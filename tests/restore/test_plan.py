"""Restore planning: topic selection, filters, mappings and refusals. Pure: no Kafka, no storage."""

from __future__ import annotations

from typing import TypedDict, Unpack

import pytest

from libkb.config.models import RestoreOptions, TopicSelection
from libkb.errors import ConfigError
from libkb.format.models import Manifest, PartitionIndex, SegmentEntry, TopicInfo
from libkb.restore.plan import RestorePlan, plan_restore


def seg(
    topic: str, p: int, base: int, end: int, ts: tuple[int, int] = (0, 100), records: int | None = None
) -> SegmentEntry:
    n = end - base if records is None else records
    return SegmentEntry(
        f"bk/topics/{topic}/partition={p}/s{base}", base, end, n, base, end - 1, ts[0], ts[1], 10, 20, "zstd"
    )


MANIFEST = Manifest(
    "bk",
    1,
    2,
    "zstd",
    topics={"orders": TopicInfo(2, 1), "payments": TopicInfo(1, 1), "audit": TopicInfo(1, 1)},
)
INDEXES = {
    ("orders", 0): PartitionIndex(
        "orders", 0, [seg("orders", 0, 0, 100, (0, 50)), seg("orders", 0, 100, 200, (51, 99))]
    ),
    ("orders", 1): PartitionIndex("orders", 1, [seg("orders", 1, 0, 10)]),
    ("payments", 0): PartitionIndex("payments", 0, [seg("payments", 0, 5, 15)]),
    ("audit", 0): PartitionIndex("audit", 0, []),
}


class Options(TypedDict, total=False):
    """The RestoreOptions fields these tests set (same names and types)."""

    time_window_start: int | None
    offset_ranges: dict[str, dict[int, tuple[int, int]]]
    source_partitions: dict[str, tuple[int, ...]]
    topic_mapping: dict[str, str]
    partition_mapping: dict[str, dict[int, int]]


def plan(include: list[str], exclude: list[str] | None = None, **options: Unpack[Options]) -> RestorePlan:
    return plan_restore(
        MANIFEST,
        INDEXES,
        RestoreOptions(**options),
        TopicSelection(tuple(include), tuple(exclude or ())),
    )


def test_guide_example_selects_by_mapped_name() -> None:
    p = plan(
        ["test-restore-*"],
        topic_mapping={"orders": "test-restore-orders", "payments": "test-restore-payments"},
    )
    assert sorted({t.target_topic for t in p.tasks}) == ["test-restore-orders", "test-restore-payments"]
    assert p.skipped_topics == ["audit"]
    assert p.target_partitions == {"test-restore-orders": 2, "test-restore-payments": 1}


def test_exclude_on_either_name_wins() -> None:
    p = plan(["*"], ["test-*"], topic_mapping={"orders": "test-orders"})
    assert {t.source_topic for t in p.tasks} == {"payments"}


def test_offset_ranges_and_time_window_pick_segments() -> None:
    p = plan(["orders"], offset_ranges={"orders": {0: (150, 160)}}, source_partitions={"orders": (0,)})
    (task,) = p.tasks
    assert (task.start_offset, task.end_offset) == (150, 160)
    assert [s.base_offset for s in task.segments] == [100]
    assert not task.exact
    window = plan(["orders"], time_window_start=60, source_partitions={"orders": (0,)})
    assert [s.base_offset for s in window.tasks[0].segments] == [100]
    assert window.tasks[0].max_records == 100


def test_partition_mapping_global_and_per_topic() -> None:
    p = plan(["orders"], partition_mapping={"*": {0: 3, 1: 4}})
    assert sorted((t.source_partition, t.target_partition) for t in p.tasks) == [(0, 3), (1, 4)]
    assert p.target_partitions == {"orders": 5}
    with pytest.raises(ConfigError, match="both map to target partition 0") as info:
        plan(["orders"], partition_mapping={"orders": {1: 0}})
    assert info.value.key == "restore.partition_mapping"


def test_unknown_topics_in_options_are_named() -> None:
    with pytest.raises(ConfigError, match="'ordrs' is not a topic of backup 'bk'") as info:
        plan(["*"], topic_mapping={"ordrs": "x"})
    assert info.value.key == "restore.topic_mapping"


def test_two_topics_into_one_is_refused() -> None:
    with pytest.raises(ConfigError, match="both map to 'same'"):
        plan(["*"], topic_mapping={"orders": "same", "payments": "same"})
