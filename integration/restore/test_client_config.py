"""A restore's ``target.client_config`` tunes its producer, and cannot weaken it (real broker, the CLI)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from integration.kafka_data import consume_all
from integration.services.endpoints import KafkaEndpoint
from integration.services.kafka import _java

pytestmark = pytest.mark.kafka
CLI = str(Path(".venv/bin/kafka-backup").resolve())
RECORDS = 3000


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=300)


def topic_bytes(tools: Path, bootstrap: str, topic: str) -> int:
    """The topic's size in the broker's log directories (Kafka's ``kafka-log-dirs.sh --describe``)."""
    main = "org.apache.kafka.tools.LogDirsCommand"
    args = ["--bootstrap-server", bootstrap, "--describe", "--topic-list", topic]
    out = subprocess.run(
        [_java(), "-Xmx256m", "-cp", str(tools.parent.parent / "libs" / "*"), main, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    report = json.loads(out.strip().splitlines()[-1])
    return sum(
        p["size"]
        for broker in report["brokers"]
        for log_dir in broker["logDirs"]
        for p in log_dir["partitions"]
        if p["partition"].rsplit("-", 1)[0] == topic
    )


def job(tmp_path: Path, name: str, body: dict[str, Any]) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def test_client_config_chooses_the_restore_producers_compression(
    kafka_service: KafkaEndpoint, kafka_topic_factory: Any, kafka_consumer_groups_sh: Path, tmp_path: Path
) -> None:
    bootstrap = kafka_service.bootstrap_servers
    source = kafka_topic_factory(partitions=2, config={"retention.ms": "-1"})
    producer = Producer({"bootstrap.servers": bootstrap, "compression.type": "none"})
    for i in range(RECORDS):  # JSON-like and compressible, as most topics are
        value = json.dumps({"id": i, "status": "shipped", "items": [{"sku": f"sku-{i % 40}", "n": 1}] * 12})
        producer.produce(source, key=f"order-{i}".encode(), value=value.encode(), partition=i % 2)
    assert producer.flush(30) == 0
    store = {"backend": "filesystem", "path": str(tmp_path / "store")}
    backup = {"mode": "backup", "backup_id": "bk", "storage": store}
    backup["source"] = {"bootstrap_servers": [bootstrap], "topics": {"include": [source]}}
    assert cli("backup", "--config", str(job(tmp_path, "backup", backup))).returncode == 0

    sizes = {}
    for name, client_config in (("lz4", {}), ("none", {"compression.type": "none", "linger.ms": 5})):
        target = f"{source}-{name}"
        restore = {"mode": "restore", "backup_id": "bk", "storage": store}
        restore["target"] = {"bootstrap_servers": [bootstrap], "client_config": client_config}
        restore["restore"] = {"topic_mapping": {source: target}, "create_topics": True}
        done = cli("restore", "--config", str(job(tmp_path, name, restore)))
        assert done.returncode == 0, done.stderr
        assert consume_all(bootstrap, target, 2) == consume_all(bootstrap, source, 2)
        sizes[name] = topic_bytes(kafka_consumer_groups_sh, bootstrap, target)
    # libkb's lz4 by default; client_config's none stores the records as they are.
    assert sizes["none"] > 3 * sizes["lz4"], sizes


def test_a_client_config_that_weakens_the_producer_is_refused_before_anything_runs(
    kafka_service: KafkaEndpoint, kafka_topic_factory: Any, tmp_path: Path
) -> None:
    bootstrap = kafka_service.bootstrap_servers
    source = kafka_topic_factory(partitions=1)
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(source, b"v")
    assert producer.flush(30) == 0
    store = {"backend": "filesystem", "path": str(tmp_path / "store")}
    backup = {"mode": "backup", "backup_id": "bk", "storage": store}
    backup["source"] = {"bootstrap_servers": [bootstrap], "topics": {"include": [source]}}
    restore = {"mode": "restore", "backup_id": "bk", "storage": store}
    restore["target"] = {"bootstrap_servers": [bootstrap], "client_config": {"acks": 1}}
    restore["restore"] = {"topic_mapping": {source: f"{source}-weak"}, "create_topics": True}
    assert cli("backup", "--config", str(job(tmp_path, "backup", backup))).returncode == 0
    refused = cli("restore", "--config", str(job(tmp_path, "restore", restore)))
    assert refused.returncode != 0
    assert "target.client_config.acks: libkb needs acks=all" in refused.stderr
    assert not (tmp_path / "store" / "bk" / "restores").exists()
    assert (
        f"{source}-weak" not in AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics
    )
