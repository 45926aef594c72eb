"""``kafka-backup status`` against running backups on a real broker, every process a real subprocess.

A continuous backup with its ops port: ``status`` by ``--url``, by ``--config``
and by ``--path`` (text and JSON), ``--watch`` repeating until SIGINT (exit 0),
then the stopped run's outcome. A backup killed with ``kill -9``: running while
its lease is valid, interrupted once it expires. ``status`` writes nothing.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from integration.services import KafkaEndpoint
from integration.services.kafka import TopicFactory
from integration.test_cli_backup import (
    DEADLINE_SECS,
    KAFKA_BACKUP,
    cli,
    free_port,
    produce,
    records_metric,
    running_backup,
    sigterm,
    wait_for,
    write_config,
)

pytestmark = pytest.mark.kafka


def status_json(*args: str) -> dict[str, Any]:
    done = cli("status", *args, "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    body: dict[str, Any] = json.loads(done.stdout)
    return body


def files(root: Path) -> list[tuple[str, int]]:
    """Every file under ``root`` with its modification time: what a read-only command must not change."""
    return sorted((str(p.relative_to(root)), p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file())


def watch_output(args: list[str], *, until: int) -> tuple[list[str], int, str]:
    """``status --watch`` until ``until`` refreshes are read, then SIGINT; (lines, exit status, stderr)."""
    proc = subprocess.Popen(
        [str(KAFKA_BACKUP), "status", "--watch", "--interval", "0.3", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    assert proc.stdout is not None and proc.stderr is not None
    stdout, stderr = proc.stdout, proc.stderr
    try:
        deadline = time.monotonic() + DEADLINE_SECS
        while sum(line.startswith(("Checked:", "{")) for line in lines) < until:
            assert proc.poll() is None, f"status --watch exited {proc.returncode}: {stderr.read()}"
            assert time.monotonic() < deadline, f"timed out; read so far: {lines}"
            ready, _, _ = select.select([stdout], [], [], 1.0)
            if ready:
                lines.append(stdout.readline())
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=DEADLINE_SECS)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return lines + rest.splitlines(keepends=True), proc.returncode, err


def test_status_of_a_running_continuous_backup(
    kafka_service: KafkaEndpoint, kafka_topic_factory: TopicFactory, tmp_path: Path
) -> None:
    bootstrap = kafka_service.bootstrap_servers
    topic = kafka_topic_factory(partitions=2)
    produce(bootstrap, topic, 400, 2)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    backup_id = "status-live"
    store = tmp_path / "store"
    config = write_config(tmp_path, bootstrap, topic, backup_id, continuous=True, port=port)
    with running_backup(config) as proc:
        wait_for("400 records in /metrics", proc, lambda: records_metric(url, backup_id) >= 400)

        body = status_json("--url", url)
        job = body["job"]
        assert body["backup"] is None and job["url"] == url and job["http_status"] == 200
        assert job["metrics"]["kind"] == "backup" and job["metrics"]["backup_id"] == backup_id
        assert job["metrics"]["records"] == 400 and job["metrics"]["lag_records"] == 0
        assert {"kafka", "storage", "run_loop"} <= set(job["components"])

        body = status_json("--config", str(config))
        backup = body["backup"]
        assert (backup["backup_id"], backup["state"], backup["running"]) == (backup_id, "running", True)
        assert backup["lease"]["valid"] and backup["lease"]["pid"] == proc.pid
        assert backup["last_run"]["run_id"] == backup["lease"]["run_id"]
        assert backup["last_run"]["mode"] == "continuous" and backup["last_run"]["finished"] is None
        assert body["job"]["metrics"]["records"] == 400

        done = cli("status", "--config", str(config))
        assert done.returncode == 0, done.stderr
        assert (
            "State:       running (run " in done.stdout and "Lease:       generation 1, run " in done.stdout
        )
        assert (
            f"Job:         {url}: " in done.stdout
            and f"Progress:    backup {backup_id}: 400 records" in done.stdout
        )
        assert "Lag:         0 records" in done.stdout

        done = cli("status", "--path", str(store), "--backup-id", backup_id)
        assert done.returncode == 0 and "State:       running" in done.stdout and "Job:" not in done.stdout

        lines, code, err = watch_output(["--config", str(config), "--format", "json"], until=3)
        assert code == 0, err
        refreshes = [json.loads(line) for line in lines if line.startswith("{")]
        assert len(refreshes) >= 3 and {r["backup"]["state"] for r in refreshes} == {"running"}
        assert len({r["checked"] for r in refreshes}) == len(refreshes)

        produce(bootstrap, topic, 100, 2, start=400)
        lines, code, err = watch_output(["--url", url], until=2)
        assert code == 0, err
        assert sum(line.startswith(f"Job:         {url}: ") for line in lines) >= 2
        wait_for("500 records in /metrics", proc, lambda: records_metric(url, backup_id) >= 500)
        _, err = sigterm(proc)
        assert proc.returncode == 0, err

    before = files(store)
    body = status_json("--path", str(store), "--backup-id", backup_id)["backup"]
    assert (body["state"], body["running"], body["records"]) == ("stopped", False, 500)
    assert body["last_run"]["status"] == "stopped" and body["last_run"]["records"] == 500
    assert body["lease"]["released"] and not body["lease"]["valid"]
    done = cli("status", "--config", str(config))  # the job is gone: its endpoint does not answer
    assert done.returncode == 1 and f"no job answers at {url}" in done.stderr
    assert "State:       stopped" in done.stdout
    typo = tmp_path / "stor"
    done = cli("status", "--path", str(typo), "--backup-id", backup_id)
    assert done.returncode == 1 and "nothing is stored there" in done.stderr
    assert not typo.exists() and files(store) == before


def test_status_of_a_backup_killed_with_sigkill(
    kafka_service: KafkaEndpoint, kafka_topic_factory: TopicFactory, tmp_path: Path
) -> None:
    """Running while the dead run's lease is valid, interrupted once it expires; nothing is written."""
    bootstrap = kafka_service.bootstrap_servers
    topic = kafka_topic_factory(partitions=1)
    produce(bootstrap, topic, 200, 1)
    store = tmp_path / "store"
    config = write_config(tmp_path, bootstrap, topic, "killed", continuous=True)
    config.write_text(
        config.read_text().replace("  continuous: true\n", "  continuous: true\n  lease_ttl_secs: 5\n")
    )
    with running_backup(config) as proc:
        wait_for("a stored index", proc, lambda: any(store.rglob("index.json")))
        wait_for(
            "the run in the manifest",
            proc,
            lambda: status_json("--config", str(config))["backup"]["state"] == "running",
        )
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
    before = files(store)
    deadline = time.monotonic() + DEADLINE_SECS
    seen: list[dict[str, Any]] = []
    while not seen or seen[-1]["state"] == "running":
        assert time.monotonic() < deadline, seen
        seen.append(status_json("--path", f"file://{store}", "--backup-id", "killed")["backup"])
        time.sleep(0.5)
    last = seen[-1]
    assert last["state"] == "interrupted" and not last["running"]
    assert last["lease"]["pid"] == proc.pid and not last["lease"]["valid"] and not last["lease"]["released"]
    assert last["last_run"]["finished"] is None
    assert "did not record its end and its lease expired" in last["notes"][0]
    done = cli("status", "--path", str(store), "--backup-id", "killed")
    assert done.returncode == 0 and "State:       interrupted" in done.stdout
    assert files(store) == before
