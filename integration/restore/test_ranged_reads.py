"""A time-window restore from the middle of a segment, real Kafka and MinIO: one ranged GET of its tail.

The unit tests (``tests/restore/test_ranged_reads.py``) cover the rules on the
memory and filesystem backends; here the ranged read is an S3 ``Range``
request to MinIO and the records go through a real broker both ways.
"""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import Producer

from integration.kafka_data import consume_all
from integration.services.endpoints import KafkaEndpoint
from integration.storage.configs import s3_config
from libkb.backup.engine import BackupEngine
from libkb.config import parse_config
from libkb.format.models import PartitionIndex, index_key
from libkb.format.segment import SegmentReader, block_records
from libkb.restore.engine import RestoreEngine
from libkb.storage import create_backend_from_config
from tests.fakes import CountingBackend

pytestmark = pytest.mark.kafka

RESTART = 4
T0 = 1_650_000_000_000
COUNT = 800


def stamp(n: int) -> int:
    """Rising timestamps, out of order within a few records."""
    return T0 + 10 * n + (n % 7) * 25


def produce_stamped(bootstrap: str, topic: str) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "enable.idempotence": True})
    for n in range(COUNT):
        value = b'{"user":%d,"page":"/item/%d","agent":"Mozilla/5.0 (X11; Linux x86_64)"}' % (n % 37, n)
        producer.produce(topic, value, b"u%d" % (n % 37), 0, timestamp=stamp(n), headers=[("n", b"%d" % n)])
    assert producer.flush(30) == 0


def job(kafka: KafkaEndpoint, storage: dict[str, Any], section: str, options: dict[str, Any]) -> Any:
    body: dict[str, Any] = {"backup_id": "ranged", "storage": storage, section: options}
    if section == "backup":
        body["source"] = {
            "bootstrap_servers": kafka.bootstrap_servers,
            "topics": {"include": [options.pop("topic")]},
        }
    else:
        body["mode"] = "restore"
        body["target"] = {"bootstrap_servers": kafka.bootstrap_servers, "topics": {"include": ["*"]}}
    return parse_config(body)


def test_a_time_window_from_mid_segment_reads_one_ranged_tail_from_minio(
    kafka_service: KafkaEndpoint, kafka_topic_factory: Any, minio_bucket: Any
) -> None:
    topic = kafka_topic_factory(partitions=1, config={"retention.ms": "-1"})
    target = kafka_topic_factory(partitions=1, config={"retention.ms": "-1"})
    produce_stamped(kafka_service.bootstrap_servers, topic)
    backend = create_backend_from_config(s3_config(minio_bucket))
    storage = {"backend": "memory"}  # the engines are handed the MinIO backend itself
    options = {
        "topic": topic,
        "block_bytes": 1024,
        "segment_max_records": 100_000,
        "zstd_restart_blocks": RESTART,
    }
    assert (
        BackupEngine(job(kafka_service, storage, "backup", options), backend=backend).run().status
        == "complete"
    )
    (entry,) = PartitionIndex.from_json(backend.get(index_key("ranged", topic, 0))).segments
    assert entry.restarts is not None and len(entry.restarts) > 4

    low, high = stamp(500), stamp(700)
    counting = CountingBackend(backend)
    restore = {"topic_mapping": {topic: target}, "time_window_start": low, "time_window_end": high}
    result = RestoreEngine(job(kafka_service, storage, "restore", restore), backend=counting).run()
    assert result.status == "complete"

    source = consume_all(kafka_service.bootstrap_servers, topic, 1)[0]
    want = [r[1:] for r in source if low <= r[1] <= high]
    assert [r[1:] for r in consume_all(kafka_service.bootstrap_servers, target, 1)[0]] == want
    # The bytes read: one Range request from the restart interval holding the window's first record.
    data = backend.get(entry.key)
    reader = SegmentReader(data)
    decoder, blocks = reader.decoder(), list(reader.blocks())
    holding = next(
        i
        for i, b in enumerate(blocks)
        if any(r[1] >= low for r in block_records(data, b, reader.header.codec, decoder=decoder))
    )
    start = blocks[holding // RESTART * RESTART].position
    assert counting.reads[entry.key] == [("get_range", entry.size - start)]
    assert entry.size - start < entry.size // 2
