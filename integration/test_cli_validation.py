"""``kafka-backup validation`` on a real broker: a restore checked; its evidence signed, fetched, verified.

The restore lands at other offsets than the source (the target already holds
records), its consumer-group offsets are applied; ``validation run`` checks
counts, ranges, group offsets and every record's content, calls a custom
webhook and tells Slack (a local HTTP server stands in for both). A group
offset moved afterwards makes the next run fail with exit 1.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka import Consumer, TopicPartition
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from integration.kafka_data import produce
from integration.services.endpoints import KafkaEndpoint

pytestmark = pytest.mark.kafka
CLI = str(Path(".venv/bin/kafka-backup").resolve())
KEEP = {"retention.ms": "-1"}  # the test records are from 2020


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=300)


def commit(bootstrap: str, group: str, offsets: list[TopicPartition]) -> None:
    committer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    committer.commit(offsets=offsets, asynchronous=False)
    committer.close()


@pytest.fixture
def http_sink() -> Iterator[tuple[str, list[tuple[str, dict[str, Any]]]]]:
    """A local HTTP server answering every POST with a passed check; (its URL, what it received)."""
    received: list[tuple[str, dict[str, Any]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append((self.path, json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
            body = json.dumps({"result": "passed", "detail": "the application reads its data"}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


def keys(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    private, public = tmp_path / "private.pem", tmp_path / "public.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def test_validation_of_a_restore_with_signed_evidence(
    kafka_service: KafkaEndpoint,
    kafka_topic_factory: Any,
    tmp_path: Path,
    http_sink: tuple[str, list[tuple[str, dict[str, Any]]]],
) -> None:
    bootstrap = kafka_service.bootstrap_servers
    url, received = http_sink
    source = kafka_topic_factory(partitions=2, config=KEEP)
    produce(bootstrap, source, 300, partitions=2)
    group = f"{source}-billing"
    commit(bootstrap, group, [TopicPartition(source, 0, 50), TopicPartition(source, 1, 120)])
    store = tmp_path / "backups"
    storage = {"backend": "filesystem", "path": str(store)}
    backup = tmp_path / "backup.yaml"
    backup.write_text(
        yaml.safe_dump(
            {
                "backup_id": "val",
                "source": {"bootstrap_servers": [bootstrap], "topics": {"include": [source]}},
            }
            | {"storage": storage}
        )
    )
    assert cli("backup", "--config", str(backup)).returncode == 0
    target = kafka_topic_factory(partitions=2, config=KEEP)
    produce(bootstrap, target, 40, partitions=1)
    restore = tmp_path / "restore.yaml"
    restore.write_text(
        yaml.safe_dump(
            {
                "mode": "restore",
                "backup_id": "val",
                "target": {"bootstrap_servers": [bootstrap], "topics": {"include": [target]}},
                "storage": storage,
                "restore": {"topic_mapping": {source: target}, "reset_consumer_offsets": True},
            }
        )
    )
    restored = cli("restore", "--config", str(restore))
    assert restored.returncode == 0, restored.stderr
    private, public = keys(tmp_path)
    config = tmp_path / "validation.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "backup_id": "val",
                "storage": storage,
                "target": {"bootstrap_servers": [bootstrap]},
                "checks": {
                    "message_count": {"enabled": True, "mode": "exact"},
                    "consumer_group_offsets": {"verify_all_groups": False, "groups": [group]},
                    "record_content": {"enabled": True},
                    "custom_webhooks": [{"name": "app-check", "url": f"{url}/check"}],
                },
                "evidence": {
                    "formats": ["json"],
                    "signing": {"enabled": True, "private_key_path": str(private)},
                },
                "notifications": {"slack": {"webhook_url": f"{url}/slack"}},
            }
        )
    )

    done = cli("validation", "run", "--config", str(config), "--triggered-by", "restore drill")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("validation validation-") and lines[0].endswith(": PASSED")
    assert "compared by the restore's offset mapping" in lines[0]
    assert lines[1].startswith("checks: 5 run, 5 passed, 0 failed, 0 skipped, 0 warnings")
    assert (
        "  [PASSED] MessageCountCheck: 1 topics, 2 partitions; 300 messages expected, 300 restored"
        in done.stdout
    )
    assert (
        "  [PASSED] RecordContentCheck: 300 records read back and compared with the backup; 0 mismatches"
        in lines
    )
    assert "  [PASSED] app-check: the application reads its data" in lines
    evidence = next(line for line in lines if line.startswith("evidence: ")).removeprefix("evidence: ")
    report_id = Path(evidence).stem
    (check_path, payload), (slack_path, slack) = received
    assert check_path == "/check" and payload["backup_id"] == "val" and payload["report_id"] == report_id
    assert payload["restored_cluster"]["bootstrap_servers"] == [bootstrap] and payload[
        "restore_id"
    ].startswith("r-")
    assert slack_path == "/slack" and "validation PASSED: backup val, 5/5 checks passed" in slack["text"]

    listed = cli("validation", "evidence-list", "--path", f"file://{store}")
    assert listed.returncode == 0 and f"  {report_id}  {evidence}" in listed.stdout
    report, signature = tmp_path / "report.json", tmp_path / "report.sig"
    assert (
        cli("validation", "evidence-get", "-p", str(store), "-r", report_id, "-o", str(report)).returncode
        == 0
    )
    got = cli(
        "validation", "evidence-get", "-p", str(store), "-r", report_id, "-f", "sig", "-o", str(signature)
    )
    assert got.returncode == 0, got.stderr
    body = json.loads(report.read_text())
    assert body["triggered_by"] == "restore drill" and body["validation"]["overall_result"] == "PASSED"
    assert body["restore"]["target_bootstrap_servers"] == [bootstrap]
    verified = cli(
        "validation", "evidence-verify", "-r", str(report), "-s", str(signature), "--public-key", str(public)
    )
    assert verified.returncode == 0, verified.stderr
    assert "ECDSA signature: valid" in verified.stdout

    commit(bootstrap, group, [TopicPartition(target, 0, 5)])  # someone moved the group afterwards
    failed = cli("validation", "run", "--config", str(config), "--format", "json")
    assert failed.returncode == 1, failed.stdout
    report_body = json.loads(failed.stdout)
    results = {r["check_name"]: r for r in report_body["validation"]["results"]}
    assert results["ConsumerGroupOffsetCheck"]["outcome"] == "FAILED"
    (issue,) = results["ConsumerGroupOffsetCheck"]["data"]["issues"]
    assert (issue["partition"], issue["expected"], issue["committed"]) == (0, 90, 5)  # 40 before + 50
    assert "validation FAILED: 1 of 5 checks failed" in failed.stderr
    assert "validation FAILED" in received[-1][1]["text"]
