"""A restore's whole blocks produced from C, without ``Producer.produce()`` per record.

Why: ``produce()`` parses eight arguments, converts the header list and
finds the topic by name for every record, and the loop around it runs in
Python; with eight partition threads on two cores that was about a quarter
of a restore's CPU (bench/README.rst, session 11). :class:`DirectProducer`
hands a block's record tuples to ``RecordProducer`` (``libkb/format/
_produce.c``), which checks them holding the GIL and produces them with it
released.

Nothing changes for deliveries: each message carries the per-message state
confluent-kafka's own ``produce()`` gives it, so a failed delivery reaches
the run's ``on_delivery`` (:class:`.producer.Deliveries`) when the producer
is polled, as before.

:func:`open_direct` returns ``None`` where the C path cannot run, as
:func:`libkb.backup.intake.open_intake` does: no C extension, not
confluent-kafka's own producer (a test double), not confluent-kafka 2.x, a
failed check, or ``LIBKB_KAFKA_PRODUCE=produce``. The restore then calls
``produce()`` per record, with the same results.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from libkb.format.records import Record
from libkb.format.segment import RECORDS_AT, DecodedBlock
from libkb.kafka.native import native_allowed

log = logging.getLogger("libkb.restore")

#: ``LIBKB_KAFKA_PRODUCE=produce`` turns the C path off (a fallback should a librdkafka change break it).
ENV = "LIBKB_KAFKA_PRODUCE"
#: librdkafka's code for a full local queue (``produce()`` raises ``BufferError`` for it).
QUEUE_FULL = -184
#: How long a full queue is polled before trying again (as the Python path does).
FULL_POLL_SECS = 0.05

try:
    from confluent_kafka import cimpl

    from libkb.format._packer import RecordProducer
except ImportError:  # no compiler at install time
    RecordProducer = None  # type: ignore[assignment,misc]


class BlockDelivery:
    """A decoded block's messages' delivery callback: forwards to the run's ``on_delivery``, and holds
    the block's memory, which the messages point into, until the last of them is reported.

    Why: librdkafka would otherwise copy every value into memory of its own
    (a ``malloc`` and a copy per record, and the page faults of memory that
    keeps being handed back): a sixth of a restore's CPU (bench/README.rst,
    session 12). Each message holds a reference to this object, which
    confluent-kafka's delivery callback drops; the last one frees the block.
    """

    __slots__ = ("_memory", "_on_delivery")

    def __init__(self, on_delivery: Callable[..., Any], block: bytearray) -> None:
        self._on_delivery = on_delivery
        self._memory = memoryview(block)  # while it is held, the block cannot be resized

    def __call__(self, err: Any, msg: Any) -> Any:
        return self._on_delivery(err, msg)


class DirectProducer:
    """Produces whole blocks through the run's producer; the records must not change during a call."""

    def __init__(self, c: RecordProducer, on_delivery: Callable[..., Any] | None = None) -> None:
        self._c = c
        self._on_delivery = on_delivery

    @staticmethod
    def consecutive(block: list[Record]) -> bool:
        """The block's offsets follow one another (a whole block is one run of the offset mapping)."""
        return not block or RecordProducer.consecutive(block, block[0][0])

    def produce_decoded(
        self, topic: str, partition: int, block: DecodedBlock, poll: Callable[[float], Any]
    ) -> int | None:
        """Produce a decoded block's records straight from its bytes; the key and value bytes produced.

        ``None`` (and nothing produced) when the block is not a whole, plain one
        (``_unpack.h``): its records must then be made and checked in Python.
        Errors as :meth:`produce_block`. With an ``on_delivery``, the messages
        point into the block (:class:`BlockDelivery`), which must not change after.
        """
        raw = block.raw
        if raw is None:
            return None
        info = block.info
        first, last, count = info.first_offset, info.last_offset, info.record_count
        keep = BlockDelivery(self._on_delivery, raw) if self._on_delivery is not None else None
        return _all_in(
            lambda start: self._c.produce_packed(
                topic, partition, raw, RECORDS_AT, first, last, count, start, keep
            ),
            topic,
            partition,
            poll,
        )

    def produce_block(
        self, topic: str, partition: int, block: list[Record], poll: Callable[[float], Any]
    ) -> int:
        """Produce every record of ``block``; the key and value bytes produced.

        A full local queue is polled until it has room; any other refusal
        raises ``KafkaException``, as ``produce()`` does.
        """
        sent = _all_in(lambda start: self._c.produce(topic, partition, block, start), topic, partition, poll)
        assert sent is not None  # produce() never declines
        return sent


def _all_in(
    send: Callable[[int], tuple[int, int, int]], topic: str, partition: int, poll: Callable[[float], Any]
) -> int | None:
    """Call ``send(start)`` from record 0 until every record is in; the key and value bytes produced.

    ``send`` gives (next record, librdkafka's error code, bytes produced); a
    next record below 0: it declined the block (``None``, nothing produced).
    """
    done = nbytes = 0
    while True:
        done, err, produced = send(done)
        if done < 0:
            return None
        nbytes += produced
        if err == 0:
            return nbytes
        if err != QUEUE_FULL:
            raise KafkaException(KafkaError(err, f"Unable to produce message to {topic}[{partition}]"))
        poll(FULL_POLL_SECS)  # the local queue is full: let deliveries drain


def open_direct(producer: Any, on_delivery: Callable[..., Any] | None) -> DirectProducer | None:
    """A :class:`DirectProducer` on ``producer``, or ``None`` where ``produce()`` must be used (see above).

    ``on_delivery``: the callback ``producer`` was configured with (or ``None``).
    """
    if RecordProducer is None or not native_allowed(producer, Producer, ENV, "produce", "the C produce path"):
        return None
    try:
        return DirectProducer(RecordProducer(producer, Producer, on_delivery, cimpl.__file__), on_delivery)
    except (ImportError, TypeError, RuntimeError) as exc:
        log.warning("producing with produce() instead of the C path: %s", exc)
        return None
