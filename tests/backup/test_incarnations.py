"""Topic identity at backup: which stored topic each Kafka topic goes to, and when a run must stop. Pure."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Uuid

from integration.kafka_data import BASE_TS, stored_records
from libkb.backup.engine import BackupEngine
from libkb.backup.incarnations import TopicRecreatedError, choose_incarnations, recreated_since
from libkb.catalog import validate_backup
from libkb.config import parse_config
from libkb.format.models import Manifest, PartitionIndex, TopicInfo, index_key, manifest_key
from libkb.storage import FilesystemConfig, StorageBackend, create_backend_from_config
from tests.fakes import FakeKafka

COMPAT = Path(__file__).resolve().parent.parent / "data" / "compat"

A, B, C = "AAAAAAAAAAEAAAAAAAAAAg", "BBBBBBBBBBEAAAAAAAAAAg", "CCCCCCCCCCEAAAAAAAAAAg"


def manifest(**topics: TopicInfo) -> Manifest:
    return Manifest("bk", 1, 2, "zstd", topics=dict(topics))


def test_a_new_topic_and_an_unchanged_one_keep_their_names_and_record_their_ids() -> None:
    m = manifest(orders=TopicInfo(2, 1, {}, A))
    chosen = choose_incarnations(
        m, {"orders": TopicInfo(2, 1, {}, A), "audit": TopicInfo(1, 1, {}, B)}, on_recreated="fail"
    )
    assert chosen == {"orders": "orders", "audit": "audit"}
    assert m.topics["audit"].topic_id == B and m.needed_version == 5


def test_a_backup_recorded_without_ids_takes_the_id_and_leaves_recreation_to_offsets() -> None:
    m = manifest(orders=TopicInfo(2, 1))  # a version 1-4 backup, or a broker before Kafka 2.8
    assert choose_incarnations(m, {"orders": TopicInfo(2, 1, {}, A)}, on_recreated="fail") == {
        "orders": "orders"
    }
    assert m.topics["orders"].topic_id == A
    # a broker that reports no id does not erase the recorded one
    choose_incarnations(m, {"orders": TopicInfo(2, 1)}, on_recreated="fail")
    assert m.topics["orders"].topic_id == A


def test_another_id_stops_the_run_with_one_line_naming_topic_ids_and_key() -> None:
    m = manifest(orders=TopicInfo(2, 1, {}, A), audit=TopicInfo(1, 1, {}, C))
    before = Manifest.from_json(m.to_json())
    with pytest.raises(TopicRecreatedError) as refused:
        choose_incarnations(
            m, {"audit": TopicInfo(1, 1, {}, C), "orders": TopicInfo(1, 1, {}, B)}, on_recreated="fail"
        )
    assert str(refused.value) == (
        "topic 'orders' was deleted and re-created: backup 'bk' holds topic id "
        f"{A} (incarnation 1), the cluster has {B}; set backup.on_topic_recreated: new_incarnation "
        "to back up the new log separately as incarnation 2, or use a new backup_id"
    )
    assert m.topics == before.topics  # nothing recorded, not even the topics that passed


def test_new_incarnation_stores_the_new_log_under_its_own_name_and_later_runs_continue_it() -> None:
    m = manifest(orders=TopicInfo(2, 1, {}, A))
    chosen = choose_incarnations(m, {"orders": TopicInfo(1, 1, {}, B)}, on_recreated="new_incarnation")
    assert chosen == {"orders": "orders@2"}
    assert m.topics["orders"] == TopicInfo(2, 1, {}, A)  # the old incarnation stays as it was
    assert m.topics["orders@2"] == TopicInfo(1, 1, {}, B)
    assert m.incarnations("orders") == ["orders", "orders@2"]
    assert choose_incarnations(m, {"orders": TopicInfo(1, 1, {}, B)}, on_recreated="fail") == {
        "orders": "orders@2"
    }
    # re-created once more: incarnation 3, judged against the latest one
    chosen = choose_incarnations(m, {"orders": TopicInfo(3, 1, {}, C)}, on_recreated="new_incarnation")
    assert chosen == {"orders": "orders@3"}


def test_a_change_while_a_run_reads_is_found() -> None:
    m = manifest(orders=TopicInfo(2, 1, {}, A), **{"orders@2": TopicInfo(1, 1, {}, B)})
    assert recreated_since(m, {"orders": "orders@2"}, {"orders": B}) is None
    assert recreated_since(m, {"orders": "orders@2"}, {"orders": None}) is None
    message = recreated_since(m, {"orders": "orders@2"}, {"orders": C})
    assert message is not None and f"holds topic id {B} (incarnation 2), the cluster has {C}" in message


# -- the engine on a backup made before topic ids (the v4 compatibility fixture), Kafka faked ------


def _metrics_topic(kafka: FakeKafka, uuid: tuple[int, int], ends: list[int], extra: int) -> None:
    """``metrics`` with offsets up to ``ends`` gone by retention, then ``extra`` records per partition."""
    kafka.cluster.create_topic("metrics", len(ends), {"retention.ms": "-1"}, uuid=uuid)
    for p, end in enumerate(ends):
        kafka.cluster.skip("metrics", p, end)
        kafka.cluster.delete_records("metrics", p, end)
        for i in range(extra):
            kafka.cluster.append("metrics", p, f"k{i}".encode(), f"new {p}-{i}".encode(), None, BASE_TS + i)


def _run(kafka: FakeKafka, backend: StorageBackend, **backup: Any) -> Any:
    config = parse_config(
        {
            "backup_id": "pruned",
            "source": {"bootstrap_servers": ["fake:9092"], "topics": {"include": ["metrics"]}},
            "storage": {"backend": "memory"},
            "backup": {"consumer_group_snapshot": False, **backup},
        },
        source="test",
    )
    return BackupEngine(
        config, backend=backend, admin=kafka.admin(), consumer_factory=kafka.consumer_factory
    ).run()


def test_a_backup_from_before_topic_ids_records_them_and_then_tells_a_recreated_topic_apart(
    tmp_path: Path,
) -> None:
    shutil.copytree(COMPAT / "v4", tmp_path / "v4")
    with create_backend_from_config(FilesystemConfig(path=str(tmp_path / "v4"))) as backend:
        before = Manifest.from_json(backend.get(manifest_key("pruned")))
        assert before.format_version == 1 and before.topics["metrics"].topic_id is None
        kafka = FakeKafka()
        _metrics_topic(kafka, (1, 2), [12, 8, 4], 2)  # the backup's ends: 12, 8, 4
        # zstd_mode: block, so that only the ids could raise an index's version (zstd-stream makes it 7)
        assert _run(kafka, backend, zstd_mode="block").records == 6
        manifest = Manifest.from_json(backend.get(manifest_key("pruned")))
        assert manifest.topics["metrics"].topic_id == str(Uuid(1, 2)) and manifest.format_version == 5
        assert PartitionIndex.from_json(backend.get(index_key("pruned", "metrics", 0))).format_version == 4

        # deleted and re-created, already past the old end offsets: only the id tells
        del kafka.cluster.topics["metrics"]
        _metrics_topic(kafka, (3, 4), [0], 0)
        for i in range(40):
            kafka.cluster.append("metrics", 0, None, f"second log {i}".encode(), None, BASE_TS + i)
        with pytest.raises(TopicRecreatedError, match=f"holds topic id {Uuid(1, 2)} .* the cluster has"):
            _run(kafka, backend)
        assert _run(kafka, backend, on_topic_recreated="new_incarnation").records == 40
        report = validate_backup(backend, "pruned", deep=True)
        assert report.ok, report.problems
        assert [r[4] for r in stored_records(backend, "pruned", "metrics@2", 1)[0]] == [
            f"second log {i}".encode() for i in range(40)
        ]
