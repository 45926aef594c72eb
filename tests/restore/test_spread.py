"""A topic restored by key into another partition count, Kafka faked: placement, order, resume, groups.

The backup is the engine tests' (3 partitions of awkward records, offset
gaps, a partition trimmed by retention); the expected target partitions are
computed here from the rules in docs/config.rst, record by record.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from libkb.cli.offset_reset import run_offset_reset
from libkb.cli.restore import (
    mapping_rows,
    plan_dict,
    plan_text,
    run_show_offset_mapping,
    write_offset_report,
)
from libkb.errors import LibkbError
from libkb.format.segment import Record
from libkb.kafka.partitioner import partition_for_key
from libkb.restore.engine import RestoreError
from libkb.restore.groups import GroupOffsetError
from libkb.restore.mapping import OffsetMapping
from libkb.restore.partition import as_produced
from libkb.restore.routing import router
from libkb.restore.state import RestoreState, mapping_key
from libkb.storage import FilesystemConfig, MemoryConfig, StorageBackend, create_backend_from_config
from tests.fakes import FakeKafka, Fault, FaultyBackend, ProducerFaults
from tests.fakes.jobs import (
    TOPIC,
    assert_backup_valid,
    backup_engine,
    content,
    expected_records,
    restore_config,
    restore_engine,
    source_kafka,
)
from tests.restore.test_engine_faults import RECORD, STEPS, stored_state

TARGET = f"{TOPIC}-restored"
Stored = tuple[FakeKafka, dict[str, bytes]]


@pytest.fixture(scope="module")
def stored() -> Stored:
    """The source cluster and its backup (every object), made once for the module."""
    kafka = source_kafka()
    memory = create_backend_from_config(MemoryConfig())
    assert backup_engine(kafka, memory).run().status == "complete"
    return kafka, {key: memory.get(key) for key in memory.list()}


@pytest.fixture
def backup(stored: Stored) -> Iterator[StorageBackend]:
    memory = create_backend_from_config(MemoryConfig())
    for key, data in stored[1].items():
        memory.put(key, data)
    yield memory


def routed(
    source: FakeKafka, partitions: int, strategy: str = "murmur2"
) -> dict[int, list[tuple[int, Record]]]:
    """(source partition, record) that each target partition must hold, in order: sources one by one."""
    out: dict[int, list[tuple[int, Record]]] = {p: [] for p in range(partitions)}
    for sp, records in sorted(expected_records(source.cluster).items()):
        for r in records:
            if strategy == "automatic":
                p = r[0] % partitions
            elif r[3] is None:
                p = sp % partitions  # no key: the source partition modulo the count
            else:
                p = partition_for_key(r[3], partitions)
            out[p].append((sp, r))
    return out


def by_key(source: FakeKafka, partitions: int, strategy: str = "murmur2") -> dict[int, list[Record]]:
    """The records each target partition must hold, in order."""
    return {p: [r for _, r in items] for p, items in routed(source, partitions, strategy).items()}


def config(partitions: int = 2, **restore: Any) -> Any:
    return restore_config(repartitioning={TARGET: {"target_partitions": partitions}}, **restore)


def got(target: FakeKafka, partitions: int, topic: str = TARGET) -> dict[int, list[Record]]:
    return {p: [r.stored() for r in target.cluster.records(topic, p)] for p in range(partitions)}


def assert_by_key(source: FakeKafka, target: FakeKafka, partitions: int, strategy: str = "murmur2") -> None:
    """Each target partition holds its records once, in order, from offset 0."""
    expected, restored = by_key(source, partitions, strategy), got(target, partitions)
    for p in range(partitions):
        assert content(restored[p]) == content(expected[p]), f"partition {p} differs"
        assert [r[0] for r in restored[p]] == list(range(len(restored[p])))


@given(st.lists(st.none() | st.binary(max_size=12), max_size=60), st.integers(1, 50), st.integers(0, 99))
def test_the_routing_rules_block_by_block(keys: list[bytes | None], partitions: int, source: int) -> None:
    block: list[Record] = [(1000 + i, 0, 0, k, None, None) for i, k in enumerate(keys)]
    assert router("murmur2", partitions, source)(block) == [
        source % partitions if k is None else partition_for_key(k, partitions) for k in keys
    ]
    assert router("automatic", partitions, source)(block) == [
        (1000 + i) % partitions for i in range(len(keys))
    ]


def test_fewer_partitions_each_record_where_the_java_client_puts_its_key(
    stored: Stored, backup: StorageBackend
) -> None:
    source, target = stored[0], FakeKafka()
    result = restore_engine(target, backup, config(2)).run()
    assert result.status == "complete" and result.created_topics == [TARGET]
    assert len(target.cluster.topics[TARGET].partitions) == 2
    assert result.partitions == 2 and result.records == sum(
        map(len, expected_records(source.cluster).values())
    )
    assert_by_key(source, target, 2)
    restored = got(target, 2)
    homes = {r[3]: p for p in restored for r in restored[p] if r[3] is not None}
    assert all(homes[r[3]] == p for p in restored for r in restored[p] if r[3] is not None)  # one per key
    assert {r[3] for r in restored[0] + restored[1]} >= {b"", None}  # empty keys hashed, null keys kept

    # The mapping: per target partition, a block per source partition, in source order.
    assert result.mapping is not None and result.mapping.partitions == []
    expected = routed(source, 2)
    for sp in result.mapping.spread:
        assert [b[0] for b in sp.blocks] == [0, 1, 2]
        assert (sp.target_start, sp.target_end) == (0, len(expected[sp.target_partition]))
        for source_partition, count, first, last in sp.blocks:
            mine = [r[0] for s, r in expected[sp.target_partition] if s == source_partition]
            assert (count, first, last) == (len(mine), mine[0], mine[-1])
    state = stored_state(backup)
    stored_mapping = OffsetMapping.from_json(backup.get(mapping_key("bk", state.restore_id)))
    assert stored_mapping == result.mapping
    rows = mapping_rows(stored_mapping)
    assert all(r["by_key"] for r in rows) and sum(r["records"] for r in rows) == result.records
    assert sorted(state.partitions) == [f"{TOPIC}/*/0", f"{TOPIC}/*/1"]


def test_auto_restores_by_key_into_an_existing_topic_with_more_partitions(
    stored: Stored, backup: StorageBackend
) -> None:
    source, target = stored[0], FakeKafka()
    target.cluster.create_topic(TARGET, 5, {"retention.ms": "-1"})
    result = restore_engine(target, backup, restore_config()).run()
    assert result.status == "complete" and result.created_topics == []
    assert result.plan is not None and [s.partitions for s in result.plan.spread] == [5]
    assert_by_key(source, target, 5)
    restored = got(target, 5)
    for sp, records in expected_records(source.cluster).items():  # keyless: where they were
        assert [r for r in content(restored[sp]) if r[1] is None] == [
            r for r in content(records) if r[1] is None
        ]


def test_repartition_false_keeps_one_to_one(stored: Stored, backup: StorageBackend) -> None:
    source, target = stored[0], FakeKafka()
    target.cluster.create_topic(TARGET, 5, {"retention.ms": "-1"})
    result = restore_engine(target, backup, restore_config(repartition=False)).run()
    assert result.status == "complete" and result.plan is not None and result.plan.spread == []
    restored = got(target, 5)
    expected = expected_records(source.cluster)
    assert [content(restored[p]) for p in range(3)] == [content(expected[p]) for p in range(3)]
    assert restored[3] == restored[4] == []


def test_automatic_round_robins_by_source_offset(stored: Stored, backup: StorageBackend) -> None:
    source, target = stored[0], FakeKafka()
    entry = {"strategy": "automatic", "target_partitions": 4}
    result = restore_engine(target, backup, restore_config(repartitioning={TARGET: entry})).run()
    assert result.status == "complete"
    assert_by_key(source, target, 4, "automatic")


def test_a_time_window_and_the_original_offset_headers_apply_record_by_record(
    stored: Stored, backup: StorageBackend
) -> None:
    source, target = stored[0], FakeKafka()
    stamps = sorted(r[1] for rs in expected_records(source.cluster).values() for r in rs)
    low, high = stamps[40], stamps[300]
    options = {"time_window_start": low, "time_window_end": high, "include_original_offset_header": True}
    result = restore_engine(target, backup, config(3, **options)).run()
    assert result.status == "complete" and result.records == 261
    restored = got(target, 3)
    for p, items in routed(source, 3).items():
        inside = [(sp, r) for sp, r in items if low <= r[1] <= high]
        assert [(r[3], r[4], r[5]) for r in restored[p]] == [as_produced(r, True, sp)[:3] for sp, r in inside]


def test_a_stopped_restore_by_key_resumes_where_it_stopped(stored: Stored, backup: StorageBackend) -> None:
    source, target = stored[0], FakeKafka()
    engine = restore_engine(target, backup, config(2))
    target.producer_faults.after_records = (100, engine.stop)
    first = engine.run()
    assert first.status == "interrupted"
    landed = sum(len(target.cluster.records(TARGET, p)) for p in range(2))
    assert 0 < landed < 300

    target.heal()
    second = restore_engine(target, backup, config(2)).run()
    assert second.status == "complete" and second.restore_id == first.restore_id
    assert second.skipped_records == landed
    assert not target.consumers  # the stop vouched for all of it: nothing is read back
    assert_by_key(source, target, 2)


@pytest.mark.parametrize("step", list(STEPS))
def test_a_failed_restore_by_key_leaves_the_backup_valid_and_a_rerun_makes_the_target_exact(
    step: str, stored: Stored, backup: StorageBackend
) -> None:
    source, target = stored[0], FakeKafka()
    how = STEPS[step]
    faulty = FaultyBackend(backup, *how.faults)
    if how.producer is not None:
        target.producer_faults = how.producer()
    with pytest.raises(LibkbError):
        restore_engine(target, faulty, config(2)).run()
    assert faulty.injected or target.producer_faults.injected, "nothing was injected"
    assert_backup_valid(backup)

    target.heal()
    result = restore_engine(target, backup, config(2)).run()
    assert result.status == "complete"
    assert_by_key(source, target, 2)
    assert result.records + result.skipped_records == sum(map(len, expected_records(source.cluster).values()))


def test_a_restore_by_key_killed_without_a_failed_delivery_reads_back_and_resumes_exactly(
    stored: Stored, backup: StorageBackend
) -> None:
    source, target = stored[0], FakeKafka()
    dying = FaultyBackend(backup, Fault("put", "/restores/", nth=2, times=1_000_000))
    engine = restore_engine(target, dying, config(2))
    target.producer_faults.after_records = (100, engine.stop)
    with pytest.raises(LibkbError):
        engine.run()
    before = [len(target.cluster.records(TARGET, p)) for p in range(2)]
    assert [p.verified_end for p in stored_state(backup).partitions.values()] == [0, 0]

    target.heal()
    result = restore_engine(target, backup, config(2)).run()
    assert result.status == "complete" and result.skipped_records == sum(before)
    assert sum(c.records_out for c in target.consumers) == sum(before)  # compared with the plan
    assert_by_key(source, target, 2)


def test_a_gap_in_a_partition_by_key_is_refused_before_writing(
    stored: Stored, backup: StorageBackend
) -> None:
    source, target = stored[0], FakeKafka()
    target.producer_faults = ProducerFaults(fail_delivery_at=RECORD, fail_rest_of_partition=False)
    with pytest.raises(RestoreError, match=r"orders-restored\[1\]: Local: Message timed out \(1 record\)"):
        restore_engine(target, backup, config(2)).run()
    before = got(target, 2)
    target.heal()
    with pytest.raises(RestoreError) as refused:
        restore_engine(target, backup, config(2)).run()
    assert str(refused.value).startswith(
        "orders-restored[1] cannot be resumed: target offset 41 holds another record than planned there"
    )
    assert got(target, 2) == before
    expected = by_key(source, 2)[1]
    assert content(before[1][:41]) == content(expected[:41])


def test_group_offsets_on_a_topic_by_key_are_reported_not_translated_and_never_applied(
    stored: Stored, backup: StorageBackend
) -> None:
    target = FakeKafka()
    with pytest.raises(GroupOffsetError) as refused:
        restore_engine(
            target, backup, config(2, consumer_groups=["billing"], reset_consumer_offsets=True)
        ).run()
    assert str(refused.value).startswith(
        "consumer group 'billing' has committed offsets on orders[0], orders[1], which this restore writes "
        "by key into 2 partitions of 'orders-restored'; each of them holds records of several source "
        "partitions, so no offset there resumes the group exactly. Leave the group out "
        "(restore.consumer_groups) or set reset_consumer_offsets: false"
    )
    assert TARGET not in target.cluster.topics  # refused before anything was written
    assert not any("/restores/" in k for k in backup.list())

    result = restore_engine(target, backup, config(2, consumer_groups=["billing"])).run()
    assert result.status == "complete" and result.group_offsets == []
    assert [
        (o.group, o.source_partition, o.source_offset, o.target_partitions) for o in result.untranslated
    ] == [
        ("billing", 0, 17, 2),
        ("billing", 1, 200, 2),
    ]
    assert (
        "group 'billing': offsets on orders not translated ([0] at 17, [1] at 200): the topic was restored "
        "by key into 2 partitions of 'orders-restored'"
    ) in " ".join(result.notes)
    assert "billing" not in target.cluster.groups


def test_a_stored_state_of_a_one_to_one_restore_is_not_taken_for_a_restore_by_key(
    stored: Stored, backup: StorageBackend
) -> None:
    """The plan is part of the restore id: the same job restoring by key starts its own restore."""
    target = FakeKafka()
    one_to_one = restore_engine(target, backup, restore_config(topic_mapping={TOPIC: "other"})).run()
    spread = restore_engine(
        target, backup, restore_config(topic_mapping={TOPIC: "other"}, repartition=True)
    ).run()
    assert one_to_one.restore_id != spread.restore_id
    assert isinstance(
        RestoreState.from_json(backup.get(f"bk/restores/{spread.restore_id}/state.json")), RestoreState
    )


def test_the_commands_show_a_restore_by_key(
    stored: Stored, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """validate-restore's plan, show-offset-mapping, offset-reset plan (its notes) and the offset report."""
    disk = create_backend_from_config(FilesystemConfig(path=str(tmp_path)))
    for key, data in stored[1].items():
        disk.put(key, data)
    result = restore_engine(FakeKafka(), disk, config(2, consumer_groups=["billing"])).run()
    assert result.plan is not None
    text = plan_text(result.plan)
    assert "orders[0]" in text and "orders-restored[by key of 2]" in text
    assert "by key: orders into 2 partitions of orders-restored (murmur2 of the key" in text
    assert plan_dict(result.plan)["repartitioned"][0]["source_partitions"] == [0, 1, 2]

    out = io.StringIO()
    run_show_offset_mapping(str(tmp_path), "bk", None, "csv", out=out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert len(rows) == 6 and {r["by_key"] for r in rows} == {"True"}
    assert sum(int(r["records"]) for r in rows) == result.records
    out = io.StringIO()
    run_show_offset_mapping(str(tmp_path), "bk", None, "text", out=out)
    assert "orders[0, 1, 2] by key" in out.getvalue()

    out = io.StringIO()
    assert run_offset_reset("plan", str(tmp_path), "bk", "billing", False, None, None, "json", out=out) == 0
    assert json.loads(out.getvalue()) == []
    assert (
        "group 'billing': offsets on orders not translated ([0] at 17, [1] at 200)" in capsys.readouterr().err
    )

    report = tmp_path / "report.json"
    write_offset_report(str(report), result)
    assert [r["source"] for r in json.loads(report.read_text())["untranslated"]] == ["orders[0]", "orders[1]"]
