"""``offset-rollback snapshot|list|show|rollback|verify|delete``: consumer-group offset snapshots of a backup.

Snapshots are stored next to the backup (``{id}/offset-snapshots/``); JSON
and YAML output use the original tool's field names (``snapshot_id``,
``created_at``, ``group_offsets``, ``groups_rolled_back``, ``mismatches``,
...), with libkb's additions beside them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import asdict
from typing import IO, Any

from libkb.catalog import iso_ms
from libkb.cli.logs import error_line
from libkb.cli.offset_common import PROG, Target, parse_groups, rollback_command, same_cluster, target
from libkb.cli.readonly import reading
from libkb.cli.render import dump, table
from libkb.errors import ConfigError
from libkb.offsets import (
    OffsetSnapshot,
    RollbackResult,
    SnapshotStore,
    Verification,
    rollback,
    snapshot_key,
    take_snapshot,
    verify,
)
from libkb.storage import open_backend

_ROLLBACK = f"{PROG} offset-rollback rollback"


def run_snapshot(
    path: str,
    backup_id: str,
    groups: str | None,
    all_groups: bool,
    cluster_args: tuple[str | None, str | None],
    description: str | None,
    fmt: str,
    out: IO[str] | None = None,
) -> int:
    names = parse_groups(groups)
    if names is None and not all_groups:
        raise ConfigError(
            "name the groups to snapshot with --groups G1,G2, or pass --all-groups", key="--groups"
        )
    named = target(*cluster_args, "offset-rollback snapshot")
    with open_backend(path) as backend:
        store = SnapshotStore(backend, backup_id)
        store.require_backup()
        cluster = named.connect()
        chosen = names if names is not None else cluster.admin.list_groups()
        snapshot = take_snapshot(cluster, store, chosen, description=description)
    undo = rollback_command(path, backup_id, snapshot.snapshot_id, named)
    if fmt != "text":
        print(dump({**summary(snapshot), "rollback_command": undo}, fmt), file=out or sys.stdout)
        return 0
    lines = [
        "Snapshot created successfully!",
        *_details(snapshot),
        "",
        "To rollback to this snapshot, run:",
        f"  {undo}",
    ]
    print("\n".join(lines), file=out or sys.stdout)
    return 0


def run_list(path: str, backup_id: str, fmt: str, out: IO[str] | None = None) -> int:
    with reading(path) as backend:
        store = SnapshotStore(backend, backup_id)
        store.require_backup()
        snapshots = store.list()
    stdout = out or sys.stdout
    if fmt != "text":
        print(dump([summary(s) for s in snapshots], fmt), file=stdout)
    elif not snapshots:
        print(f"No offset snapshots of backup {backup_id}.", file=stdout)
    else:
        rows = [
            (s.snapshot_id, iso_ms(s.created_ms), len(s.groups), s.offset_count, _short(s.description or "-"))
            for s in snapshots
        ]
        print(f"Offset snapshots of backup {backup_id}:", file=stdout)
        print(
            table(("SNAPSHOT ID", "CREATED AT", "GROUPS", "OFFSETS", "DESCRIPTION"), rows, "  "), file=stdout
        )
        print(f"Total: {len(snapshots)} snapshot(s)", file=stdout)
    return 0


def run_show(path: str, backup_id: str, snapshot_id: str, fmt: str, out: IO[str] | None = None) -> int:
    with reading(path) as backend:
        store = SnapshotStore(backend, backup_id)
        store.require_backup()
        snapshot = store.load(snapshot_id)
    text = dump(snapshot_dict(snapshot), fmt) if fmt != "text" else show_text(snapshot)
    print(text, file=out or sys.stdout)
    return 0


def run_rollback(
    path: str,
    backup_id: str,
    snapshot_id: str,
    cluster_args: tuple[str | None, str | None],
    check: bool,
    fmt: str,
    out: IO[str] | None = None,
) -> int:
    stdout = out or sys.stdout
    named = target(*cluster_args, "offset-rollback rollback")
    with open_backend(path) as backend:
        store = SnapshotStore(backend, backup_id)
        store.require_backup()
        snapshot = store.load(snapshot_id)
        cluster = named.connect()
        same_cluster(snapshot, cluster, named)
        if fmt == "text":
            print(f"Rolling back to snapshot {snapshot.snapshot_id}", file=stdout)
            print(*_details(snapshot)[1:], sep="\n", file=stdout)
        undo, result = rollback(
            cluster, store, snapshot, command=_ROLLBACK, on_snapshot=_announce(path, named, fmt, stdout)
        )
        checked = verify(cluster.admin, snapshot) if check else None
    undo_command = rollback_command(path, backup_id, undo.snapshot_id, named)
    if fmt != "text":
        body = {
            "result": asdict(result),
            "verification": verification_dict(checked) if checked is not None else None,
            "undo_snapshot_id": undo.snapshot_id,
            "undo_command": undo_command,
        }
        print(dump(body, fmt), file=stdout)
    else:
        print(rollback_text(result), file=stdout)
        if checked is not None:
            print(verification_text(checked), file=stdout)
    if result.status != "success":
        error_line(f"rollback to {snapshot_id} {result.status.replace('_', ' ')}; see the errors above")
        return 1
    if checked is not None and not checked.verified:
        error_line(
            f"after the rollback, offsets still differ from snapshot {snapshot_id}; "
            "did a consumer commit meanwhile?"
        )
        return 1
    return 0


def run_verify(
    path: str,
    backup_id: str,
    snapshot_id: str,
    cluster_args: tuple[str | None, str | None],
    fmt: str,
    out: IO[str] | None = None,
) -> int:
    named = target(*cluster_args, "offset-rollback verify")
    with reading(path) as backend:
        store = SnapshotStore(backend, backup_id)
        store.require_backup()
        snapshot = store.load(snapshot_id)
    cluster = named.connect()
    same_cluster(snapshot, cluster, named)
    result = verify(cluster.admin, snapshot)
    text = verification_text(result) if fmt == "text" else dump(verification_dict(result), fmt)
    print(text, file=out or sys.stdout)
    if not result.verified:
        error_line(
            f"offsets do not match snapshot {snapshot_id}: {len(result.mismatches)} partition(s) differ"
        )
        return 1
    return 0


def run_delete(path: str, backup_id: str, snapshot_id: str, out: IO[str] | None = None) -> int:
    with open_backend(path) as backend:
        store = SnapshotStore(backend, backup_id)
        store.require_backup()
        key = store.delete(snapshot_id)
    print(f"Snapshot {snapshot_id} deleted successfully ({key}).", file=out or sys.stdout)
    return 0


# -- output -----------------------------------------------------------------------------


def summary(s: OffsetSnapshot) -> dict[str, Any]:
    """The original tool's snapshot metadata, plus where it is stored."""
    return {
        "snapshot_id": s.snapshot_id,
        "created_at": iso_ms(s.created_ms),
        "group_count": len(s.groups),
        "offset_count": s.offset_count,
        "restore_id": s.restore_id,
        "description": s.description,
        "backup_id": s.backup_id,
        "key": snapshot_key(s.backup_id, s.snapshot_id),
    }


def snapshot_dict(s: OffsetSnapshot) -> dict[str, Any]:
    """The whole snapshot, in the original tool's shape (``group_offsets`` -> topic -> partition)."""
    groups: dict[str, Any] = {}
    for group, offsets in sorted(s.groups.items()):
        topics: dict[str, dict[str, Any]] = {}
        for (topic, partition), o in sorted(offsets.items()):
            entry = {"offset": o.offset, "metadata": o.metadata, "leader_epoch": o.leader_epoch}
            topics.setdefault(topic, {})[str(partition)] = entry
        groups[group] = {"group_id": group, "offsets": topics, "partition_count": len(offsets)}
    return {
        **summary(s),
        "cluster_id": s.cluster_id,
        "bootstrap_servers": s.bootstrap_servers,
        "group_offsets": groups,
    }


def show_text(s: OffsetSnapshot) -> str:
    rows: list[tuple[object, ...]] = []
    for group, offsets in sorted(s.groups.items()):
        if not offsets:
            rows.append((group, "-", "-", "-", "(no committed offsets)"))
        for (topic, partition), o in sorted(offsets.items()):
            rows.append((group, topic, partition, o.offset, o.metadata or ""))
    return "\n".join(
        [
            *_details(s),
            "",
            table(("GROUP", "TOPIC", "PARTITION", "OFFSET", "METADATA"), rows, "  "),
        ]
    )


def _details(s: OffsetSnapshot) -> list[str]:
    lines = [
        f"  Snapshot ID: {s.snapshot_id}",
        f"  Backup:      {s.backup_id}",
        f"  Created at:  {iso_ms(s.created_ms)}",
        f"  Cluster:     {s.cluster_id or '-'} ({','.join(s.bootstrap_servers)})",
        f"  Groups:      {len(s.groups)}",
        f"  Offsets:     {s.offset_count}",
    ]
    if s.description:
        lines.append(f"  Description: {s.description}")
    if s.restore_id:
        lines.append(f"  Restore ID:  {s.restore_id}")
    return lines


def rollback_text(r: RollbackResult) -> str:
    lines = [
        f"Rollback {r.status.replace('_', ' ').upper()}: {r.groups_rolled_back} group(s) rolled back, "
        f"{r.groups_failed} failed, {r.offsets_restored} offsets restored in {r.duration_ms:.0f} ms"
    ]
    if r.groups_unchanged:
        lines.append(f"  already as in the snapshot: {', '.join(r.groups_unchanged)}")
    if r.groups_deleted:
        lines.append(
            f"  deleted, then given the snapshot's offsets (they held offsets it has none for): "
            f"{', '.join(r.groups_deleted)}"
        )
    if r.offsets_removed:
        lines.append(f"  offsets removed: {', '.join(r.offsets_removed)}")
    lines += [f"  error: {e}" for e in r.errors]
    return "\n".join(lines)


def verification_dict(v: Verification) -> dict[str, Any]:
    return {
        "snapshot_id": v.snapshot_id,
        "verified": v.verified,
        "groups_verified": v.groups_verified,
        "groups_mismatched": v.groups_mismatched,
        "mismatches": [
            {
                "group_id": m.group,
                "topic": m.topic,
                "partition": m.partition,
                "expected_offset": m.expected,
                "actual_offset": m.actual,
            }
            for m in v.mismatches
        ],
    }


def verification_text(v: Verification) -> str:
    total = len(v.groups_verified) + len(v.groups_mismatched)
    if v.verified:
        return f"VERIFIED: all offsets of {total} group(s) match snapshot {v.snapshot_id}"
    lines = [f"MISMATCH: {len(v.groups_mismatched)} of {total} group(s) differ from snapshot {v.snapshot_id}"]
    lines += [
        f"  - {m.group}:{m.topic}:{m.partition} expected {_offset(m.expected)} but found {_offset(m.actual)}"
        for m in v.mismatches
    ]
    return "\n".join(lines)


def _offset(value: int | None) -> str:
    return "no offset" if value is None else str(value)


def _short(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _announce(path: str, named: Target, fmt: str, stdout: IO[str]) -> Callable[[OffsetSnapshot], None]:
    stream = stdout if fmt == "text" else sys.stderr

    def announce(undo: OffsetSnapshot) -> None:
        print(
            f"the offsets before this rollback are in snapshot {undo.snapshot_id}; to undo it:\n"
            f"  {rollback_command(path, undo.backup_id, undo.snapshot_id, named)}",
            file=stream,
            flush=True,
        )

    return announce
