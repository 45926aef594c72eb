"""``kafka-backup prune --execute`` really killed (SIGKILL) at sampled instants, on the filesystem and MinIO.

The instants are picked by watching storage from the test: once the prune's
lease exists, once its first index with a pruned range is stored, once some
of its segments are deleted. After each kill the backup validates (deep),
what a restore reads is exactly the records it still holds, a prune started
while the dead one's lease lasts is refused saying so, and a re-run once that
lease has expired (the clock moved on, in this process) ends as a prune that
was never stopped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from integration.storage.configs import s3_config
from libkb.catalog import iso_ms
from libkb.format.models import index_key, lease_generation_key
from libkb.prune import execute_prune
from libkb.retention import RetentionPolicy
from libkb.storage import FilesystemConfig, StorageBackend, create_backend_from_config
from tests.fakes.jobs import BACKUP_ID, TOPIC
from tests.prune.support import (
    CUTOFF_MS,
    assert_reads_kept,
    assert_valid,
    backed_up,
    copy_into,
    coverage,
    later,
    stored_segments,
    without_times,
)

KAFKA_BACKUP = Path(sys.executable).with_name("kafka-backup")
#: What the command records (its flags as typed), so that the in-process re-run extends the same range.
POLICY = RetentionPolicy(cutoff_ms=CUTOFF_MS, reason=f"kafka-backup prune --before {iso_ms(CUTOFF_MS)}")
DEADLINE_SECS = 60


@dataclass
class Store:
    """A location the command opens by URL and the test by backend, under a prefix per copy."""

    open_at: Callable[[str], StorageBackend]
    url_at: Callable[[str], str]
    env: dict[str, str]


@pytest.fixture(params=["filesystem", "minio"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    env = dict(os.environ)
    if request.param == "filesystem":
        return Store(
            lambda prefix: create_backend_from_config(FilesystemConfig(str(tmp_path / prefix))),
            lambda prefix: str(tmp_path / prefix),
            env,
        )
    bucket: Any = request.getfixturevalue("minio_bucket")
    service = bucket.service
    env |= {"AWS_ACCESS_KEY_ID": service.access_key, "AWS_SECRET_ACCESS_KEY": service.secret_key}
    query = f"endpoint={service.endpoint}&path_style=true&region={service.region}"
    return Store(
        lambda prefix: create_backend_from_config(s3_config(bucket, prefix)),
        lambda prefix: f"s3://{bucket.name}/{prefix}?{query}",
        env,
    )


def prune_command(url: str) -> list[str]:
    before = str(CUTOFF_MS)
    return [
        str(KAFKA_BACKUP),
        "prune",
        "--path",
        url,
        "--backup-id",
        BACKUP_ID,
        "--before",
        before,
        "--execute",
    ]


def state(backend: StorageBackend) -> tuple[object, list[str]]:
    indexes = coverage(backend)
    segments = {p: ([s.key for s in i.segments], without_times(i.pruned)) for p, i in indexes.items()}
    return segments, sorted(stored_segments(backend))


def kill_when(store: Store, prefix: str, ready: Callable[[StorageBackend], bool]) -> int:
    """Run the prune on the copy at ``prefix``; SIGKILL it once ``ready`` sees storage so. Its exit status."""
    backend = store.open_at(prefix)
    proc = subprocess.Popen(
        prune_command(store.url_at(prefix)), env=store.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + DEADLINE_SECS
    try:
        while proc.poll() is None and not ready(backend):
            assert time.monotonic() < deadline, "the prune never got there"
            time.sleep(0.002)
        os.kill(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # it had just exited
    finally:
        proc.communicate(timeout=DEADLINE_SECS)
    return proc.returncode


def test_a_prune_killed_by_sigkill_leaves_a_valid_backup_and_a_rerun_finishes_it(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = store.open_at("template")
    kafka = backed_up(template, segment_max_records=4)  # 30 segments a partition: a prune takes a while
    total = len(stored_segments(template))
    whole = store.open_at("whole")
    copy_into(template, whole)
    execute_prune(whole, BACKUP_ID, POLICY)
    want = state(whole)

    instants: dict[str, Callable[[StorageBackend], bool]] = {
        "lease-taken": lambda b: b.exists(lease_generation_key(BACKUP_ID, 2)),
        "first-index-cut": lambda b: b'"pruned"' in b.get(index_key(BACKUP_ID, TOPIC, 0)),
        "deleting": lambda b: len(stored_segments(b)) <= total - 4,
    }
    killed = []
    for name, ready in instants.items():
        backend = store.open_at(name)
        copy_into(template, backend)
        status = kill_when(store, name, ready)
        assert status in (-signal.SIGKILL, 0), status
        assert_valid(backend)
        assert_reads_kept(backend, kafka.cluster)
        if status == -signal.SIGKILL:
            killed.append(name)
            again = subprocess.run(
                prune_command(store.url_at(name)), env=store.env, capture_output=True, text=True
            )
            assert again.returncode == 1 and "cannot prune now" in again.stderr, again.stderr
            assert "expires by itself" in again.stderr
        with later(monkeypatch):
            execute_prune(backend, BACKUP_ID, POLICY)
        assert state(backend) == want, name
    assert len(killed) >= 2, f"only {killed} were killed before the prune ended"
