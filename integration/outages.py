"""What the outage tests share: job files over MinIO, records compared exactly, waiting for a condition."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import fields
from typing import Any

from integration.kafka_data import consume_all, stored_records
from integration.services.base import free_ports
from integration.services.endpoints import KafkaEndpoint, S3Bucket
from integration.storage.configs import s3_config
from libkb.format.segment import Record
from libkb.storage import StorageBackend

#: Outages in CI; the soak variants last OUTAGE_SOAK_SECS.
OUTAGE_SECS = 30.0
OUTAGE_SOAK_SECS = 180.0
BACKUP_ID = "bk"


def storage_mapping(bucket: S3Bucket, **overrides: Any) -> dict[str, Any]:
    """The job file's ``storage:`` for the bucket, with the harness's quick retries."""
    config = s3_config(bucket, **overrides)
    out: dict[str, Any] = {"backend": "s3"}
    for f in fields(config):
        value = getattr(config, f.name)
        if f.name in ("resilience", "transfer"):
            value = {k.name: getattr(value, k.name) for k in fields(value)}
        if value is not None:
            out[f.name] = value
    return out


def backup_job(kafka: KafkaEndpoint, bucket: S3Bucket, topics: list[str], **backup: Any) -> dict[str, Any]:
    return {
        "backup_id": BACKUP_ID,
        "source": {"bootstrap_servers": kafka.bootstrap_servers, "topics": {"include": topics}},
        "storage": storage_mapping(bucket),
        "backup": {"block_bytes": 8192, "lease_ttl_secs": 5, **backup},
    }


def restore_job(
    kafka: KafkaEndpoint, bucket: S3Bucket, source: str, target: str, **restore: Any
) -> dict[str, Any]:
    return {
        "mode": "restore",
        "backup_id": BACKUP_ID,
        "target": {"bootstrap_servers": kafka.bootstrap_servers, "topics": {"include": [source]}},
        "storage": storage_mapping(bucket),
        "restore": {"topic_mapping": {source: target}, "create_topics": True, **restore},
    }


def stored_count(backend: StorageBackend, topic: str, partitions: int) -> int:
    return sum(len(v) for v in stored_records(backend, BACKUP_ID, topic, partitions).values())


def assert_backup_exact(kafka: KafkaEndpoint, backend: StorageBackend, topic: str, partitions: int) -> int:
    """The backup holds exactly the topic's records, none lost or twice; how many."""
    expected = consume_all(kafka.bootstrap_servers, topic, partitions)
    got = stored_records(backend, BACKUP_ID, topic, partitions)
    for p in range(partitions):
        assert [r[0] for r in got[p]] == [r[0] for r in expected[p]], f"partition {p}: offsets differ"
        assert got[p] == expected[p], f"partition {p}: records differ"
    return sum(len(v) for v in expected.values())


def content(records: list[Record]) -> list[tuple[Any, ...]]:
    """Everything but the offset: what a restore reproduces."""
    return [r[1:] for r in records]


def assert_restore_exact(kafka: KafkaEndpoint, source: str, target: str, partitions: int) -> int:
    """The target topic holds the source's records, record by record, in order; how many."""
    expected = consume_all(kafka.bootstrap_servers, source, partitions)
    got = consume_all(kafka.bootstrap_servers, target, partitions)
    for p in range(partitions):
        assert len(got[p]) == len(expected[p]), f"partition {p}: {len(got[p])} != {len(expected[p])} records"
        assert content(got[p]) == content(expected[p]), f"partition {p}: records differ"
    return sum(len(v) for v in expected.values())


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def http_get(url: str) -> tuple[int, str]:
    """Status and body of a GET (a 503 is an answer, not an error)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode()


def metric(text: str, name: str) -> float:
    """The value of the first sample of ``name`` in a /metrics body (0 if absent)."""
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def write_job(path: Any, job: dict[str, Any]) -> Any:
    path.write_text(json.dumps(job))  # JSON is YAML
    return path


class Proxy:
    """A TCP relay to ``target`` on a fixed local port: ``cut()`` makes the service unreachable for
    the clients that use the proxy only (refused connections, open ones dropped); ``mend()`` restores it."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_ports(1)[0]
        self._server: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self.mend()

    def mend(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            server, self._server = self._server, None
            conns, self._conns = self._conns, []
        if server is not None:
            server.close()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._server is not server:
                    client.close()
                    upstream.close()
                    return
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(a, b), daemon=True).start()


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := src.recv(65536):
            dst.sendall(data)
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)
