"""``kill -9`` at random instants of a continuous backup while records keep arriving.

Each run is the installed command, killed at a random moment of its life
(starting, reading, storing); the next one starts once the dead run's lease
can be taken over. A last run catches up and stops on SIGTERM. The backup
then holds every record exactly once, offsets and contents equal to the
topic's, and a restore of it reproduces the topic record by record. CI kills
twice; the ``soak`` variant twelve times.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from integration.kafka_data import produce
from integration.outages import (
    assert_backup_exact,
    assert_restore_exact,
    backup_job,
    restore_job,
    stored_count,
    wait_for,
    write_job,
)
from integration.services.endpoints import KafkaEndpoint, S3Bucket
from integration.storage.configs import s3_config
from libkb.catalog import validate_backup
from libkb.config import parse_config
from libkb.restore.engine import RestoreEngine
from libkb.storage import create_backend_from_config

pytestmark = pytest.mark.kafka

KAFKA_BACKUP = Path(sys.executable).with_name("kafka-backup")
LEASE_TTL_SECS = 5
#: A killed run's lease can be taken over one ttl after it expired.
TAKEOVER_SECS = 2 * LEASE_TTL_SECS + 0.5


class Producer:
    """Produces batches of records on a thread until stopped; ``count`` is how many so far."""

    def __init__(self, bootstrap: str, topic: str, partitions: int) -> None:
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(bootstrap, topic, partitions), daemon=True)
        self._thread.start()

    def _run(self, bootstrap: str, topic: str, partitions: int) -> None:
        while not self._stop.wait(0.2):
            produce(bootstrap, topic, 400, partitions=partitions, start=self.count)
            self.count += 400

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.count


@pytest.mark.parametrize("kills", [2, pytest.param(12, marks=pytest.mark.soak, id="soak")])
def test_kill_9_at_random_instants_of_a_continuous_backup(
    kills: int,
    kafka_service: KafkaEndpoint,
    kafka_topic_factory: Any,
    minio_bucket: S3Bucket,
    tmp_path: Path,
) -> None:
    seed = int(os.environ.get("LIBKB_KILL_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    topic = str(kafka_topic_factory(partitions=2, config={"retention.ms": "-1"}))
    job = backup_job(
        kafka_service,
        minio_bucket,
        [topic],
        continuous=True,
        lease_ttl_secs=LEASE_TTL_SECS,
        segment_max_interval_ms=500,
        segment_max_records=300,
        block_bytes=4096,
    )
    config = write_job(tmp_path / "job.yaml", job)
    command = [str(KAFKA_BACKUP), "backup", "--config", str(config)]
    producer = Producer(kafka_service.bootstrap_servers, topic, 2)
    instants: list[float] = []
    with create_backend_from_config(s3_config(minio_bucket)) as backend:
        try:
            for _ in range(kills):
                run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                instants.append(round(rng.uniform(0.3, 6.0), 2))
                time.sleep(instants[-1])
                run.send_signal(signal.SIGKILL)
                run.wait(30)
                time.sleep(TAKEOVER_SECS)
        finally:
            total = producer.stop()
        last = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: stored_count(backend, topic, 2) >= total, 300, "the last run to catch up")
        finally:
            last.send_signal(signal.SIGTERM)
            _, stderr = last.communicate(timeout=120)
        assert last.returncode == 0, stderr
        what = f"seed {seed}, kill instants {instants} s after start"
        assert assert_backup_exact(kafka_service, backend, topic, 2) == total, what
        report = validate_backup(backend, "bk", deep=True)
        assert report.ok, (what, report.problems)
    target = f"{topic}-restored"
    restored = RestoreEngine(parse_config(restore_job(kafka_service, minio_bucket, topic, target))).run()
    assert restored.status == "complete"
    assert assert_restore_exact(kafka_service, topic, target, 2) == total, what
    print(f"kill -9 campaign: {kills} kills ({what}); {total} records, 0 lost, 0 duplicated, restore exact")
