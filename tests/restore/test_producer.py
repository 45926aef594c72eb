"""The restore producer's side: failed deliveries kept per partition, and a queue served on demand."""

from __future__ import annotations

import threading
import time
from typing import cast

from confluent_kafka import KafkaError, Message, Producer

from libkb.config.models import RestoreOptions
from libkb.restore.producer import Deliveries, Poller, polling, producer_config

TIMED_OUT = KafkaError(KafkaError._MSG_TIMED_OUT, "Local: Message timed out")


def test_failed_deliveries_are_kept_per_partition_and_stop_the_run() -> None:
    stop = threading.Event()
    deliveries = Deliveries(stop)
    deliveries(None, Message(topic="t", partition=0, offset=5))  # delivered: nothing to keep
    assert not stop.is_set() and deliveries.failed() == set()
    for partition in (2, 2, 0):
        deliveries(TIMED_OUT, Message(topic="t", partition=partition, error=TIMED_OUT))
    assert stop.is_set()
    assert deliveries.failed() == {("t", 0), ("t", 2)}
    assert deliveries.messages() == [
        "t[0]: Local: Message timed out (1 record)",
        "t[2]: Local: Message timed out (2 records)",
    ]


def test_only_failed_deliveries_are_reported() -> None:
    assert producer_config(RestoreOptions())["delivery.report.only.error"] is True


class SlowPoll:
    """``poll(timeout)`` with a timeout blocks until released; the calls in the order they returned."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.returned: list[float] = []
        self.started = threading.Event()

    def poll(self, timeout: float) -> int:
        if timeout:
            self.started.set()
            self.release.wait(5)
        self.returned.append(timeout)
        return 0


def test_serve_waits_for_a_poll_under_way_then_serves_the_queue_itself() -> None:
    """A partition thread's poll may have taken a failed delivery off the queue and not yet recorded it."""
    producer = SlowPoll()
    poller = Poller(cast(Producer, producer))
    waiting = threading.Thread(target=poller.poll, args=(0.05,))
    waiting.start()
    assert producer.started.wait(5)
    serving = threading.Thread(target=poller.serve)
    serving.start()
    time.sleep(0.2)
    assert serving.is_alive() and producer.returned == []
    producer.release.set()
    serving.join(5)
    waiting.join(5)
    assert producer.returned == [0.05, 0]


def test_the_poll_thread_serves_the_queue_while_the_block_runs() -> None:
    producer = SlowPoll()
    with polling(cast(Producer, producer)):
        deadline = time.monotonic() + 5
        while not producer.returned and time.monotonic() < deadline:
            time.sleep(0.05)
    count = len(producer.returned)
    assert count >= 1 and set(producer.returned) == {0}
    time.sleep(0.3)
    assert len(producer.returned) == count  # stopped with the block
