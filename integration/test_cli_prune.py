"""Retention against a real broker: a continuous ``kafka-backup backup`` prunes itself while it runs.

Another process's ``kafka-backup prune --execute`` is refused while the
backup holds the lease (naming the run); the running job's own
``backup.retention`` prunes (``kafka_backup_pruned_segments_total`` in its
/metrics); after SIGTERM the backup validates deep, and a restore gives
exactly the records it kept, compared with the source topic.
"""

from __future__ import annotations

import re
from pathlib import Path

from integration.kafka_data import consume_all
from integration.services import KafkaEndpoint
from integration.services.kafka import TopicFactory
from integration.test_cli_backup import cli, fetch, free_port, produce, running_backup, sigterm, wait_for
from libkb.backup.state import load_index
from libkb.config import parse_config
from libkb.restore.engine import RestoreEngine
from libkb.storage import FilesystemConfig, create_backend_from_config

BACKUP_ID = "live"


def metric(url: str, name: str) -> float:
    status, body = fetch(url + "/metrics")
    match = re.search(rf'^{name}{{backup_id="{BACKUP_ID}"}} (\S+)$', body.decode(), re.M)
    return float(match.group(1)) if status == 200 and match else -1.0


def test_a_continuous_backup_prunes_itself_and_refuses_another_prune(
    kafka_service: KafkaEndpoint, kafka_topic_factory: TopicFactory, tmp_path: Path
) -> None:
    bootstrap = kafka_service.bootstrap_servers
    topic = kafka_topic_factory(partitions=2)
    produce(bootstrap, topic, 400, 2)
    port = free_port()
    url, store = f"http://127.0.0.1:{port}", tmp_path / "store"
    config = tmp_path / "live.yaml"
    config.write_text(
        f"backup_id: {BACKUP_ID}\n"
        f"source:\n  bootstrap_servers: {bootstrap}\n  topics:\n    include: [{topic}]\n"
        f"storage:\n  backend: filesystem\n  path: {store}\n"
        "backup:\n  continuous: true\n  segment_max_interval_ms: 300\n  segment_max_records: 50\n"
        "  retention:\n    max_total_bytes: 3000\n    keep_segments: 1\n    interval: 1s\n"
        f"metrics:\n  enabled: true\n  port: {port}\n  bind_address: 127.0.0.1\n"
    )
    with running_backup(config) as proc:
        wait_for("400 records", proc, lambda: metric(url, "kafka_backup_records_total") >= 400)
        refused = cli(
            "prune", "--path", str(store), "--backup-id", BACKUP_ID, "--older-than", "1s", "--execute"
        )
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert (
            "cannot prune now" in refused.stderr
            and f"backup '{BACKUP_ID}' is being written by run" in refused.stderr
        )
        assert "backup.retention" in refused.stderr
        planned = cli("prune", "--path", str(store), "--backup-id", BACKUP_ID, "--older-than", "1s")
        assert planned.returncode == 0 and "--execute would be refused" in planned.stdout, planned.stderr

        produce(bootstrap, topic, 200, 2, start=400)
        wait_for("600 records", proc, lambda: metric(url, "kafka_backup_records_total") >= 600)
        wait_for("a prune", proc, lambda: metric(url, "kafka_backup_pruned_segments_total") > 0)
        assert metric(url, "kafka_backup_pruned_bytes_total") > 0
        oldest = re.findall(
            rf'^kafka_backup_oldest_retained_timestamp_seconds{{backup_id="{BACKUP_ID}",partition="(\d)",'
            rf'topic="{topic}"}} (\S+)$',
            fetch(url + "/metrics")[1].decode(),
            re.M,
        )
        assert sorted(p for p, _ in oldest) == ["0", "1"] and all(float(t) > 1.7e9 for _, t in oldest)
        _out, err = sigterm(proc)
    assert proc.returncode == 0, err
    assert "pruning" in err  # the run's own log line of a cut

    done = cli("validate", "--path", str(store), "--backup-id", BACKUP_ID, "--deep")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "were pruned on" in done.stdout and "backup.retention: max_total_bytes 3000" in done.stdout

    target = kafka_topic_factory(partitions=2)
    restore = parse_config(
        {
            "mode": "restore",
            "backup_id": BACKUP_ID,
            "target": {"bootstrap_servers": bootstrap},
            "storage": {"backend": "filesystem", "path": str(store)},
            "restore": {"topic_mapping": {topic: target}},
        }
    )
    result = RestoreEngine(restore).run()
    assert result.status == "complete"
    assert any("no longer in the backup" in note for note in result.notes)
    source, restored = consume_all(bootstrap, topic, 2), consume_all(bootstrap, target, 2)
    with create_backend_from_config(FilesystemConfig(str(store))) as backend:
        for p in range(2):
            start = load_index(backend, BACKUP_ID, topic, p, repair=False)[0].retained_start
            assert start is not None and 0 < start < 300
            kept = [r[1:] for r in source[p] if r[0] >= start]
            assert [r[1:] for r in restored[p]] == kept, f"partition {p}"
