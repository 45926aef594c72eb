"""Restoring a backup that holds several incarnations of a topic (deleted and re-created between runs)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from libkb.cli.app import main
from libkb.config import parse_config
from libkb.config.models import RestoreOptions, TopicSelection
from libkb.errors import ConfigError
from libkb.format.models import Manifest, PartitionIndex, SegmentEntry, TopicInfo
from libkb.restore.engine import RestoreEngine
from libkb.restore.plan import RestorePlan, plan_restore
from libkb.restore.result import RestoreError
from libkb.restore.resume import check_target_ids
from libkb.restore.state import RestoreState
from libkb.storage import FilesystemConfig, create_backend_from_config
from tests.fakes import FakeKafka

COMPAT = Path(__file__).resolve().parent.parent / "data" / "compat"

OLD, NEW = "AAAAAAAAAAEAAAAAAAAAAg", "BBBBBBBBBBEAAAAAAAAAAg"


def seg(topic: str, p: int, base: int, end: int) -> SegmentEntry:
    key = f"bk/topics/{topic}/partition={p}/s{base}"
    return SegmentEntry(key, base, end, end - base, base, end - 1, 0, 100, 10, 20, "zstd")


MANIFEST = Manifest(
    "bk",
    1,
    2,
    "zstd",
    topics={
        "orders": TopicInfo(2, 1, {}, OLD),
        "orders@2": TopicInfo(1, 1, {}, NEW),
        "audit": TopicInfo(1, 1, {}, "CCCCCCCCCCEAAAAAAAAAAg"),
    },
)
INDEXES = {
    ("orders", 0): PartitionIndex("orders", 0, [seg("orders", 0, 0, 100)]),
    ("orders", 1): PartitionIndex("orders", 1, [seg("orders", 1, 0, 50)]),
    ("orders@2", 0): PartitionIndex("orders@2", 0, [seg("orders@2", 0, 0, 30)]),
    ("audit", 0): PartitionIndex("audit", 0, [seg("audit", 0, 0, 5)]),
}


def plan(include: list[str], **options: Any) -> RestorePlan:
    return plan_restore(MANIFEST, INDEXES, RestoreOptions(**options), TopicSelection(tuple(include), ()))


def sources(p: RestorePlan) -> list[tuple[str, int, str, int]]:
    return [(t.source_topic, t.source_partition, t.target_topic, t.target_partition) for t in p.tasks]


def test_two_incarnations_into_one_topic_are_refused_naming_both_ids_and_the_key() -> None:
    with pytest.raises(ConfigError) as refused:
        plan(["orders"])
    message = str(refused.value)
    assert message.startswith("restore.incarnations: backup 'bk' holds 2 incarnations of topic 'orders'")
    assert f"1 (topic id {OLD}), 2 (topic id {NEW})" in message
    assert "restore.incarnations: {orders: latest}" in message and "\n" not in message
    assert sources(plan(["audit"])) == [("audit", 0, "audit", 0)]  # other topics are not concerned


def test_restore_incarnations_chooses_one_and_its_target_is_the_kafka_name() -> None:
    assert sources(plan(["orders"], incarnations={"orders": "latest"})) == [("orders@2", 0, "orders", 0)]
    assert sources(plan(["*"], incarnations={"*": "latest"})) == [
        ("audit", 0, "audit", 0),
        ("orders@2", 0, "orders", 0),
    ]
    first = plan(["orders"], incarnations={"orders": 1}, topic_mapping={"orders": "orders-old"})
    assert sources(first) == [("orders", 0, "orders-old", 0), ("orders", 1, "orders-old", 1)]
    assert first.skipped_topics == ["audit", "orders@2"]
    # a key by the Kafka name applies to the incarnation restored
    chosen = plan(["orders"], incarnations={"orders": 2}, offset_ranges={"orders": {0: (10, 20)}})
    assert [(t.source_topic, t.start_offset, t.end_offset) for t in chosen.tasks] == [("orders@2", 10, 20)]


def test_each_incarnation_into_a_topic_of_its_own() -> None:
    both = plan(["orders*"], topic_mapping={"orders": "orders-old", "orders@2": "orders"})
    assert sources(both) == [
        ("orders", 0, "orders-old", 0),
        ("orders", 1, "orders-old", 1),
        ("orders@2", 0, "orders", 0),
    ]


def test_an_incarnation_the_backup_lacks_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"holds incarnation\(s\) 1, 2 of topic 'orders', not 3"):
        plan(["orders"], incarnations={"orders": 3})
    with pytest.raises(ConfigError, match="'payments' is not a topic of backup 'bk'"):
        plan(["orders"], incarnations={"payments": 1})


def test_the_key_is_validated_when_the_job_file_is_read() -> None:
    def load(incarnations: Any) -> Any:
        return parse_config(
            {
                "mode": "restore",
                "backup_id": "bk",
                "target": {"bootstrap_servers": ["k:9092"]},
                "storage": {"backend": "memory"},
                "restore": {"incarnations": incarnations},
            },
            source="job.yaml",
        )

    assert load({"orders": 2, "*": "latest"}).restore.incarnations == {"orders": 2, "*": "latest"}
    for bad in ({"orders": 0}, {"orders": "newest"}, {"orders": True}):
        with pytest.raises(ConfigError, match=r"restore\.incarnations\.orders: give an incarnation number"):
            load(bad)


def test_backup_on_topic_recreated_is_validated() -> None:
    def load(value: Any) -> Any:
        return parse_config(
            {
                "backup_id": "bk",
                "source": {"bootstrap_servers": ["k:9092"], "topics": {"include": ["*"]}},
                "storage": {"backend": "memory"},
                "backup": {"on_topic_recreated": value},
            },
            source="job.yaml",
        )

    assert load("new_incarnation").backup.on_topic_recreated == "new_incarnation"
    with pytest.raises(ConfigError, match=r"backup\.on_topic_recreated"):
        load("append")


def test_a_target_recreated_since_the_restore_wrote_is_refused() -> None:
    state = RestoreState("bk", "r-1", 1, None)
    check_target_ids(state, {"copy": OLD, "gone": None})
    assert state.target_topic_ids == {"copy": OLD}  # recorded (stored with the partitions' starts)
    assert RestoreState.from_json(state.to_json()).target_topic_ids == {"copy": OLD}
    check_target_ids(state, {"copy": OLD})
    with pytest.raises(RestoreError) as refused:
        check_target_ids(state, {"copy": NEW})
    assert str(refused.value) == (
        f"target topic 'copy' was deleted and re-created since restore r-1 wrote to it (topic id {OLD} "
        f"then, {NEW} now): what it wrote there is gone. Set restore.restore_id to start a new restore"
    )


def test_the_v5_fixture_restores_its_latest_incarnation_and_shows_its_mapping(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(COMPAT / "v5", tmp_path / "v5")
    target = FakeKafka()
    config = parse_config(
        {
            "mode": "restore",
            "backup_id": "recreated",
            "target": {"bootstrap_servers": ["fake:9092"], "topics": {"include": ["orders"]}},
            "storage": {"backend": "filesystem", "path": str(tmp_path / "v5")},
            "restore": {"create_topics": True, "incarnations": {"*": "latest"}},
        },
        source="test",
    )
    with create_backend_from_config(FilesystemConfig(path=str(tmp_path / "v5"))) as backend:
        engine = RestoreEngine(
            config,
            backend=backend,
            admin=target.admin(),
            producer_factory=target.producer_factory,
            consumer_factory=target.consumer_factory,
        )
        result = engine.run()
    assert result.status == "complete" and result.records == 4
    assert sorted(target.cluster.topics) == ["orders"]
    assert len(target.cluster.topics["orders"].partitions) == 1  # incarnation 2's count (1 had 2)
    assert [r.value for r in target.cluster.records("orders", 0)] == [b"second log"] * 4

    assert main(["show-offset-mapping", "--path", str(tmp_path / "v5"), "--backup-id", "recreated"]) == 0
    shown = capsys.readouterr().out
    assert "orders@2" in shown


def test_target_topics_select_an_incarnation_by_its_stored_name_too() -> None:
    assert sources(plan(["orders@2"])) == [("orders@2", 0, "orders", 0)]
    only_old = plan_restore(MANIFEST, INDEXES, RestoreOptions(), TopicSelection(("orders*",), ("orders@2",)))
    assert sources(only_old) == [("orders", 0, "orders", 0), ("orders", 1, "orders", 1)]
