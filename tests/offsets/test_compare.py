"""Diffing a snapshot with a cluster's offsets, and the rollback plan: exact, not just equal numbers."""

from __future__ import annotations

from libkb.kafka.types import CommittedOffset as C
from libkb.offsets import Mismatch, OffsetSnapshot, compare, plan_rollback
from libkb.offsets.compare import GroupRollback

SNAP = OffsetSnapshot(
    "snap-1700000000000-00000001",
    "bk",
    1_700_000_000_000,
    {
        "same": {("t", 0): C(5, "m", 2)},
        "moved": {("t", 0): C(5), ("t", 1): C(6)},
        "grew": {("t", 0): C(5)},
        "none": {},
        "meta": {("t", 0): C(5, "old")},
    },
)

NOW = {
    "same": {("t", 0): C(5, "m", 2)},
    "moved": {("t", 0): C(9), ("t", 1): C(6)},
    "grew": {("t", 0): C(5), ("u", 3): C(1)},
    "none": {("t", 0): C(4)},
    "meta": {("t", 0): C(5, "new")},
    "other": {("t", 0): C(1)},  # not in the snapshot: left alone
}


def test_compare_reports_moved_missing_and_extra_partitions() -> None:
    result = compare(SNAP, NOW)
    assert not result.verified
    assert result.groups_verified == ["meta", "same"]  # verify compares offsets, as the original tool
    assert result.groups_mismatched == ["grew", "moved", "none"]
    assert result.mismatches == [
        Mismatch("grew", "u", 3, None, 1),
        Mismatch("moved", "t", 0, 5, 9),
        Mismatch("none", "t", 0, None, 4),
    ]


def test_compare_with_a_group_that_lost_its_offsets() -> None:
    result = compare(SNAP, {**NOW, "moved": {}})
    assert Mismatch("moved", "t", 1, 6, None) in result.mismatches


def test_plan_puts_back_offsets_metadata_and_the_set_of_partitions() -> None:
    plan = plan_rollback(SNAP, NOW)
    assert plan == [
        GroupRollback("grew", {("t", 0): C(5)}, True, (("u", 3),)),
        GroupRollback("meta", {("t", 0): C(5, "old")}, False),
        GroupRollback("moved", {("t", 0): C(5)}, False),  # only what differs
        GroupRollback("none", {}, True, (("t", 0),)),
    ]


def test_nothing_to_do_when_the_cluster_holds_the_snapshot() -> None:
    now = {g: dict(o) for g, o in SNAP.groups.items()}
    assert plan_rollback(SNAP, now) == [] and compare(SNAP, now).verified
    # "no metadata" is reported as None or "": the same thing
    assert plan_rollback(SNAP, {**now, "moved": {("t", 0): C(5, ""), ("t", 1): C(6)}}) == []
