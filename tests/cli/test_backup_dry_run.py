"""``backup --dry-run``: the plan a backup job would run, on a fake cluster, and nothing written anywhere."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from libkb.backup.engine import BackupEngine
from libkb.backup.lease import Lease
from libkb.catalog.backup_plan import BackupDryRun, plan_backup
from libkb.cli import main
from libkb.cli.backup_plan import dry_run_text
from libkb.config import JobConfig, parse_config
from libkb.format.models import lease_key
from libkb.storage import FilesystemConfig, create_backend_from_config
from tests.fakes import FakeKafka

VALUE = b"v" * 46  # with a 4-byte key: 50 bytes a record


@pytest.fixture
def kafka() -> FakeKafka:
    kafka = FakeKafka()
    kafka.cluster.create_topic("orders", partitions=2)
    kafka.cluster.create_topic("audit")
    kafka.cluster.create_topic("__consumer_offsets")
    add(kafka, "orders", 20)
    add(kafka, "audit", 5)
    return kafka


def add(kafka: FakeKafka, topic: str, count: int) -> None:
    partitions = len(kafka.cluster.topics[topic].partitions)
    for i in range(count):
        kafka.cluster.append(topic, i % partitions, f"{i:04d}".encode(), VALUE)


def job(store: Path, **backup: Any) -> JobConfig:
    return parse_config(
        {
            "mode": "backup",
            "backup_id": "bk",
            "source": {
                "bootstrap_servers": ["fake:9092"],
                "topics": {"include": ["*"], "exclude": ["audit"]},
            },
            "storage": {"backend": "filesystem", "path": str(store)},
            "backup": backup,
        },
        log_warnings=False,
    )


def dry_run(config: JobConfig, kafka: FakeKafka) -> BackupDryRun:
    with create_backend_from_config(config.storage, create=False) as backend:
        return plan_backup(config, backend, kafka.admin(), kafka.consumer_factory, location="the store")


def files(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def test_a_new_backup_on_a_missing_directory_plans_and_creates_nothing(
    kafka: FakeKafka, tmp_path: Path
) -> None:
    plan = dry_run(job(tmp_path / "missing" / "store"), kafka)
    assert not (tmp_path / "missing").exists()
    assert (plan.location_exists, plan.exists, plan.lease, plan.mode) == (False, False, None, "snapshot")
    assert [(p.topic, p.partition, p.start_offset, p.end_offset, p.origin) for p in plan.partitions] == [
        ("orders", 0, 0, 10, "earliest"),
        ("orders", 1, 0, 10, "earliest"),
    ]
    internal = "internal topic (backup.include_internal_topics is false; or include it by name)"
    assert plan.excluded == {"__consumer_offsets": internal, "audit": "source.topics.exclude 'audit'"}
    assert (plan.estimate.method, plan.estimate.average_record_bytes, plan.estimate.bytes) == (
        "sampled",
        50,
        1000,
    )
    assert [p.estimated_bytes for p in plan.partitions] == [500, 500]
    # The sampler was only assigned partitions: nothing committed, no group stored.
    assert kafka.cluster.groups == {} and all(c.closed for c in kafka.consumers)
    assert all(c.config["enable.auto.commit"] is False for c in kafka.consumers)


def test_a_stored_backup_resumes_at_its_stored_ends_and_the_lease_holder_is_shown(
    kafka: FakeKafka, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    config = job(store)
    engine = BackupEngine(config, admin=kafka.admin(), consumer_factory=kafka.consumer_factory)
    assert engine.run().status == "complete"
    add(kafka, "orders", 6)
    holder = Lease(
        create_backend_from_config(FilesystemConfig(str(store))), lease_key("bk"), "other-run", 300
    )
    holder.acquire()
    try:
        before = files(store)
        plan = dry_run(config, kafka)
        assert files(store) == before  # no object written, none touched; the lease stays the other run's
    finally:
        holder.release()
    assert [(p.start_offset, p.end_offset, p.stored_end, p.origin) for p in plan.partitions] == [
        (10, 13, 10, "stored"),
        (10, 13, 10, "stored"),
    ]
    assert plan.exists and plan.last_run is not None and plan.last_run.status == "complete"
    assert plan.lease is not None and plan.lease.valid and plan.lease.run_id == "other-run"
    text = dry_run_text(plan)
    assert "orders[0]  10     13   3        resume (stored end)  150 B" in text, text
    assert "resume: last run" in text and "lease: held, generation 2, run other-run" in text
    assert "excluded: audit (source.topics.exclude 'audit')" in text
    assert "total: 6 offsets to read in 2 partition(s) of 1 topic(s), about 300 B" in text
    assert "note: run other-run" in text and "a run now would be refused" in text
    assert plan.to_dict()["partitions"][0]["offsets_to_read"] == 3


def test_continuous_mode_has_no_end_and_an_empty_cluster_nothing_to_estimate(tmp_path: Path) -> None:
    kafka = FakeKafka()
    kafka.cluster.create_topic("orders")
    plan = dry_run(job(tmp_path / "s", continuous=True, start_offset="latest"), kafka)
    (partition,) = plan.partitions
    assert (partition.end_offset, partition.origin, plan.mode) == (None, "latest", "continuous")
    assert plan.estimate.method == "nothing to read" and plan.estimate.bytes == 0
    assert any("continuous mode" in note for note in plan.notes)


def test_backup_dry_run_refuses_a_restore_job_naming_the_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "restore.yaml"
    config.write_text(
        "mode: restore\nbackup_id: bk\ntarget:\n  bootstrap_servers: [x:9092]\n"
        f"storage:\n  backend: filesystem\n  path: {tmp_path / 's'}\n"
    )
    assert main(["backup", "--config", str(config), "--dry-run"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "restore.yaml" in err and not (tmp_path / "s").exists()


def test_a_plan_with_no_topic_exits_1_with_the_runs_error(
    capsys: pytest.CaptureFixture[str], kafka: FakeKafka, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the run would refuse to start; the JSON document says so too."""
    import libkb.cli.backup_plan as command

    monkeypatch.setattr(command, "make_admin", lambda source: kafka.admin().admin)
    monkeypatch.setattr(command, "make_consumer", kafka.consumer_factory)
    config = tmp_path / "backup.yaml"
    config.write_text(
        "backup_id: bk\nsource:\n  bootstrap_servers: [fake:9092]\n  topics:\n    include: [nothing-*]\n"
        f"storage:\n  backend: filesystem\n  path: {tmp_path / 's'}\n"
    )
    assert main(["backup", "--config", str(config), "--dry-run", "--format", "json"]) == 1
    out, err = capsys.readouterr()
    document = json.loads(out)
    assert document["status"] == "planned" and document["partitions"] == []
    assert document["errors"] == [err.removeprefix("kafka-backup: error: ").rstrip("\n")]
    assert "matches source.topics of" in err and str(config) in err and not (tmp_path / "s").exists()
