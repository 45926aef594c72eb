"""``kafka-backup backup --config FILE``: run the engine with progress, signals and the ops server.

Exit status: 0 when the run completed, or when a continuous run was stopped
by a signal (that is how it ends); 1 when a snapshot was interrupted before
reaching its end offsets (a CronJob must see that it did not finish), or on
any error.
"""

from __future__ import annotations

import sys
from contextlib import ExitStack
from typing import IO

from libkb.backup.engine import BackupEngine, BackupProgress, BackupResult
from libkb.cli.logs import error_line
from libkb.cli.progress import make_progress, summary_line
from libkb.cli.signals import StopOnSignal
from libkb.config import JobConfig, load_config
from libkb.errors import ConfigError
from libkb.format.models import manifest_key
from libkb.ops.checks import kafka_check, probe_backend, storage_check
from libkb.ops.health import CheckRunner, Component, HealthModel, Watchdog
from libkb.ops.server import OpsServer
from libkb.storage import StorageBackend, create_backend_from_config

CHECK_INTERVAL_SECS = 10.0
CHECK_TIMEOUT_SECS = 5.0


def run_backup(
    config_path: str,
    *,
    liveness_timeout_secs: float = 300.0,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    out = stdout or sys.stdout
    config = load_config(config_path)
    if config.mode != "backup":
        raise ConfigError(
            f"mode is {config.mode!r}; use kafka-backup {config.mode} for this file", key="mode"
        )
    backend = create_backend_from_config(config.storage)
    with ExitStack() as stack:
        stack.callback(backend.close)
        watchdog = Watchdog(liveness_timeout_secs)
        health = HealthModel(watchdog)
        if config.metrics.enabled:
            start_ops(stack, config, backend, health)
        display = make_progress(config.backup_id, stderr or sys.stderr)
        stack.callback(display.close)

        def on_progress(progress: BackupProgress) -> None:
            watchdog.tick()
            display.update(progress)

        engine = BackupEngine(config, backend=backend, progress=on_progress)

        def stop() -> None:
            health.stopping = True
            engine.stop()

        with StopOnSignal(stop):
            result = engine.run()
        watchdog.finish()
        display.close()
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


def start_ops(stack: ExitStack, config: JobConfig, backend: StorageBackend, health: HealthModel) -> None:
    """Serve /metrics, /health and /ready, with Kafka and storage checked in the background.

    Kafka is the backup's source or the restore's target, whichever the job has.
    """
    cluster = config.source if config.mode == "backup" else config.target
    assert cluster is not None
    secrets = [
        cluster.security.sasl_password or "",
        cluster.security.ssl_key_password or "",
        *(
            str(getattr(config.storage, name, None) or "")
            for name in ("secret_key", "session_token", "account_key")
        ),
    ]
    probe = probe_backend(config.storage, backend, CHECK_TIMEOUT_SECS)
    if probe is not backend:
        stack.callback(probe.close)
    runner = CheckRunner(CHECK_INTERVAL_SECS)
    timeout = 2 * CHECK_TIMEOUT_SECS
    runner.add(health.add(Component("kafka", timeout, secrets)), kafka_check(cluster, CHECK_TIMEOUT_SECS))
    runner.add(
        health.add(Component("storage", timeout, secrets)),
        storage_check(probe, manifest_key(config.backup_id)),
    )
    metrics = config.metrics
    server = OpsServer(health, host=metrics.bind_address, port=metrics.port, metrics_path=metrics.path)
    stack.callback(server.close)
    server.start()
    stack.callback(runner.close)
    runner.start()
