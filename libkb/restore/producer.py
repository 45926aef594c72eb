"""The restore's one producer: idempotent, ``acks=all``, and how its failures stop the run.

librdkafka reports only failed deliveries (``delivery.report.only.error``:
a report per delivered record would build a ``Message``, key and value
copied, under the GIL for every record); the first one stops the run (a
re-run resumes it). Its
queued events are served by a thread every 0.1 s rather than by the
partition threads.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from confluent_kafka import KafkaError, Producer

import libkb.config.fixed_properties as fixed
from libkb.config.models import RestoreOptions
from libkb.kafka.producer import producer_batch_settings

log = logging.getLogger("libkb.restore")

TP = tuple[str, int]


def producer_config(options: RestoreOptions) -> dict[str, Any]:
    """librdkafka settings of the restore producer (``on_delivery`` is added by the run).

    A ``client_config`` overrides the tuning here (``compression.type: none``
    restores faster on a cluster with disk to spare), not :mod:`libkb.config.fixed_properties`.
    """
    return {
        **fixed.RESTORE_PRODUCER,
        "max.in.flight.requests.per.connection": 5,
        "linger.ms": 20,
        **producer_batch_settings(options),
        # 64 MiB of produced-but-unsent records keep the broker as busy as 256 MiB
        # did (bench/restore_bench.py: same speed) at 200-260 MiB less peak RSS.
        "queue.buffering.max.kbytes": 65_536,
        "queue.buffering.max.messages": 1_000_000,
        "compression.type": "lz4",
        "error_cb": _log_client_error,
    }


class Deliveries:
    """The run's ``on_delivery``: librdkafka reports only failed deliveries; the first one stops the run.

    Failures are kept per target partition: a partition with one may have a
    gap (records after the failed one landed), so checkpoints stop vouching
    for it (:mod:`.checkpoint`). Called from whichever thread serves the
    producer's queue.
    """

    def __init__(self, stop: threading.Event) -> None:
        self._stop = stop
        self._lock = threading.Lock()
        self._failed: dict[TP, tuple[str, int]] = {}  # target partition -> (first error, count)

    def __call__(self, err: KafkaError | None, msg: Any) -> None:
        if err is None:
            return
        tp = (msg.topic(), msg.partition())
        with self._lock:
            first, count = self._failed.get(tp, (err.str(), 0))
            self._failed[tp] = (first, count + 1)
        self._stop.set()

    def failed(self) -> set[TP]:
        """The target partitions with a failed delivery so far."""
        with self._lock:
            return set(self._failed)

    def messages(self) -> list[str]:
        """One line per partition with failures: its first error and how many records failed."""
        with self._lock:
            items = sorted(self._failed.items())
        return [f"{t}[{p}]: {text} ({n} record{'s' if n > 1 else ''})" for (t, p), (text, n) in items]


class Poller:
    """Serves what the producer has queued (failed deliveries, client errors): every 0.1 s on a thread.

    A blocking ``poll(0.1)`` would return at every produce response, and each
    return takes the GIL from the partition threads. Partition threads waiting
    for room in a full queue poll too, through :meth:`poll`. :meth:`serve` is
    for a checkpoint: it waits for the polls under way (one may have taken a
    failed delivery off the queue and not yet recorded it), serves the queue
    itself, and returns when every event queued before it has been handled.
    """

    def __init__(self, producer: Producer) -> None:
        self._producer = producer
        self._changed = threading.Condition()
        self._polling = 0  # poll() calls under way
        self._serving = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="libkb-restore-poll", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._done.wait(0.1):
            self.poll(0)

    def poll(self, timeout: float) -> int:
        """``Producer.poll``, unless :meth:`serve` is under way (then after it)."""
        with self._changed:
            self._changed.wait_for(lambda: not self._serving)
            self._polling += 1
        try:
            return self._producer.poll(timeout)
        finally:
            with self._changed:
                self._polling -= 1
                self._changed.notify_all()

    def serve(self) -> None:
        """Every event queued before this call has been handled (its callback run) when it returns."""
        with self._changed:
            self._changed.wait_for(lambda: not self._serving)
            self._serving = True
            self._changed.wait_for(lambda: not self._polling)
        try:
            self._producer.poll(0)
        finally:
            with self._changed:
                self._serving = False
                self._changed.notify_all()


@contextmanager
def polling(producer: Producer) -> Iterator[Poller]:
    """A :class:`Poller` serving the producer while the block runs."""
    poller = Poller(producer)
    poller.start()
    try:
        yield poller
    finally:
        poller.close()


def _log_client_error(err: KafkaError) -> None:
    log.warning("Kafka client: %s", err.str())
