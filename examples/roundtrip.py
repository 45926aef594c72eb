"""Back up a Kafka topic to the filesystem and restore it into a new topic, then compare.

Run from the repository root (``scripts/demo`` does it on a fresh machine)::

    python examples/roundtrip.py [--bootstrap-servers HOST:PORT] [--records N] [--dir PATH]

Without ``--bootstrap-servers`` it starts a local Apache Kafka from the test
harness (installed on first use into ~/.cache/libkb). The backup goes to
``--dir`` (default: a new temporary directory), under the backup id ``demo``.
Exit status 0 means every restored record equals its original.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]  # not re-exported in stubs

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for the test harness

from libkb.backup.engine import BackupEngine
from libkb.config import parse_config
from libkb.restore.engine import RestoreEngine

PARTITIONS = 3


@contextlib.contextmanager
def kafka(bootstrap: str | None) -> Iterator[str]:
    """The given cluster, or a local single-node Kafka started for this run."""
    if bootstrap:
        yield bootstrap
        return
    from integration.services.kafka import KafkaService

    service = KafkaService()
    print("starting a local Apache Kafka (first run installs it) ...", flush=True)
    service.start()
    try:
        yield service.endpoint.bootstrap_servers
    finally:
        service.stop()


def produce_sample(bootstrap: str, topic: str, count: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics(
        [NewTopic(topic, PARTITIONS, 1, config={"retention.ms": "-1"})]
    ).values():
        future.result(30)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 10})
    for i in range(count):
        producer.produce(
            topic,
            key=None if i % 10 == 0 else f"customer-{i % 97}".encode(),
            value=None if i % 50 == 0 else f'{{"order": {i}, "amount": {i * 7 % 1000}}}'.encode(),
            headers=[("source", b"demo"), ("trace", None)] if i % 3 == 0 else None,
            partition=i % PARTITIONS,
        )
        if i % 10_000 == 0:
            producer.poll(0)
    producer.flush(60)


def read_all(bootstrap: str, topic: str) -> dict[int, list[tuple[object, ...]]]:
    """Every record (timestamp, type, key, value, headers) per partition, to the end."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"demo-check-{time.time_ns()}",
            "enable.partition.eof": True,
        }
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    records: dict[int, list[tuple[object, ...]]] = {p: [] for p in range(PARTITIONS)}
    at_end: set[int] = set()
    while len(at_end) < PARTITIONS:
        for msg in consumer.consume(1000, 1.0):
            err, partition = msg.error(), msg.partition()
            if err:
                if err.code() == KafkaError._PARTITION_EOF:
                    assert partition is not None, err  # a partition's end names its partition
                    at_end.add(partition)
                continue
            assert partition is not None, msg  # so does every record
            records[partition].append((*msg.timestamp(), msg.key(), msg.value(), msg.headers()))
    consumer.close()
    return records


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap-servers")
    parser.add_argument("--records", type=int, default=30_000)
    parser.add_argument("--dir", help="where the backup is stored (default: a new temp dir)")
    args = parser.parse_args()
    directory = args.dir or tempfile.mkdtemp(prefix="libkb-demo-")
    topic, restored = f"demo-orders-{time.strftime('%H%M%S')}", None
    with kafka(args.bootstrap_servers) as bootstrap:
        print(f"Kafka at {bootstrap}; producing {args.records} records to {topic} ({PARTITIONS} partitions)")
        produce_sample(bootstrap, topic, args.records)

        storage = {"backend": "filesystem", "path": directory}
        backup = BackupEngine(
            parse_config(
                {
                    "backup_id": "demo",
                    "source": {"bootstrap_servers": bootstrap, "topics": {"include": [topic]}},
                    "storage": storage,
                }
            )
        ).run()
        print(
            f"backup:  {backup.status}, {backup.records} records, {backup.bytes} bytes -> "
            f"{backup.stored_bytes} bytes in {backup.segments} segments at {directory}"
        )

        restored = f"{topic}-restored"
        restore = RestoreEngine(
            parse_config(
                {
                    "mode": "restore",
                    "backup_id": "demo",
                    "target": {"bootstrap_servers": bootstrap, "topics": {"include": [restored]}},
                    "storage": storage,
                    "restore": {"topic_mapping": {topic: restored}, "create_topics": True},
                }
            )
        ).run()
        print(f"restore: {restore.status}, {restore.records} records into {restored}")

        original, copy = read_all(bootstrap, topic), read_all(bootstrap, restored)
    same = original == copy
    total = sum(len(v) for v in original.values())
    print(
        f"compare: {total} original records, {sum(len(v) for v in copy.values())} restored, "
        f"{'identical' if same else 'DIFFERENT'} (keys, values, headers, timestamps, order)"
    )
    return 0 if same and backup.ok and restore.ok and total == args.records else 1


if __name__ == "__main__":
    sys.exit(main())
