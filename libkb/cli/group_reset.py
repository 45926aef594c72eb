"""Committing translated group offsets the one safe way, for every command that does it.

``offset-reset execute``, ``offset-reset-bulk`` and ``restore`` with
``reset_consumer_offsets: true`` all refuse groups with active members, store
a rollback snapshot next to the backup, print the command that undoes the
change, and only then commit (:func:`libkb.offsets.reset_with_snapshot`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO

from libkb.cli.offset_common import PROG, Target, rollback_command
from libkb.kafka.groups import GroupOffsetError
from libkb.kafka.types import CommittedOffset
from libkb.offsets import BulkReport, OffsetSnapshot, SnapshotStore, reset_with_snapshot
from libkb.restore.groups import TranslatedOffset
from libkb.storage import StorageBackend


def apply_with_snapshot(
    backend: StorageBackend,
    path: str,
    backup_id: str,
    restore_id: str,
    offsets: list[TranslatedOffset],
    cluster: Target,
    command: str,
    stream: IO[str],
    max_concurrent: int = 50,
    max_retries: int = 3,
) -> tuple[OffsetSnapshot, BulkReport]:
    """Snapshot the groups (announcing the undo command on ``stream``), then commit the offsets."""
    commits: dict[str, dict[tuple[str, int], CommittedOffset]] = {o.group: {} for o in offsets}
    for o in offsets:
        commits[o.group][(o.target_topic, o.target_partition)] = CommittedOffset(o.target_offset)
    return reset_with_snapshot(
        cluster.connect(),
        SnapshotStore(backend, backup_id),
        commits,
        command=f"{PROG} {command}",
        on_snapshot=announce(path, backup_id, cluster, stream),
        description=f"before {command} of restore {restore_id}",
        restore_id=restore_id,
        max_concurrent=max_concurrent,
        max_retries=max_retries,
    )


def announce(path: str, backup_id: str, cluster: Target, stream: IO[str]) -> Callable[[OffsetSnapshot], None]:
    def say(snapshot: OffsetSnapshot) -> None:
        print(
            f"rollback snapshot {snapshot.snapshot_id} holds the groups' offsets before this change; "
            f"to undo it:\n  {rollback_command(path, backup_id, snapshot.snapshot_id, cluster)}",
            file=stream,
            flush=True,
        )

    return say


def restore_resetter(
    backend: StorageBackend, path: str, backup_id: str, cluster: Target, stream: IO[str]
) -> Callable[[list[TranslatedOffset], str], list[str]]:
    """What ``restore`` commits group offsets with: snapshot first, and any refused partition fails it."""

    def reset(offsets: list[TranslatedOffset], restore_id: str) -> list[str]:
        snapshot, report = apply_with_snapshot(
            backend, path, backup_id, restore_id, offsets, cluster, "restore", stream
        )
        if report.status != "success":
            failed = [
                f"{o.group_id!r} {f.topic}[{f.partition}]: {f.message}"
                for o in report.group_outcomes
                for f in o.errors
            ]
            undo = rollback_command(path, backup_id, snapshot.snapshot_id, cluster)
            raise GroupOffsetError(
                f"the offsets of {report.failed_groups} of {report.total_groups} group(s) were not all set "
                f"({'; '.join(failed[:5])}); to put every group back as it was: {undo}"
            )
        return sorted(o.group_id for o in report.group_outcomes)

    return reset
