"""The restore commands of ``kafka-backup``, run as real processes against a real broker."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka import Consumer, TopicPartition

from integration.kafka_data import consume_all, produce
from integration.services.endpoints import KafkaEndpoint

pytestmark = pytest.mark.kafka
CLI = str(Path(".venv/bin/kafka-backup").resolve())


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=300)


def test_restore_commands(kafka_service: KafkaEndpoint, kafka_topic_factory: Any, tmp_path: Path) -> None:
    bootstrap = kafka_service.bootstrap_servers
    source = kafka_topic_factory(partitions=2, config={"retention.ms": "-1"})
    produce(bootstrap, source, 600, partitions=2)
    group = f"{source}-app"
    committer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    committer.commit(
        offsets=[TopicPartition(source, 0, 100), TopicPartition(source, 1, 250)], asynchronous=False
    )
    committer.close()
    store = tmp_path / "backups"
    backup_file = tmp_path / "backup.yaml"
    backup_file.write_text(
        yaml.safe_dump(
            {
                "mode": "backup",
                "backup_id": "bk",
                "source": {"bootstrap_servers": [bootstrap], "topics": {"include": [source]}},
                "storage": {"backend": "filesystem", "path": str(store)},
            }
        )
    )
    assert cli("backup", "--config", str(backup_file)).returncode == 0
    target = f"{source}-copy"
    restore_file = tmp_path / "restore.yaml"
    restore_file.write_text(
        yaml.safe_dump(
            {
                "mode": "restore",
                "backup_id": "latest",
                "target": {"bootstrap_servers": [bootstrap], "topics": {"include": [target]}},
                "storage": {"backend": "filesystem", "path": str(store)},
                "restore": {"topic_mapping": {source: target}, "create_topics": True},
            }
        )
    )

    wrong = cli("restore", "--config", str(backup_file))
    assert wrong.returncode == 1 and "mode" in wrong.stderr

    plan = cli("validate-restore", "--config", str(restore_file), "--format", "json")
    assert plan.returncode == 0, plan.stderr
    body = json.loads(plan.stdout)
    assert [(p["source_partition"], p["target_topic"], p["records"]) for p in body["partitions"]] == [
        (0, target, 300),
        (1, target, 300),
    ]

    dry = cli("restore", "--config", str(restore_file), "--dry-run")
    assert dry.returncode == 0 and "nothing written" in dry.stdout
    assert not (store / "bk" / "restores").exists()

    done = cli("restore", "--config", str(restore_file))
    assert done.returncode == 0, done.stderr
    assert "complete: 600 records" in done.stdout
    assert consume_all(bootstrap, target, 2)[0][0][1:] == consume_all(bootstrap, source, 2)[0][0][1:]

    mapping = cli("show-offset-mapping", "--path", str(store), "--backup-id", "bk", "--format", "csv")
    assert mapping.returncode == 0, mapping.stderr
    rows = list(csv.DictReader(io.StringIO(mapping.stdout)))
    assert {(r["source_partition"], r["target_offset"], r["records"]) for r in rows} == {
        ("0", "0", "300"),
        ("1", "0", "300"),
    }

    planned = cli(
        "offset-reset",
        "plan",
        "--path",
        f"file://{store}",
        "--backup-id",
        "bk",
        "--groups",
        group,
        "--format",
        "json",
    )
    assert planned.returncode == 0, planned.stderr
    assert {(r["target"], r["target_offset"]) for r in json.loads(planned.stdout)} == {
        (f"{target}[0]", 100),
        (f"{target}[1]", 250),
    }
    unknown = cli("offset-reset", "plan", "--path", str(store), "--backup-id", "bk", "--groups", "nobody")
    assert unknown.returncode == 1 and "not in the backup's snapshot" in unknown.stderr

    no_groups = cli("offset-reset", "execute", "--path", str(store), "--backup-id", "bk")
    assert (
        no_groups.returncode == 1
        and "name them with --groups G1,G2, or pass --all-groups" in no_groups.stderr
    )
    no_target = cli("offset-reset", "execute", "--path", str(store), "--backup-id", "bk", "--groups", group)
    assert no_target.returncode == 1 and "--bootstrap-servers HOST:PORT, or --config" in no_target.stderr

    applied = cli(
        "offset-reset",
        "execute",
        "--path",
        str(store),
        "--backup-id",
        "bk",
        "--groups",
        group,
        "--config",
        str(restore_file),
    )
    assert applied.returncode == 0, applied.stderr
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    committed = reader.committed([TopicPartition(target, 0), TopicPartition(target, 1)], timeout=10)
    reader.close()
    assert [tp.offset for tp in committed] == [100, 250]
