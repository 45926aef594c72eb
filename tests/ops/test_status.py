"""``status`` of a running job: what ``libkb.ops.status`` reads from a real ops server, and from text."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from libkb.cli import main
from libkb.cli.job import run_metrics
from libkb.ops.health import Component, HealthModel, Watchdog
from libkb.ops.server import OpsServer
from libkb.ops.status import JobUnreachableError, live_status, parse_metrics


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_backup_job_as_its_endpoint_reports_it() -> None:
    metrics = run_metrics()
    metrics.backup_records.labels("b1").inc(1200)
    metrics.backup_bytes.labels("b1").inc(64_000)
    metrics.segments.labels("b1").inc(3)
    metrics.errors.labels("b1", "Timeout").inc()
    metrics.compression_ratio.labels("zstd", "b1").set(3.5)
    metrics.backup_lag.labels("orders", "0", "b1").set(40)
    metrics.backup_lag.labels("orders", "1", "b1").set(2)
    health = HealthModel(Watchdog(60))
    health.add(Component("kafka", 10)).record("1 broker(s)", None)
    health.add(Component("storage", 10)).record(None, OSError("disk full"))
    with OpsServer(health, port=0, registry=metrics.registry) as server:
        live = live_status(server.url)
    assert (live.health, live.http_status, live.ready) == ("degraded", 200, False)
    assert live.uptime_secs is not None and live.uptime_secs >= 0
    states = {c.name: (c.state, c.detail, c.last_error) for c in live.components}
    assert states["kafka"] == ("up", "1 broker(s)", None)
    assert states["storage"] == ("down", None, "OSError: disk full")
    assert states["run_loop"][0] == "up"
    m = live.metrics
    assert m is not None and (m.kind, m.backup_id) == ("backup", "b1")
    assert (m.records, m.bytes, m.segments, m.errors, m.compression_ratio) == (1200, 64_000, 3, 1, 3.5)
    assert m.lag_records == 42 and (m.lag[0].topic, m.lag[0].partition, m.lag[0].records) == ("orders", 0, 40)
    assert json.loads(json.dumps(live.to_dict()))["metrics"]["lag_records"] == 42


def test_a_restore_job_reports_restore_counters_and_no_lag() -> None:
    metrics = run_metrics()
    metrics.restore_records.labels("b1").inc(500)
    metrics.restore_bytes.labels("b1").inc(9000)
    with OpsServer(HealthModel(), port=0, registry=metrics.registry) as server:
        m = live_status(server.url).metrics
    assert m is not None and (m.kind, m.records, m.bytes, m.lag_records) == ("restore", 500, 9000, None)


def test_the_original_tools_endpoint_is_read_too() -> None:
    """Its /health says ``status``/``message`` per component; its counters may carry a doubled suffix."""
    text = """
# TYPE kafka_backup_records_total counter
kafka_backup_records_total{backup_id="rust"} 1000000
kafka_backup_bytes_total{backup_id="rust"} 123456789
kafka_backup_compression_ratio{algorithm="zstd",backup_id="rust"} 3.5
kafka_backup_lag_records{topic="orders",partition="0",backup_id="rust"} 100
kafka_backup_lag_records{topic="orders",partition="1",backup_id="rust"} 200
kafka_backup_records_total{backup_id="other"} 5
"""
    m = parse_metrics(text, backup_id="rust")
    assert (m.kind, m.records, m.bytes, m.compression_ratio, m.lag_records) == (
        "backup",
        1000000,
        123456789,
        3.5,
        300,
    )
    assert m.lag[0].partition == 1
    assert parse_metrics(text).records == 1000005  # no id given: every series counts
    assert parse_metrics("").kind == "unknown"


def test_nothing_listening_is_a_clear_error() -> None:
    port = closed_port()
    with pytest.raises(
        JobUnreachableError, match=rf"no job answers at http://127.0.0.1:{port} \(connection refused"
    ):
        live_status(f"http://127.0.0.1:{port}", timeout=2)


def test_status_command_with_url_and_job_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    metrics = run_metrics()
    metrics.backup_records.labels("b1").inc(7)
    with OpsServer(HealthModel(Watchdog(60)), port=0, registry=metrics.registry) as server:
        code = main(["status", "--url", server.url])
        out, err = capsys.readouterr()
        assert code == 0, err
        assert f"Job:         {server.url}: healthy (HTTP 200), ready, up 00:00:0" in out
        assert "Progress:    backup b1: 7 records" in out
        _, port = server.address
        config = tmp_path / "restore.yaml"
        config.write_text(
            "mode: restore\nbackup_id: latest\ntarget:\n  bootstrap_servers: [localhost:9092]\n"
            f"storage:\n  backend: filesystem\n  path: {tmp_path / 'none'}\n"
            f"metrics:\n  port: {port}\n  bind_address: 0.0.0.0\n"
        )
        code = main(["status", "--config", str(config), "--format", "json"])
        out, err = capsys.readouterr()
        assert code == 0, err
        body = json.loads(out)
        assert body["backup"] is None and body["job"]["url"] == f"http://127.0.0.1:{port}"
        assert body["job"]["metrics"]["records"] == 7
    assert not (tmp_path / "none").exists()
    code = main(["status", "--config", str(config)])
    out, err = capsys.readouterr()
    assert code == 1 and f"no job answers at http://127.0.0.1:{port}" in err
