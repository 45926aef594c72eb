"""Key rotation: new segments under the new key, old ones read through ``old_keys``, and ``rewrap``
moving every data key to the new key without rewriting a segment, safe against ``kill -9``."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from libkb.backup.rewrap import rewrap_backup
from libkb.catalog import validate_backup
from libkb.cli.app import main
from libkb.config.encryption import KeySource
from libkb.errors import MissingKeyError
from libkb.format.encryption import KeyObject, key_object_key
from libkb.format.models import PartitionIndex, index_key, lease_key
from libkb.storage import FilesystemConfig, StorageBackend, create_backend_from_config
from tests.encryption.support import encrypted, file_key, keyring, new_key
from tests.fakes import FakeKafka
from tests.fakes.cluster import FakeCluster
from tests.fakes.jobs import (
    BACKUP_ID,
    PARTITIONS,
    TOPIC,
    backup_config,
    backup_engine,
    content,
    expected_records,
    fill,
    restore_config,
    restore_engine,
    source_kafka,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(tmp_path: Path) -> tuple[str, StorageBackend]:
    path = tmp_path / "store"
    return str(path), create_backend_from_config(FilesystemConfig(str(path)))


def key_ids(backend: StorageBackend) -> dict[str, str]:
    """Each key object's key id, by segment."""
    out = {}
    for p in range(PARTITIONS):
        for s in PartitionIndex.from_json(backend.get(index_key(BACKUP_ID, TOPIC, p))).segments:
            obj = KeyObject.from_json(backend.get(key_object_key(s.key)), name=s.key, read_version=6)
            out[s.key] = obj.key_id
    return out


def segment_hashes(backend: StorageBackend) -> dict[str, str]:
    keys = [k for k in backend.list(f"{BACKUP_ID}/topics/") if k.endswith(".kbs")]
    return {k: hashlib.sha256(backend.get(k)).hexdigest() for k in keys}


def keys_file(tmp_path: Path, key: KeySource, *old: KeySource) -> str:
    def entry(k: KeySource) -> dict[str, str]:
        return {"key_id": k.key_id, "key_file": str(k.file)}

    path = tmp_path / "keys.yaml"
    path.write_text(yaml.safe_dump({"encryption": {**entry(key), "old_keys": [entry(k) for k in old]}}))
    return str(path)


def two_runs(backend: StorageBackend, old: KeySource, new: KeySource) -> FakeKafka:
    """A run under ``old``, then more records and a run under ``new`` (``old`` among old_keys)."""
    source = source_kafka()
    backup_engine(source, backend, encrypted(backup_config(), old)).run()
    _more(source.cluster)
    backup_engine(source, backend, encrypted(backup_config(), new, old)).run()
    return source


def _more(cluster: FakeCluster) -> None:
    for i in range(30):
        cluster.append(TOPIC, i % PARTITIONS, b"k%d" % i, b"later value %d" % i, None, 1_800_000_000_000 + i)


def test_new_segments_use_the_new_key_and_old_ones_read_through_old_keys(
    store: tuple[str, StorageBackend], tmp_path: Path
) -> None:
    _, backend = store
    old, new = file_key(tmp_path, "kek-2026-06", new_key()), file_key(tmp_path, "kek-2026-12", new_key())
    source = two_runs(backend, old, new)
    assert set(key_ids(backend).values()) == {"kek-2026-06", "kek-2026-12"}

    with pytest.raises(MissingKeyError, match=r"'kek-2026-06'.*encryption.old_keys"):
        restore_engine(FakeKafka(), backend, encrypted(restore_config(), new)).run()
    target = FakeKafka()
    restore_engine(target, backend, encrypted(restore_config(), new, old)).run()
    expected = expected_records(source.cluster)
    for p in range(PARTITIONS):
        assert content([r.stored() for r in target.cluster.records(f"{TOPIC}-restored", p)]) == content(
            expected[p]
        )


def test_rewrap_moves_every_data_key_to_the_new_key_and_leaves_segments_byte_for_byte(
    store: tuple[str, StorageBackend], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, backend = store
    old, new = file_key(tmp_path, "kek-old", new_key()), file_key(tmp_path, "kek-new", new_key())
    two_runs(backend, old, new)
    before = segment_hashes(backend)
    moved = sum(1 for v in key_ids(backend).values() if v == "kek-old")

    argv = ["rewrap", "--path", path, "--backup-id", BACKUP_ID, "--keys", keys_file(tmp_path, new, old)]
    assert main([*argv, "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rewrapped"] == moved and report["found"]["kek-old"] == moved
    assert segment_hashes(backend) == before  # no record byte rewritten
    assert set(key_ids(backend).values()) == {"kek-new"}
    assert validate_backup(backend, BACKUP_ID, deep=True, keyring=keyring(new)).ok  # the old key retired

    (tmp_path / "new-only.yaml").write_text(
        yaml.safe_dump({"encryption": {"key_id": "kek-new", "key_file": str(new.file)}})
    )
    assert (
        main(
            [
                "validate",
                "--path",
                path,
                "--backup-id",
                BACKUP_ID,
                "--deep",
                "--keys",
                str(tmp_path / "new-only.yaml"),
            ]
        )
        == 0
    )
    assert main(argv) == 0  # again: nothing left to do
    assert "0 data key(s) rewrapped" in capsys.readouterr().out


def test_a_kill_9_during_rewrap_leaves_every_segment_readable_with_the_old_or_the_new_key(
    store: tuple[str, StorageBackend], tmp_path: Path
) -> None:
    path, backend = store
    old, new = file_key(tmp_path, "kek-old", new_key()), file_key(tmp_path, "kek-new", new_key())
    source = FakeKafka()
    fill(source.cluster, count=200)
    backup_engine(source, backend, encrypted(backup_config(segment_max_records=1), old)).run()
    names = sorted(key_object_key(s) for s in key_ids(backend))
    first = Path(path) / names[0]
    original = first.read_bytes()

    argv = ["rewrap", "--path", path, "--backup-id", BACKUP_ID, "--keys", keys_file(tmp_path, new, old)]
    proc = subprocess.Popen([sys.executable, "-m", "libkb.cli", *argv], cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        while first.read_bytes() == original and proc.poll() is None:
            time.sleep(0.001)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    ids = key_ids(backend)
    assert set(ids.values()) <= {"kek-old", "kek-new"} and "kek-new" in ids.values()
    assert validate_backup(backend, BACKUP_ID, deep=True, keyring=keyring(new, old)).ok

    _expire_the_dead_lease(backend)
    report = rewrap_backup(backend, BACKUP_ID, keyring(new, old))
    assert report.rewrapped == list(ids.values()).count("kek-old")
    assert validate_backup(backend, BACKUP_ID, deep=True, keyring=keyring(new)).ok


def _expire_the_dead_lease(backend: StorageBackend) -> None:
    """What time does to the lease of a killed process (its TTL passes), without waiting for it."""
    for key in backend.list(lease_key(BACKUP_ID)):
        lease = json.loads(backend.get(key))
        lease["expires_ms"] = 0
        backend.put(key, json.dumps(lease).encode())
