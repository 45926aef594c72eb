"""``metrics.pushgateway_url`` against a real Prometheus Pushgateway (Debian's package), and JSON logs.

A snapshot run (a CronJob) exits before any scrape: its final values must be
in the gateway after it ends. A continuous run pushes while it goes and once
more after SIGTERM. The URL's password goes into an Authorization header and
appears in no log line and no pushed label.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from integration.services import KafkaEndpoint
from integration.services.kafka import TopicFactory
from integration.test_cli_backup import DEADLINE_SECS, cli, produce, running_backup, sigterm

PASSWORD = "push-s3cret-value"


def write_config(
    tmp_path: Path, bootstrap: str, topic: str, backup_id: str, gateway: str, *, continuous: bool
) -> Path:
    url = gateway.replace("http://", f"http://libkb:{PASSWORD}@")
    config = tmp_path / f"{backup_id}.yaml"
    config.write_text(
        f"backup_id: {backup_id}\n"
        f"source:\n  bootstrap_servers: {bootstrap}\n  topics:\n    include: [{topic}]\n"
        f"storage:\n  backend: filesystem\n  path: {tmp_path / 'store'}\n"
        f"backup:\n  continuous: {str(continuous).lower()}\n  segment_max_interval_ms: 500\n"
        f"metrics:\n  port: 0\n  pushgateway_url: {url}\n  push_interval_seconds: 0.5\n"
    )
    return config


def pushed(gateway: str, backup_id: str) -> dict[str, float]:
    """The gateway's samples of the group ``job=kafka-backup, backup_id, mode=backup``."""
    text = requests.get(f"{gateway}/metrics", timeout=5).text
    assert PASSWORD not in text
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if (labels.get("job"), labels.get("backup_id"), labels.get("mode")) == (
                "kafka-backup",
                backup_id,
                "backup",
            ):
                values[sample.name] = values.get(sample.name, 0.0) + sample.value
    return values


def test_a_snapshot_run_leaves_its_final_metrics_in_the_pushgateway(
    kafka_service: KafkaEndpoint, kafka_topic_factory: TopicFactory, pushgateway_service: str, tmp_path: Path
) -> None:
    bootstrap = kafka_service.bootstrap_servers
    topic = kafka_topic_factory(partitions=2)
    produce(bootstrap, topic, 200, 2)
    started = time.time()
    config = write_config(tmp_path, bootstrap, topic, "push-snapshot", pushgateway_service, continuous=False)
    done = cli("backup", "--config", str(config), "--log-format", "json")  # as the Helm chart runs it
    assert done.returncode == 0, done.stderr
    assert PASSWORD not in done.stdout + done.stderr
    entries = [json.loads(line) for line in done.stderr.splitlines()]  # every line is one JSON object
    assert all(e["backup_id"] == "push-snapshot" and e["level"] in ("INFO", "WARNING") for e in entries)
    last = [e for e in entries if e.get("event") == "progress"][-1]
    assert (last["mode"], last["records"], last["partitions_done"], last["partitions_total"]) == (
        "backup",
        200,
        2,
        2,
    )
    values = pushed(pushgateway_service, "push-snapshot")
    assert values["kafka_backup_records_total"] == 200
    assert values["kafka_backup_last_success_timestamp_seconds"] >= int(started)
    assert values["push_failure_time_seconds"] == 0 and values["push_time_seconds"] >= started


def test_a_continuous_run_pushes_while_it_goes_and_after_sigterm(
    kafka_service: KafkaEndpoint, kafka_topic_factory: TopicFactory, pushgateway_service: str, tmp_path: Path
) -> None:
    bootstrap = kafka_service.bootstrap_servers
    topic = kafka_topic_factory(partitions=1)
    produce(bootstrap, topic, 100, 1)
    config = write_config(tmp_path, bootstrap, topic, "push-continuous", pushgateway_service, continuous=True)
    with running_backup(config) as proc:
        deadline = time.monotonic() + DEADLINE_SECS
        while pushed(pushgateway_service, "push-continuous").get("kafka_backup_records_total", 0) < 100:
            assert proc.poll() is None and time.monotonic() < deadline, "no periodic push seen"
            time.sleep(0.25)
        produce(bootstrap, topic, 50, 1, start=100)
        while pushed(pushgateway_service, "push-continuous").get("kafka_backup_records_total", 0) < 150:
            assert proc.poll() is None and time.monotonic() < deadline, "no second periodic push seen"
            time.sleep(0.25)
        stopped = time.time()
        out, err = sigterm(proc)
    assert proc.returncode == 0, err
    assert PASSWORD not in out + err
    assert pushed(pushgateway_service, "push-continuous")["push_time_seconds"] >= stopped  # the final push
