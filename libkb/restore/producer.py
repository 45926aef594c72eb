"""The restore's one producer: idempotent, ``acks=all``, and how its failures stop the run.

librdkafka reports only failed deliveries (``delivery.report.only.error``);
the first one stops the run (a re-run resumes it). Its queued events are
served by a thread every 0.1 s rather than by the partition threads.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from confluent_kafka import KafkaError, Producer

from libkb.config.models import RestoreOptions
from libkb.kafka.producer import producer_batch_settings

log = logging.getLogger("libkb.restore")

DeliveryCallback = Callable[[KafkaError | None, Any], None]


def producer_config(options: RestoreOptions) -> dict[str, Any]:
    """librdkafka settings of the restore producer (``on_delivery`` is added by the run)."""
    return {
        "enable.idempotence": True,
        "acks": "all",
        "max.in.flight.requests.per.connection": 5,
        "linger.ms": 20,
        **producer_batch_settings(options),
        # 64 MiB of produced-but-unsent records keep the broker as busy as 256 MiB
        # did (bench/restore_bench.py: same speed) at 200-260 MiB less peak RSS.
        "queue.buffering.max.kbytes": 65_536,
        "queue.buffering.max.messages": 1_000_000,
        "compression.type": "lz4",
        "delivery.report.only.error": True,
        "error_cb": _log_client_error,
    }


def delivery_failures(failures: list[str], stop: threading.Event) -> DeliveryCallback:
    """An ``on_delivery`` callback that appends each failure to ``failures`` and stops the run."""

    def on_delivery(err: KafkaError | None, msg: Any) -> None:  # only failures are reported
        if err is not None:
            failures.append(f"{msg.topic()}[{msg.partition()}]: {err.str()}")
            stop.set()

    return on_delivery


@contextmanager
def polling(producer: Producer) -> Iterator[None]:
    """Serve what the producer has queued (failed deliveries, client errors) every 0.1 s, on a thread.

    A blocking ``poll(0.1)`` would return at every produce response, and each
    return takes the GIL from the partition threads.
    """
    done = threading.Event()

    def poll() -> None:
        while not done.wait(0.1):
            producer.poll(0)

    poller = threading.Thread(target=poll, name="libkb-restore-poll", daemon=True)
    poller.start()
    try:
        yield
    finally:
        done.set()
        poller.join()


def _log_client_error(err: KafkaError) -> None:
    log.warning("Kafka client: %s", err.str())
