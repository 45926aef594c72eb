"""Checkpoints: the target's watermarks first, then the producer's queue served, then the state stored."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

import pytest
from confluent_kafka import KafkaError, KafkaException

from libkb.format.models import SegmentEntry
from libkb.kafka.admin import KafkaAdmin, PartitionOffsets
from libkb.restore.checkpoint import Checkpoints, vouch
from libkb.restore.plan import PartitionTask, RestorePlan
from libkb.restore.state import PartitionState, RestoreState, state_key
from libkb.storage import MemoryConfig, StorageBackend, create_backend_from_config
from tests.fakes import FakeCluster, Fault, FaultyBackend, fake_admin

SEGMENT = SegmentEntry("k", 0, 10, 10, 0, 9, 0, 9, 100, 200, "zstd")
PLAN = RestorePlan(
    "b1",
    [
        PartitionTask("src", 0, "dst", 0, 0, 10, (SEGMENT,), (None, None)),
        PartitionTask("src", 1, "dst", 1, 0, 10, (SEGMENT,), (None, None)),
    ],
)
TP = tuple[str, int]


@pytest.fixture
def backend() -> Iterator[StorageBackend]:
    with create_backend_from_config(MemoryConfig()) as b:
        yield b


def new_state() -> RestoreState:
    state = RestoreState("b1", "r1", 0, None)
    state.partitions = {f"src/{p}": PartitionState("dst", p, 2, verified_end=2) for p in (0, 1)}
    return state


def verified(state: RestoreState) -> list[int | None]:
    return [state.partitions[f"src/{p}"].verified_end for p in (0, 1)]


def test_vouch_moves_partitions_without_a_failed_delivery_forward_only() -> None:
    state = new_state()
    ends = {("dst", 0): PartitionOffsets(0, 9), ("dst", 1): PartitionOffsets(0, 8)}
    vouch(state, PLAN, ends, {("dst", 1)})
    assert verified(state) == [9, 2]
    vouch(state, PLAN, {("dst", 0): PartitionOffsets(0, 4)}, set())
    assert verified(state) == [9, 2]  # never back, and only where an end was read


class Target:
    """The target cluster; serving the producer's queue lands records and reports failures."""

    def __init__(self) -> None:
        self.cluster = FakeCluster()
        self.cluster.create_topic("dst", 2)
        for p in (0, 1):
            for _ in range(6):
                self.cluster.append("dst", p, None, b"v")
        self.failed: set[TP] = set()
        self.served = 0

    def serve(self) -> None:
        """A failure of partition 1 reported, and more records landed, after the watermarks were read."""
        self.served += 1
        self.failed.add(("dst", 1))
        for p in (0, 1):
            self.cluster.append("dst", p, None, b"late")

    def checkpoints(
        self,
        backend: StorageBackend,
        state: RestoreState,
        interval: float = 0,
        admin: KafkaAdmin | None = None,
    ) -> Checkpoints:
        admin = admin or fake_admin(self.cluster)
        return Checkpoints(backend, state, PLAN, admin, self.serve, lambda: set(self.failed), interval)


class Unreachable(KafkaAdmin):
    def offsets(self, partitions: Iterable[TP], *, read_committed: bool) -> dict[TP, PartitionOffsets]:
        raise KafkaException(KafkaError(KafkaError._TRANSPORT, "Local: Broker transport failure"))


def stored(backend: StorageBackend) -> RestoreState:
    return RestoreState.from_json(backend.get(state_key("b1", "r1")))


def test_a_checkpoint_reads_the_watermarks_before_it_serves_the_queue(backend: StorageBackend) -> None:
    """What landed after the watermarks is not vouched for; a failure reported while serving counts."""
    target, state = Target(), new_state()
    target.checkpoints(backend, state).take()
    assert target.served == 1
    assert verified(state) == [6, 2]
    assert verified(stored(backend)) == [6, 2]


def test_a_checkpoint_is_taken_when_due(backend: StorageBackend) -> None:
    target = Target()
    target.checkpoints(backend, new_state(), interval=3600).maybe()
    assert target.served == 0 and not backend.exists(state_key("b1", "r1"))
    target.checkpoints(backend, new_state(), interval=0).maybe()
    assert target.served == 1 and backend.exists(state_key("b1", "r1"))


def test_a_checkpoint_that_cannot_read_or_store_only_comes_later(
    backend: StorageBackend, caplog: pytest.LogCaptureFixture
) -> None:
    target, state = Target(), new_state()
    unreachable = Unreachable(fake_admin(target.cluster).admin)
    with caplog.at_level(logging.WARNING, "libkb.restore"):
        target.checkpoints(backend, state, admin=unreachable).take()
    assert target.served == 0 and verified(state) == [2, 2]
    assert "restore checkpoint skipped" in caplog.text

    target = Target()
    failing = FaultyBackend(backend, Fault("put", "/state.json"))
    with caplog.at_level(logging.WARNING, "libkb.restore"):
        target.checkpoints(failing, state).take()
    assert failing.injected and verified(state) == [6, 2]  # kept for the next one
    assert "restore checkpoint not stored" in caplog.text
