"""Format version 6 (encryption at rest): an encrypted backup written once stays readable.

``tests/data/compat/v6/sealed`` (written once by ``make_compat_fixture.py``,
never changed; its data keys and nonces are random, so it cannot be rewritten
byte for byte) holds two runs: the first under the published test key
``compat-kek-1`` with partition 1 not yet encrypted, the second under
``compat-kek-2``. The current code must list, describe and validate it
without a key, decrypt every record exactly with both keys, restore it, and
name the missing key when only the new one is given.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from libkb.backup.envelope import Envelope
from libkb.catalog import describe_backup, list_backups, validate_backup
from libkb.config import parse_config
from libkb.config.encryption import EncryptionOptions, KeySource
from libkb.errors import MissingKeyError
from libkb.format.encryption import ALGORITHM, KeyObject, key_object_key
from libkb.format.models import Manifest, PartitionIndex, index_key, manifest_key
from libkb.format.segment import CODEC_LZ4, CODEC_NONE, CODEC_ZSTD, SegmentReader
from libkb.keys import Keyring, LocalKek
from libkb.restore.engine import RestoreEngine
from libkb.storage import FilesystemConfig, StorageBackend, create_backend_from_config
from tests.fakes import FakeKafka
from tests.format.make_compat_fixture import (
    SEALED_0_A,
    SEALED_0_B,
    SEALED_1_B,
    SEALED_1_PLAIN,
    SEALED_KEYS,
    write_fixture,
)

ROOT = Path(__file__).resolve().parent.parent / "data" / "compat" / "v6"
P0 = "sealed/topics/payments/partition=0/"
P1 = "sealed/topics/payments/partition=1/"
SEGMENTS = {
    # key: (codec, encrypted, key id, records block by block)
    f"{P0}segment-00000000000000000000.kbs": (CODEC_ZSTD, True, "compat-kek-1", SEALED_0_A),
    f"{P0}segment-00000000000000000004.kbs": (CODEC_NONE, True, "compat-kek-2", [SEALED_0_B]),
    f"{P0}segment-00000000000000000006.kbs": (CODEC_ZSTD, True, "compat-kek-2", []),
    f"{P1}segment-00000000000000000000.kbs": (CODEC_ZSTD, False, None, [SEALED_1_PLAIN]),
    f"{P1}segment-00000000000000000001.kbs": (CODEC_LZ4, True, "compat-kek-2", [SEALED_1_B]),
}
KEYS = sorted(
    [
        "sealed/lease/000000000002.json",
        "sealed/manifest.json",
        f"{P0}index.json",
        f"{P1}index.json",
        *SEGMENTS,
        *(key_object_key(k) for k, v in SEGMENTS.items() if v[1]),
    ]
)


@pytest.fixture
def backend() -> StorageBackend:
    return create_backend_from_config(FilesystemConfig(path=str(ROOT)))


def keyring(*ids: str) -> Keyring:
    return Keyring(keks=[LocalKek(i, SEALED_KEYS[i]) for i in ids])


def test_the_fixture_holds_exactly_the_documented_objects_at_their_lowest_versions(
    backend: StorageBackend,
) -> None:
    assert backend.list("") == KEYS
    assert Manifest.from_json(backend.get(manifest_key("sealed"))).format_version == 1  # unchanged
    for p in (0, 1):
        index = PartitionIndex.from_json(backend.get(index_key("sealed", "payments", p)))
        assert index.format_version == 6
        assert [s.encryption for s in index.segments] == [
            ALGORITHM if SEGMENTS[s.key][1] else None for s in index.segments
        ]
    for key, (codec, encrypted, key_id, _) in SEGMENTS.items():
        header = SegmentReader(backend.get(key), name=key).header
        assert (header.codec, header.encrypted) == (codec, encrypted)
        assert header.version == (6 if encrypted else 1)
        if encrypted:
            raw = json.loads(backend.get(key_object_key(key)))
            assert (raw["format"], raw["format_version"], raw["key_id"], raw["kek"]) == (
                "libkb-segment-key", 6, key_id, "local",
            )  # fmt: skip
            assert (
                KeyObject.from_json(backend.get(key_object_key(key)), name=key, read_version=6).segment == key
            )


def test_every_record_decrypts_exactly_with_both_keys(backend: StorageBackend) -> None:
    envelope = Envelope(backend, "sealed", keyring("compat-kek-2", "compat-kek-1"))
    for key, (_, encrypted, _, blocks) in SEGMENTS.items():
        data = backend.get(key)
        header = SegmentReader(data, name=key).header
        chain = envelope.reading_chain(key, header, data) if encrypted else None
        reader = SegmentReader(data, name=key, chain=chain)
        reader.verify()
        assert list(reader.records()) == [r for block in blocks for r in block]
        assert [b.record_count for b in reader.blocks()] == [len(b) for b in blocks]


def test_list_describe_and_validate_need_no_key_and_deep_validate_needs_both(backend: StorageBackend) -> None:
    assert [(s.backup_id, s.status, s.records) for s in list_backups(backend)] == [("sealed", "complete", 7)]
    assert describe_backup(backend, "sealed").encrypted_segments == 4
    assert validate_backup(backend, "sealed").ok
    report = validate_backup(backend, "sealed", deep=True, keyring=keyring("compat-kek-1", "compat-kek-2"))
    assert report.ok and report.checked_records == 7, report.problems
    with pytest.raises(MissingKeyError, match="'compat-kek-1'"):
        validate_backup(backend, "sealed", deep=True, keyring=keyring("compat-kek-2"))


def test_restore_gives_back_the_exact_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(ROOT, tmp_path / "v6")
    for key_id, secret in SEALED_KEYS.items():
        (tmp_path / key_id).write_bytes(secret)
    keys = EncryptionOptions(
        KeySource("compat-kek-2", file=str(tmp_path / "compat-kek-2")),
        (KeySource("compat-kek-1", file=str(tmp_path / "compat-kek-1")),),
    )
    config = parse_config(
        {
            "mode": "restore",
            "backup_id": "sealed",
            "target": {"bootstrap_servers": ["fake:9092"], "topics": {"include": ["*"]}},
            "storage": {"backend": "filesystem", "path": str(tmp_path / "v6")},
            "restore": {"create_topics": True},
        }
    )
    import dataclasses

    target = FakeKafka()
    engine = RestoreEngine(
        dataclasses.replace(config, encryption=keys),
        admin=target.admin(),
        producer_factory=target.producer_factory,
        consumer_factory=target.consumer_factory,
    )
    assert engine.run().records == 7
    want = {0: [*SEALED_0_A[0], *SEALED_0_A[1], *SEALED_0_B], 1: [*SEALED_1_PLAIN, *SEALED_1_B]}
    for p, records in want.items():
        got = [r.stored() for r in target.cluster.records("payments", p)]
        assert [g[3:] for g in got] == [(k, v, h or None) for _, _, _, k, v, h in records]


def test_todays_writer_writes_the_same_objects(tmp_path: Path) -> None:
    """Not byte for byte (random keys and nonces): the same keys, decrypting to the same records."""
    keys = write_fixture(tmp_path / "v6", 6)
    assert keys == KEYS
    with create_backend_from_config(FilesystemConfig(path=str(tmp_path / "v6"))) as fresh:
        ring = keyring("compat-kek-1", "compat-kek-2")
        assert validate_backup(fresh, "sealed", deep=True, keyring=ring).checked_records == 7
