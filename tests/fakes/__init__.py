"""In-memory stand-ins for Kafka and for failing storage: the engines tested without a broker.

:class:`FakeKafka` holds a :class:`FakeCluster` and hands the engines what they
take (``admin=``, ``consumer_factory=``, ``producer_factory=``), with the
faults currently set on it. :class:`FaultyBackend` wraps a storage backend
and fails chosen calls; :class:`KillingBackend` stops everything at a chosen
call, as a ``kill -9`` would; :class:`CountingBackend` counts the bytes read;
:func:`break_compression` fails a block compression.
"""

from __future__ import annotations

from typing import Any, cast

from confluent_kafka import Consumer, Producer

from libkb.config import SourceOptions
from libkb.kafka.admin import KafkaAdmin
from tests.fakes.admin import FakeAdminClient, fake_admin
from tests.fakes.cluster import TP, FakeCluster, FakeRecord
from tests.fakes.consumer import ConsumerFaults, FakeConsumer
from tests.fakes.producer import FakeProducer, ProducerFaults
from tests.fakes.storage import (
    CountingBackend,
    DelegatingBackend,
    Fault,
    FaultyBackend,
    KillingBackend,
    ProcessKilled,
    break_compression,
)


class FakeKafka:
    """A fake cluster and the clients the engines make on it; ``consumers``/``producers`` are those made."""

    def __init__(self, cluster: FakeCluster | None = None) -> None:
        self.cluster = cluster or FakeCluster()
        self.consumer_faults = ConsumerFaults()
        self.producer_faults = ProducerFaults()
        self.consumers: list[FakeConsumer] = []
        self.producers: list[FakeProducer] = []

    def heal(self) -> None:
        """No more faults for the clients made from now on."""
        self.consumer_faults = ConsumerFaults()
        self.producer_faults = ProducerFaults()

    def admin(self) -> KafkaAdmin:
        return fake_admin(self.cluster)

    def consumer_factory(self, source: SourceOptions, config: dict[str, Any]) -> Consumer:
        consumer = FakeConsumer(self.cluster, config, self.consumer_faults)
        self.consumers.append(consumer)
        return cast(Consumer, consumer)

    def producer_factory(self, target: SourceOptions, config: dict[str, Any]) -> Producer:
        producer = FakeProducer(self.cluster, config, self.producer_faults)
        self.producers.append(producer)
        return cast(Producer, producer)


__all__ = [
    "TP",
    "ConsumerFaults",
    "CountingBackend",
    "DelegatingBackend",
    "FakeAdminClient",
    "FakeCluster",
    "FakeConsumer",
    "FakeKafka",
    "FakeProducer",
    "FakeRecord",
    "Fault",
    "FaultyBackend",
    "KillingBackend",
    "ProcessKilled",
    "ProducerFaults",
    "break_compression",
    "fake_admin",
]
