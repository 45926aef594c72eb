"""Encrypted backups through the engines (Kafka faked, memory and filesystem storage): restore exact,
key objects beside segments, the index and manifest readable without the key, no key bytes stored."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from libkb.catalog import validate_backup
from libkb.errors import MissingKeyError, WrongKeyError
from libkb.format.encryption import ALGORITHM, KeyObject, key_object_key
from libkb.format.models import PartitionIndex, index_key
from libkb.format.segment import SegmentReader
from libkb.storage import FilesystemConfig, MemoryConfig, StorageBackend, create_backend_from_config
from tests.encryption.support import encrypted, env_key, file_key, keyring, new_key
from tests.fakes import FakeKafka
from tests.fakes.jobs import (
    BACKUP_ID,
    PARTITIONS,
    TOPIC,
    backup_config,
    backup_engine,
    content,
    expected_records,
    restore_config,
    restore_engine,
    source_kafka,
)

TARGET = f"{TOPIC}-restored"


@pytest.fixture(params=["memory", "file"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> StorageBackend:
    if request.param == "memory":
        return create_backend_from_config(MemoryConfig())
    return create_backend_from_config(FilesystemConfig(path=str(tmp_path / "store")))


#: zstd_mode: the codec its segments name, and their format version (zstd-stream's 7 holds encryption too).
MODES = {"stream": ("zstd-stream", 7), "block": ("zstd", 6)}


@pytest.mark.parametrize("zstd_mode", list(MODES))
def test_encrypted_backup_restores_exactly_and_stores_no_record_or_key_in_the_clear(
    backend: StorageBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, zstd_mode: str
) -> None:
    secret = new_key()
    key = env_key(monkeypatch, "kek-1", secret)
    source = source_kafka()
    result = backup_engine(source, backend, encrypted(backup_config(zstd_mode=zstd_mode), key)).run()
    assert result.status == "complete" and result.segments > PARTITIONS
    codec, version = MODES[zstd_mode]

    index = PartitionIndex.from_json(backend.get(index_key(BACKUP_ID, TOPIC, 0)))
    assert index.format_version == version and all(s.encryption == ALGORITHM for s in index.segments)
    assert {s.codec for s in index.segments} == {codec}
    stored = b"".join(backend.get(k) for k in backend.list(f"{BACKUP_ID}/"))
    for records in expected_records(source.cluster).values():
        for record in records:
            value = record[4]
            if value and len(value) >= 8:
                assert value not in stored  # every value is encrypted
    assert secret not in stored and base64.b64encode(secret) not in stored
    for entry in index.segments:
        header = SegmentReader(backend.get(entry.key)).header
        assert header.version == version and header.encrypted
        obj = KeyObject.from_json(backend.get(key_object_key(entry.key)), name="k", read_version=6)
        assert (obj.key_id, obj.kek, obj.segment) == ("kek-1", "local", entry.key)
        assert json.loads(backend.get(key_object_key(entry.key)))["format_version"] == 6

    target = FakeKafka()
    restored = restore_engine(target, backend, encrypted(restore_config(), key)).run()
    assert restored.status == "complete" and restored.records == result.records
    expected = expected_records(source.cluster)
    for p in range(PARTITIONS):
        assert content([r.stored() for r in target.cluster.records(TARGET, p)]) == content(expected[p])

    assert validate_backup(backend, BACKUP_ID).ok  # structure: no key needed
    deep = validate_backup(backend, BACKUP_ID, deep=True, keyring=keyring(key))
    assert deep.ok and deep.checked_records == result.records, deep.problems


def test_a_key_in_a_file_raw_or_base64_reads_what_a_key_in_a_variable_wrote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = create_backend_from_config(MemoryConfig())
    secret = new_key()
    backup_engine(
        source_kafka(), backend, encrypted(backup_config(), env_key(monkeypatch, "k", secret))
    ).run()
    for encoded in (True, False):
        ring = keyring(file_key(tmp_path, "k", secret, encoded=encoded))
        assert validate_backup(backend, BACKUP_ID, deep=True, keyring=ring).ok


def test_restore_without_the_key_or_with_a_wrong_one_names_the_key_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = create_backend_from_config(MemoryConfig())
    key = env_key(monkeypatch, "kek-prod", new_key())
    backup_engine(source_kafka(), backend, encrypted(backup_config(), key)).run()

    target = FakeKafka()
    with pytest.raises(MissingKeyError, match="'kek-prod'"):
        restore_engine(target, backend).run()
    wrong = file_key(tmp_path, "kek-prod", new_key())
    with pytest.raises(WrongKeyError, match="'kek-prod'"):
        restore_engine(target, backend, encrypted(restore_config(), wrong)).run()
    other = file_key(tmp_path, "kek-other", new_key())
    with pytest.raises(MissingKeyError, match=r"'kek-prod'.*'kek-other'"):
        restore_engine(target, backend, encrypted(restore_config(), other)).run()
    assert TARGET not in target.cluster.topics  # nothing created, nothing written
    assert not [k for k in backend.list(f"{BACKUP_ID}/") if "/restores/" in k]
    with pytest.raises(MissingKeyError, match="kek-prod"):
        validate_backup(backend, BACKUP_ID, deep=True)


def test_unencrypted_backups_stay_at_their_version_and_read_with_a_keyring_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backend = create_backend_from_config(MemoryConfig())
    source = source_kafka()
    backup_engine(source, backend, backup_config(zstd_mode="block")).run()
    index = PartitionIndex.from_json(backend.get(index_key(BACKUP_ID, TOPIC, 0)))
    assert index.format_version == 1 and b"encryption" not in backend.get(index_key(BACKUP_ID, TOPIC, 0))
    assert not [k for k in backend.list(f"{BACKUP_ID}/") if k.endswith(".key.json")]
    key = env_key(monkeypatch, "k", new_key())
    restored = restore_engine(FakeKafka(), backend, encrypted(restore_config(), key)).run()
    assert restored.status == "complete"


def test_a_prune_deletes_key_objects_with_their_segments_and_needs_no_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from libkb.prune import execute_prune
    from libkb.retention import RetentionPolicy

    backend = create_backend_from_config(MemoryConfig())
    key = env_key(monkeypatch, "k", new_key())
    backup_engine(source_kafka(), backend, encrypted(backup_config(), key)).run()
    monkeypatch.delenv("LIBKB_TEST_KEK")  # pruning reads no record
    before = [k for k in backend.list(f"{BACKUP_ID}/") if k.endswith(".key.json")]
    execute_prune(backend, BACKUP_ID, RetentionPolicy(max_total_bytes=1, keep_segments=1, reason="test"))
    kept = PartitionIndex.from_json(backend.get(index_key(BACKUP_ID, TOPIC, 0))).segments
    objects = [k for k in backend.list(f"{BACKUP_ID}/") if k.endswith(".key.json")]
    assert len(objects) == PARTITIONS < len(before)  # one segment kept per partition, with its key object
    assert {key_object_key(s.key) for s in kept} <= set(objects)
    assert validate_backup(backend, BACKUP_ID).ok
