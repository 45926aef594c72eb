"""``kafka-backup backup --config FILE``: run the engine with progress, signals and the ops server.

Exit status: 0 when the run completed, or when a continuous run was stopped
by a signal (that is how it ends); 1 when a snapshot was interrupted before
reaching its end offsets (a CronJob must see that it did not finish), or on
any error. ``--format json`` prints the result as one JSON document on
stdout (:mod:`libkb.cli.results`) and the summary line on stderr;
``--dry-run`` plans without writing (:mod:`libkb.cli.backup_plan`).
"""

from __future__ import annotations

import sys
from typing import IO, TYPE_CHECKING, Any

from libkb.backup.engine import BackupEngine, BackupResult
from libkb.cli.job import run_engine
from libkb.cli.jobfile import load_job
from libkb.cli.logs import error_line
from libkb.cli.progress import summary_line
from libkb.cli.readonly import reading
from libkb.config import JobConfig
from libkb.errors import ConfigError, LibkbError
from libkb.source.adopted import backup_target
from libkb.storage import StorageBackend

if TYPE_CHECKING:
    from libkb.catalog import PartitionDescription


def backup_config(config_path: str) -> JobConfig:
    config = load_job(config_path)
    if config.mode != "backup":
        raise ConfigError(
            f"mode is {config.mode!r}; use kafka-backup {config.mode} for this file",
            key="mode",
            source=config_path,
        )
    return config


def run_backup(
    config_path: str,
    *,
    fmt: str = "text",
    dry_run: bool = False,
    liveness_timeout_secs: float = 300.0,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    out = stdout or sys.stdout
    config = backup_config(config_path)
    if dry_run:
        from libkb.cli.backup_plan import run_backup_dry_run

        return run_backup_dry_run(config, config_path, fmt, out)

    def engine(backend: StorageBackend, progress: Any, metrics: Any) -> BackupEngine:
        target, continues = backup_target(backend, config.backup_id, config.backup.adopt_rust_backup)
        return BackupEngine(config, backend=target, progress=progress, metrics=metrics, continues=continues)

    result = run_engine(
        config,
        engine,
        kind="backup",
        liveness_timeout_secs=liveness_timeout_secs,
        stderr=stderr,
    )
    problem = unfinished(result)
    if fmt == "json":
        from libkb.cli.render import dump
        from libkb.cli.results import backup_document  # (with the catalog) only for JSON: start-up time

        print(summary_line(result), file=stderr or sys.stderr, flush=True)  # for people; stdout is the JSON
        partitions, warnings = stored_partitions(config, result.topics)
        document = backup_document(result, partitions, errors=[problem] if problem else [], warnings=warnings)
        print(dump(document, "json"), file=out, flush=True)
    else:
        print(summary_line(result), file=out, flush=True)
    return exit_status(result)


def stored_partitions(config: JobConfig, topics: list[str]) -> tuple[list[PartitionDescription], list[str]]:
    """What the backup stores of the run's topics now (read back), and a warning if that failed."""
    from libkb.catalog import describe_backup

    try:
        with reading(config.storage) as backend:
            description = describe_backup(backend, config.backup_id)
    except LibkbError as exc:
        return [], [f"the stored offsets could not be read back: {exc}"]
    wanted = set(topics)
    return [p for p in description.partitions if p.topic in wanted], []


def unfinished(result: BackupResult) -> str | None:
    """Why a run that ended did not finish, or None."""
    if result.status in ("complete", "stopped"):
        return None
    return (
        f"backup {result.backup_id!r} was {result.status} before reaching the offsets it started "
        "for; run it again to finish (it resumes)"
    )


def exit_status(result: BackupResult) -> int:
    problem = unfinished(result)
    if problem is None:
        return 0
    error_line(problem)
    return 1
