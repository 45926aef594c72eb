"""``restore.purge_topics`` on the fake cluster: the target ends holding exactly the backup's records,
and no crash, stop or re-run ever purges what the restore wrote.

The target topic exists and holds older records (with offset gaps) before
the restore. A purge deletes them up to each partition's high watermark ``H``;
the restored records then sit at ``H`` on, and consumer-group offsets are
translated to those offsets. Failures are injected at every step of the
purge's order (state stored, records deleted, state stored again, records
produced) and a re-run must finish exactly.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from confluent_kafka import KafkaError

from libkb.cli.restore import plan_dict, plan_text, summary_line
from libkb.errors import LibkbError
from libkb.restore.engine import RestoreError
from libkb.restore.state import RestoreState
from libkb.storage import MemoryConfig, StorageBackend, create_backend_from_config
from tests.fakes import FakeKafka, Fault, FaultyBackend
from tests.fakes.jobs import (
    BACKUP_ID,
    PARTITIONS,
    TOPIC,
    backup_engine,
    content,
    expected_records,
    restore_config,
    restore_engine,
    source_kafka,
)

TARGET = f"{TOPIC}-restored"
#: Records already in each target partition: 20, 25, 30, each followed by two empty offsets.
OLD = [20, 25, 30]
#: Where the restored records start: the target's high watermarks before the restore.
STARTS = [n + 2 for n in OLD]


@pytest.fixture(scope="module")
def stored() -> tuple[FakeKafka, dict[str, bytes]]:
    kafka = source_kafka()
    memory = create_backend_from_config(MemoryConfig())
    assert backup_engine(kafka, memory).run().status == "complete"
    return kafka, {key: memory.get(key) for key in memory.list()}


@pytest.fixture
def backup(stored: tuple[FakeKafka, dict[str, bytes]]) -> Iterator[StorageBackend]:
    memory = create_backend_from_config(MemoryConfig())
    for key, data in stored[1].items():
        memory.put(key, data)
    yield memory


def prefilled(configs: dict[str, str] | None = None) -> FakeKafka:
    """A target cluster whose topic already holds older records."""
    kafka = FakeKafka()
    kafka.cluster.create_topic(TARGET, PARTITIONS, {"retention.ms": "-1", **(configs or {})})
    for p, count in enumerate(OLD):
        for i in range(count):
            kafka.cluster.append(TARGET, p, b"old-%d" % i, b"stale", None, 1_000 + i)
        kafka.cluster.skip(TARGET, p, 2)
    return kafka


def assert_exactly_the_backup(source: FakeKafka, target: FakeKafka) -> None:
    """Each target partition holds the source's records only, in order, from its old high watermark."""
    expected = expected_records(source.cluster)
    for p in range(PARTITIONS):
        got = [r.stored() for r in target.cluster.records(TARGET, p)]
        assert content(got) == content(expected[p]), f"partition {p} differs"
        assert [r[0] for r in got] == list(range(STARTS[p], STARTS[p] + len(got)))
        assert target.cluster.watermarks(TARGET, p)[0] == STARTS[p]


def stored_state(backend: StorageBackend) -> RestoreState:
    (key,) = [k for k in backend.list(f"{BACKUP_ID}/restores/") if k.endswith("/state.json")]
    return RestoreState.from_json(backend.get(key))


def test_a_purge_leaves_exactly_the_backups_records_and_translates_groups_exactly(
    stored: tuple[FakeKafka, dict[str, bytes]], backup: StorageBackend
) -> None:
    source, target = stored[0], prefilled()
    result = restore_engine(target, backup, restore_config(purge_topics=True)).run()
    assert result.status == "complete"
    assert result.purge is not None
    assert [(p.partition, p.low, p.high) for p in result.purge.partitions] == [
        (p, 0, STARTS[p]) for p in range(PARTITIONS)
    ]
    assert result.purge.records == sum(STARTS)
    assert summary_line(result).endswith(
        "; purged first: 81 records from 3 partitions of orders-restored; offsets translated for 1 group(s)"
    )
    assert_exactly_the_backup(source, target)
    assert result.mapping is not None
    assert [pm.target_start for pm in result.mapping.partitions] == STARTS
    # "billing" committed orders[0] at 17: the target offset of the first restored record at or after it.
    records = [r.offset for r in source.cluster.records(TOPIC, 0)]
    first = next(i for i, offset in enumerate(records) if offset >= 17)
    translated = {(o.group, o.source_partition): o.target_offset for o in result.group_offsets}
    assert translated[("billing", 0)] == STARTS[0] + first
    state = stored_state(backup)
    assert all(state.partitions[f"{TOPIC}/{p}"].purged for p in range(PARTITIONS))


#: Failures at each step of the purge's order, and what the target holds after them.
CRASHES = {
    "state-not-stored": (Fault("put", "/state.json", nth=1), "untouched"),
    "state-stored-records-deleted-then-crash": (Fault("put", "/state.json", nth=2), "purged"),
}


@pytest.mark.parametrize("step", list(CRASHES))
def test_a_crash_during_the_purge_then_a_rerun_is_exact(
    step: str, stored: tuple[FakeKafka, dict[str, bytes]], backup: StorageBackend
) -> None:
    source, target = stored[0], prefilled()
    fault, after = CRASHES[step]
    faulty = FaultyBackend(backup, fault)
    with pytest.raises(LibkbError):
        restore_engine(target, faulty, restore_config(purge_topics=True)).run()
    assert faulty.injected
    lows = [target.cluster.watermarks(TARGET, p)[0] for p in range(PARTITIONS)]
    assert lows == ([0, 0, 0] if after == "untouched" else STARTS)
    assert [len(target.cluster.records(TARGET, p)) for p in range(PARTITIONS)] == (
        OLD if after == "untouched" else [0, 0, 0]
    )
    if after == "purged":  # recorded before the deletion, not marked done: the re-run repeats it
        parts = stored_state(backup).partitions
        assert [(parts[f"{TOPIC}/{p}"].purge_before, parts[f"{TOPIC}/{p}"].purged) for p in range(3)] == [
            (s, False) for s in STARTS
        ]

    result = restore_engine(target, backup, restore_config(purge_topics=True)).run()
    assert result.status == "complete"
    assert_exactly_the_backup(source, target)


def test_a_restore_killed_after_the_purge_is_resumed_without_purging_again(
    stored: tuple[FakeKafka, dict[str, bytes]], backup: StorageBackend
) -> None:
    """kill -9 while records are produced: the re-run deletes nothing the restore wrote."""
    source, target = stored[0], prefilled()
    config = restore_config(purge_topics=True)
    dying = FaultyBackend(backup, Fault("put", "/restores/", nth=3, times=1_000_000))
    engine = restore_engine(target, dying, config)
    target.producer_faults.after_records = (100, engine.stop)
    with pytest.raises(LibkbError):
        engine.run()
    landed = [len(target.cluster.records(TARGET, p)) for p in range(PARTITIONS)]
    assert 0 < sum(landed) < sum(map(len, expected_records(source.cluster).values()))

    target.heal()
    result = restore_engine(target, backup, config).run()
    assert result.status == "complete"
    assert result.purge is not None and result.purge.partitions == [] and result.purge.kept == []
    assert result.skipped_records == sum(landed)
    assert_exactly_the_backup(source, target)


def test_a_restore_begun_without_purge_is_not_purged_by_a_rerun_with_it(
    stored: tuple[FakeKafka, dict[str, bytes]], backup: StorageBackend
) -> None:
    source, target = stored[0], prefilled()
    engine = restore_engine(target, backup)
    target.producer_faults.after_records = (100, engine.stop)
    assert engine.run().status == "interrupted"

    target.heal()
    result = restore_engine(target, backup, restore_config(purge_topics=True)).run()
    assert result.status == "complete"
    assert result.purge is not None and result.purge.partitions == []
    assert result.purge.kept == [(TARGET, p) for p in range(PARTITIONS)]
    assert result.notes[-1] == (
        "restore.purge_topics: not purged: orders-restored[0], orders-restored[1], orders-restored[2], "
        "which this restore had begun writing in an earlier run; set restore.restore_id to a new name "
        "to restore and purge afresh"
    )
    expected = expected_records(source.cluster)
    for p in range(PARTITIONS):
        assert len(target.cluster.records(TARGET, p)) == OLD[p] + len(expected[p])


def test_a_compacted_only_target_is_refused_before_anything_is_deleted(
    stored: tuple[FakeKafka, dict[str, bytes]], backup: StorageBackend
) -> None:
    target = prefilled({"cleanup.policy": "compact"})
    with pytest.raises(RestoreError) as refused:
        restore_engine(target, backup, restore_config(purge_topics=True)).run()
    assert str(refused.value) == (
        "restore.purge_topics: target topic 'orders-restored' has cleanup.policy=compact, and Kafka "
        "deletes records only of topics whose policy includes delete. Set cleanup.policy=compact,delete "
        "on it for the restore, or restore into a new topic (restore.topic_mapping); nothing was purged "
        "or restored"
    )
    assert [len(target.cluster.records(TARGET, p)) for p in range(PARTITIONS)] == OLD
    assert not backup.list(f"{BACKUP_ID}/restores/")

    both = prefilled({"cleanup.policy": "compact,delete"})  # Kafka deletes records of these
    assert restore_engine(both, backup, restore_config(purge_topics=True)).run().status == "complete"
    assert [both.cluster.watermarks(TARGET, p)[0] for p in range(PARTITIONS)] == STARTS


def test_kafkas_refusal_is_named_and_a_rerun_after_the_fix_is_exact(
    stored: tuple[FakeKafka, dict[str, bytes]], backup: StorageBackend
) -> None:
    source, target = stored[0], prefilled()
    target.cluster.refused_deletes[TARGET] = KafkaError.TOPIC_AUTHORIZATION_FAILED
    with pytest.raises(RestoreError) as refused:
        restore_engine(target, backup, restore_config(purge_topics=True)).run()
    assert str(refused.value) == (
        "restore.purge_topics: Kafka refused to delete the records of orders-restored[0] (and 2 more "
        "partitions): Broker: refused (TOPIC_AUTHORIZATION_FAILED); the restore's principal needs the "
        "DELETE permission on the topic; nothing was restored, and a re-run purges only partitions this "
        "restore has not written"
    )
    assert [len(target.cluster.records(TARGET, p)) for p in range(PARTITIONS)] == OLD

    del target.cluster.refused_deletes[TARGET]
    assert restore_engine(target, backup, restore_config(purge_topics=True)).run().status == "complete"
    assert_exactly_the_backup(source, target)


def test_a_dry_run_shows_what_it_would_purge_and_deletes_nothing(
    stored: tuple[FakeKafka, dict[str, bytes]], backup: StorageBackend
) -> None:
    target = prefilled()
    result = restore_engine(target, backup, restore_config(purge_topics=True, dry_run=True)).run()
    assert result.status == "planned" and result.plan is not None and result.purge is not None
    assert [len(target.cluster.records(TARGET, p)) for p in range(PARTITIONS)] == OLD
    assert not backup.list(f"{BACKUP_ID}/restores/")
    text = plan_text(result.plan, result.purge)
    assert text.endswith(
        "  purge first (restore.purge_topics): 81 records from 3 partitions of orders-restored, below "
        "their high watermarks:\n"
        "    TARGET              OFFSETS  RECORDS\n"
        "    orders-restored[0]  [0, 22)  22\n"
        "    orders-restored[1]  [0, 27)  27\n"
        "    orders-restored[2]  [0, 32)  32"
    )
    purge = plan_dict(result.plan, result.purge)["purge"]
    assert purge["records"] == 81 and purge["not_purged"] == []
    assert purge["partitions"][1] == {
        "topic": TARGET,
        "partition": 1,
        "from_offset": 0,
        "to_offset": 27,
        "records": 27,
    }
    # A target topic the restore would create has nothing to purge.
    fresh = FakeKafka()
    empty = restore_engine(fresh, backup, restore_config(purge_topics=True, dry_run=True)).run()
    assert empty.purge is not None and empty.purge.partitions == []
    assert empty.plan is not None
    assert plan_text(empty.plan, empty.purge).endswith(
        "  purge first (restore.purge_topics): nothing, the target partitions hold no records"
    )
    assert TARGET not in fresh.cluster.topics


def test_a_backed_up_partition_with_nothing_to_restore_is_purged_one_not_selected_is_not(
    stored: tuple[FakeKafka, dict[str, bytes]], backup: StorageBackend
) -> None:
    """Partition 2 restores nothing (an empty offset range): its target ends empty, as the backup has
    it. Left out by ``source_partitions``, it is none of the restore's business and keeps its records."""
    source, target = stored[0], prefilled()
    nothing = restore_config(purge_topics=True, offset_ranges={TOPIC: {2: [0, 0]}})
    result = restore_engine(target, backup, nothing).run()
    assert result.status == "complete" and result.purge is not None
    assert [p.partition for p in result.purge.partitions] == [0, 1, 2]
    assert target.cluster.records(TARGET, 2) == []
    assert target.cluster.watermarks(TARGET, 2) == (STARTS[2], STARTS[2])
    assert stored_state(backup).partitions[f"{TOPIC}/2"].purged  # so a re-run leaves it alone
    expected = expected_records(source.cluster)
    for p in (0, 1):
        assert content([r.stored() for r in target.cluster.records(TARGET, p)]) == content(expected[p])

    other = prefilled()
    chosen = restore_config(purge_topics=True, source_partitions={TOPIC: [0, 1]}, restore_id="two")
    result = restore_engine(other, backup, chosen).run()
    assert result.purge is not None and [p.partition for p in result.purge.partitions] == [0, 1]
    assert len(other.cluster.records(TARGET, 2)) == OLD[2]
