"""``restore``, ``validate-restore``, ``show-offset-mapping``; the offsets ``offset-reset`` applies.

Exit status: 0 when a restore completed (or a plan was printed); 1 when it
was interrupted (a re-run resumes it) or on any error.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import IO, Any

from libkb.cli.group_reset import restore_resetter
from libkb.cli.job import run_engine
from libkb.cli.jobfile import load_job
from libkb.cli.logs import error_line
from libkb.cli.offset_common import Target
from libkb.cli.progress import rate
from libkb.cli.readonly import reading
from libkb.cli.render import dump, human_bytes, table
from libkb.cli.results import offset_row, restore_document, untranslated_row
from libkb.config import JobConfig
from libkb.errors import ConfigError, LibkbError
from libkb.restore.engine import RestoreEngine, RestoreResult
from libkb.restore.groups import (
    TranslatedOffset,
    translate_groups,
)
from libkb.restore.mapping import OffsetMapping
from libkb.restore.plan import RestorePlan
from libkb.restore.result import PurgeReport
from libkb.restore.state import RestoreState, mapping_key, state_key
from libkb.source import open_backup
from libkb.storage import NotFoundError, StorageBackend
from libkb.storage.config import storage_url


class RestoreNotFoundError(LibkbError, FileNotFoundError):
    """No stored restore of the backup matches."""

    def __str__(self) -> str:
        return str(self.args[0])


def _restore_config(path: str) -> JobConfig:
    config = load_job(path)
    if config.mode != "restore":
        raise ConfigError(
            f"mode is {config.mode!r}; this command needs mode: restore", key="mode", source=path
        )
    return config


def run_restore(
    config_path: str,
    *,
    dry_run: bool = False,
    fmt: str = "text",
    liveness_timeout_secs: float = 300.0,
    out: IO[str] | None = None,
) -> int:
    config = _restore_config(config_path)
    stdout = out or sys.stdout
    if dry_run or config.restore.dry_run:
        return _print_plan(config, config_path, fmt, stdout)
    # With --format json stdout holds the result document alone; what people read goes to stderr.
    said = stdout if fmt == "text" else sys.stderr

    def engine(backend: StorageBackend, progress: Any, metrics: Any) -> RestoreEngine:
        # The groups' offsets get a rollback snapshot first, as offset-reset execute does.
        assert config.target is not None
        cluster = Target(config.target, None, config_path)
        path = storage_url(config.storage)
        reset = restore_resetter(backend, path, config.backup_id, cluster, said)
        return RestoreEngine(config, backend=backend, progress=progress, metrics=metrics, reset_groups=reset)

    result = run_engine(config, engine, kind="restore", liveness_timeout_secs=liveness_timeout_secs)
    for note in result.notes:
        print(f"note: {note}", file=said)
    print(summary_line(result), file=said, flush=True)
    report = config.restore.offset_report if result.status == "complete" else None
    if report:
        write_offset_report(report, result)
        print(f"offset report: {report}", file=said)
    problem = None
    if result.status != "complete":
        problem = f"restore {result.restore_id} was {result.status}; run the same command again to resume it"
    if fmt == "json":
        document = restore_document(result, offset_report=report, errors=[problem] if problem else [])
        print(dump(document, "json"), file=stdout, flush=True)
    if problem is None:
        return 0
    error_line(problem)
    return 1


def _print_plan(config: JobConfig, config_path: str, fmt: str, out: IO[str]) -> int:
    """``--dry-run`` (or ``restore.dry_run``): the plan, read only, as ``validate-restore`` prints it."""
    where = f"{storage_url(config.storage)} (the storage of {config_path})"
    with reading(config.storage, where) as backend:  # a plan only reads: nothing is created
        result = RestoreEngine(config, backend=backend).plan()
    assert result.plan is not None
    if fmt == "text":
        text = plan_text(result.plan, result.purge)
    else:
        text = dump({"status": "planned", **plan_dict(result.plan, result.purge)}, fmt)
    print(text, file=out, flush=True)
    return 0


def write_offset_report(path: str, result: RestoreResult) -> None:
    """``restore.offset_report``: the restore's offset mapping and translated group offsets, as JSON.

    The mapping is the one ``show-offset-mapping --format json`` shows; written
    to a temporary file first, so a reader never sees half a report.
    """
    report = {
        "backup_id": result.backup_id,
        "restore_id": result.restore_id,
        "mapping": json.loads(result.mapping.to_json()) if result.mapping is not None else None,
        "group_offsets": [offset_row(o) for o in result.group_offsets],
        "untranslated": [untranslated_row(o) for o in result.untranslated],
    }
    target = Path(path)
    partial = target.with_name(f".{target.name}.partial")
    partial.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    partial.replace(target)


def summary_line(result: RestoreResult) -> str:
    line = (
        f"restore {result.restore_id} of backup {result.backup_id} {result.status}: "
        f"{result.records:,} records, {human_bytes(result.bytes)}, {result.partitions} partitions, "
        f"{result.duration_secs:.1f}s ({rate(result.bytes, result.duration_secs):.1f} MiB/s)"
    )
    if result.skipped_records:
        line += f"; {result.skipped_records:,} already restored by an earlier run"
    if result.purge is not None and result.purge.partitions:
        line += f"; purged first: {result.purge.summary()}"
    if result.group_offsets:
        groups = sorted({o.group for o in result.group_offsets})
        line += f"; offsets translated for {len(groups)} group(s)"
        if result.groups_reset:
            line += f", applied to {', '.join(result.groups_reset)}"
    return line


# -- validate-restore ---------------------------------------------------------


def plan_dict(plan: RestorePlan, purge: PurgeReport | None = None) -> dict[str, Any]:
    """The plan for json/yaml; with ``purge`` (``purge_topics``), what it deletes first."""
    body = {
        "backup_id": plan.backup_id,
        "partitions": [
            {
                "source_topic": t.source_topic,
                "source_partition": t.source_partition,
                "source_start_offset": t.start_offset,
                "source_end_offset": t.end_offset,
                "records": t.max_records,
                "records_exact": t.exact,
                "stored_bytes": t.stored_bytes,
                "segments": len(t.segments),
                "target_topic": t.target_topic,
                "target_partition": t.target_partition,
            }
            for t in plan.tasks
        ],
        "repartitioned": [
            {
                "source_topic": s.source_topic,
                "target_topic": s.target_topic,
                "target_partitions": s.partitions,
                "strategy": s.strategy,
                "records": s.max_records,
                "records_exact": s.exact,
                "source_partitions": [t.source_partition for t in s.sources],
            }
            for s in plan.spread
        ],
        "target_partitions_needed": plan.target_partitions,
        "skipped_topics": plan.skipped_topics,
        "notes": plan.notes,
    }
    if purge is not None:
        body["purge"] = {
            "records": purge.records,
            "partitions": [
                {
                    "topic": p.topic,
                    "partition": p.partition,
                    "from_offset": p.low,
                    "to_offset": p.high,
                    "records": p.records,
                }
                for p in purge.partitions
            ],
            "not_purged": [{"topic": t, "partition": n} for t, n in purge.kept],
        }
    return body


def plan_text(plan: RestorePlan, purge: PurgeReport | None = None) -> str:
    rows = [
        (
            f"{t.source_topic}[{t.source_partition}]",
            f"[{t.start_offset}, {t.end_offset})",
            f"{t.max_records:,}" if t.exact else f"<= {t.max_records:,}",
            human_bytes(t.stored_bytes),
            f"{t.target_topic}[{t.target_partition}]",
        )
        for t in plan.tasks
    ]
    rows += [
        (
            f"{t.source_topic}[{t.source_partition}]",
            f"[{t.start_offset}, {t.end_offset})",
            f"{t.max_records:,}" if t.exact else f"<= {t.max_records:,}",
            human_bytes(t.stored_bytes),
            f"{s.target_topic}[by key of {s.partitions}]",
        )
        for s in plan.spread
        for t in s.sources
    ]
    lines = [f"restore plan for backup {plan.backup_id} (nothing written):"]
    if rows:
        lines.append(table(("SOURCE", "OFFSETS", "RECORDS", "STORED", "TARGET"), rows, indent="  "))
    else:
        lines.append("  nothing to restore: no backed-up topic matches target.topics and the filters")
    if plan.skipped_topics:
        lines.append(f"  not selected: {', '.join(plan.skipped_topics)}")
    for spread in plan.spread:
        how = "murmur2 of the key" if spread.strategy == "murmur2" else "round robin"
        lines.append(
            f"  by key: {spread.source_topic} into {spread.partitions} partitions of {spread.target_topic} "
            f"({how}; consumer-group offsets are not translated)"
        )
    exact = all(t.exact for t in plan.tasks) and all(s.exact for s in plan.spread)
    sources = len(plan.tasks) + sum(len(s.sources) for s in plan.spread)
    lines.append(f"  total: {'' if exact else '<= '}{plan.max_records:,} records in {sources} partitions")
    lines += [f"  note: {note}" for note in plan.notes]
    if purge is not None:
        lines += purge_lines(purge)
    return "\n".join(lines)


def purge_lines(purge: PurgeReport) -> list[str]:
    """What ``purge_topics`` deletes before the restore writes (a dry run deletes nothing)."""
    if not purge.partitions:
        lines = ["  purge first (restore.purge_topics): nothing, the target partitions hold no records"]
    else:
        lines = [f"  purge first (restore.purge_topics): {purge.summary()}, below their high watermarks:"]
        rows = [
            (f"{p.topic}[{p.partition}]", f"[{p.low}, {p.high})", f"{p.records:,}") for p in purge.partitions
        ]
        lines.append(table(("TARGET", "OFFSETS", "RECORDS"), rows, indent="    "))
    if purge.kept:
        names = ", ".join(f"{t}[{p}]" for t, p in purge.kept)
        lines.append(f"  not purged (this restore already began writing them): {names}")
    return lines


def run_validate_restore(config_path: str, fmt: str, out: IO[str] | None = None) -> int:
    return _print_plan(_restore_config(config_path), config_path, fmt, out or sys.stdout)


# -- offset mappings -----------------------------------------------------------


def load_mappings(backend: StorageBackend, backup_id: str, restore_id: str | None) -> list[OffsetMapping]:
    """The stored mappings of a backup's restores (one, when ``restore_id`` is given), oldest first."""
    ids = sorted(
        {
            k.split("/")[2]
            for k in backend.iter_keys(f"{backup_id}/restores/")
            if k.endswith("/offset-mapping.json")
        }
    )
    if restore_id is not None:
        if restore_id not in ids:
            raise RestoreNotFoundError(
                f"no restore {restore_id!r} of backup {backup_id!r} (restores: {', '.join(ids) or 'none'})"
            )
        ids = [restore_id]
    if not ids:
        raise RestoreNotFoundError(f"backup {backup_id!r} has no stored restore (offset mapping) yet")
    created = {}
    for rid in ids:
        try:
            created[rid] = RestoreState.from_json(backend.get(state_key(backup_id, rid))).created_ms
        except NotFoundError:
            created[rid] = 0
    return [
        OffsetMapping.from_json(backend.get(mapping_key(backup_id, rid)), name=mapping_key(backup_id, rid))
        for rid in sorted(ids, key=lambda r: created[r])
    ]


def mapping_rows(mapping: OffsetMapping) -> list[dict[str, Any]]:
    """One row per run of consecutive offsets; for a topic restored by key, one per block.

    A block's ``source_offset`` is its first source offset: its records are
    at consecutive target offsets, their source offsets are not consecutive.
    """
    rows = [
        {
            "restore_id": mapping.restore_id,
            "source_topic": p.source_topic,
            "source_partition": p.source_partition,
            "source_offset": src,
            "target_topic": p.target_topic,
            "target_partition": p.target_partition,
            "target_offset": tgt,
            "records": length,
            "by_key": False,
        }
        for p in mapping.partitions
        for src, tgt, length in p.runs
    ]
    for sp in mapping.spread:
        target = sp.target_start
        for source_partition, count, first, _ in sp.blocks:
            rows.append(
                {
                    "restore_id": mapping.restore_id,
                    "source_topic": sp.source_topic,
                    "source_partition": source_partition,
                    "source_offset": first,
                    "target_topic": sp.target_topic,
                    "target_partition": sp.target_partition,
                    "target_offset": target,
                    "records": count,
                    "by_key": True,
                }
            )
            target += count
    return rows


def run_show_offset_mapping(
    path: str, backup_id: str, restore_id: str | None, fmt: str, out: IO[str] | None = None
) -> int:
    with reading(path) as backend:
        mappings = load_mappings(backend, backup_id, restore_id)
    stdout = out or sys.stdout
    rows = [row for m in mappings for row in mapping_rows(m)]
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["restore_id"])
        writer.writeheader()
        writer.writerows(rows)
        stdout.write(buffer.getvalue())
    elif fmt == "text":
        for m in mappings:
            print(f"restore {m.restore_id} of backup {m.backup_id}:", file=stdout)
            print(
                table(
                    ("SOURCE", "TARGET", "TARGET OFFSETS", "RECORDS", "RUNS"),
                    [
                        (
                            f"{p.source_topic}[{p.source_partition}]",
                            f"{p.target_topic}[{p.target_partition}]",
                            f"[{p.target_start}, {p.target_end})",
                            f"{p.count:,}",
                            len(p.runs),
                        )
                        for p in m.partitions
                    ]
                    + [
                        (
                            f"{p.source_topic}[{', '.join(str(b[0]) for b in p.blocks)}] by key",
                            f"{p.target_topic}[{p.target_partition}]",
                            f"[{p.target_start}, {p.target_end})",
                            f"{p.count:,}",
                            len(p.blocks),
                        )
                        for p in m.spread
                    ],
                    indent="  ",
                ),
                file=stdout,
            )
    else:
        print(dump([json.loads(m.to_json()) for m in mappings], fmt), file=stdout)
    return 0


# -- offset-reset -----------------------------------------------------------------


def translated_offsets(
    backend: StorageBackend, backup_id: str, restore_id: str | None, groups: list[str] | None
) -> tuple[OffsetMapping, list[TranslatedOffset]]:
    mapping = load_mappings(backend, backup_id, restore_id)[-1]  # the latest restore by default
    stored = open_backup(backend, backup_id).groups()
    if stored is None:
        raise RestoreNotFoundError(f"backup {backup_id!r} has no consumer-group snapshot")
    snapshot = stored[1]
    if groups:
        known = {g.group for g in snapshot}
        unknown = sorted(set(groups) - known)
        if unknown:
            raise ConfigError(
                f"group(s) {', '.join(unknown)} are not in the backup's snapshot "
                f"(it has: {', '.join(sorted(known)) or 'none'})",
                key="--groups",
            )
    return mapping, translate_groups(snapshot, mapping, groups)
