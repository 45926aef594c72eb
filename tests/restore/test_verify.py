"""The read-back check of a resumed restore: the planned records, and the target compared with them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import cast

import pytest
from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME, Consumer

from libkb.format.models import SegmentEntry
from libkb.kafka.admin import PartitionOffsets
from libkb.restore.partition import as_produced
from libkb.restore.plan import PartitionTask, RestorePlan, Target
from libkb.restore.result import RestoreError
from libkb.restore.state import PartitionState, RestoreState
from libkb.restore.verify import Unverified, check_unverified, planned_records, unverified
from libkb.source import open_backup
from libkb.storage import MemoryConfig, StorageBackend, create_backend_from_config
from tests.fakes import FakeCluster, FakeConsumer, Fault, FaultyBackend
from tests.fakes.consumer import ConsumerFaults
from tests.restore.test_partition import RECORDS, Run, put

Window = tuple[int | None, int | None]
Produced = tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]] | None, int]


@pytest.fixture
def backend() -> Iterator[StorageBackend]:
    with create_backend_from_config(MemoryConfig()) as b:
        yield b


@pytest.fixture
def segments(backend: StorageBackend) -> tuple[SegmentEntry, ...]:
    """[0, 40) with offsets 0-29 and 33-39, [40, 100) with 40-99 (as the partition restorer's tests)."""
    return (put(backend, 0, 40, RECORDS[:37]), put(backend, 40, 100, RECORDS[37:]))


def task(
    segments: tuple[SegmentEntry, ...], start: int = 0, end: int = 100, window: Window = (None, None)
) -> PartitionTask:
    return PartitionTask("src", 0, "dst", 3, start, end, segments, window)


@pytest.mark.parametrize(
    ("start", "end", "window", "headers"),
    [
        (0, 100, (None, None), False),
        (5, 63, (None, None), False),
        (0, 100, (1_010, 1_070), True),
    ],
)
def test_the_planned_records_are_what_the_partition_restorer_produces(
    backend: StorageBackend,
    segments: tuple[SegmentEntry, ...],
    start: int,
    end: int,
    window: Window,
    headers: bool,
) -> None:
    sent = Run(backend, segments, start=start, end=end, window=window, headers=headers).producer.sent
    source = open_backup(backend, "b1")
    planned = list(planned_records(source, task(segments, start, end, window), 0))
    assert [p for p, _ in planned] == list(range(len(sent)))
    assert [as_produced(r, headers, 0) for _, r in planned] == [(k, v, h, ts) for _, _, k, v, ts, h in sent]
    later = list(planned_records(source, task(segments, start, end, window), 20))
    assert later == planned[20:]


def test_segments_wholly_before_the_first_position_are_counted_unread(
    backend: StorageBackend, segments: tuple[SegmentEntry, ...]
) -> None:
    unreadable = FaultyBackend(backend, Fault("get", segments[0].key, times=100))
    planned = planned_records(open_backup(unreadable, "b1"), task(segments), 37)
    assert next(planned) == (37, RECORDS[37])
    assert not unreadable.injected


def target(
    records: list[Produced],
) -> FakeCluster:
    cluster = FakeCluster()
    cluster.create_topic("dst", 4)
    cluster.skip("dst", 3, 500)  # the restore began at 500
    for key, value, headers, ts in records:
        cluster.append("dst", 3, key, value, headers, ts or None)
    return cluster


def check(
    cluster: FakeCluster, segments: tuple[SegmentEntry, ...], backend: StorageBackend, start: int
) -> None:
    end = cluster.watermarks("dst", 3)[1]
    checks = [Unverified(Target("src/0", "dst", 3, task(segments)), "r1", 500, start, end)]
    consumers: list[FakeConsumer] = []

    def open_consumer() -> Consumer:
        consumers.append(FakeConsumer(cluster, {"auto.offset.reset": "error"}, ConsumerFaults()))
        return cast(Consumer, consumers[-1])

    try:
        check_unverified(checks, open_backup(backend, "b1"), open_consumer, add_headers=False)
    finally:
        assert all(c.closed for c in consumers)


def produced(segments: tuple[SegmentEntry, ...], backend: StorageBackend) -> list[Produced]:
    return [
        as_produced(r, False, 0) for _, r in planned_records(open_backup(backend, "b1"), task(segments), 0)
    ]


def test_a_target_holding_a_prefix_of_the_plan_passes(
    backend: StorageBackend, segments: tuple[SegmentEntry, ...]
) -> None:
    records = produced(segments, backend)
    check(target(records[:60]), segments, backend, 500)
    check(target(records[:60]), segments, backend, 540)  # only [540, 560) is read back
    check(target(records), segments, backend, 500)


def test_a_gap_is_refused_naming_the_partition_and_offset(
    backend: StorageBackend, segments: tuple[SegmentEntry, ...]
) -> None:
    records = produced(segments, backend)
    with pytest.raises(RestoreError) as refused:
        check(target(records[:41] + records[42:60]), segments, backend, 510)
    assert str(refused.value) == (
        "dst[3] cannot be resumed: target offset 541 holds another record than planned there "
        "(source offset 44: the key differs), so past offset 510 the partition does not hold the planned "
        "records in order (a delivery failed and later records still landed, or something else wrote to "
        "it). Restore into a new topic (restore.topic_mapping), or delete dst and restore again under a "
        "new restore.restore_id"
    )


@pytest.mark.parametrize(
    ("change", "what"),
    [
        (lambda r: (r[0], r[1], [("h", b"x")], r[3]), "the headers differ"),
        (lambda r: (r[0], b"other", r[2], r[3]), "the value differs"),
        (lambda r: (r[0], r[1], r[2], r[3] + 1), "its timestamp is 1021, not 1020"),
    ],
)
def test_a_record_that_differs_is_refused(
    backend: StorageBackend,
    segments: tuple[SegmentEntry, ...],
    change: Callable[[Produced], Produced],
    what: str,
) -> None:
    records = produced(segments, backend)
    records[20] = change(records[20])
    with pytest.raises(
        RestoreError,
        match=rf"target offset 520 holds another record than planned there \(source offset 20: {what}\)",
    ):
        check(target(records[:30]), segments, backend, 500)


def test_more_records_than_planned_or_a_missing_offset_are_refused(
    backend: StorageBackend, segments: tuple[SegmentEntry, ...]
) -> None:
    records = produced(segments, backend)
    with pytest.raises(RestoreError, match="target offset 597 holds a record past the last planned one"):
        check(target([*records, records[0]]), segments, backend, 590)
    cluster = target(records[:10])
    cluster.skip("dst", 3, 1)
    cluster.append("dst", 3, *records[10][:3], records[10][3])
    with pytest.raises(RestoreError, match=r"target offset 510 is missing \(the next record is at 511\)"):
        check(cluster, segments, backend, 500)


def test_a_timestamp_the_target_stamps_itself_is_not_compared(
    backend: StorageBackend, segments: tuple[SegmentEntry, ...]
) -> None:
    cluster = FakeCluster()
    cluster.create_topic("dst", 4)
    cluster.skip("dst", 3, 500)
    for key, value, headers, _ in produced(segments, backend)[:5]:
        cluster.append("dst", 3, key, value, headers, 5, TIMESTAMP_LOG_APPEND_TIME)
    check(cluster, segments, backend, 500)


def test_only_partitions_with_records_past_their_verified_end_are_checked(
    segments: tuple[SegmentEntry, ...],
) -> None:
    plan = RestorePlan(
        "b1", [task(segments), PartitionTask("src", 1, "dst", 1, 0, 100, segments, (None, None))]
    )
    state = RestoreState("b1", "r1", 0, None)
    state.partitions["src/0"] = PartitionState("dst", 3, 500, verified_end=520)
    state.partitions["src/1"] = PartitionState("dst", 1, 0)  # an earlier build's state: trusted whole
    ends = {("dst", 3): PartitionOffsets(0, 530), ("dst", 1): PartitionOffsets(0, 70)}
    assert unverified(state, plan, ends) == [Unverified(plan.targets()[0], "r1", 500, 520, 530)]
    ends[("dst", 3)] = PartitionOffsets(0, 520)
    assert unverified(state, plan, ends) == []
