"""A backup consumer's messages read in C, without a confluent-kafka ``Message`` per record.

Why: ``Consumer.consume()`` builds a ``Message`` object, a key and a value
``bytes`` per record, which the packer then copies again into the block. That
is most of the consuming thread's work on small compressible records, and it
bounded backups below what the Rust tool reaches (bench/README.rst, session
10). :class:`Intake` (``libkb/format/_intake.c``) takes the messages of the
partitions routed to it from librdkafka's queue in batches; ``pack_messages``
packs them from there; Python sees one :class:`RawMessage` per run of a
partition's records and every event.

:func:`open_intake` returns ``None`` where the C path cannot run: the C
extension was not built, the consumer is not confluent-kafka's own (a test
double), confluent-kafka is not a 2.x release (libkb requires 2.x; another
major version could lay its consumer object out differently, which no check
could see before it crashed), the client fails the extension's checks, or
``LIBKB_KAFKA_INTAKE=consume`` asks for ``consume()``. The reader then
consumes as before, with the same results.

Usage rules (the reader keeps them): :meth:`Intake.route` a partition before
assigning it; serve the consumer's own queue between batches (``consume(n,
0)``: errors, statistics and logs reach their callbacks there); close the
intake before the consumer (librdkafka's destroy waits for every queue and
message the application holds: the consumer's ``close()`` would block).
"""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import Consumer, KafkaError

from libkb.kafka.native import native_allowed

log = logging.getLogger("libkb.backup")

#: ``LIBKB_KAFKA_INTAKE=consume`` turns the C path off (a fallback should a librdkafka change break it).
ENV = "LIBKB_KAFKA_INTAKE"

try:
    from confluent_kafka import cimpl

    from libkb.format._packer import Intake
except ImportError:  # no compiler at install time
    Intake = None  # type: ignore[assignment,misc]


class RawMessage:
    """One message taken by an :class:`Intake`, with the ``Message`` methods the reader calls."""

    __slots__ = (
        "_code",
        "_headers",
        "_key",
        "_offset",
        "_partition",
        "_reason",
        "_timestamp",
        "_topic",
        "_value",
    )

    def __init__(
        self,
        topic: str | None,
        partition: int,
        offset: int,
        code: int,
        reason: str | None,
        ts_type: int,
        ts: int,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes | None]] | None,
    ) -> None:
        self._topic, self._partition, self._offset = topic, partition, offset
        self._code, self._reason = code, reason
        self._timestamp = (ts_type, ts)
        self._key, self._value, self._headers = key, value, headers

    def error(self) -> KafkaError | None:
        # As confluent-kafka makes a consumed message's error: neither fatal nor retriable.
        return KafkaError(self._code, self._reason) if self._code else None

    def topic(self) -> str | None:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def timestamp(self) -> tuple[int, int]:
        return self._timestamp

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> list[tuple[str, bytes | None]] | None:
        return self._headers

    def __repr__(self) -> str:
        what = f"error {self._code}" if self._code else f"offset {self._offset}"
        return f"RawMessage({self._topic}[{self._partition}] {what})"


def open_intake(consumer: Any) -> Intake | None:
    """An :class:`Intake` on ``consumer``, or ``None`` where ``consume()`` must be used (see above)."""
    if Intake is None or not native_allowed(consumer, Consumer, ENV, "consume", "the C intake"):
        return None
    try:
        return Intake(consumer, Consumer, RawMessage, cimpl.__file__)
    except (ImportError, TypeError, RuntimeError) as exc:
        log.warning("reading with consume() instead of the C intake: %s", exc)
        return None
