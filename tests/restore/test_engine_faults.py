"""The restore engine fails cleanly at every step, and a re-run makes the target exact or refuses.

One test body runs per injected failure: the run ends with a libkb error, the
backup still validates (deep), and a second run without the fault leaves the
target topic holding exactly the source's records (keys, values with null
distinct from empty, headers in order, timestamps), each once and in order.
The one failure a re-run cannot repair in place, a failed delivery followed
by records that still landed, makes it refuse before it writes anything.
The backup is made once by the backup engine from a :class:`tests.fakes.FakeKafka`;
the restore writes into another.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from confluent_kafka import KafkaException

from libkb.errors import LibkbError
from libkb.format.models import PartitionIndex, index_key
from libkb.format.segment import SegmentError, SegmentReader
from libkb.restore.engine import RestoreError, RestoreResult
from libkb.restore.state import RestoreState, mapping_key
from libkb.storage import MemoryConfig, StorageBackend, create_backend_from_config
from tests.fakes import FakeKafka, Fault, FaultyBackend, ProducerFaults
from tests.fakes.jobs import (
    BACKUP_ID,
    PARTITIONS,
    TOPIC,
    assert_backup_valid,
    backup_engine,
    content,
    expected_records,
    restore_config,
    restore_engine,
    source_kafka,
)

TARGET = f"{TOPIC}-restored"
#: The 42nd record restored into partition 1: inside a block (segments start new blocks every 40).
RECORD = ((TARGET, 1), 42)


@pytest.fixture(scope="module")
def stored() -> tuple[FakeKafka, dict[str, bytes]]:
    """The source cluster and its backup (every object), made once for the module."""
    kafka = source_kafka()
    memory = create_backend_from_config(MemoryConfig())
    assert backup_engine(kafka, memory).run().status == "complete"
    return kafka, {key: memory.get(key) for key in memory.list()}


@pytest.fixture
def backup(stored: tuple[FakeKafka, dict[str, bytes]]) -> Iterator[StorageBackend]:
    """A fresh copy of the backup (a restore writes its state next to it)."""
    memory = create_backend_from_config(MemoryConfig())
    for key, data in stored[1].items():
        memory.put(key, data)
    yield memory


def assert_restored_exactly(source: FakeKafka, target: FakeKafka, topic: str = TARGET) -> None:
    """The target partitions hold the source's records, once each, in order, from offset 0."""
    expected = expected_records(source.cluster)
    for p in range(PARTITIONS):
        got = [r.stored() for r in target.cluster.records(topic, p)]
        assert content(got) == content(expected[p]), f"partition {p} differs"
        assert [r[0] for r in got] == list(range(len(got)))


@dataclass(frozen=True)
class Step:
    faults: tuple[Fault, ...] = ()
    producer: Callable[[], ProducerFaults] | None = None


STEPS = {
    "segment-read": Step((Fault("get", "partition=1/segment-", nth=2),)),
    "produce": Step(producer=lambda: ProducerFaults(raise_at=RECORD)),
    "delivery-failure": Step(producer=lambda: ProducerFaults(fail_delivery_at=RECORD)),
    "flush-timeout-records-lost": Step(producer=lambda: ProducerFaults(stall_from=RECORD, stalled="lost")),
    "flush-timeout-records-land-late": Step(
        producer=lambda: ProducerFaults(stall_from=RECORD, stalled="landed")
    ),
    "state-write-at-start": Step((Fault("put", "/state.json", nth=1),)),
    "state-write-at-end": Step((Fault("put", "/state.json", nth=2),)),
    "mapping-write": Step((Fault("put", "/offset-mapping.json"),)),
}


@pytest.mark.parametrize("step", list(STEPS))
def test_a_failed_restore_leaves_the_backup_valid_and_a_rerun_makes_the_target_exact(
    step: str, stored: tuple[FakeKafka, dict[str, bytes]], backup: StorageBackend
) -> None:
    source = stored[0]
    target = FakeKafka()
    how = STEPS[step]
    faulty = FaultyBackend(backup, *how.faults)
    if how.producer is not None:
        target.producer_faults = how.producer()

    with pytest.raises(LibkbError):
        restore_engine(target, faulty).run()
    assert faulty.injected or target.producer_faults.injected, "nothing was injected"
    assert_backup_valid(backup)

    target.heal()
    result = restore_engine(target, backup).run()
    assert result.status == "complete"
    assert_restored_exactly(source, target)
    assert result.records + result.skipped_records == sum(map(len, expected_records(source.cluster).values()))


def test_a_stopped_restore_resumes_where_it_stopped(
    stored: tuple[FakeKafka, dict[str, bytes]], backup: StorageBackend
) -> None:
    source, target = stored[0], FakeKafka()
    engine = restore_engine(target, backup)
    target.producer_faults.after_records = (100, engine.stop)
    first = engine.run()
    assert first.status == "interrupted" and not first.ok
    landed = sum(len(target.cluster.records(TARGET, p)) for p in range(PARTITIONS))
    assert 0 < landed < sum(map(len, expected_records(source.cluster).values()))

    target.heal()
    second: RestoreResult = restore_engine(target, backup).run()
    assert second.status == "complete"
    assert second.skipped_records == landed
    assert not target.consumers  # the stop vouched for all of it: nothing is read back
    assert_restored_exactly(source, target)


def landed(target: FakeKafka, topic: str = TARGET) -> list[int]:
    """Records in each partition of the target topic."""
    return [len(target.cluster.records(topic, p)) for p in range(PARTITIONS)]


def stored_state(backend: StorageBackend) -> RestoreState:
    (key,) = [k for k in backend.list(f"{BACKUP_ID}/restores/") if k.endswith("/state.json")]
    return RestoreState.from_json(backend.get(key))


def verified(state: RestoreState) -> list[int | None]:
    return [state.partitions[f"{TOPIC}/{p}"].verified_end for p in range(PARTITIONS)]


def test_a_gap_left_by_a_failed_delivery_is_refused_and_a_new_topic_restores_exactly(
    stored: tuple[FakeKafka, dict[str, bytes]], backup: StorageBackend
) -> None:
    """The 42nd record of partition 1 fails, the ones after it land: the target is no prefix of the plan."""
    source, target = stored[0], FakeKafka()
    target.producer_faults = ProducerFaults(fail_delivery_at=RECORD, fail_rest_of_partition=False)
    with pytest.raises(RestoreError, match=r"orders-restored\[1\]: Local: Message timed out \(1 record\)"):
        restore_engine(target, backup).run()
    before = landed(target)
    assert before[1] > 41
    state = stored_state(backup)
    assert state.status == "failed"
    assert verified(state) == [before[0], 0, before[2]]  # no checkpoint vouches for partition 1

    target.heal()
    with pytest.raises(RestoreError) as refused:
        restore_engine(target, backup).run()
    assert str(refused.value).startswith(
        "orders-restored[1] cannot be resumed: target offset 41 holds another record than planned there "
        "(source offset 49: the key differs), so past offset 0 the partition does not hold the planned "
        "records in order"
    )
    assert "Restore into a new topic (restore.topic_mapping)" in str(refused.value)
    assert "\n" not in str(refused.value)
    assert landed(target) == before  # refused before writing anything
    assert stored_state(backup).status == "failed"

    fresh = restore_engine(target, backup, restore_config(topic_mapping={TOPIC: f"{TOPIC}-fresh"})).run()
    assert fresh.status == "complete"
    assert_restored_exactly(source, target, f"{TOPIC}-fresh")


def test_after_a_failed_delivery_a_rerun_reads_back_only_what_no_checkpoint_vouched_for(
    stored: tuple[FakeKafka, dict[str, bytes]], backup: StorageBackend
) -> None:
    """The 42nd record and the rest of partition 1 fail: the target holds a prefix, so the re-run resumes."""
    source, target = stored[0], FakeKafka()
    target.producer_faults = ProducerFaults(fail_delivery_at=RECORD)
    with pytest.raises(RestoreError, match=r"orders-restored\[1\]: Local: Message timed out \(\d+ records\)"):
        restore_engine(target, backup).run()
    before = landed(target)
    assert before[1] == 41
    assert verified(stored_state(backup)) == [before[0], 0, before[2]]

    target.heal()
    result = restore_engine(target, backup).run()
    assert result.status == "complete"
    assert result.skipped_records == sum(before)
    (consumer,) = target.consumers
    assert consumer.records_out == 41  # partition 1's unverified offsets [0, 41), read back once
    assert_restored_exactly(source, target)
    assert verified(stored_state(backup)) == landed(target)


def test_a_restore_killed_without_a_failed_delivery_resumes_exactly(
    stored: tuple[FakeKafka, dict[str, bytes]], backup: StorageBackend
) -> None:
    """kill -9: the run's end is never stored; what landed is a prefix of the plan, checked once and kept."""
    source, target = stored[0], FakeKafka()
    dying = FaultyBackend(backup, Fault("put", "/restores/", nth=2, times=1_000_000))
    engine = restore_engine(target, dying)
    target.producer_faults.after_records = (100, engine.stop)
    with pytest.raises(LibkbError):
        engine.run()
    before = landed(target)
    assert 0 < sum(before) < sum(map(len, expected_records(source.cluster).values()))
    assert stored_state(backup).status == "running"  # as stored before the first record
    assert verified(stored_state(backup)) == [0, 0, 0]

    target.heal()
    result = restore_engine(target, backup).run()
    assert result.status == "complete"
    assert result.skipped_records == sum(before)  # high watermark - start, as ever
    assert sum(c.records_out for c in target.consumers) == sum(before)
    assert_restored_exactly(source, target)


def test_a_produce_error_stops_the_other_partitions_flushes_and_names_the_partition(
    stored: tuple[FakeKafka, dict[str, bytes]], backup: StorageBackend
) -> None:
    source, target = stored[0], FakeKafka()
    target.producer_faults = ProducerFaults(raise_at=RECORD)
    one_at_a_time = restore_config(max_concurrent_partitions=1)  # partitions 0, 1, 2 in turn
    with pytest.raises(RestoreError) as failed:
        restore_engine(target, backup, one_at_a_time).run()
    assert str(failed.value) == (
        "restoring orders[1] into orders-restored[1] failed (re-run to resume): "
        "Broker: Message size too large"
    )
    assert isinstance(failed.value.__cause__, KafkaException)
    expected = expected_records(source.cluster)
    assert landed(target) == [len(expected[0]), 41, 0]  # flushed; partition 2 never started
    state = stored_state(backup)
    assert state.status == "failed"
    assert verified(state) == landed(target)
    assert backup.exists(mapping_key(BACKUP_ID, state.restore_id))

    target.heal()
    result = restore_engine(target, backup, one_at_a_time).run()
    assert result.status == "complete" and not target.consumers
    assert_restored_exactly(source, target)


def test_a_flipped_byte_in_a_block_head_fails_the_restore_naming_the_segment(
    stored: tuple[FakeKafka, dict[str, bytes]], backup: StorageBackend
) -> None:
    """The first offset of a block head becomes 2**62 more: trusted, it ended the segment's read there."""
    source, target = stored[0], FakeKafka()
    entry = PartitionIndex.from_json(backup.get(index_key(BACKUP_ID, TOPIC, 1))).segments[1]
    clean = backup.get(entry.key)
    block = next(SegmentReader(clean).blocks())
    data = bytearray(clean)
    data[block.position + 12 + 7] ^= 0x40  # the most significant byte of its first_offset
    backup.put(entry.key, bytes(data))
    with pytest.raises(SegmentError) as failed:
        restore_engine(target, backup).run()
    assert str(failed.value).startswith(
        f"{entry.key}: the block at byte {block.position} states offsets {2**62 + block.first_offset}-"
        f"{block.last_offset} ({block.record_count} records), which cannot follow offset"
    )
    assert stored_state(backup).status == "failed"

    backup.put(entry.key, clean)
    result = restore_engine(target, backup).run()
    assert result.status == "complete"
    assert_restored_exactly(source, target)
