"""``kafka-backup backup --config FILE``: run the engine with progress, signals and the ops server.

Exit status: 0 when the run completed, or when a continuous run was stopped
by a signal (that is how it ends); 1 when a snapshot was interrupted before
reaching its end offsets (a CronJob must see that it did not finish), or on
any error.
"""

from __future__ import annotations

import sys
from typing import IO, Any

from libkb.backup.engine import BackupEngine, BackupResult
from libkb.cli.job import run_engine
from libkb.cli.jobfile import load_job
from libkb.cli.logs import error_line
from libkb.cli.progress import summary_line
from libkb.errors import ConfigError
from libkb.source.adopted import backup_target
from libkb.storage import StorageBackend


def run_backup(
    config_path: str,
    *,
    liveness_timeout_secs: float = 300.0,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    out = stdout or sys.stdout
    config = load_job(config_path)
    if config.mode != "backup":
        raise ConfigError(
            f"mode is {config.mode!r}; use kafka-backup {config.mode} for this file",
            key="mode",
            source=config_path,
        )

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
    print(summary_line(result), file=out, flush=True)
    return exit_status(result)


def exit_status(result: BackupResult) -> int:
    if result.status in ("complete", "stopped"):
        return 0
    error_line(
        f"backup {result.backup_id!r} was {result.status} before reaching the offsets it started "
        "for; run it again to finish (it resumes)"
    )
    return 1
