"""What ``backup`` and ``restore`` share: running an engine with progress, signals and the ops server.

Both engines take ``(config, backend=, progress=, metrics=)`` and have
``run()`` and ``stop()``; this module wires them to the process: the run's
metrics registry, a progress display, a liveness watchdog ticked by
progress, /metrics /health /ready when ``metrics.enabled``, and
SIGTERM/SIGINT asking the engine to stop cleanly.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import IO, Any, Protocol, TypeVar

from prometheus_client import GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR, CollectorRegistry

from libkb.cli.progress import make_progress
from libkb.cli.signals import StopOnSignal
from libkb.config import JobConfig
from libkb.format.models import manifest_key
from libkb.metrics import RunMetrics
from libkb.ops.checks import kafka_check, probe_backend, storage_check
from libkb.ops.health import CheckRunner, Component, HealthModel, Watchdog
from libkb.ops.push import MetricsPusher
from libkb.ops.server import OpsServer
from libkb.storage import OutageWatch, StorageBackend, create_backend_from_config

log = logging.getLogger("libkb.cli")

CHECK_INTERVAL_SECS = 10.0
CHECK_TIMEOUT_SECS = 5.0

R_co = TypeVar("R_co", covariant=True)


class Engine(Protocol[R_co]):
    #: The run's storage outage deadline; waiting through an outage is progress for liveness.
    outage: OutageWatch

    def run(self) -> R_co: ...

    def stop(self) -> None: ...


def run_engine(
    config: JobConfig,
    make_engine: Callable[[StorageBackend, Callable[[Any], None], RunMetrics], Engine[R_co]],
    *,
    kind: str,
    liveness_timeout_secs: float,
    serve: bool = True,
    stderr: IO[str] | None = None,
) -> R_co:
    """Build the engine with ``make_engine(backend, on_progress, metrics)`` and run it to its end."""
    metrics = run_metrics(config.metrics.max_partition_labels)
    backend = create_backend_from_config(config.storage, metrics=metrics.storage)
    with ExitStack() as stack:
        stack.callback(backend.close)
        watchdog = Watchdog(liveness_timeout_secs)
        health = HealthModel(watchdog)
        serving = config.metrics.enabled and serve
        if serving:
            start_ops(stack, config, backend, health, metrics.registry)
            start_push(stack, config, kind, metrics.registry)
        display = make_progress(config.backup_id, stderr or sys.stderr, kind=kind)
        stack.callback(display.close)

        def on_progress(progress: Any) -> None:
            watchdog.tick()
            display.update(progress)

        engine = make_engine(backend, on_progress, metrics)
        # Waiting for storage to come back is the run working: a restart would not help.
        engine.outage.subscribe(lambda _: watchdog.tick())

        def stop() -> None:
            health.stopping = True
            engine.stop()

        with StopOnSignal(stop) as signals:
            result = engine.run()
            watchdog.finish()
            display.close()
            if serving and not signals.received:
                keep_serving(config.metrics.keep_alive_seconds, signals)
    return result


def keep_serving(seconds: float, signals: StopOnSignal) -> None:
    """``metrics.keep_alive_seconds``: serve the final values a while for a last scrape.

    A run that ends by itself (a snapshot backup, a restore) would otherwise
    take its endpoint with it before Prometheus saw the end; a signal ends
    the wait at once.
    """
    if seconds <= 0:
        return
    log.info("serving metrics for %g more seconds (metrics.keep_alive_seconds)", seconds)
    deadline = time.monotonic() + seconds
    while not signals.received and time.monotonic() < deadline:
        time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))


def start_push(stack: ExitStack, config: JobConfig, kind: str, registry: CollectorRegistry) -> None:
    """``metrics.pushgateway_url``: push while the run goes and once at its end, however it ends."""
    url = config.metrics.pushgateway_url
    if url is None:
        return
    pusher = MetricsPusher(
        url,
        registry,
        grouping_key={"backup_id": config.backup_id, "mode": kind},
        interval_secs=config.metrics.push_interval_seconds,
        secrets=config.secrets(),
    )
    stack.callback(pusher.close)
    pusher.start()


def run_metrics(max_partition_labels: int = 0) -> RunMetrics:
    """The run's metrics, in a registry that also has the process, platform and GC collectors."""
    registry = CollectorRegistry()
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)
    return RunMetrics(registry, max_partition_labels=max_partition_labels)


def start_ops(
    stack: ExitStack,
    config: JobConfig,
    backend: StorageBackend,
    health: HealthModel,
    registry: CollectorRegistry,
) -> None:
    """Serve /metrics, /health and /ready, with Kafka and storage checked in the background.

    Kafka is the backup's source or the restore's target, whichever the job has.
    """
    cluster = config.source if config.mode == "backup" else config.target
    assert cluster is not None
    secrets = config.secrets()
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
    server = OpsServer(
        health, host=metrics.bind_address, port=metrics.port, metrics_path=metrics.path, registry=registry
    )
    stack.callback(server.close)
    server.start()
    stack.callback(runner.close)
    runner.start()
