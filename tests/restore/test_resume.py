"""Resume bookkeeping without a broker: starts recorded before the first record, skips, the final check."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from libkb.format.models import SegmentEntry
from libkb.kafka.admin import PartitionOffsets
from libkb.restore import resume
from libkb.restore.plan import PartitionTask, RestorePlan
from libkb.restore.result import RestoreError
from libkb.restore.state import PartitionState, RestoreState, state_key
from libkb.storage import MemoryConfig, StorageBackend, create_backend_from_config

SEGMENT = SegmentEntry("k", 0, 10, 10, 0, 9, 0, 9, 100, 200, "zstd")
PLAN = RestorePlan(
    "b1",
    [
        PartitionTask("src", 0, "dst", 0, 0, 10, (SEGMENT,), (None, None)),
        PartitionTask("src", 1, "dst", 1, 0, 10, (SEGMENT,), (None, None)),
    ],
)


@pytest.fixture
def backend() -> Iterator[StorageBackend]:
    with create_backend_from_config(MemoryConfig()) as b:
        yield b


def ends(high0: int, high1: int) -> dict[tuple[str, int], PartitionOffsets]:
    return {("dst", 0): PartitionOffsets(0, high0), ("dst", 1): PartitionOffsets(0, high1)}


def test_a_new_restore_stores_where_each_target_starts_before_anything_is_written(
    backend: StorageBackend,
) -> None:
    state = resume.load_state(backend, "b1", "r1", "cluster")
    assert state.partitions == {}
    skips = resume.record_starts(backend, state, PLAN, ends(5, 7))
    assert skips == {"src/0": 0, "src/1": 0}
    stored = RestoreState.from_json(backend.get(state_key("b1", "r1")))
    assert stored.status == "running"
    assert {k: p.target_start for k, p in stored.partitions.items()} == {"src/0": 5, "src/1": 7}


def test_a_rerun_skips_what_the_target_already_holds(backend: StorageBackend) -> None:
    resume.record_starts(backend, resume.load_state(backend, "b1", "r1", "cluster"), PLAN, ends(5, 7))
    state = resume.load_state(backend, "b1", "r1", "cluster")
    assert resume.record_starts(backend, state, PLAN, ends(9, 7)) == {"src/0": 4, "src/1": 0}
    mapping = resume.new_mapping(state, PLAN)
    assert [(p.source_partition, p.target_start) for p in mapping.partitions] == [(0, 5), (1, 7)]


def test_a_target_that_shrank_is_refused(backend: StorageBackend) -> None:
    resume.record_starts(backend, resume.load_state(backend, "b1", "r1", "cluster"), PLAN, ends(5, 7))
    state = resume.load_state(backend, "b1", "r1", "cluster")
    with pytest.raises(RestoreError, match=r"dst\[1\] ends at offset 3, before offset 7 that restore r1 had"):
        resume.record_starts(backend, state, PLAN, ends(5, 3))


def test_a_restore_begun_on_another_cluster_is_refused(backend: StorageBackend) -> None:
    resume.record_starts(backend, resume.load_state(backend, "b1", "r1", "cluster"), PLAN, ends(0, 0))
    with pytest.raises(RestoreError, match="started on cluster cluster, not other"):
        resume.load_state(backend, "b1", "r1", "other")


def test_confirm_records_counts_and_catches_foreign_writes(backend: StorageBackend) -> None:
    state = resume.load_state(backend, "b1", "r1", None)
    resume.record_starts(backend, state, PLAN, ends(5, 7))
    mapping = resume.new_mapping(state, PLAN)
    mapping.partitions[0].add_all(range(10))
    mapping.partitions[1].add_all(range(10))
    assert resume.confirm(state, mapping, ends(15, 17), interrupted=False) == []
    assert [(p.records, p.done) for p in state.partitions.values()] == [(10, True), (10, True)]
    (failure,) = resume.confirm(state, mapping, ends(15, 18), interrupted=False)
    assert failure.startswith("dst[1] ends at 18, expected 17")
    assert resume.confirm(state, mapping, ends(15, 18), interrupted=True) == []  # not checked yet
    assert not any(p.done for p in state.partitions.values())


def test_every_partition_is_verified_up_to_its_end_when_a_run_starts(backend: StorageBackend) -> None:
    resume.record_starts(backend, resume.load_state(backend, "b1", "r1", "cluster"), PLAN, ends(5, 7))
    state = resume.load_state(backend, "b1", "r1", "cluster")
    assert [p.verified_end for p in state.partitions.values()] == [5, 7]
    resume.record_starts(backend, state, PLAN, ends(9, 7))  # what lay past 5 was compared first
    stored = RestoreState.from_json(backend.get(state_key("b1", "r1")))
    assert [(p.target_start, p.verified_end) for p in stored.partitions.values()] == [(5, 9), (7, 7)]


def test_a_target_that_shrank_below_what_was_verified_is_refused(backend: StorageBackend) -> None:
    state = resume.load_state(backend, "b1", "r1", "cluster")
    resume.record_starts(backend, state, PLAN, ends(5, 7))
    state.partitions["src/0"].verified_end = 12
    with pytest.raises(RestoreError, match=r"dst\[0\] ends at offset 10, before offset 12 that restore r1"):
        resume.record_starts(backend, state, PLAN, ends(10, 7))


def test_a_state_of_an_earlier_build_has_no_verified_end(backend: StorageBackend) -> None:
    state = RestoreState("b1", "r1", 0, None)
    state.partitions["src/0"] = PartitionState("dst", 0, 5, verified_end=8)
    body = json.loads(state.to_json())
    assert body["partitions"]["src/0"]["verified_end"] == 8
    assert RestoreState.from_json(state.to_json()) == state
    del body["partitions"]["src/0"]["verified_end"]
    assert RestoreState.from_json(json.dumps(body).encode()).partitions["src/0"].verified_end is None
