"""Checkpoints: how far each target partition is known to hold the planned records, stored as the run goes.

A re-run trusts a target partition up to its ``verified_end`` and reads back
what lies beyond before it resumes (:mod:`.verify`), so the run moves it on
every ``interval`` seconds and at its end. A checkpoint first reads the
target partitions' high watermarks, then serves the producer's queue: a
failed delivery that could have let later records land below such a
watermark has then been seen, because librdkafka reports a record it gives up
on before it sends any record after it (INTRODUCTION.md, "Message timeout
considerations"). Partitions without a failed delivery are verified up to
their watermark; one with a failure stays where it was.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping

from confluent_kafka import KafkaException

from libkb.errors import LibkbError
from libkb.kafka.admin import KafkaAdmin, PartitionOffsets
from libkb.restore.plan import RestorePlan
from libkb.restore.state import RestoreState, state_key
from libkb.storage import StorageBackend

log = logging.getLogger("libkb.restore")

TP = tuple[str, int]

#: Seconds between checkpoints: at most about this much of a partition is read back after a crash.
CHECKPOINT_SECS = 10.0


def vouch(
    state: RestoreState, plan: RestorePlan, ends: Mapping[TP, PartitionOffsets], failed: Collection[TP]
) -> None:
    """Move ``verified_end`` to ``ends`` for the partitions without a failed delivery (never back)."""
    for target in plan.targets():
        tp = (target.topic, target.partition)
        part = state.partitions[target.key]
        if tp not in failed and tp in ends:
            part.verified_end = max(part.verified_end or 0, ends[tp].high)


class Checkpoints:
    """Takes and stores a checkpoint when one is due; ``serve`` and ``failed`` are the producer's."""

    def __init__(
        self,
        backend: StorageBackend,
        state: RestoreState,
        plan: RestorePlan,
        admin: KafkaAdmin,
        serve: Callable[[], None],
        failed: Callable[[], set[TP]],
        interval: float = CHECKPOINT_SECS,
    ) -> None:
        self._backend, self._state, self._plan, self._admin = backend, state, plan, admin
        self._serve, self._failed = serve, failed
        self._interval = interval
        self._targets = [(t.topic, t.partition) for t in plan.targets()]
        self._next = time.monotonic() + interval

    def maybe(self) -> None:
        """Take a checkpoint if ``interval`` has passed since the last (from the run's controller)."""
        if time.monotonic() >= self._next:
            self.take()
            self._next = time.monotonic() + self._interval

    def take(self) -> None:
        """Watermarks first, then the queue served, then the state stored; a failure only delays it."""
        try:
            ends = self._admin.offsets(self._targets, read_committed=False)
        except (KafkaException, LibkbError) as exc:
            log.warning("restore checkpoint skipped: cannot read the target's offsets (%s)", exc)
            return
        self._serve()
        vouch(self._state, self._plan, ends, self._failed())
        try:
            self._backend.put(state_key(self._state.backup_id, self._state.restore_id), self._state.to_json())
        except LibkbError as exc:
            log.warning("restore checkpoint not stored (%s); a re-run reads back more", exc)
