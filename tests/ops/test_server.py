"""The ops HTTP server: /metrics with the original tool's names, /health liveness, /ready readiness.

Checks are the real ones: storage against a filesystem backend, Kafka
against a port nothing listens on.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from libkb.cli.job import run_metrics
from libkb.config import SourceOptions
from libkb.errors import ConfigError
from libkb.metrics import RunMetrics
from libkb.ops.checks import kafka_check, storage_check
from libkb.ops.health import CheckRunner, Component, HealthModel, Watchdog
from libkb.ops.server import OpsServer
from libkb.storage import FilesystemConfig, StorageBackend, create_backend_from_config

ORIGINAL_METRICS = [
    "kafka_backup_lag_records",
    "kafka_backup_records_total",
    "kafka_backup_bytes_total",
    "kafka_backup_offset_gaps_total",
    "kafka_backup_compressed_bytes_total",
    "kafka_backup_uncompressed_bytes_total",
    "kafka_backup_compression_ratio",
    "kafka_backup_storage_write_latency_seconds",
    "kafka_backup_storage_write_bytes_total",
    "kafka_backup_errors_total",
]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.headers["Content-Type"], r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read()


def get_json(url: str) -> tuple[int, dict[str, Any]]:
    status, ctype, body = get(url)
    assert ctype == "application/json"
    return status, json.loads(body)


@pytest.fixture
def metrics() -> RunMetrics:
    return run_metrics()


@pytest.fixture
def fs_backend(tmp_path: Path, metrics: RunMetrics) -> Iterator[StorageBackend]:
    with create_backend_from_config(FilesystemConfig(str(tmp_path / "store")), metrics=metrics.storage) as b:
        yield b


def serve(health: HealthModel, metrics: RunMetrics | None = None) -> OpsServer:
    registry = metrics.registry if metrics is not None else None
    return OpsServer(health, host="127.0.0.1", port=0, metrics_path="/metrics", registry=registry).start()


def test_metrics_use_the_original_names(fs_backend: StorageBackend, metrics: RunMetrics) -> None:
    metrics.backup_records.labels("ops-test").inc(3)
    fs_backend.put("k", b"v")  # a storage write, so the latency histogram has a sample
    with serve(HealthModel(), metrics) as server:
        status, ctype, body = get(server.url + "/metrics")
    text = body.decode()
    assert status == 200 and ctype.startswith("text/plain")
    for name in ORIGINAL_METRICS:
        assert f"# TYPE {name.removesuffix('_total')}" in text, name
    assert 'kafka_backup_records_total{backup_id="ops-test"} 3.0' in text
    assert 'kafka_backup_storage_write_latency_seconds_count{backend="filesystem",operation="put"}' in text
    assert "process_cpu_seconds_total" in text  # the process collectors, as the default registry had


def test_two_runs_in_one_process_keep_their_own_counters() -> None:
    first, second = RunMetrics(), RunMetrics()
    first.backup_records.labels("same-id").inc(5)
    assert first.registry.get_sample_value("kafka_backup_records_total", {"backup_id": "same-id"}) == 5
    assert second.registry.get_sample_value("kafka_backup_records_total", {"backup_id": "same-id"}) is None


def test_custom_metrics_path_and_unknown_routes() -> None:
    server = OpsServer(HealthModel(), port=0, metrics_path="/prom").start()
    try:
        assert get(server.url + "/prom")[0] == 200
        assert get(server.url + "/metrics")[0] == 404
        request = urllib.request.Request(server.url + "/health", method="HEAD")
        with urllib.request.urlopen(request, timeout=10) as r:
            assert r.status == 200 and r.read() == b""
    finally:
        server.close()


def test_ready_503_when_kafka_is_unreachable_but_alive_200(fs_backend: StorageBackend) -> None:
    health = HealthModel(Watchdog(stall_secs=60))
    runner = CheckRunner()
    source = SourceOptions(bootstrap_servers=(f"127.0.0.1:{closed_port()}",))
    runner.add(health.add(Component("kafka", 10)), kafka_check(source, timeout_secs=1.0))
    runner.add(health.add(Component("storage", 10)), storage_check(fs_backend, "b1/manifest.json"))
    runner.run_once()
    with serve(health) as server:
        status, ready = get_json(server.url + "/ready")
        assert status == 503 and ready["status"] == "not_ready"
        kafka, storage = ready["components"]["kafka"], ready["components"]["storage"]
        assert kafka["state"] == "down" and kafka["last_error"] and kafka["checked_at"].endswith("Z")
        assert storage["state"] == "up" and storage["last_error"] is None
        # A Kafka outage is no reason for Kubernetes to restart the process.
        status, live = get_json(server.url + "/health")
        assert status == 200 and live["status"] == "degraded"
        assert set(live) == {"status", "uptime_secs", "components"}
        assert isinstance(live["uptime_secs"], float)
        assert {"kafka", "storage", "run_loop"} <= set(live["components"])


def test_ready_and_healthy_200_when_checks_pass(fs_backend: StorageBackend) -> None:
    fs_backend.put("b1/manifest.json", b"{}")
    health = HealthModel(Watchdog(stall_secs=60))
    runner = CheckRunner(interval_secs=0.1)
    runner.add(health.add(Component("storage", 10)), storage_check(fs_backend, "b1/manifest.json"))
    runner.start()
    try:
        with serve(health) as server:
            deadline = time.monotonic() + 10
            while (answer := get_json(server.url + "/ready"))[0] != 200:
                assert time.monotonic() < deadline, answer
                time.sleep(0.05)
            assert answer[1]["components"]["storage"]["detail"] == "b1/manifest.json present"
            status, live = get_json(server.url + "/health")
            assert status == 200 and live["status"] == "healthy"
            health.stopping = True
            status, ready = get_json(server.url + "/ready")
            assert status == 503 and ready["reason"] == "stopping"
    finally:
        runner.close()


def test_health_503_only_when_the_run_loop_stalls() -> None:
    now = [0.0]
    watchdog = Watchdog(stall_secs=30, clock=lambda: now[0])
    health = HealthModel(watchdog)
    with serve(health) as server:
        now[0] = 29
        assert get_json(server.url + "/health")[0] == 200
        now[0] = 31
        status, body = get_json(server.url + "/health")
        assert status == 503 and body["status"] == "unhealthy"
        assert "no progress for 31s" in body["components"]["run_loop"]["last_error"]
        watchdog.tick()
        assert get_json(server.url + "/health")[0] == 200
        now[0] = 100
        watchdog.finish()  # the loop ended on purpose: not a stall
        assert get_json(server.url + "/health")[0] == 200


def test_a_hung_check_counts_as_down_and_secrets_are_redacted() -> None:
    release = threading.Event()
    health = HealthModel()
    runner = CheckRunner()
    hung = health.add(Component("kafka", timeout_secs=0.2))
    runner.add(hung, lambda: str(release.wait(30)))
    leaky = health.add(Component("storage", timeout_secs=5, secrets=["hunter2"]))

    def fails() -> str:
        raise PermissionError("login user=ops password=hunter2 refused")

    runner.add(leaky, fails)
    runner.start()
    try:
        time.sleep(0.4)
        with serve(health) as server:
            status, body = get_json(server.url + "/ready")
        assert status == 503
        assert body["components"]["kafka"]["last_error"] == "check did not answer within 0.2s"
        error = body["components"]["storage"]["last_error"]
        assert "hunter2" not in error and "password=***" in error
    finally:
        release.set()
        runner.close()


def test_port_in_use_is_a_config_error_and_close_frees_the_port() -> None:
    server = OpsServer(HealthModel(), port=0).start()
    port = server.address[1]
    with pytest.raises(ConfigError, match=r"metrics\.port: cannot serve metrics on 127\.0\.0\.1:\d+"):
        OpsServer(HealthModel(), port=port)
    server.close()
    OpsServer(HealthModel(), port=port).close()


def test_ipv6_bind_address() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 in this kernel")  # the IPv4 tests above cover the server itself
    try:
        server = OpsServer(HealthModel(), host="::1", port=0).start()
    except ConfigError as exc:
        pytest.skip(f"::1 is not configured here: {exc}")  # as above
    with server:
        assert get(f"http://[::1]:{server.address[1]}/health")[0] == 200
