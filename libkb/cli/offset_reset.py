"""``offset-reset plan|execute|script`` and ``offset-reset-bulk``: a restore's translated group offsets.

``plan`` prints them, ``script`` writes the ``kafka-consumer-groups.sh``
commands that apply them, ``execute`` and ``offset-reset-bulk`` apply them
(groups in parallel). Applying never happens by default for every group
(``--groups`` or ``--all-groups``), refuses groups with active members, and
first stores a snapshot of the groups' offsets and prints the command that
rolls them back.
"""

from __future__ import annotations

import csv
import io
import os
import shlex
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import IO, Any

from libkb.catalog import iso_ms
from libkb.cli.group_reset import apply_with_snapshot
from libkb.cli.logs import error_line
from libkb.cli.offset_common import PROG, Target, parse_groups, require_groups, rollback_command, target
from libkb.cli.offset_script import reset_script
from libkb.cli.render import dump, table
from libkb.cli.restore import translated_offsets
from libkb.cli.results import offset_row
from libkb.errors import ConfigError
from libkb.offsets import BulkReport
from libkb.restore.groups import TranslatedOffset, untranslated_notes, untranslated_offsets
from libkb.restore.mapping import OffsetMapping
from libkb.source import open_backup
from libkb.storage import StorageBackend, open_backend
from libkb.version import __version__

EXECUTE_FORMATS = ("text", "json", "yaml")
#: ``offset-reset plan --format csv``: the original tool's columns, then where each offset came from.
CSV_COLUMNS = (
    "group_id",
    "topic",
    "partition",
    "source_offset",
    "target_offset",
    "source_topic",
    "source_partition",
)


def run_offset_reset(
    action: str,
    path: str,
    backup_id: str,
    groups: str | None,
    all_groups: bool,
    bootstrap_servers: str | None,
    restore_id: str | None,
    fmt: str,
    *,
    config_path: str | None = None,
    output: str | None = None,
    out: IO[str] | None = None,
    backend: StorageBackend | None = None,
) -> int:
    """``offset-reset plan|execute|script``; ``backend``: the storage ``path`` names, already open."""
    stdout = out or sys.stdout
    names = parse_groups(groups)
    scripted = action == "script" or (action == "plan" and fmt == "shell-script")
    if output is not None and not scripted:
        raise ConfigError("is for offset-reset script (or plan --format shell-script)", key="--output")
    if action == "execute":
        require_groups(names, all_groups, "offset-reset execute", "every group in the backup's snapshot")
        if fmt not in EXECUTE_FORMATS:
            raise ConfigError(f"{fmt} is a format of offset-reset plan", key="--format")
    cluster = (
        target(bootstrap_servers, config_path, f"offset-reset {action}")
        if action != "plan" or scripted
        else None
    )
    with open_backend(path) if backend is None else nullcontext(backend) as backend:
        mapping, offsets = translated_offsets(backend, backup_id, restore_id, names)
        if mapping.spread:
            _untranslated_notes(backend, backup_id, mapping, names)
        if scripted:
            assert cluster is not None
            return _script(path, backup_id, mapping, offsets, cluster, output, stdout)
        if action == "plan" or fmt == "text":
            print(plan_text(mapping, backup_id, offsets, fmt), file=stdout, end="")
        if action == "plan":
            return 0
        assert cluster is not None
        if not offsets:
            return _nothing(stdout)
        snapshot, report = apply_with_snapshot(
            backend,
            path,
            backup_id,
            mapping.restore_id,
            offsets,
            cluster,
            "offset-reset execute",
            stdout if fmt == "text" else sys.stderr,
        )
    undo = rollback_command(path, backup_id, snapshot.snapshot_id, cluster)
    if fmt == "text":
        changed = [o.group_id for o in report.group_outcomes if not o.partitions_failed]
        print(
            f"committed new offsets for {len(changed)} group(s): {', '.join(changed) or 'none'} "
            f"({report.total_offsets_reset} partitions)",
            file=stdout,
        )
        _print_errors(report, stdout)
    else:
        body = {
            "backup_id": backup_id,
            "restore_id": mapping.restore_id,
            "offsets": [offset_row(o) for o in offsets],
            "rollback_snapshot_id": snapshot.snapshot_id,
            "undo_command": undo,
            "report": report.to_dict(),
        }
        print(dump(body, fmt), file=stdout)
    return _exit(report, undo)


def plan_text(mapping: OffsetMapping, backup_id: str, offsets: list[TranslatedOffset], fmt: str) -> str:
    """The translated offsets as ``offset-reset plan --format`` shows them (a newline at the end)."""
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        writer.writerows(
            (
                o.group,
                o.target_topic,
                o.target_partition,
                o.source_offset,
                o.target_offset,
                o.source_topic,
                o.source_partition,
            )
            for o in offsets
        )
        return buffer.getvalue()
    rows = [offset_row(o) for o in offsets]
    if fmt != "text":
        return dump(rows, fmt) + "\n"
    lines = table(
        ("GROUP", "SOURCE", "COMMITTED", "TARGET", "NEW OFFSET"), [list(r.values()) for r in rows], "  "
    )
    return f"offsets of restore {mapping.restore_id} (backup {backup_id}):\n{lines}\n"


def _script(
    path: str,
    backup_id: str,
    mapping: OffsetMapping,
    offsets: list[TranslatedOffset],
    cluster: Target,
    output: str | None,
    stdout: IO[str],
) -> int:
    text = _script_text(path, backup_id, mapping, offsets, cluster.servers, cluster.args())
    if output is None:
        stdout.write(text)
        return 0
    destination = Path(output)
    partial = destination.with_name(f".{destination.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.chmod(partial, 0o755)
    partial.replace(destination)
    print(f"Script written to: {output} ({len(offsets)} offsets)", file=stdout)
    return 0


def _script_text(
    path: str,
    backup_id: str,
    mapping: OffsetMapping,
    offsets: list[TranslatedOffset],
    servers: str,
    cluster_args: list[str],
) -> str:
    groups = ",".join(sorted({o.group for o in offsets})) or "G1,G2"
    snapshot = shlex.join(
        [
            PROG,
            "offset-rollback",
            "snapshot",
            "--path",
            path,
            "--backup-id",
            backup_id,
            "--groups",
            groups,
            *cluster_args,
        ]
    )
    return reset_script(
        offsets,
        bootstrap_servers=servers,
        backup_id=backup_id,
        restore_id=mapping.restore_id,
        snapshot_command=snapshot,
        generated=iso_ms(int(time.time() * 1000)) or "",
        version=__version__,
    )


def _nothing(stdout: IO[str]) -> int:
    print(
        "No offsets to reset: the groups have no committed offsets on the restored partitions; "
        "nothing was changed.",
        file=stdout,
    )
    return 0


def _untranslated_notes(
    backend: StorageBackend, backup_id: str, mapping: OffsetMapping, names: list[str] | None
) -> None:
    """A restore by key moved records across partitions: say which group offsets cannot be translated."""
    stored = open_backup(backend, backup_id).groups()
    for note in untranslated_notes(untranslated_offsets(stored[1] if stored else [], mapping, names)):
        print(f"note: {note}", file=sys.stderr)


def _print_errors(report: BulkReport, stdout: IO[str]) -> None:
    for line in _error_lines(report):
        print(line, file=stdout)


def _error_lines(report: BulkReport) -> list[str]:
    return [
        f"  error: group {o.group_id!r}, {f.topic}[{f.partition}]: {f.message}"
        for o in report.group_outcomes
        for f in o.errors
    ]


def _exit(report: BulkReport, undo: str) -> int:
    if report.status == "success":
        return 0
    error_line(
        f"the offsets of {report.failed_groups} of {report.total_groups} group(s) were not all reset "
        f"(see above); to put every group back as it was: {undo}"
    )
    return 1


def run_offset_reset_bulk(
    path: str,
    backup_id: str,
    groups: str | None,
    all_groups: bool,
    bootstrap_servers: str | None,
    restore_id: str | None,
    fmt: str,
    *,
    max_concurrent: int = 50,
    max_retries: int = 3,
    config_path: str | None = None,
    out: IO[str] | None = None,
) -> int:
    stdout = out or sys.stdout
    names = parse_groups(groups)
    require_groups(names, all_groups, "offset-reset-bulk", "every group in the backup's snapshot")
    if max_concurrent < 1:
        raise ConfigError("must be at least 1", key="--max-concurrent")
    if max_retries < 0:
        raise ConfigError("must be 0 or more", key="--max-retries")
    cluster = target(bootstrap_servers, config_path, "offset-reset-bulk")
    with open_backend(path) as backend:
        mapping, offsets = translated_offsets(backend, backup_id, restore_id, names)
        if fmt == "text":
            print(
                f"Starting bulk offset reset of restore {mapping.restore_id}: "
                f"{len({o.group for o in offsets})} group(s), {len(offsets)} offsets, "
                f"concurrency {max_concurrent}, retries {max_retries}",
                file=stdout,
            )
        if not offsets:
            return _nothing(stdout)
        snapshot, report = apply_with_snapshot(
            backend,
            path,
            backup_id,
            mapping.restore_id,
            offsets,
            cluster,
            "offset-reset-bulk",
            stdout if fmt == "text" else sys.stderr,
            max_concurrent,
            max_retries,
        )
    undo = rollback_command(path, backup_id, snapshot.snapshot_id, cluster)
    if fmt == "text":
        print(bulk_text(report), file=stdout)
    else:
        body: dict[str, Any] = {
            **report.to_dict(),
            "rollback_snapshot_id": snapshot.snapshot_id,
            "undo_command": undo,
        }
        print(dump(body, fmt), file=stdout)
    return _exit(report, undo)


def bulk_text(report: BulkReport) -> str:
    p = report.performance
    lines = [
        f"bulk offset reset {report.status.replace('_', ' ').upper()}: {report.successful_groups} of "
        f"{report.total_groups} group(s) reset, {report.total_offsets_reset} offsets reset, "
        f"{report.total_offsets_failed} failed, in {report.duration_ms:.0f} ms",
        f"  latency per group: avg {p.avg_latency_ms:.1f} ms, p50 {p.p50_latency_ms:.1f} ms, p99 "
        f"{p.p99_latency_ms:.1f} ms; {p.offsets_per_second:.0f} offsets/s; concurrency {p.max_concurrency}; "
        f"retries {p.total_retries}",
    ]
    return "\n".join(lines + _error_lines(report))
