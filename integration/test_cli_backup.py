"""``kafka-backup`` end to end against a real broker, run as the installed script in a subprocess.

A continuous backup serves /metrics, /health and /ready while it runs, stops
cleanly on SIGTERM with exit 0, and leaves a backup that ``validate --deep``,
``list`` and ``describe`` read back. A snapshot run exits 0 on its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from integration.services import KafkaEndpoint
from integration.services.kafka import TopicFactory
from integration.storage.configs import azure_config, gcs_config, s3_config
from libkb.backup.engine import BackupEngine
from libkb.config import parse_config
from libkb.storage import StorageBackendConfig, create_backend_from_config

KAFKA_BACKUP = Path(sys.executable).with_name("kafka-backup")
DEADLINE_SECS = 90


def produce(bootstrap: str, topic: str, count: int, partitions: int, start: int = 0) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(start, start + count):
        producer.produce(
            topic, value=f"value-{i}".encode() * 10, key=f"k{i}".encode(), partition=i % partitions
        )
    assert producer.flush(30) == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(
    tmp_path: Path, bootstrap: str, topic: str, backup_id: str, *, continuous: bool, port: int | None = None
) -> Path:
    metrics = (
        f"  enabled: true\n  port: {port}\n  bind_address: 127.0.0.1\n" if port else "  enabled: false\n"
    )
    config = tmp_path / f"{backup_id}.yaml"
    config.write_text(
        f"backup_id: {backup_id}\n"
        f"source:\n  bootstrap_servers: {bootstrap}\n  topics:\n    include: [{topic}]\n"
        f"storage:\n  backend: filesystem\n  path: {tmp_path / 'store'}\n"
        f"backup:\n  continuous: {str(continuous).lower()}\n  segment_max_interval_ms: 1000\n"
        f"metrics:\n{metrics}"
    )
    return config


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(KAFKA_BACKUP), *args], capture_output=True, text=True, timeout=DEADLINE_SECS, env=env
    )


@contextlib.contextmanager
def running_backup(config: Path) -> Iterator[subprocess.Popen[str]]:
    """``kafka-backup backup`` in a subprocess, killed if the test leaves it running."""
    proc = subprocess.Popen(
        [str(KAFKA_BACKUP), "backup", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def sigterm(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """Stop it as Kubernetes does; its (stdout, stderr)."""
    proc.send_signal(signal.SIGTERM)
    return proc.communicate(timeout=DEADLINE_SECS)


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_for(what: str, proc: subprocess.Popen[str], probe: Callable[[], Any]) -> Any:
    """Poll ``probe`` until it returns something truthy; fail early if the backup process died."""
    deadline = time.monotonic() + DEADLINE_SECS
    while True:
        if proc.poll() is not None:
            _out, err = proc.communicate()
            raise AssertionError(f"kafka-backup exited {proc.returncode} while waiting for {what}:\n{err}")
        try:
            result = probe()
        except (urllib.error.URLError, ConnectionError):
            result = None  # the server is not up yet
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


def records_metric(url: str, backup_id: str) -> float:
    status, body = fetch(url + "/metrics")
    match = re.search(rf'^kafka_backup_records_total{{backup_id="{backup_id}"}} (\S+)$', body.decode(), re.M)
    return float(match.group(1)) if status == 200 and match else -1.0


def test_continuous_backup_serves_ops_endpoints_and_stops_on_sigterm(
    kafka_service: KafkaEndpoint, kafka_topic_factory: TopicFactory, tmp_path: Path
) -> None:
    bootstrap = kafka_service.bootstrap_servers
    topic = kafka_topic_factory(partitions=2)
    produce(bootstrap, topic, 500, 2)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    backup_id = "cli-continuous"
    config = write_config(tmp_path, bootstrap, topic, backup_id, continuous=True, port=port)
    with running_backup(config) as proc:
        wait_for("500 records in /metrics", proc, lambda: records_metric(url, backup_id) >= 500)
        produce(bootstrap, topic, 100, 2, start=500)
        wait_for("600 records in /metrics", proc, lambda: records_metric(url, backup_id) >= 600)
        metrics = fetch(url + "/metrics")[1].decode()
        for name in (
            "kafka_backup_bytes_total",
            "kafka_backup_storage_write_bytes_total",
            "kafka_backup_errors_total",
        ):
            assert f"# TYPE {name.removesuffix('_total')}" in metrics

        def ready() -> dict[str, Any] | None:
            status, body = fetch(url + "/ready")
            return json.loads(body) if status == 200 else None

        body = wait_for("/ready 200", proc, ready)
        assert body["components"]["kafka"]["state"] == "up"
        assert body["components"]["storage"]["state"] == "up"
        status, raw = fetch(url + "/health")
        health = json.loads(raw)
        assert status == 200 and health["status"] == "healthy", health
        assert health["components"]["run_loop"]["state"] == "up" and health["uptime_secs"] > 0

        out, err = sigterm(proc)
    assert proc.returncode == 0, err
    assert f"backup {backup_id} stopped: read 600 records" in out and "stored 600 records" in out, out
    assert "SIGTERM received" in err

    store = str(tmp_path / "store")
    done = cli("validate", "--path", store, "--backup-id", backup_id, "--deep")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "valid (deep check: 2 partitions" in done.stdout and "600 records" in done.stdout

    done = cli("list", "--path", f"file://{store}", "--format", "json")
    assert done.returncode == 0, done.stderr
    (summary,) = json.loads(done.stdout)
    assert (summary["backup_id"], summary["records"], summary["topics"]) == (backup_id, 600, [topic])
    assert summary["status"] == "stopped"

    done = cli("describe", "--path", store, "--backup-id", backup_id, "--format", "json")
    assert done.returncode == 0, done.stderr
    described = json.loads(done.stdout)
    assert described["backup_id"] == backup_id and described["records"] == 600
    assert described["topics"][topic]["partitions"] == 2
    assert sorted(p["end_offset"] for p in described["partitions"]) == [300, 300]
    done = cli("describe", "--path", store, "--backup-id", backup_id)
    assert done.returncode == 0 and f"Backup:          {backup_id}" in done.stdout


def test_snapshot_backup_completes_and_reports_progress(
    kafka_service: KafkaEndpoint, kafka_topic_factory: TopicFactory, tmp_path: Path
) -> None:
    bootstrap = kafka_service.bootstrap_servers
    topic = kafka_topic_factory(partitions=3)
    produce(bootstrap, topic, 300, 3)
    config = write_config(tmp_path, bootstrap, topic, "cli-snapshot", continuous=False)
    done = cli("backup", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("backup cli-snapshot complete: read 300 records"), done.stdout
    assert "; stored 300 records, " in done.stdout and " in 3 segments;" in done.stdout, done.stdout
    assert "backup cli-snapshot: " in done.stderr  # the periodic progress line (stderr is not a TTY)
    done = cli("validate", "--path", str(tmp_path / "store"), "--backup-id", "cli-snapshot", "--deep")
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("store", ["minio", "azurite", "fake-gcs"])
def test_list_describe_validate_take_cloud_urls(
    store: str,
    request: pytest.FixtureRequest,
    kafka_service: KafkaEndpoint,
    kafka_topic_factory: TopicFactory,
    tmp_path: Path,
) -> None:
    """``--path`` with each cloud URL form; credentials come from the environment, as documented."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AZURE_", "GOOGLE_"))}
    env |= {"AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}
    storage: StorageBackendConfig
    if store == "minio":
        bucket: Any = request.getfixturevalue("minio_bucket")
        service = bucket.service
        storage = s3_config(bucket, prefix="prod")
        url = f"s3://{bucket.name}/prod?endpoint={service.endpoint}&path_style=true&region={service.region}"
        env |= {"AWS_ACCESS_KEY_ID": service.access_key, "AWS_SECRET_ACCESS_KEY": service.secret_key}
    elif store == "azurite":
        container: Any = request.getfixturevalue("azurite_container")
        service = container.service
        storage = azure_config(container, prefix="prod")
        url = f"azure://{service.account_name}/{container.name}/prod?endpoint={service.endpoint}"
        env["AZURE_STORAGE_KEY"] = service.account_key
    else:
        bucket = request.getfixturevalue("gcs_bucket")
        storage = gcs_config(bucket, prefix="prod")
        url = f"gs://{bucket.name}/prod?endpoint={bucket.service.endpoint}"
    bootstrap = kafka_service.bootstrap_servers
    topic = kafka_topic_factory(partitions=2)
    produce(bootstrap, topic, 200, 2)
    config = parse_config(
        {
            "backup_id": "cloud",
            "source": {"bootstrap_servers": bootstrap, "topics": {"include": [topic]}},
            "storage": {"backend": "memory"},  # replaced by the cloud backend below
        }
    )
    with create_backend_from_config(storage) as backend:
        assert BackupEngine(config, backend=backend).run().status == "complete"

    done = cli("list", "--path", url, "--format", "json", env=env)
    assert done.returncode == 0, done.stderr
    (summary,) = json.loads(done.stdout)
    assert (summary["backup_id"], summary["records"], summary["status"]) == ("cloud", 200, "complete")
    done = cli("describe", "--path", url, "--backup-id", "cloud", "--format", "json", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["topics"][topic]["partitions"] == 2
    done = cli("validate", "--path", url, "--backup-id", "cloud", "--deep", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "valid (deep check: 2 partitions" in done.stdout and "200 records" in done.stdout


def test_sigterm_during_a_snapshot_exits_1_and_leaves_a_valid_backup(
    kafka_service: KafkaEndpoint, kafka_topic_factory: TopicFactory, tmp_path: Path
) -> None:
    """A CronJob must see that an interrupted snapshot did not finish; running it again finishes it."""
    bootstrap = kafka_service.bootstrap_servers
    topic = kafka_topic_factory(partitions=1)
    produce(bootstrap, topic, 20_000, 1)  # ~2.3 MB, read at 200 kB/s
    store = tmp_path / "store"
    config = tmp_path / "snap.yaml"
    config.write_text(
        f"backup_id: snap\n"
        f"source:\n  bootstrap_servers: {bootstrap}\n  topics:\n    include: [{topic}]\n"
        f"storage:\n  backend: filesystem\n  path: {store}\n"
        "backup:\n  segment_max_records: 1000\n  block_bytes: 4096\n  rate_limit_bytes_per_sec: 200000\n"
    )
    with running_backup(config) as proc:
        wait_for("a stored segment", proc, lambda: any(store.rglob("segment-*.kbs")))
        out, err = sigterm(proc)
    assert proc.returncode == 1, out + err
    assert "was interrupted before reaching the offsets it started for" in err, err
    done = cli("validate", "--path", str(store), "--backup-id", "snap", "--deep")
    assert done.returncode == 0, done.stdout + done.stderr
    config.write_text(config.read_text().replace("  rate_limit_bytes_per_sec: 200000\n", ""))
    done = cli("backup", "--config", str(config))
    assert done.returncode == 0, done.stderr
    done = cli("describe", "--path", str(store), "--backup-id", "snap", "--format", "json")
    described = json.loads(done.stdout)
    assert described["records"] == 20_000 and described["status"] == "complete"
