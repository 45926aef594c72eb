"""``three-phase-restore --config FILE``: the original tool's restore with consumer-group recovery, in phases.

1. **Backup**: nothing to do at restore time. The original tool needed its
   backups to carry ``x-original-offset`` headers; libkb's segments keep every
   record's offset, so any libkb backup qualifies.
2. **Restore**: the records go to the target and the offset mapping is
   stored; consumer groups are not touched (``reset_consumer_offsets`` is
   held back for phase 3). This is ``kafka-backup restore``.
3. **Offset reset**: the backup's group offsets, translated exactly through
   the mapping, are committed on the target by ``offset-reset execute`` (the
   same code, so its safety checks apply: groups with active members are
   refused), then read back and compared.

Phase 3 runs when the file asks for it (``reset_consumer_offsets`` or
``auto_consumer_groups``); otherwise it is skipped with a warning, as there.
Exit 0 when every phase that ran succeeded; 1 otherwise. The report is text,
or JSON/YAML (``--format``, libkb's), then the phases' own output goes to stderr.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field, replace
from typing import IO, Any

from libkb.cli.job import run_engine
from libkb.cli.jobfile import load_job
from libkb.cli.logs import error_line
from libkb.cli.offset_reset import run_offset_reset
from libkb.cli.render import dump, human_bytes
from libkb.cli.restore import plan_text, summary_line
from libkb.config import JobConfig
from libkb.errors import ConfigError, LibkbError
from libkb.kafka.admin import KafkaAdmin
from libkb.kafka.clients import make_admin
from libkb.restore.engine import RestoreEngine, RestoreResult
from libkb.restore.groups import TranslatedOffset
from libkb.storage import create_backend_from_config
from libkb.storage.config import storage_url


@dataclass(slots=True)
class OffsetPhase:
    """Phase 3: ``applied`` (and verified), ``skipped``, ``dry-run`` or ``failed``."""

    status: str = "skipped"
    groups: list[str] = field(default_factory=list)
    partitions_planned: int = 0
    partitions_reset: int = 0
    verified: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ThreePhaseReport:
    backup_id: str
    restore_id: str = ""
    restore_status: str = "not started"
    records: int = 0
    bytes: int = 0
    partitions: int = 0
    topics: list[str] = field(default_factory=list)
    mapped_partitions: int = 0
    offsets: OffsetPhase = field(default_factory=OffsetPhase)
    duration_secs: float = 0.0
    warnings: list[str] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return self.restore_status in ("complete", "planned") and self.offsets.status != "failed"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "success": self.success}


def run_three_phase_restore(
    config_path: str,
    *,
    fmt: str = "text",
    liveness_timeout_secs: float = 300.0,
    out: IO[str] | None = None,
) -> int:
    stdout = out or sys.stdout
    phases = stdout if fmt == "text" else sys.stderr  # JSON/YAML: stdout holds the report alone
    config = load_job(config_path)
    if config.mode != "restore":
        raise ConfigError(
            f"mode is {config.mode!r}; this command needs mode: restore", key="mode", source=config_path
        )
    started = time.monotonic()
    report = ThreePhaseReport(config.backup_id)
    print("phase 1 (backup): nothing to do: libkb backups keep every record's offset", file=phases)
    print("phase 2 (restore): records to the target; consumer groups untouched", file=phases, flush=True)
    result = _restore_phase(config, liveness_timeout_secs)
    _record_restore(report, result)
    if result.status == "planned":
        assert result.plan is not None
        print(plan_text(result.plan, result.purge), file=phases)
        report.offsets.status = "dry-run"
        report.warnings.append("restore.dry_run: nothing was restored, so no offsets were reset")
    else:
        for note in result.notes:
            print(f"note: {note}", file=phases)
        print(summary_line(result), file=phases, flush=True)
        if result.status == "complete":
            _offset_phase(config, config_path, result, report, phases)
    report.duration_secs = round(time.monotonic() - started, 3)
    print(report_text(report) if fmt == "text" else dump(report.to_dict(), fmt), file=stdout, flush=True)
    if report.restore_status not in ("complete", "planned"):
        error_line(
            f"restore {report.restore_id} was {report.restore_status}; run the same command again to "
            "resume it"
        )
    elif report.offsets.status == "failed":
        error_line(f"consumer-group offsets were not reset: {'; '.join(report.offsets.errors)}")
    return 0 if report.success else 1


def _restore_phase(config: JobConfig, liveness_timeout_secs: float) -> RestoreResult:
    held_back = replace(config, restore=replace(config.restore, reset_consumer_offsets=False))
    return run_engine(
        held_back,
        lambda backend, progress, metrics: RestoreEngine(
            held_back, backend=backend, progress=progress, metrics=metrics
        ),
        kind="restore",
        liveness_timeout_secs=liveness_timeout_secs,
        serve=not config.restore.dry_run,
    )


def _record_restore(report: ThreePhaseReport, result: RestoreResult) -> None:
    report.backup_id, report.restore_id, report.restore_status = (
        result.backup_id,
        result.restore_id,
        result.status,
    )
    report.records, report.bytes, report.partitions = result.records, result.bytes, result.partitions
    if result.plan is not None:
        report.topics = sorted({t.target_topic for t in result.plan.tasks})
    if result.mapping is not None:
        report.mapped_partitions = len(result.mapping.partitions)


def _offset_phase(
    config: JobConfig, config_path: str, result: RestoreResult, report: ThreePhaseReport, out: IO[str]
) -> None:
    """Phase 3 through ``offset-reset execute`` on this restore's mapping, then a read-back."""
    phase = report.offsets
    phase.groups = sorted({o.group for o in result.group_offsets})
    phase.partitions_planned = len(result.group_offsets)
    if not config.restore.reset_consumer_offsets:
        if phase.groups:
            report.warnings.append(
                f"{len(phase.groups)} consumer group(s) in the backup have offsets on the restored "
                "partitions, but reset_consumer_offsets is false: phase 3 skipped (offset-reset execute "
                "applies them later)"
            )
        return
    if not phase.groups:
        report.warnings.append("no consumer group in the backup has offsets on the restored partitions")
        return
    print(
        f"phase 3 (offset reset): {len(phase.groups)} group(s) through offset-reset execute",
        file=out,
        flush=True,
    )
    try:
        with create_backend_from_config(config.storage) as backend:
            run_offset_reset(
                "execute",
                storage_url(config.storage),
                result.backup_id,
                ",".join(phase.groups),
                False,
                None,
                result.restore_id,
                "text",
                out=out,
                config_path=config_path,
                backend=backend,
            )
        phase.partitions_reset = len(result.group_offsets)
        mismatches = _read_back(config, result.group_offsets)
    except LibkbError as exc:
        phase.status, phase.errors = "failed", [str(exc)]
        return
    phase.verified = len(result.group_offsets) - len(mismatches)
    if mismatches:
        phase.status, phase.errors = "failed", mismatches
    else:
        phase.status = "applied"
        print(f"verified: {phase.verified} committed offset(s) read back from the target match", file=out)


def _read_back(config: JobConfig, offsets: list[TranslatedOffset]) -> list[str]:
    """Each translated offset compared with what the target's group now has committed; the differences."""
    assert config.target is not None
    committed: dict[tuple[str, str, int], int] = {}
    for group in KafkaAdmin(make_admin(config.target)).group_offsets({o.target_topic for o in offsets}):
        for topic, partitions in group.offsets.items():
            for partition, offset in partitions.items():
                committed[(group.group, topic, partition)] = offset
    problems = []
    for o in offsets:
        got = committed.get((o.group, o.target_topic, o.target_partition))
        if got != o.target_offset:
            problems.append(
                f"group {o.group} has {got if got is not None else 'nothing'} committed on "
                f"{o.target_topic}[{o.target_partition}], not {o.target_offset}"
            )
    return problems


def report_text(r: ThreePhaseReport) -> str:
    o = r.offsets
    lines = [
        f"three-phase restore of backup {r.backup_id}: {'success' if r.success else 'FAILED'} "
        f"in {r.duration_secs:.1f}s",
        f"  phase 2 (restore {r.restore_id or '-'}): {r.restore_status}: {r.records:,} records, "
        f"{human_bytes(r.bytes)}, {r.partitions} partition(s) of {len(r.topics)} topic(s); "
        f"offset mapping of {r.mapped_partitions} partition(s)",
        f"  phase 3 (offset reset): {o.status}: {len(o.groups)} group(s), {o.partitions_planned} partition "
        f"offset(s) planned, {o.partitions_reset} reset, {o.verified} verified",
    ]
    lines += [f"    error: {e}" for e in o.errors]
    lines += [f"  warning: {w}" for w in r.warnings]
    return "\n".join(lines)
