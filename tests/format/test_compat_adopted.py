"""Format version 3: a backup id the Rust kafka-backup began and libkb continued stays readable.

``tests/data/compat/v3/adopted`` (written once by ``make_compat_fixture.py``,
never changed) holds the Rust tool's part, as that tool writes it, and
libkb's part under ``adopted/libkb/``. The current code must list, validate
and restore the two as one backup, read the manifest's ``continues``
exactly, and still write version 3 byte for byte.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from libkb.catalog import list_backups, validate_backup
from libkb.config import parse_config
from libkb.errors import FormatError
from libkb.format.models import Continuation, Manifest, RunInfo, TopicInfo, parse_lease_key
from libkb.restore.engine import RestoreEngine
from libkb.source import open_backup
from libkb.source.adopted import AdoptedSource, libkb_part
from libkb.storage import FilesystemConfig, create_backend_from_config
from tests.fakes import FakeKafka
from tests.format.make_compat_fixture import ADOPTED_OWN, ADOPTED_RUST, RUN6_MS, RUN7_MS, write_fixture

ROOT = Path(__file__).resolve().parent.parent / "data" / "compat" / "v3"
KEYS = [
    "adopted/consumer-groups-snapshot.json",
    "adopted/libkb/consumer-groups.json",
    "adopted/libkb/lease/000000000001.json",
    "adopted/libkb/manifest.json",
    "adopted/libkb/topics/accounts/partition=0/index.json",
    "adopted/libkb/topics/accounts/partition=0/segment-00000000000000000003.kbs",
    "adopted/libkb/topics/accounts/partition=1/index.json",
    "adopted/libkb/topics/accounts/partition=1/segment-00000000000000000002.kbs",
    "adopted/manifest.json",
    "adopted/topics/accounts/partition=0/segment-00000000000000000000.bin.zst",
    "adopted/topics/accounts/partition=1/segment-00000000000000000000.bin.zst",
]


def _backend(root: Path = ROOT):  # type: ignore[no-untyped-def]
    return create_backend_from_config(FilesystemConfig(path=str(root)))


def test_the_fixture_holds_exactly_the_documented_objects() -> None:
    with _backend() as backend:
        assert backend.list("") == KEYS


def test_libkb_s_manifest_says_where_the_rust_part_ends() -> None:
    with _backend() as backend:
        manifest = Manifest.from_json(libkb_part(backend, "adopted").get("adopted/manifest.json"))
    assert manifest == Manifest(
        backup_id="adopted",
        created_ms=RUN7_MS,
        updated_ms=RUN7_MS + 60_000,
        compression="zstd",
        topics={"accounts": TopicInfo(2, 1, {})},
        runs=[RunInfo("20240107T000000Z-ffffffff", RUN7_MS, RUN7_MS + 60_000, "complete", "snapshot", 3, 90)],
        source_cluster_id="adopted-cluster-00000000",
        libkb_version="0.1.0",
        format_version=3,
        continues=Continuation("kafka-backup (Rust)", RUN7_MS, {"accounts": {0: 3, 1: 2}}),
    )


def test_continues_needs_version_3() -> None:
    with _backend() as backend:
        body = json.loads(backend.get("adopted/libkb/manifest.json"))
    body["format_version"] = 2
    with pytest.raises(FormatError, match="'continues' needs format version 3"):
        Manifest.from_json(json.dumps(body).encode(), name="m")


def test_read_as_one_backup_listed_and_deep_valid() -> None:
    with _backend() as backend:
        source = open_backup(backend, "adopted")
        assert isinstance(source, AdoptedSource)
        assert source.manifest().created_ms == RUN6_MS  # the Rust tool's run began the backup
        assert [(s.backup_id, s.status, s.records) for s in list_backups(backend)] == [
            ("adopted", "complete", 8)
        ]
        report = validate_backup(backend, "adopted", deep=True)
        assert report.ok, report.problems
        assert report.checked_records == 8


def test_restore_gives_back_both_parts_exactly(tmp_path: Path) -> None:
    shutil.copytree(ROOT, tmp_path / "v3")
    target = FakeKafka()
    config = parse_config(
        {
            "mode": "restore",
            "backup_id": "adopted",
            "target": {"bootstrap_servers": ["fake:9092"], "topics": {"include": ["*"]}},
            "storage": {"backend": "filesystem", "path": str(tmp_path / "v3")},
            "restore": {"create_topics": True, "consumer_groups": ["billing"]},
        },
        source="test",
    )
    with _backend(tmp_path / "v3") as backend:
        engine = RestoreEngine(
            config,
            backend=backend,
            admin=target.admin(),
            producer_factory=target.producer_factory,
            consumer_factory=target.consumer_factory,
        )
        result = engine.run()
    assert result.status == "complete" and result.records == 8
    for partition in (0, 1):
        want = [
            (ts, k, v, h or None) for _, ts, _, k, v, h in ADOPTED_RUST[partition] + ADOPTED_OWN[partition]
        ]
        got = [r.stored() for r in target.cluster.records("accounts", partition)]
        assert [(g[1], *g[3:]) for g in got] == want  # the Rust tool's own headers are left out
    # libkb's group snapshot (taken after the Rust tool's) is the one translated
    assert {(o.target_partition, o.target_offset) for o in result.group_offsets} == {(0, 4), (1, 3)}


def test_todays_writers_still_write_version_3_byte_for_byte(tmp_path: Path) -> None:
    keys = write_fixture(tmp_path / "v3", 3)
    assert keys == KEYS
    for key in keys:
        if parse_lease_key(key) is None and "/lease/" not in key:
            assert (tmp_path / "v3" / key).read_bytes() == (ROOT / key).read_bytes(), key
