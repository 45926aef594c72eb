"""Compare a snapshot with the offsets a cluster holds now, and plan the rollback to it. Pure: no I/O.

"Exact" means the same set of partitions, not only the same numbers: a
partition the group committed after the snapshot is a difference too. Kafka
has no call (in confluent-kafka) to drop one partition's offset, but a group
without members can be deleted and its snapshot offsets committed again, so
a rollback plans that for such a group.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from libkb.kafka.types import CommittedOffset
from libkb.offsets.snapshot import TP, OffsetSnapshot

Current = Mapping[str, Mapping[TP, CommittedOffset]]


@dataclass(frozen=True, slots=True)
class Mismatch:
    group: str
    topic: str
    partition: int
    expected: int | None  # None: the snapshot has no offset there
    actual: int | None  # None: the group has no offset there now


@dataclass(slots=True)
class Verification:
    snapshot_id: str
    groups_verified: list[str] = field(default_factory=list)
    groups_mismatched: list[str] = field(default_factory=list)
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return not self.groups_mismatched


def compare(snapshot: OffsetSnapshot, current: Current) -> Verification:
    """Which groups hold exactly the snapshot's offsets now, and every partition that differs."""
    result = Verification(snapshot.snapshot_id)
    for group, expected in sorted(snapshot.groups.items()):
        now = current.get(group, {})
        differing = [
            Mismatch(
                group,
                tp[0],
                tp[1],
                expected[tp].offset if tp in expected else None,
                now[tp].offset if tp in now else None,
            )
            for tp in sorted(set(expected) | set(now))
            if (expected[tp].offset if tp in expected else None) != (now[tp].offset if tp in now else None)
        ]
        (result.groups_mismatched if differing else result.groups_verified).append(group)
        result.mismatches += differing
    return result


@dataclass(frozen=True, slots=True)
class GroupRollback:
    """What puts one group back: optionally delete it, then commit these offsets."""

    group: str
    commit: dict[TP, CommittedOffset]
    delete_first: bool  # the group holds offsets on partitions the snapshot has none for
    removed: tuple[TP, ...] = ()  # those partitions


def plan_rollback(snapshot: OffsetSnapshot, current: Current) -> list[GroupRollback]:
    """The steps for the groups that differ from the snapshot (offset, metadata or leader epoch)."""
    steps = []
    for group, wanted in sorted(snapshot.groups.items()):
        now = current.get(group, {})
        extra = tuple(sorted(set(now) - set(wanted)))
        if extra:
            steps.append(GroupRollback(group, dict(wanted), True, extra))
            continue
        changed = {tp: o for tp, o in wanted.items() if not _same(now.get(tp), o)}
        if changed:
            steps.append(GroupRollback(group, changed, False))
    return steps


def _same(now: CommittedOffset | None, wanted: CommittedOffset) -> bool:
    """Offset, metadata and leader epoch all equal (an empty metadata string is no metadata)."""
    return now is not None and (now.offset, now.metadata or None, now.leader_epoch) == (
        wanted.offset,
        wanted.metadata or None,
        wanted.leader_epoch,
    )
