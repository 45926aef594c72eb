"""``prune`` of one backup: a plan changes nothing, an execution deletes exactly what it planned.

What stays is a valid backup that restores exactly the records it keeps; a
backup run afterwards continues where it was and never brings a pruned
segment back; a prune never runs beside a backup run; a segment deleted
behind libkb's back is a missing object, never a pruned range.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from integration.kafka_data import BASE_TS
from libkb.backup.lease import LeaseInfo, read_lease
from libkb.backup.ownership import LeaseOwnership
from libkb.catalog import describe_backup, validate_backup
from libkb.cli.restore import plan_text
from libkb.format.models import index_key, lease_generation_key
from libkb.metrics import RunMetrics
from libkb.prune import PruneRefusedError, execute_prune, plan_prune
from libkb.retention import RetentionPolicy
from libkb.storage import (
    FilesystemConfig,
    MemoryConfig,
    NotFoundError,
    StorageBackend,
    create_backend_from_config,
)
from tests.fakes import FakeKafka, KillingBackend, ProcessKilled
from tests.fakes.cluster import FakeCluster
from tests.fakes.jobs import (
    BACKUP_ID,
    PARTITIONS,
    TOPIC,
    backup_engine,
    content,
    restore_config,
    restore_engine,
)
from tests.prune.support import (
    CUTOFF_MS,
    assert_restores_kept,
    assert_valid,
    backed_up,
    coverage,
    kept,
    stored_segments,
)

OLDER = RetentionPolicy(cutoff_ms=CUTOFF_MS, reason="kafka-backup prune --before T")


@pytest.fixture(params=["memory", "filesystem"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StorageBackend]:
    config = MemoryConfig() if request.param == "memory" else FilesystemConfig(str(tmp_path / "store"))
    with create_backend_from_config(config) as b:
        yield b


def test_a_plan_deletes_nothing_and_execute_deletes_exactly_the_plan(backend: StorageBackend) -> None:
    kafka = backed_up(backend)
    before = backend.list("")
    plan = plan_prune(backend, BACKUP_ID, OLDER)
    assert backend.list("") == before and not plan.executed and plan.writer is None
    segments = stored_segments(backend)
    assert [c.partition for c in plan.plan.cuts] == [0, 1, 2]
    going = {s.key for c in plan.plan.cuts for s in c.segments}
    assert all(s.max_timestamp < CUTOFF_MS for c in plan.plan.cuts for s in c.segments)

    metrics = RunMetrics()
    done = execute_prune(backend, BACKUP_ID, OLDER, metrics=metrics)
    assert done.executed and done.undeleted == []
    assert [c.to_dict() for c in done.plan.cuts] == [c.to_dict() for c in plan.plan.cuts]
    assert set(segments) - set(stored_segments(backend)) == going
    for cut in done.plan.cuts:
        index = coverage(backend)[cut.partition]
        assert index.retained_start == cut.end and index.end_offset == coverage_end(
            kafka.cluster, cut.partition
        )
        assert [(r.start, r.end, r.records) for r in index.pruned] == [(cut.start, cut.end, cut.records)]
        assert all(s.max_timestamp >= CUTOFF_MS for s in index.segments[:1])
    report = validate_backup(backend, BACKUP_ID, deep=True)
    assert report.ok and report.warnings == [w for w in report.warnings if "retention" in w]
    assert len(report.notes) == PARTITIONS and all("were pruned on" in n for n in report.notes)
    assert_restores_kept(backend, kafka.cluster)
    assert metrics.pruned_segments.labels(BACKUP_ID)._value.get() == len(going)
    assert metrics.pruned_bytes.labels(BACKUP_ID)._value.get() == done.plan.bytes
    oldest = metrics.oldest_retained.gauge.labels(TOPIC, "0", BACKUP_ID)._value.get()
    assert oldest * 1000 == done.plan.cuts[0].oldest_kept_ms == coverage(backend)[0].segments[0].min_timestamp
    # The lease the prune held is released: a backup run may start at once.
    assert read_lease(backend, lease_generation_key(BACKUP_ID, 2)) == _released()


def coverage_end(cluster: FakeCluster, partition: int) -> int:
    return cluster.watermarks(TOPIC, partition)[1]


def _released() -> LeaseInfo:
    class Released(LeaseInfo):
        def __eq__(self, other: object) -> bool:
            return isinstance(other, LeaseInfo) and other.released and other.run_id.startswith("prune-")

    return Released("", "", 0, 0)


def test_a_second_prune_with_the_same_rule_extends_the_same_pruned_range(backend: StorageBackend) -> None:
    kafka = backed_up(backend)
    rule = "backup.retention: max_age 30d"
    first = execute_prune(backend, BACKUP_ID, RetentionPolicy(cutoff_ms=CUTOFF_MS, reason=rule))
    second = execute_prune(backend, BACKUP_ID, RetentionPolicy(cutoff_ms=BASE_TS + 270_000, reason=rule))
    assert first.plan.segments == second.plan.segments == PARTITIONS
    for index in coverage(backend).values():
        (pruned,) = index.pruned
        assert (pruned.start, pruned.end, pruned.segments) == (index.start_offset, index.retained_start, 2)
    assert_valid(backend)
    assert_restores_kept(backend, kafka.cluster)


def test_a_prune_is_refused_while_a_backup_run_holds_the_lease(backend: StorageBackend) -> None:
    backed_up(backend)
    running = LeaseOwnership(backend, BACKUP_ID, "20240101T000000Z-running1", 60)
    running.acquire()
    try:
        before = backend.list("")
        with pytest.raises(PruneRefusedError) as refused:
            execute_prune(backend, BACKUP_ID, OLDER)
        message = str(refused.value)
        assert "run 20240101T000000Z-running1" in message and "backup.retention" in message
        assert "takes the backup's lease" in message
        assert backend.list("") == before  # nothing written, not even a lease
        assert plan_prune(backend, BACKUP_ID, OLDER).writer is not None  # the plan says so
    finally:
        running.release()
    assert execute_prune(backend, BACKUP_ID, OLDER).plan.cuts


def test_a_backup_run_after_a_stopped_prune_never_brings_a_pruned_segment_back(
    backend: StorageBackend,
) -> None:
    kafka = backed_up(backend)
    killing = KillingBackend(backend)
    execute_prune(killing, BACKUP_ID, OLDER)  # count the calls of a whole prune
    calls = killing.calls
    first_delete = next(i for i, c in enumerate(calls) if c.startswith("delete") and ".kbs" in c)

    fresh = create_backend_from_config(MemoryConfig())
    kafka = backed_up(fresh)
    with pytest.raises(ProcessKilled):  # killed after the first index write, before any segment went
        execute_prune(KillingBackend(fresh, kill_at=first_delete + 1), BACKUP_ID, OLDER)
    leftovers = [
        k
        for k in stored_segments(fresh)
        if k not in {s.key for i in coverage(fresh).values() for s in i.segments}
    ]
    assert leftovers  # pruned from the index, still stored
    warnings = assert_valid(fresh)
    assert any("the prune was stopped before deleting it" in w for w in warnings)

    for p in range(PARTITIONS):  # the source moves on; the next run resumes where the backup ends
        for i in range(5):
            kafka.cluster.append(TOPIC, p, b"k", f"later-{i}".encode(), None, BASE_TS + 10**6 + i)
    from tests.fakes.jobs import run_backup
    from tests.prune.support import later

    with pytest.MonkeyPatch.context() as mp, later(mp):
        result = run_backup(backup_engine(kafka, fresh))
    assert result.status == "complete" and result.records == 5 * PARTITIONS
    assert not set(leftovers) & set(fresh.list(""))  # deleted, not adopted
    assert all(not set(leftovers) & {s.key for s in i.segments} for i in coverage(fresh).values())
    assert_valid(fresh)
    assert_restores_kept(fresh, kafka.cluster)


def test_a_segment_deleted_behind_libkbs_back_is_a_missing_object_and_restore_names_it(
    backend: StorageBackend,
) -> None:
    backed_up(backend)
    execute_prune(backend, BACKUP_ID, OLDER)
    index = coverage(backend)[1]
    lost = index.segments[1].key
    backend.delete(lost)  # as an age-based bucket lifecycle rule would

    report = validate_backup(backend, BACKUP_ID)
    assert report.problems == [f"{lost}: listed in {index_key(BACKUP_ID, TOPIC, 1)} but not stored"]
    assert not any(lost in n for n in report.notes)  # not explained away as pruned
    with pytest.raises(NotFoundError, match="deleted by something other than libkb") as failed:
        restore_engine(FakeKafka(), backend).run()
    assert lost in str(failed.value)


def test_a_restore_window_reaching_into_pruned_records_says_what_is_gone(backend: StorageBackend) -> None:
    kafka = backed_up(backend)
    execute_prune(backend, BACKUP_ID, OLDER)
    window = restore_config(time_window_start=BASE_TS + 10_000, time_window_end=CUTOFF_MS + 30_000)
    target = FakeKafka()
    result = restore_engine(target, backend, window).run()
    assert result.status == "complete"
    gone = [n for n in result.notes if "no longer in the backup" in n]
    assert len(gone) == PARTITIONS and all("were pruned on" in n for n in gone)
    want = kept(kafka.cluster, coverage(backend))
    for p in range(PARTITIONS):
        inside = [r for r in want[p] if BASE_TS + 10_000 <= r[1] <= CUTOFF_MS + 30_000]
        assert content([r.stored() for r in target.cluster.records(f"{TOPIC}-restored", p)]) == content(
            inside
        )
    planned = restore_engine(FakeKafka(), backend, window).plan().plan
    assert planned is not None and plan_text(planned).count("note: orders[") == PARTITIONS  # validate-restore
    later_window = restore_config(time_window_start=CUTOFF_MS + 10_000)
    assert (
        restore_engine(FakeKafka(), backend, later_window).plan().notes == []
    )  # nothing it asks for is gone


def test_a_prune_warns_of_an_unfinished_restore_it_would_leave_short(backend: StorageBackend) -> None:
    backed_up(backend)
    restore_engine(FakeKafka(), backend, restore_config(restore_id="half-done")).run()
    # as if it had been stopped half way: only its state matters to the prune
    state = backend.get(f"{BACKUP_ID}/restores/half-done/state.json").replace(b'"complete"', b'"interrupted"')
    backend.put(f"{BACKUP_ID}/restores/half-done/state.json", state)
    (note,) = plan_prune(backend, BACKUP_ID, OLDER).notes
    assert (
        note.startswith("restore half-done of this backup is interrupted")
        and "new restore.restore_id" in note
    )
    assert (
        plan_prune(backend, BACKUP_ID, RetentionPolicy(cutoff_ms=0)).notes == []
    )  # nothing cut: nothing to say


def test_describe_shows_what_was_pruned_and_where_the_backup_now_starts(backend: StorageBackend) -> None:
    backed_up(backend)
    done = execute_prune(backend, BACKUP_ID, OLDER)
    description = describe_backup(backend, BACKUP_ID)
    for cut, part in zip(done.plan.cuts, description.partitions, strict=True):
        assert part.start_offset == cut.end
        assert [(p.start, p.end, p.reason) for p in part.pruned] == [(cut.start, cut.end, OLDER.reason)]
        assert part.to_dict()["pruned"][0]["min_time"].startswith("2020-09-13T")
