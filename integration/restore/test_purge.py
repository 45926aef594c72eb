"""``restore.purge_topics`` against a real broker: the target holds exactly the backup's records.

A target topic that already holds records is purged (DeleteRecords up to its
high watermarks) and restored: the restored records begin at the old high
watermark, a consumer group resumes exactly where it was, and a restore
killed with SIGKILL resumes without purging what it wrote. The dry run shows
the purge without doing it; a compacted-only topic, and Kafka's own refusal,
are clear errors.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from integration.kafka_data import consume_all, produce
from integration.restore.test_restore_engine import _RUNNER, _group_position, backup, content, restore
from integration.services.endpoints import KafkaEndpoint
from libkb.cli import main
from libkb.config import parse_config
from libkb.kafka.admin import KafkaAdmin
from libkb.restore import purge
from libkb.restore.engine import RestoreEngine, RestoreError
from libkb.storage import MemoryConfig, StorageBackend, create_backend_from_config

pytestmark = pytest.mark.kafka

#: Records already in the target's two partitions before the restore.
OLD = (30, 45)


@pytest.fixture
def memory() -> StorageBackend:
    return create_backend_from_config(MemoryConfig())


def prefill(bootstrap: str, topic: str, old: tuple[int, ...] = OLD) -> list[int]:
    """Older records in each partition of ``topic`` (``old[p]`` in partition p); its high watermarks."""
    producer = Producer({"bootstrap.servers": bootstrap})
    for p, count in enumerate(old):
        for i in range(count):
            producer.produce(topic, key=b"stale-%d" % i, value=b"old", partition=p)
    assert producer.flush(30) == 0
    admin = KafkaAdmin(AdminClient({"bootstrap.servers": bootstrap}))
    ends = admin.offsets([(topic, p) for p in range(len(old))], read_committed=False)
    return [ends[(topic, p)].high for p in range(len(old))]


def lows(bootstrap: str, topic: str, partitions: int = len(OLD)) -> list[int]:
    admin = KafkaAdmin(AdminClient({"bootstrap.servers": bootstrap}))
    ends = admin.offsets([(topic, p) for p in range(partitions)], read_committed=False)
    return [ends[(topic, p)].low for p in range(partitions)]


def assert_exactly(bootstrap: str, source: str, target: str, starts: list[int]) -> None:
    """The target holds the source's records only, in order, from the old high watermarks."""
    n = len(starts)
    expected, got = consume_all(bootstrap, source, n), consume_all(bootstrap, target, n)
    for p in range(n):
        assert content(got[p]) == content(expected[p]), f"partition {p} differs"
        assert [r[0] for r in got[p]] == list(range(starts[p], starts[p] + len(got[p])))
    assert lows(bootstrap, target, n) == starts


def test_a_purged_target_holds_exactly_the_backup_and_its_group_resumes_exactly(
    kafka_service: KafkaEndpoint, kafka_topic_factory: Any, memory: StorageBackend
) -> None:
    bootstrap = kafka_service.bootstrap_servers
    source = kafka_topic_factory(partitions=3, config={"retention.ms": "-1"})
    produce(bootstrap, source, 600, partitions=2)  # partition 2 stays empty: its target must end so
    group = f"{source}-app"
    committer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    committed = [TopicPartition(source, 0, 111), TopicPartition(source, 1, 42)]
    committer.commit(offsets=committed, asynchronous=False)
    committer.close()
    backup(kafka_service, {"backend": "memory"}, [source], memory)
    target = kafka_topic_factory(partitions=3, config={"retention.ms": "-1"})
    old = (*OLD, 12)
    starts = prefill(bootstrap, target, old)
    result = restore(
        kafka_service,
        {"backend": "memory"},
        [target],
        memory,
        topic_mapping={source: target},
        purge_topics=True,
        consumer_groups=[group],
        reset_consumer_offsets=True,
    )
    assert result.status == "complete" and result.purge is not None
    assert result.purge.records == sum(old)
    assert [(p.partition, p.low, p.high) for p in result.purge.partitions] == [
        (p, 0, starts[p]) for p in range(3)
    ]
    assert_exactly(bootstrap, source, target, starts)
    # The group reads on the target exactly what it had not read on the source.
    assert result.groups_reset == [group]
    records = consume_all(bootstrap, source, 2)
    unread = [r[1:] for p, at in ((0, 111), (1, 42)) for r in records[p] if r[0] >= at]
    assert sorted(content(_group_position(kafka_service, group, target, 3))) == sorted(unread)


def test_kill_9_during_a_purged_restore_then_rerun_purges_nothing_it_wrote(
    kafka_service: KafkaEndpoint, kafka_topic_factory: Any, tmp_path: Path
) -> None:
    bootstrap = kafka_service.bootstrap_servers
    source = kafka_topic_factory(partitions=2, config={"retention.ms": "-1"})
    produce(bootstrap, source, 20_000, partitions=2)
    storage = {"backend": "filesystem", "path": str(tmp_path)}
    backup(kafka_service, storage, [source])
    target = kafka_topic_factory(partitions=2, config={"retention.ms": "-1"})
    starts = prefill(bootstrap, target)
    config: dict[str, Any] = {
        "mode": "restore",
        "backup_id": "bk",
        "target": {"bootstrap_servers": bootstrap, "topics": {"include": [target]}},
        "storage": storage,
        "restore": {
            "topic_mapping": {source: target},
            "purge_topics": True,
            "rate_limit_records_per_sec": 2000,
        },
    }
    victim = subprocess.Popen(
        [sys.executable, "-c", _RUNNER, json.dumps(config)],
        env={**os.environ, "PYTHONPATH": os.getcwd()},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    admin = KafkaAdmin(AdminClient({"bootstrap.servers": bootstrap}))
    deadline = time.monotonic() + 60
    while (
        sum(e.high for e in admin.offsets([(target, 0), (target, 1)], read_committed=False).values())
        < sum(starts) + 5000
    ):
        assert time.monotonic() < deadline and victim.poll() is None, victim.communicate()
        time.sleep(0.1)
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    partial = sum(map(len, consume_all(bootstrap, target, 2).values()))
    assert 0 < partial < 20_000  # the old records are gone, some restored ones are there
    assert lows(bootstrap, target) == starts
    (state_file,) = (tmp_path / "bk" / "restores").glob("*/state.json")
    parts = json.loads(state_file.read_text())["partitions"].values()
    assert sorted((p["purge_before"], p["purged"], p["target_start"]) for p in parts) == sorted(
        (s, True, s) for s in starts
    )

    del config["restore"]["rate_limit_records_per_sec"]
    result = RestoreEngine(parse_config(config)).run()
    assert result.status == "complete" and result.skipped_records == partial
    assert result.purge is not None and result.purge.partitions == [] and result.purge.kept == []
    assert_exactly(bootstrap, source, target, starts)


@pytest.fixture
def _cli_logging() -> Iterator[None]:
    from libkb.cli.logs import unconfigure

    yield
    unconfigure()


def test_the_dry_run_and_validate_restore_show_the_purge_and_delete_nothing(
    kafka_service: KafkaEndpoint,
    kafka_topic_factory: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    _cli_logging: None,  # after capsys: logging stops before the capture closes
) -> None:
    bootstrap = kafka_service.bootstrap_servers
    source = kafka_topic_factory(partitions=2, config={"retention.ms": "-1"})
    produce(bootstrap, source, 100, partitions=2)
    storage = {"backend": "filesystem", "path": str(tmp_path / "store")}
    backup(kafka_service, storage, [source])
    target = kafka_topic_factory(partitions=2, config={"retention.ms": "-1"})
    starts = prefill(bootstrap, target)
    job = tmp_path / "restore.yaml"
    job.write_text(
        yaml.safe_dump(
            {
                "mode": "restore",
                "backup_id": "bk",
                "target": {"bootstrap_servers": [bootstrap], "topics": {"include": [target]}},
                "storage": storage,
                "restore": {"topic_mapping": {source: target}, "purge_topics": True},
            }
        )
    )
    width = len(f"{target}[0]")
    expected = (
        f"  purge first (restore.purge_topics): 75 records from 2 partitions of {target}, below their "
        "high watermarks:\n"
        f"    {'TARGET':<{width}}  OFFSETS  RECORDS\n"
        f"    {target}[0]  [0, {starts[0]})  30\n"
        f"    {target}[1]  [0, {starts[1]})  45\n"
    )
    assert main(["restore", "--config", str(job), "--dry-run"]) == 0
    assert capsys.readouterr().out.endswith(expected)
    assert main(["validate-restore", "--config", str(job)]) == 0
    assert capsys.readouterr().out.endswith(expected)
    assert main(["validate-restore", "--config", str(job), "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)["purge"]
    assert shown["records"] == 75 and [p["to_offset"] for p in shown["partitions"]] == starts
    assert lows(bootstrap, target) == [0, 0]
    assert [len(r) for r in consume_all(bootstrap, target, 2).values()] == list(OLD)
    assert not (tmp_path / "store" / "bk" / "restores").exists()


def test_a_compacted_only_target_is_refused_and_kafkas_own_refusal_is_named(
    kafka_service: KafkaEndpoint,
    kafka_topic_factory: Any,
    memory: StorageBackend,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bootstrap = kafka_service.bootstrap_servers
    source = kafka_topic_factory(partitions=2, config={"retention.ms": "-1"})
    produce(bootstrap, source, 100, partitions=2)
    backup(kafka_service, {"backend": "memory"}, [source], memory)
    target = kafka_topic_factory(partitions=2, config={"retention.ms": "-1", "cleanup.policy": "compact"})
    prefill(bootstrap, target)
    options: dict[str, Any] = {"topic_mapping": {source: target}, "purge_topics": True}
    with pytest.raises(RestoreError) as refused:
        restore(kafka_service, {"backend": "memory"}, [target], memory, **options)
    assert str(refused.value) == (
        f"restore.purge_topics: target topic {target!r} has cleanup.policy=compact, and Kafka deletes "
        "records only of topics whose policy includes delete. Set cleanup.policy=compact,delete on it "
        "for the restore, or restore into a new topic (restore.topic_mapping); nothing was purged or "
        "restored"
    )
    assert lows(bootstrap, target) == [0, 0] and not memory.list("bk/restores/")
    # Were the policy changed after the check, Kafka itself refuses: its answer is named.
    monkeypatch.setattr(purge, "check_purgeable", lambda admin, report: None)
    with pytest.raises(RestoreError) as kafka_refused:
        restore(kafka_service, {"backend": "memory"}, [target], memory, **options)
    assert str(kafka_refused.value) == (
        f"restore.purge_topics: Kafka refused to delete the records of {target}[0] (and 1 more "
        "partitions): Broker: Policy violation (POLICY_VIOLATION); its cleanup.policy must include "
        "delete; nothing was restored, and a re-run purges only partitions this restore has not written"
    )
    assert sum(len(r) for r in consume_all(bootstrap, target, 2).values()) == sum(OLD)
