"""A smoke run: restoring a Rust-tool backup against restoring the same records from a libkb backup.

One Kafka broker (``integration.services.KafkaService``) on 127.0.0.1. A
source topic is filled with 1 KiB records (``backup_bench.make_pool`` /
``produce_topic``) and backed up once with ``BackupEngine`` (zstd-3) to a
filesystem directory; the same records, read back from that backup, are
written as a backup of the Rust tool (zstd-3, one segment per 128 MiB of
record bytes, with its default ``x-original-*`` headers) by the test writer
``tests.source.rust_fixtures.write_backup``. Then both are restored into new
topics with default restore settings, alternating, ``--runs`` times each, in
this process; MB/s = key + value bytes (10**6/s) over ``run()``, and the
process's CPU seconds over ``run()`` (all threads: a steadier measure than
wall time on a loaded machine).

Not part of CI, and small on purpose (the large benchmark lives beside it)::

    .venv/bin/python bench/rust_restore_smoke.py --size 128 --runs 3
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

MiB = 1024 * 1024
SEGMENT_BYTES = 128 * MiB  # the Rust tool's default segment_max_bytes


def rust_copy(data_dir: Path, backup_id: str, rust_id: str, topic: str, partitions: int) -> int:
    """Write the libkb backup's records again as a Rust-tool backup; the records' key + value bytes."""
    from libkb.source import open_backup
    from libkb.storage import FilesystemConfig, create_backend_from_config
    from tests.source.rust_fixtures import encode_record, with_tool_headers, write_backup

    with create_backend_from_config(FilesystemConfig(str(data_dir))) as backend:
        source = open_backup(backend, backup_id)
        layout: dict[tuple[str, int], list[list[Any]]] = {}
        nbytes = 0
        for p in range(partitions):
            segments: list[list[Any]] = [[]]
            size = 0
            for entry in source.readable_coverage(topic, p).segments:
                for batch in source.load(entry).batches(0, 1 << 62):
                    for record in batch:
                        stored = with_tool_headers(record)
                        size += len(encode_record(stored))
                        if size > SEGMENT_BYTES and segments[-1]:
                            segments.append([])
                            size = len(encode_record(stored))
                        segments[-1].append(stored)
                        nbytes += len(record[3] or b"") + len(record[4] or b"")
            layout[(topic, p)] = segments
        write_backup(backend, rust_id, layout, codec="zstd", partition_counts={topic: partitions})
    return nbytes


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def restore(bootstrap: str, data_dir: Path, backup_id: str, source: str, target: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one restore into a new topic."""
    from libkb.config import parse_config
    from libkb.restore.engine import RestoreEngine

    config = parse_config(
        {
            "mode": "restore",
            "backup_id": backup_id,
            "target": {"bootstrap_servers": bootstrap, "topics": {"include": [target]}},
            "storage": {"backend": "filesystem", "path": str(data_dir)},
            "restore": {"topic_mapping": {source: target}, "create_topics": True},
        },
        source="rust_restore_smoke",
    )
    started, cpu = time.monotonic(), _cpu()
    result = RestoreEngine(config).run()
    elapsed, cpu = time.monotonic() - started, _cpu() - cpu
    if result.status != "complete":
        raise RuntimeError(f"restore of {backup_id}: {result.status}")
    return elapsed, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=128, help="MiB of key+value bytes")
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    from backup_bench import make_pool, produce_topic

    from integration.services import KafkaService, create_kafka_topic
    from libkb.backup.engine import BackupEngine
    from libkb.config import parse_config
    from libkb.format.rust_segment import ACCELERATED

    data_dir = Path(tempfile.mkdtemp(prefix="libkb-rust-smoke-"))
    kafka = KafkaService()
    kafka.start()
    try:
        bootstrap = kafka.endpoint.bootstrap_servers
        topic = f"smoke-src-{int(time.time())}"
        create_kafka_topic(kafka.endpoint, topic, partitions=args.partitions, config={"retention.ms": "-1"})
        records, _ = produce_topic(bootstrap, topic, args.partitions, args.size * MiB, make_pool(8192, 1024))
        config = parse_config(
            {
                "backup_id": "smoke-libkb",
                "source": {"bootstrap_servers": bootstrap, "topics": {"include": [topic]}},
                "storage": {"backend": "filesystem", "path": str(data_dir)},
            },
            source="rust_restore_smoke",
        )
        assert BackupEngine(config).run().status == "complete"
        nbytes = rust_copy(data_dir, "smoke-libkb", "smoke-rust", topic, args.partitions)
        times: dict[str, list[tuple[float, float]]] = {"smoke-libkb": [], "smoke-rust": []}
        for i in range(args.runs):
            order = list(times) if i % 2 == 0 else list(reversed(times))
            for backup_id in order:
                target = f"{backup_id}-{i}-{int(time.time() * 1000)}"
                times[backup_id].append(restore(bootstrap, data_dir, backup_id, topic, target))
        rate = {k: nbytes / statistics.median(t for t, _ in v) / 1e6 for k, v in times.items()}
        cpu = {k: statistics.median(c for _, c in v) for k, v in times.items()}
        print(f"{records} records, {nbytes / 1e6:.0f} MB key+value, {args.partitions} partition(s)")
        print(f"C record decoder: {ACCELERATED}")
        for k, v in times.items():
            runs = ", ".join(f"{nbytes / t / 1e6:.0f}" for t, _ in v)
            print(f"{k}: median {rate[k]:.0f} MB/s, {cpu[k]:.2f} CPU s (runs, MB/s: {runs})")
        print(f"Rust-format restore: {100 * rate['smoke-rust'] / rate['smoke-libkb']:.0f} % of libkb's MB/s")
        print(f"CPU per restore: {100 * cpu['smoke-rust'] / cpu['smoke-libkb']:.0f} % of libkb's")
    finally:
        kafka.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
