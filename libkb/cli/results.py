"""``backup --format json`` and ``restore --format json``: a run's result as one JSON document.

Scripts read stdout; progress and log lines go to stderr, so stdout holds
this document alone. A run that fails still prints one, with status
``failed`` and the error line's message (:func:`failed_document`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from libkb.backup.engine import BackupResult
from libkb.catalog import PartitionDescription
from libkb.restore.groups import TranslatedOffset, UntranslatedOffset
from libkb.restore.mapping import OffsetMapping
from libkb.restore.result import RestoreResult


def backup_document(
    result: BackupResult,
    partitions: Sequence[PartitionDescription],
    *,
    errors: Sequence[str] = (),
    warnings: Sequence[str] = (),
) -> dict[str, Any]:
    """The run's counters, and each partition's stored offsets after it (``partitions``)."""
    return {
        "command": "backup",
        "backup_id": result.backup_id,
        "run_id": result.run_id,
        "status": result.status,
        "read": {"records": result.records, "bytes": result.bytes},
        "stored": {
            "records": result.stored_records,
            "bytes": result.stored_bytes,
            "segments": result.segments,
        },
        "topics": list(result.topics),
        "partition_count": result.partitions,
        "partitions": [
            {
                "topic": p.topic,
                "partition": p.partition,
                "first_stored_offset": p.start_offset,
                "end_offset": p.end_offset,  # exclusive: where the next run resumes
                "stored_records": p.records,
                "segments": p.segments,
                "stored_bytes": p.stored_bytes,
            }
            for p in partitions
        ],
        "duration_secs": round(result.duration_secs, 3),
        "errors": list(errors),
        "warnings": [*result.missing_ranges, *warnings],
    }


def restore_document(
    result: RestoreResult, *, offset_report: str | None = None, errors: Sequence[str] = ()
) -> dict[str, Any]:
    """The run's counters, each partition's source and target offsets, and the groups' offsets."""
    purge = None
    if result.purge is not None:
        purge = {"records": result.purge.records, "summary": result.purge.summary()}
    return {
        "command": "restore",
        "backup_id": result.backup_id,
        "restore_id": result.restore_id,
        "status": result.status,
        "restored": {"records": result.records, "bytes": result.bytes},
        "skipped_records": result.skipped_records,
        "partition_count": result.partitions,
        "partitions": mapping_partitions(result.mapping) if result.mapping is not None else [],
        "created_topics": list(result.created_topics),
        "purged": purge,
        "group_offsets": [offset_row(o) for o in result.group_offsets],
        "untranslated_group_offsets": [untranslated_row(o) for o in result.untranslated],
        "groups_reset": list(result.groups_reset),
        "offset_report": offset_report,
        "duration_secs": round(result.duration_secs, 3),
        "errors": list(errors),
        "warnings": list(result.notes),
    }


def mapping_partitions(mapping: OffsetMapping) -> list[dict[str, Any]]:
    """One row per target partition written: the source offsets read, the target offsets written."""
    rows = [
        {
            "source_topic": p.source_topic,
            "source_partitions": [p.source_partition],
            "first_source_offset": p.runs[0][0] if p.runs else None,
            "last_source_offset": p.runs[-1][0] + p.runs[-1][2] - 1 if p.runs else None,
            "target_topic": p.target_topic,
            "target_partition": p.target_partition,
            "target_start_offset": p.target_start,
            "target_end_offset": p.target_end,  # exclusive
            "records": p.count,
            "by_key": False,
        }
        for p in mapping.partitions
    ]
    rows += [
        {
            "source_topic": s.source_topic,
            "source_partitions": sorted({b[0] for b in s.blocks}),
            "first_source_offset": None,  # blocks of several source partitions: see show-offset-mapping
            "last_source_offset": None,
            "target_topic": s.target_topic,
            "target_partition": s.target_partition,
            "target_start_offset": s.target_start,
            "target_end_offset": s.target_end,
            "records": s.count,
            "by_key": True,
        }
        for s in mapping.spread
    ]
    return rows


def offset_row(o: TranslatedOffset) -> dict[str, Any]:
    return {
        "group": o.group,
        "source": f"{o.source_topic}[{o.source_partition}]",
        "source_offset": o.source_offset,
        "target": f"{o.target_topic}[{o.target_partition}]",
        "target_offset": o.target_offset,
    }


def untranslated_row(o: UntranslatedOffset) -> dict[str, Any]:
    return {
        "group": o.group,
        "source": f"{o.source_topic}[{o.source_partition}]",
        "source_offset": o.source_offset,
        "target_topic": o.target_topic,
        "reason": f"restored by key into {o.target_partitions} partitions: no exact target offset",
    }


def failed_document(command: str, message: str) -> dict[str, Any]:
    """What ``--format json`` prints when the command fails before it has a result."""
    return {"command": command, "status": "failed", "error": message, "errors": [message]}
