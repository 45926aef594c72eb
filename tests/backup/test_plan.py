"""Where each partition's backup starts: stored coverage, earliest/latest, and per-partition start offsets."""

from __future__ import annotations

import pytest

from libkb.backup.plan import PlanError, plan_partitions
from libkb.kafka.admin import PartitionOffsets

OFFSETS = {("t", 0): PartitionOffsets(10, 100), ("t", 1): PartitionOffsets(0, 50)}


def starts(**kwargs: object) -> dict[tuple[str, int], int]:
    plans = plan_partitions({}, OFFSETS, start_offset="earliest", snapshot=True, **kwargs)  # type: ignore[arg-type]
    return {(p.topic, p.partition): p.start for p in plans}


def test_earliest_and_latest() -> None:
    assert starts() == {("t", 0): 10, ("t", 1): 0}
    plans = plan_partitions({}, OFFSETS, start_offset="latest", snapshot=True)
    assert [p.start for p in plans] == [100, 50]


def test_specific_start_offsets_are_clamped_to_what_the_partition_holds() -> None:
    """``start_offset: !specific``: partition 0 asks for 5 (deleted: starts at 10), partition 1 for 999."""
    assert starts(start_offsets={"t": {0: 5, 1: 999}}) == {("t", 0): 10, ("t", 1): 50}
    assert starts(start_offsets={"t": {0: 42}}) == {("t", 0): 42, ("t", 1): 0}


def test_stored_coverage_wins_over_a_start_offset() -> None:
    plans = plan_partitions(
        {("t", 0): 60}, OFFSETS, start_offset="earliest", snapshot=True, start_offsets={"t": {0: 20}}
    )
    assert plans[0].start == 60


def test_a_stored_end_past_the_log_is_refused() -> None:
    with pytest.raises(PlanError, match="deleted and recreated"):
        plan_partitions({("t", 1): 70}, OFFSETS, start_offset="earliest", snapshot=True)


def test_each_plan_says_why_it_starts_where_it_does() -> None:
    """What ``backup --dry-run`` shows beside each start offset."""
    plans = plan_partitions(
        {("t", 0): 5, ("t", 1): 30, ("u", 0): None},
        {**OFFSETS, ("u", 0): PartitionOffsets(0, 9), ("u", 1): PartitionOffsets(0, 9)},
        start_offset="latest",
        snapshot=True,
        start_offsets={"u": {1: 4}},
    )
    assert [(p.topic, p.partition, p.start, p.origin) for p in plans] == [
        ("t", 0, 10, "retention"),  # stored up to 5, retention deleted up to 10 since
        ("t", 1, 30, "stored"),
        ("u", 0, 9, "latest"),
        ("u", 1, 4, "start_offsets"),
    ]
