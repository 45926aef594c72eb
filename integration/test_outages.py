"""Backups and restores ride through storage and broker outages, and end exact.

MinIO and the broker are really stopped (their processes), for 30 s here and
for 3 min in the ``soak`` variants. A continuous backup run as the installed
command keeps /health at 200 and answers /ready 503 with the storage error
meanwhile; every run ends with the backup, or the restored topic, equal
record by record to the source. A run whose lease another run took during
an outage stops without writing again.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from integration.kafka_data import produce
from integration.outages import (
    BACKUP_ID,
    OUTAGE_SECS,
    OUTAGE_SOAK_SECS,
    Proxy,
    assert_backup_exact,
    assert_restore_exact,
    backup_job,
    http_get,
    metric,
    restore_job,
    storage_mapping,
    stored_count,
    wait_for,
    write_job,
)
from integration.services.base import free_ports
from integration.services.endpoints import KafkaEndpoint, S3Bucket
from integration.storage.configs import s3_config
from libkb.backup.engine import BackupEngine, BackupResult
from libkb.backup.lease import LeaseLostError
from libkb.config import parse_config
from libkb.metrics import RunMetrics
from libkb.restore.engine import RestoreEngine, RestoreResult
from libkb.storage import StorageBackend, create_backend_from_config

pytestmark = pytest.mark.kafka

KAFKA_BACKUP = Path(sys.executable).with_name("kafka-backup")
OUTAGES = [OUTAGE_SECS, pytest.param(OUTAGE_SOAK_SECS, marks=pytest.mark.soak, id="soak")]
WAIT_SECS = 240  # for a run to catch up once the service is back


@pytest.fixture
def topic_factory(kafka_topic_factory: Any) -> Any:
    def make(partitions: int = 2) -> str:
        return str(kafka_topic_factory(partitions=partitions, config={"retention.ms": "-1"}))

    return make


@pytest.fixture
def bucket_backend(minio_bucket: S3Bucket) -> Any:
    with create_backend_from_config(s3_config(minio_bucket)) as backend:
        yield backend


def in_thread(run: Any) -> tuple[threading.Thread, list[Any]]:
    """Run ``run()`` on a thread; its result (or exception) lands in the list."""
    out: list[Any] = []

    def target() -> None:
        try:
            out.append(run())
        except BaseException as exc:  # handed to the test
            out.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, out


def finished(thread: threading.Thread, out: list[Any], timeout: float = WAIT_SECS) -> Any:
    thread.join(timeout)
    assert not thread.is_alive(), "the run did not finish"
    if isinstance(out[0], BaseException):
        raise out[0]
    return out[0]


# -- storage ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("outage", OUTAGES)
def test_storage_outage_during_a_continuous_backup_from_the_command_line(
    outage: float,
    kafka_service: KafkaEndpoint,
    topic_factory: Any,
    minio_process: Any,
    minio_bucket: S3Bucket,
    bucket_backend: StorageBackend,
    tmp_path: Path,
) -> None:
    bootstrap = kafka_service.bootstrap_servers
    topic = topic_factory()
    produce(bootstrap, topic, 3000, partitions=2)
    port = free_ports(1)[0]
    job = backup_job(
        kafka_service,
        minio_bucket,
        [topic],
        continuous=True,
        segment_max_interval_ms=1000,
        max_bytes_in_flight=1024 * 1024,
        storage_outage_timeout_secs=outage + 300,
        compression="none",  # compressed blocks hold only their stored bytes, which would fit the budget
    )
    job["metrics"] = {"enabled": True, "port": port, "bind_address": "127.0.0.1", "keep_alive_seconds": 0}
    config = write_job(tmp_path / "job.yaml", job)
    command = [str(KAFKA_BACKUP), "backup", "--config", str(config), "--liveness-timeout", "10"]
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: stored_count(bucket_backend, topic, 2) == 3000, WAIT_SECS, "the first records")
        minio_process.stop()
        down = time.monotonic()
        produce(bootstrap, topic, 60_000, partitions=2, start=3000)  # more than the in-flight budget
        time.sleep(max(0.0, down + outage - 2 - time.monotonic()))
        # Past --liveness-timeout without storing anything: alive, not ready, and waiting counted.
        assert http_get(f"{base}/health")[0] == 200
        status, body = http_get(f"{base}/ready")
        assert status == 503 and "cannot reach the service" in body, body
        assert metric(http_get(f"{base}/metrics")[1], "kafka_backup_storage_wait_seconds_total") > 0
        minio_process.start()
        produce(bootstrap, topic, 2000, partitions=2, start=63_000)
        wait_for(lambda: stored_count(bucket_backend, topic, 2) == 65_000, WAIT_SECS, "the run to catch up")
        wait_for(lambda: http_get(f"{base}/ready")[0] == 200, 60, "ready again")
    finally:
        run.send_signal(signal.SIGTERM)
        _, stderr = run.communicate(timeout=120)
    assert run.returncode == 0, stderr
    assert "storage is unreachable; waiting up to" in stderr
    assert "consumer paused" in stderr and "consumer resumed" in stderr, stderr
    assert assert_backup_exact(kafka_service, bucket_backend, topic, 2) == 65_000


@pytest.mark.parametrize("outage", OUTAGES)
def test_storage_outage_during_a_snapshot_backup_and_during_its_restore(
    outage: float,
    kafka_service: KafkaEndpoint,
    topic_factory: Any,
    minio_process: Any,
    minio_bucket: S3Bucket,
    bucket_backend: StorageBackend,
) -> None:
    bootstrap = kafka_service.bootstrap_servers
    topic = topic_factory()
    target = f"{topic}-restored"
    produce(bootstrap, topic, 40_000, partitions=2)
    deadline = {"storage_outage_timeout_secs": outage + 300}
    backup = BackupEngine(
        parse_config(
            backup_job(
                kafka_service,
                minio_bucket,
                [topic],
                segment_max_records=1000,
                rate_limit_bytes_per_sec=150_000,  # still reading when storage goes
                **deadline,
            )
        )
    )
    thread, out = in_thread(backup.run)
    wait_for(lambda: stored_count(bucket_backend, topic, 2) > 0, WAIT_SECS, "the first segments")
    _outage(minio_process, outage)
    result: BackupResult = finished(thread, out)
    assert result.status == "complete" and result.records == 40_000
    assert backup.outage.outages >= 1 and _waited(backup.metrics) > 0
    assert assert_backup_exact(kafka_service, bucket_backend, topic, 2) == 40_000

    restore = RestoreEngine(
        parse_config(
            restore_job(
                kafka_service, minio_bucket, topic, target, rate_limit_records_per_sec=2000, **deadline
            )
        )
    )
    thread, out = in_thread(restore.run)
    time.sleep(3)
    _outage(minio_process, outage)
    restored: RestoreResult = finished(thread, out)
    assert restored.status == "complete", restored
    assert restore.outage.outages >= 1 and _waited(restore.metrics) > 0
    assert assert_restore_exact(kafka_service, topic, target, 2) == 40_000
    print(
        f"{outage:g}s storage outages: backup waited {_waited(backup.metrics):.0f}s, "
        f"restore {_waited(restore.metrics):.0f}s; 40000 records, 0 lost, 0 duplicated"
    )


def _outage(process: Any, secs: float) -> None:
    process.stop()
    try:
        time.sleep(secs)
    finally:
        process.start()


def _waited(metrics: RunMetrics) -> float:
    value = metrics.registry.get_sample_value(
        "kafka_backup_storage_wait_seconds_total", {"backup_id": BACKUP_ID}
    )
    return value or 0.0


def test_a_run_taken_over_during_a_storage_outage_stops_without_writing_again(
    kafka_service: KafkaEndpoint, topic_factory: Any, minio_bucket: S3Bucket, bucket_backend: StorageBackend
) -> None:
    """Storage is cut for the first run only (a relay it goes through), so that a second run can
    take the backup over meanwhile, as a pod rescheduled elsewhere would."""
    bootstrap = kafka_service.bootstrap_servers
    topic = topic_factory()
    produce(bootstrap, topic, 2000, partitions=2)
    endpoint = urlsplit(minio_bucket.service.endpoint)
    assert endpoint.hostname is not None and endpoint.port is not None
    relay = Proxy(endpoint.hostname, endpoint.port)
    job = backup_job(kafka_service, minio_bucket, [topic], continuous=True, segment_max_interval_ms=500)
    job["storage"] = storage_mapping(minio_bucket, endpoint=f"http://127.0.0.1:{relay.port}")
    first = BackupEngine(parse_config(job))
    thread, out = in_thread(first.run)
    try:
        wait_for(lambda: stored_count(bucket_backend, topic, 2) == 2000, WAIT_SECS, "the first records")
        relay.cut()
        produce(
            bootstrap, topic, 3000, partitions=2, start=2000
        )  # the first run reads these, cannot store them
        time.sleep(11)  # its lease (ttl 5 s) expired, and the one ttl of grace passed
        second = BackupEngine(parse_config(backup_job(kafka_service, minio_bucket, [topic])))
        assert second.run().status == "complete"  # took the lease over, stored everything, released it
        before = _objects(bucket_backend)
        relay.mend()
        taken = rf"lost the lease on backup 'bk' \(run {second.run_id} .* took generation 2\)"
        with pytest.raises(LeaseLostError, match=taken):
            finished(thread, out)
    finally:
        first.stop()
        relay.cut()
        thread.join(30)
    assert _objects(bucket_backend) == before  # nothing written after the takeover
    assert assert_backup_exact(kafka_service, bucket_backend, topic, 2) == 5000


def _objects(backend: StorageBackend) -> dict[str, str | None]:
    return {key: backend.head(key).e_tag for key in backend.list(f"{BACKUP_ID}/")}


# -- Kafka ---------------------------------------------------------------------------------------------


def test_broker_outage_during_a_backup_and_during_its_restore(
    kafka_service: KafkaEndpoint,
    kafka_process: Any,
    topic_factory: Any,
    minio_bucket: S3Bucket,
    bucket_backend: StorageBackend,
) -> None:
    """The backup follows the topic (continuous), so it reads from the broker across the outage
    rather than from what librdkafka fetched before it."""
    bootstrap = kafka_service.bootstrap_servers
    topic = topic_factory()
    target = f"{topic}-restored"
    produce(bootstrap, topic, 20_000, partitions=2)
    backup = BackupEngine(
        parse_config(
            backup_job(kafka_service, minio_bucket, [topic], continuous=True, segment_max_interval_ms=1000)
        )
    )
    thread, out = in_thread(backup.run)
    wait_for(lambda: stored_count(bucket_backend, topic, 2) == 20_000, WAIT_SECS, "the first records")
    _outage(kafka_process, OUTAGE_SECS)
    produce(bootstrap, topic, 10_000, partitions=2, start=20_000)
    try:
        wait_for(lambda: stored_count(bucket_backend, topic, 2) == 30_000, WAIT_SECS, "the run to catch up")
    finally:
        backup.stop()
    result: BackupResult = finished(thread, out)
    assert result.status == "stopped" and result.ok
    assert assert_backup_exact(kafka_service, bucket_backend, topic, 2) == 30_000

    restore = RestoreEngine(
        parse_config(restore_job(kafka_service, minio_bucket, topic, target, rate_limit_records_per_sec=2000))
    )
    thread, out = in_thread(restore.run)
    time.sleep(3)
    _outage(kafka_process, OUTAGE_SECS)
    restored: RestoreResult = finished(thread, out)
    assert restored.status == "complete", restored
    assert assert_restore_exact(kafka_service, topic, target, 2) == 30_000
