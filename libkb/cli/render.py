"""Turn catalog results into text tables, JSON or YAML for stdout.

JSON and YAML carry the same mapping (``to_dict`` of the catalog objects) so
scripts can pick either; text is for people and may change between versions.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import yaml

from libkb.catalog import (
    BackupDescription,
    BackupSummary,
    GroupSnapshot,
    PartitionDescription,
    ValidationReport,
    iso_ms,
)
from libkb.cli.units import human_bytes as human_bytes
from libkb.format.models import Manifest


def dump(data: Any, fmt: str) -> str:
    """``data`` (JSON-compatible) as ``json`` or ``yaml`` text."""
    if fmt == "json":
        return json.dumps(data, indent=2)
    if fmt == "yaml":
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip("\n")
    raise ValueError(f"unknown format {fmt!r}")


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], indent: str = "") -> str:
    """Left-aligned columns, two spaces apart."""
    cells = [[str(h) for h in headers]] + [["-" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        indent + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )


def list_text(summaries: Sequence[BackupSummary], location: str) -> str:
    if not summaries:
        return f"no backups at {location}"
    rows = [
        (
            s.backup_id,
            s.status,
            iso_ms(s.updated_ms),
            len(s.topics),
            s.partitions,
            f"{s.records:,}",
            human_bytes(s.stored_bytes),
        )
        for s in summaries
    ]
    text = table(("BACKUP ID", "STATUS", "UPDATED", "TOPICS", "PARTITIONS", "RECORDS", "STORED"), rows)
    errors = [f"{s.backup_id}: {s.error}" for s in summaries if s.error]
    foreign = [
        f"{s.backup_id}: written by {s.written_by}"
        for s in summaries
        if s.written_by and s.format_version is None and not s.error
    ]
    return "\n".join([text, *errors, *foreign])


def describe_text(d: BackupDescription) -> str:
    lines = [*_backup_lines(d), "", "Topics:", _topics_table(d.manifest), "", "Partitions:"]
    lines += [_partitions_table(d.partitions), *_missing_lines(d.partitions), *_pruned_lines(d.partitions)]
    lines += _incarnation_lines(d)
    if d.provenance is None or d.provenance.status is None:  # a format without runs has no table
        lines += ["", "Runs:", _runs_table(d.manifest)]
    lines += ["", *_groups_lines(d.groups), *_format_notes(d)]
    return "\n".join(lines)


def _backup_lines(d: BackupDescription) -> list[str]:
    m, origin = d.manifest, d.provenance
    last = m.runs[-1] if m.runs else None
    if origin is None or origin.format_version is not None:
        written = [
            f"Format:          version {m.format_version}, {m.compression}, libkb {m.libkb_version or '?'}"
        ]
    else:
        written = [f"Format:          {origin.format}, {m.compression}", f"Written by:      {origin.writer}"]
    return [
        f"Backup:          {m.backup_id}",
        f"Status:          {d.status}" + (f" (last run {last.run_id}, {last.mode})" if last else ""),
        f"Created:         {iso_ms(m.created_ms)}",
        f"Updated:         {iso_ms(m.updated_ms)}",
        *written,
        f"Source cluster:  {m.source_cluster_id or '-'}",
        f"Stored:          {d.records:,} records in {d.segments:,} segments, {human_bytes(d.stored_bytes)}",
        *_encryption_lines(d),
    ]


def _encryption_lines(d: BackupDescription) -> list[str]:
    if not d.encrypted_segments:
        return []
    return [
        f"Encryption:      {d.encrypted_segments:,} of {d.segments:,} segments encrypted (AES-256-GCM); "
        "restore and validate --deep need the key"
    ]


def _format_notes(d: BackupDescription) -> list[str]:
    notes = d.provenance.notes if d.provenance is not None else ()
    if not notes:
        return []
    return [
        "",
        "Format notes (what this format does not keep, and what to know):",
        *(f"  - {n}" for n in notes),
    ]


def _incarnation_lines(d: BackupDescription) -> list[str]:
    """Topics deleted and re-created between runs: each log is stored (and restored) on its own."""
    several = {t: found for t, found in d.incarnations.items() if len(found) > 1}
    if not several:
        return []
    rows = [
        (topic, i.number, i.stored, i.topic_id or "-", i.partitions, f"{i.records:,}")
        for topic, found in several.items()
        for i in found
    ]
    header = ("TOPIC", "INCARNATION", "STORED AS", "TOPIC ID", "PARTITIONS", "RECORDS")
    return [
        "",
        "Incarnations (topics deleted and re-created; restore one with restore.incarnations):",
        table(header, rows, "  "),
    ]


def _topics_table(m: Manifest) -> str:
    rows = [
        (
            name,
            t.partitions,
            t.replication_factor if t.replication_factor > 0 else None,  # -1: not recorded
            ", ".join(f"{k}={v}" for k, v in t.configs.items()),
        )
        for name, t in sorted(m.topics.items())
    ]
    return table(("TOPIC", "PARTITIONS", "REPLICATION", "CONFIGS"), rows, "  ")


def _partitions_table(partitions: Sequence[PartitionDescription]) -> str:
    rows = [
        (
            p.topic,
            p.partition,
            f"[{p.start_offset}, {p.end_offset})" if p.indexed and p.start_offset is not None else "empty",
            f"{p.records:,}",
            p.segments,
            human_bytes(p.stored_bytes),
            iso_ms(p.min_timestamp),
            iso_ms(p.max_timestamp),
        )
        for p in partitions
    ]
    headers = ("TOPIC", "PARTITION", "OFFSETS", "RECORDS", "SEGMENTS", "STORED", "FIRST TIME", "LAST TIME")
    return table(headers, rows, "  ")


def _missing_lines(partitions: Sequence[PartitionDescription]) -> list[str]:
    return [
        f"  {p.topic}/{p.partition}: offsets [{gap.start}, {gap.end}) missing ({gap.reason})"
        for p in partitions
        for gap in p.missing
    ]


def _pruned_lines(partitions: Sequence[PartitionDescription]) -> list[str]:
    lines = []
    for p in partitions:
        for cut in p.pruned:
            times = f", {iso_ms(cut.min_timestamp)} to {iso_ms(cut.max_timestamp)}" if cut.records else ""
            lines.append(
                f"  {p.topic}/{p.partition}: offsets [{cut.start}, {cut.end}) pruned {iso_ms(cut.pruned_ms)} "
                f"({cut.reason}): {cut.records:,} records, {human_bytes(cut.bytes)}{times}"
            )
    return lines


def _runs_table(m: Manifest) -> str:
    rows = [
        (
            r.run_id,
            r.mode,
            r.status,
            iso_ms(r.started_ms),
            iso_ms(r.finished_ms),
            f"{r.records:,}",
            human_bytes(r.bytes),
        )
        for r in m.runs
    ]
    return table(("RUN", "MODE", "STATUS", "STARTED", "FINISHED", "RECORDS", "BYTES"), rows, "  ")


def _groups_lines(snapshot: GroupSnapshot | None) -> list[str]:
    if snapshot is None:
        return ["Consumer groups: no snapshot"]
    lines = [f"Consumer groups: {len(snapshot.groups)} in the snapshot of {iso_ms(snapshot.taken_ms)}"]
    for g in snapshot.groups:
        offsets = ", ".join(
            f"{t}[{p}]={o}" for t, parts in sorted(g.offsets.items()) for p, o in sorted(parts.items())
        )
        lines.append(f"  {g.group}: {offsets}")
    return lines


def validate_text(r: ValidationReport) -> str:
    checked = f"{r.checked_partitions} partitions, {r.checked_segments} segments"
    if r.deep:
        checked = f"deep check: {checked}, {r.checked_records:,} records"
    else:
        checked = f"shallow check: {checked}; add --deep to verify every byte"
    verdict = "valid" if r.ok else f"{len(r.problems)} problem(s)"
    lines = [f"backup {r.backup_id}: {verdict} ({checked})"]
    lines += [f"  problem: {p}" for p in r.problems]
    lines += [f"  warning: {w}" for w in r.warnings]
    lines += [f"  note: {n}" for n in r.notes]
    return "\n".join(lines)
