"""The byte budget closing the very segment that is being sealed (found by bench/backup_bench.py).

When the budget fills while segments are open, the fullest open segment is
closed, which may be the one of the partition whose block is being sealed:
that segment must be closed *before* the block joins it; the block then
starts the next segment. A segment closes by itself at half the budget, so it
takes several partitions' open segments to fill it; small fetches make the
consumer alternate between them. Also: a ``fetch_max_bytes`` below
librdkafka's ``message.max.bytes`` works (librdkafka alone would refuse it).
"""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import Producer

from integration.backup.test_backup_engine import check_exact, job
from integration.services.endpoints import KafkaEndpoint
from libkb.backup.engine import BackupEngine
from libkb.storage import MemoryConfig, create_backend_from_config

pytestmark = pytest.mark.kafka

MiB = 1024 * 1024


@pytest.mark.parametrize("compression", ["none", "zstd"])
def test_budget_full_on_the_only_open_segment(
    kafka_service: KafkaEndpoint, kafka_topic_factory: Any, compression: str
) -> None:
    topic = str(kafka_topic_factory(partitions=3, config={"retention.ms": "-1"}))
    producer = Producer({"bootstrap.servers": kafka_service.bootstrap_servers, "linger.ms": 5})
    for i in range(3000):  # ~3 MiB: the 1 MiB budget fills three times
        producer.produce(topic, value=bytes([i % 251]) * 1000, key=f"k{i}".encode(), partition=i % 3)
    assert producer.flush(30) == 0
    memory = create_backend_from_config(MemoryConfig())
    result = BackupEngine(
        job(
            kafka_service,
            {"backend": "memory"},
            [topic],
            compression=compression,
            block_bytes=64 * 1024,
            max_bytes_in_flight=MiB,
            segment_max_bytes=4 * MiB,
            fetch_max_bytes=64 * 1024,  # small fetches interleave the partitions
        ),
        backend=memory,
    ).run()
    assert result.status == "complete" and result.records == 3000
    assert result.segments >= 2  # the budget closed segments early
    assert check_exact(kafka_service, memory, topic, 3) == 3000
