"""``backup``/``restore --format json`` and ``backup --dry-run``: the installed script, a real broker.

stdout must parse as one JSON document whether stderr is a terminal (a
progress bar) or a pipe (log lines); a dry run must leave storage, the
cluster's consumer groups and the lease exactly as they were.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from integration.services.endpoints import KafkaEndpoint
from libkb.backup.lease import Lease
from libkb.format.models import lease_key
from libkb.storage import FilesystemConfig, create_backend_from_config

pytestmark = pytest.mark.kafka
CLI = str(Path(sys.executable).with_name("kafka-backup"))
VALUE = b"v" * 96  # with a 4-byte key: 100 bytes a record


def cli(*args: str, stderr: int | None = subprocess.PIPE) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], stdout=subprocess.PIPE, stderr=stderr, text=True, timeout=120)


def produce(bootstrap: str, topic: str, count: int, partitions: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(count):
        producer.produce(topic, key=f"{i:04d}".encode(), value=VALUE, partition=i % partitions)
    assert producer.flush(30) == 0


def job(path: Path, body: dict[str, Any]) -> str:
    path.write_text(yaml.safe_dump(body))
    return str(path)


def backup_job(tmp_path: Path, bootstrap: str, store: Path, include: list[str], **more: Any) -> str:
    return job(
        tmp_path / "backup.yaml",
        {
            "mode": "backup",
            "backup_id": "bk",
            "source": {"bootstrap_servers": [bootstrap], "topics": {"include": include, **more}},
            "storage": {"backend": "filesystem", "path": str(store)},
        },
    )


def files(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` with its size and modification time: any write changes this."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def groups(bootstrap: str) -> set[str]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    listing = admin.list_consumer_groups(request_timeout=10).result(timeout=15)
    return {g.group_id for g in listing.valid}


def test_backup_and_restore_print_one_json_document(
    kafka_service: KafkaEndpoint, kafka_topic_factory: Any, tmp_path: Path
) -> None:
    bootstrap = kafka_service.bootstrap_servers
    topic = kafka_topic_factory(partitions=2)
    produce(bootstrap, topic, 200, 2)
    store = tmp_path / "store"
    config = backup_job(tmp_path, bootstrap, store, [topic])

    # stderr on a terminal: the progress bar is drawn there, stdout stays one JSON document.
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 160, 0, 0))  # a bar needs a width
    chunks: list[bytes] = []
    reader = threading.Thread(target=_drain, args=(leader, chunks))
    reader.start()
    try:
        done = cli("backup", "--config", config, "--format", "json", stderr=follower)
    finally:
        os.close(follower)
        reader.join(30)
    terminal = b"".join(chunks).decode(errors="replace")
    assert done.returncode == 0, terminal
    result = json.loads(done.stdout)
    assert (result["status"], result["read"]["records"], result["stored"]["records"]) == (
        "complete",
        200,
        200,
    )
    assert result["stored"]["segments"] >= 2 and result["read"]["bytes"] > 0 and result["errors"] == []
    ends = [(p["partition"], p["first_stored_offset"], p["end_offset"]) for p in result["partitions"]]
    assert ends == [(0, 0, 100), (1, 0, 100)]
    assert "partitions |" in terminal and "backup bk complete" in terminal

    # stderr a pipe: log lines there; nothing new to read, still a document.
    again = cli("backup", "--config", config, "--format", "json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["read"]["records"] == 0 and "backup bk complete" in again.stderr

    target = f"{topic}-copy"
    restore = job(
        tmp_path / "restore.yaml",
        {
            "mode": "restore",
            "backup_id": "bk",
            "target": {"bootstrap_servers": [bootstrap], "topics": {"include": [target]}},
            "storage": {"backend": "filesystem", "path": str(store)},
            "restore": {"topic_mapping": {topic: target}, "create_topics": True},
        },
    )
    dry = cli("restore", "--config", restore, "--dry-run", "--format", "json")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["status"] == "planned"
    try:
        done = cli("restore", "--config", restore, "--format", "json")
        assert done.returncode == 0, done.stderr
        restored = json.loads(done.stdout)
        assert (restored["status"], restored["restored"]["records"]) == ("complete", 200)
        rows = [
            (p["target_partition"], p["first_source_offset"], p["last_source_offset"], p["target_end_offset"])
            for p in restored["partitions"]
        ]
        assert sorted(rows) == [(0, 0, 99, 100), (1, 0, 99, 100)]
        assert "restore" in done.stderr and "complete" in done.stderr  # the summary, for people
    finally:
        AdminClient({"bootstrap.servers": bootstrap}).delete_topics([target])


def test_a_failed_backup_still_prints_a_json_document(kafka_service: KafkaEndpoint, tmp_path: Path) -> None:
    config = backup_job(tmp_path, kafka_service.bootstrap_servers, tmp_path / "s", ["no-such-topic-*"])
    done = cli("backup", "--config", config, "--format", "json")
    assert done.returncode == 1
    failed = json.loads(done.stdout)
    assert failed["status"] == "failed" and "matches source.topics" in failed["error"]
    assert done.stderr.count("kafka-backup: error:") == 1


def test_backup_dry_run_plans_without_writing_anything(
    kafka_service: KafkaEndpoint, kafka_topic_factory: Any, tmp_path: Path
) -> None:
    bootstrap = kafka_service.bootstrap_servers
    topic, skipped = kafka_topic_factory(partitions=2), kafka_topic_factory(partitions=1)
    produce(bootstrap, topic, 100, 2)
    store = tmp_path / "missing" / "store"
    config = backup_job(tmp_path, bootstrap, store, [topic, skipped], exclude=[skipped])
    groups_before = groups(bootstrap)

    planned = cli("backup", "--config", config, "--dry-run", "--format", "json")
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)
    assert not (tmp_path / "missing").exists()  # a location that does not exist stays so
    assert plan["location_exists"] is False and plan["resume"]["backup_exists"] is False
    assert [
        (p["partition"], p["start_offset"], p["end_offset"], p["origin"]) for p in plan["partitions"]
    ] == [
        (0, 0, 50, "earliest"),
        (1, 0, 50, "earliest"),
    ]
    assert {"topic": skipped, "rule": f"source.topics.exclude {skipped!r}"} in plan["excluded_topics"]
    estimate = plan["estimate"]
    assert estimate["method"] == "sampled" and estimate["average_record_bytes"] == 100.0
    assert estimate["bytes"] == 100 * 100 and plan["lease"] is None

    assert cli("backup", "--config", config).returncode == 0
    produce(bootstrap, topic, 20, 2)
    holder = Lease(
        create_backend_from_config(FilesystemConfig(str(store))), lease_key("bk"), "other-run", 300
    )
    holder.acquire()
    try:
        before = files(store)
        resumed = cli("backup", "--config", config, "--dry-run", "--format", "json")
        text = cli("backup", "--config", config, "--dry-run")
        assert files(store) == before  # no object written, none touched, no lease taken
    finally:
        holder.release()
    assert resumed.returncode == 0 and text.returncode == 0, resumed.stderr + text.stderr
    plan = json.loads(resumed.stdout)
    assert [
        (p["start_offset"], p["end_offset"], p["stored_end"], p["origin"]) for p in plan["partitions"]
    ] == [
        (50, 60, 50, "stored"),
        (50, 60, 50, "stored"),
    ]
    assert plan["resume"]["backup_exists"] and plan["resume"]["last_run"]["status"] == "complete"
    assert plan["lease"]["run_id"] == "other-run" and plan["lease"]["valid"] is True
    assert plan["estimate"]["bytes"] == 20 * 100
    lines = text.stdout.splitlines()
    assert any(line.split()[:4] == [f"{topic}[0]", "50", "60", "10"] for line in lines), text.stdout
    assert "resume (stored end)" in text.stdout and "resume: last run" in text.stdout
    assert "lease: held" in text.stdout and "a run now would be refused" in text.stdout
    assert f"excluded: {skipped} (source.topics.exclude" in text.stdout and "records sampled" in text.stdout
    new_groups = groups(bootstrap) - groups_before
    assert not [g for g in new_groups if "dry-run" in g], new_groups  # no group joined or committed


def _drain(fd: int, chunks: list[bytes]) -> None:
    """Read the terminal's output until its other side closes (EIO on Linux)."""
    try:
        while data := os.read(fd, 65536):
            chunks.append(data)
    except OSError:
        pass
    finally:
        os.close(fd)
