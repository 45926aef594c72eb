"""Backups written by the Rust kafka-backup (v0.17.4), through libkb's commands, into a real broker.

Every fixture backup is listed, described, validated deep and restored with
``kafka-backup`` (in process), and the target topics are read back and
compared record by record with what the format keeps of the ground truth
(:func:`tests.source.rust_fixtures.as_stored`), the consumer group's offsets
with ``group-offsets.json``. One fixture per cloud backend, after uploading
it there; a time window, a mapping, ``kill -9`` and damaged segments.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from integration.kafka_data import consume_all
from integration.restore.test_restore_engine import _storage_dict
from integration.services import delete_kafka_topic
from integration.services.endpoints import KafkaEndpoint
from integration.storage.configs import azure_config, gcs_config, s3_config
from libkb.catalog import describe_backup, validate_backup
from libkb.cli import main
from libkb.config import parse_config
from libkb.format.segment import Record
from libkb.kafka.admin import KafkaAdmin
from libkb.restore.engine import RestoreEngine
from libkb.storage import create_backend_from_config
from libkb.storage.settings import BackendConfig
from tests.cli.stored import flip_byte
from tests.fakes.jobs import content
from tests.source.rust_fixtures import (
    AUDIT,
    FIXTURES,
    ORDERS,
    fixture_dir,
    group_offsets,
    stored_records,
    upload_fixture,
)

pytestmark = pytest.mark.kafka
GROUP = "fxa-consumer"
PARTITIONS = {ORDERS: 3, AUDIT: 1}


@pytest.fixture(autouse=True)
def _cli_logging() -> Iterator[None]:
    from libkb.cli.logs import unconfigure

    yield
    unconfigure()


@pytest.fixture
def targets(kafka_topic_factory: Any) -> Callable[[], dict[str, str]]:
    """New target topics for the fixture's two topics, with their partition counts (deleted after)."""

    def make() -> dict[str, str]:
        return {
            source: kafka_topic_factory(partitions=n, config={"retention.ms": "-1"})
            for source, n in PARTITIONS.items()
        }

    return make


def store(tmp_path: Path, name: str) -> Path:
    """A writable copy of fixture ``name`` (a restore stores its state beside the backup)."""
    path = tmp_path / name
    shutil.copytree(fixture_dir(name), path)
    return path


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def restore_file(
    tmp_path: Path, kafka: KafkaEndpoint, storage: dict[str, Any], backup_id: str, **opts: Any
) -> str:
    path = tmp_path / f"restore-{time.monotonic_ns()}.yaml"
    mapping = opts.pop("topic_mapping")
    path.write_text(
        yaml.safe_dump(
            {
                "mode": "restore",
                "backup_id": backup_id,
                "target": {
                    "bootstrap_servers": [kafka.bootstrap_servers],
                    "topics": {"include": sorted(mapping.values())},
                },
                "storage": storage,
                "restore": {"topic_mapping": mapping, **opts},
            }
        )
    )
    return str(path)


def assert_restored(
    kafka: KafkaEndpoint, mapping: dict[str, str], expected: dict[tuple[str, int], list[Record]]
) -> None:
    """The targets hold exactly what the format keeps of the ground truth, at the same offsets."""
    for source, target in mapping.items():
        got = consume_all(kafka.bootstrap_servers, target, PARTITIONS[source])
        for p, records in got.items():
            want = expected.get((source, p), [])
            assert content(records) == content(want), f"{source}[{p}] differs"
            assert [r[0] for r in records] == [r[0] for r in want]
            assert all(r[2] == 1 for r in records)  # CreateTime: the stored timestamps


def committed(kafka: KafkaEndpoint, mapping: dict[str, str]) -> dict[str, dict[int, int]]:
    consumer = Consumer({"bootstrap.servers": kafka.bootstrap_servers, "group.id": GROUP})
    try:
        parts = [TopicPartition(mapping[s], p) for s, n in PARTITIONS.items() for p in range(n)]
        found = consumer.committed(parts, timeout=30)
    finally:
        consumer.close()
    source_of = {t: s for s, t in mapping.items()}
    out: dict[str, dict[int, int]] = {}
    for tp in found:
        out.setdefault(source_of[tp.topic], {})[tp.partition] = tp.offset
    return out


@pytest.mark.parametrize("name", FIXTURES)
def test_every_fixture_through_the_commands(
    name: str,
    kafka_service: KafkaEndpoint,
    targets: Callable[[], dict[str, str]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = store(tmp_path, name)
    backup_id = FIXTURES[name][1]
    expected = stored_records(name)
    total = sum(map(len, expected.values()))

    code, out, _ = cli(capsys, "list", "--path", str(path), "--format", "json")
    (listed,) = json.loads(out)
    assert code == 0 and (listed["backup_id"], listed["records"]) == (backup_id, total)
    code, out, _ = cli(capsys, "describe", "--path", str(path), "--backup-id", backup_id)
    assert code == 0 and "Written by:      kafka-backup (Rust) 0.12 or later" in out
    assert "null header values were stored as empty values" in out
    code, out, _ = cli(capsys, "validate", "--path", str(path), "--backup-id", backup_id, "--deep")
    segments = len(list(path.rglob("segment-*")))
    assert code == 0 and f"valid (deep check: 4 partitions, {segments} segments, {total:,} records)" in out

    mapping = targets()
    config = restore_file(
        tmp_path,
        kafka_service,
        {"backend": "filesystem", "path": str(path)},
        backup_id,
        topic_mapping=mapping,
        reset_consumer_offsets=True,
    )
    code, out, _ = cli(capsys, "validate-restore", "--config", config, "--format", "json")
    assert code == 0 and sum(p["records"] for p in json.loads(out)["partitions"]) == total
    code, out, err = cli(capsys, "restore", "--config", config)
    assert code == 0, err
    assert out.count("note: kafka-backup (Rust) segment format 1: ") == 7
    assert f"left out the Rust tool's own x-original-* headers of {total:,} records" in out
    assert f"{total:,} records" in out and "offsets translated for 1 group(s), applied to fxa-consumer" in out
    assert_restored(kafka_service, mapping, expected)
    assert committed(kafka_service, mapping) == group_offsets()[GROUP]

    code, out, _ = cli(
        capsys, "show-offset-mapping", "--path", str(path), "--backup-id", backup_id, "--format", "json"
    )
    (restored,) = json.loads(out)
    runs = {(p["source_topic"], p["source_partition"]): p["runs"] for p in restored["partitions"]}
    assert runs == {tp: [[0, 0, len(records)]] for tp, records in expected.items()}


def cloud_storage(kind: str, request: pytest.FixtureRequest) -> BackendConfig:
    if kind == "minio":
        return s3_config(request.getfixturevalue("minio_bucket"))
    if kind == "azurite":
        return azure_config(request.getfixturevalue("azurite_container"))
    return gcs_config(request.getfixturevalue("gcs_bucket"))


@pytest.mark.parametrize(("kind", "name"), [("minio", "lz4"), ("azurite", "none"), ("gcs", "incremental")])
def test_a_fixture_uploaded_to_a_cloud_backend_restores_exactly(
    kind: str,
    name: str,
    request: pytest.FixtureRequest,
    kafka_service: KafkaEndpoint,
) -> None:
    """The restore creates its topics too: with the broker's defaults, the format keeps no configs."""
    config = cloud_storage(kind, request)
    with create_backend_from_config(config) as backend:
        backup_id = upload_fixture(backend, name)
        assert describe_backup(backend, backup_id).provenance is not None
        report = validate_backup(backend, backup_id, deep=True)
        assert report.ok and report.checked_records == sum(map(len, stored_records(name).values()))
    mapping = {source: f"{source}-{kind}-{uuid.uuid4().hex[:10]}" for source in PARTITIONS}
    restore_config = parse_config(
        {
            "mode": "restore",
            "backup_id": backup_id,
            "target": {"bootstrap_servers": kafka_service.bootstrap_servers},
            "storage": _storage_dict(config),
            "restore": {"topic_mapping": mapping, "create_topics": True},
        }
    )
    try:
        result = RestoreEngine(restore_config).run()
        assert result.status == "complete" and sorted(result.created_topics) == sorted(mapping.values())
        assert_restored(kafka_service, mapping, stored_records(name))
    finally:
        for topic in mapping.values():
            delete_kafka_topic(kafka_service, topic)


def test_time_window_restore_is_inclusive(
    kafka_service: KafkaEndpoint, targets: Callable[[], dict[str, str]], tmp_path: Path
) -> None:
    """The window the Rust tool's own point-in-time restore used: it gave 333/334/334 records, as here."""
    path = store(tmp_path, "zstd")
    low, high = 1700000100000, 1700000200000
    mapping = targets()
    config = parse_config(
        {
            "mode": "restore",
            "backup_id": "fxa-zstd",
            "target": {"bootstrap_servers": kafka_service.bootstrap_servers},
            "storage": {"backend": "filesystem", "path": str(path)},
            "restore": {"topic_mapping": mapping, "time_window_start": low, "time_window_end": high},
        }
    )
    result = RestoreEngine(config).run()
    assert result.status == "complete" and result.records == 1001
    inside = {tp: [r for r in recs if low <= r[1] <= high] for tp, recs in stored_records("zstd").items()}
    for (source, p), records in inside.items():
        got = consume_all(kafka_service.bootstrap_servers, mapping[source], PARTITIONS[source])[p]
        assert content(got) == content(records)
    assert [len(inside[(ORDERS, p)]) for p in range(3)] == [333, 334, 334]


def test_partition_mapping_and_an_offset_range(
    kafka_service: KafkaEndpoint, targets: Callable[[], dict[str, str]], tmp_path: Path
) -> None:
    path = store(tmp_path, "none")
    mapping = targets()
    config = parse_config(
        {
            "mode": "restore",
            "backup_id": "fxa-none",
            "target": {
                "bootstrap_servers": kafka_service.bootstrap_servers,
                "topics": {"include": [mapping[ORDERS]]},
            },
            "storage": {"backend": "filesystem", "path": str(path)},
            "restore": {
                "topic_mapping": {ORDERS: mapping[ORDERS]},
                "partition_mapping": {ORDERS: {0: 1, 1: 0}},
                "source_partitions": {ORDERS: [0, 1]},
                "offset_ranges": {ORDERS: {1: [399, 801]}},
            },
        }
    )
    result = RestoreEngine(config).run()
    assert result.status == "complete" and result.records == 1000 + 402
    expected = stored_records("none")
    got = consume_all(kafka_service.bootstrap_servers, mapping[ORDERS], 3)
    assert content(got[1]) == content(expected[(ORDERS, 0)])
    assert content(got[0]) == content(expected[(ORDERS, 1)][399:801])
    assert got[2] == []


_RUNNER = textwrap.dedent(
    """
    import json, sys
    from libkb.config import parse_config
    from libkb.restore.engine import RestoreEngine
    engine = RestoreEngine(parse_config(json.loads(sys.argv[1])))
    engine.checkpoint_secs = 0.5
    print(engine.run().status, flush=True)
    """
)


def test_kill_9_during_a_restore_then_a_rerun_is_exact(
    kafka_service: KafkaEndpoint, targets: Callable[[], dict[str, str]], tmp_path: Path
) -> None:
    path = store(tmp_path, "incremental")
    mapping = targets()
    config: dict[str, Any] = {
        "mode": "restore",
        "backup_id": "fxa-incr",
        "target": {"bootstrap_servers": kafka_service.bootstrap_servers},
        "storage": {"backend": "filesystem", "path": str(path)},
        "restore": {"topic_mapping": mapping, "rate_limit_records_per_sec": 400},
    }
    victim = subprocess.Popen(
        [sys.executable, "-c", _RUNNER, json.dumps(config)],
        env={**os.environ, "PYTHONPATH": os.getcwd()},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    admin = KafkaAdmin(AdminClient({"bootstrap.servers": kafka_service.bootstrap_servers}))
    tps = [(mapping[s], p) for s, n in PARTITIONS.items() for p in range(n)]

    def written() -> int:
        return sum(e.high for e in admin.offsets(tps, read_committed=False).values())

    deadline = time.monotonic() + 60
    while written() < 1000:
        assert time.monotonic() < deadline and victim.poll() is None, victim.communicate()
        time.sleep(0.1)
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    partial = written()
    assert 1000 <= partial < 3860
    del config["restore"]["rate_limit_records_per_sec"]
    result = RestoreEngine(parse_config(config)).run()
    assert result.status == "complete" and result.skipped_records == partial
    assert_restored(kafka_service, mapping, stored_records("incremental"))


SEGMENT = "fxa-orders/partition=2/segment-00000000000000000400.bin"


@pytest.mark.parametrize("damage", ["flipped byte", "truncated"])
def test_a_damaged_segment_is_named_by_validate_and_restore(
    damage: str,
    kafka_service: KafkaEndpoint,
    targets: Callable[[], dict[str, str]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = store(tmp_path, "lz4")
    key = f"fxa-lz4/topics/{SEGMENT}.lz4"
    segment = path / key
    if damage == "truncated":
        segment.write_bytes(segment.read_bytes()[:-100])
        what = "truncated or corrupt: the footer magic is missing"
    else:
        with create_backend_from_config(_filesystem(path)) as backend:
            flip_byte(backend, key)
        what = "checksum mismatch (corrupt bytes)"
    code, out, err = cli(capsys, "validate", "--path", str(path), "--backup-id", "fxa-lz4", "--deep")
    assert code == 1 and f"problem: {key} (offsets 400-799): {what}" in out
    config = restore_file(
        tmp_path,
        kafka_service,
        {"backend": "filesystem", "path": str(path)},
        "fxa-lz4",
        topic_mapping=targets(),
    )
    code, _, err = cli(capsys, "restore", "--config", config)
    assert code == 1
    assert f"{key} (offsets 400-799): {what}" in err


def _filesystem(path: Path) -> BackendConfig:
    from libkb.storage import FilesystemConfig

    return FilesystemConfig(str(path))
