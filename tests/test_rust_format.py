"""The benchmark's Rust-format writer writes what kafka-backup v0.17.4 writes, checked on its backups."""

from __future__ import annotations

import base64
import gzip
import json
import struct
from typing import Any

import lz4.block
import pytest

from libkb.storage import MemoryConfig, create_backend_from_config
from tests.rust_format import FIXTURES, RustBackupWriter, RustRecord, as_stored, encode_segment, manifest_json

AUDIT = "fxa-audit-lat"


def _b64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


def _ground_truth() -> dict[tuple[str, int], list[RustRecord]]:
    out: dict[tuple[str, int], list[RustRecord]] = {}
    for line in gzip.decompress((FIXTURES / "source-records.jsonl.gz").read_bytes()).decode().splitlines():
        row = json.loads(line)
        stamp = row["timestamp"]
        if row["topic"] == AUDIT:  # LogAppendTime: the tool stores the producer's CreateTime
            stamp = 1_700_000_000_000 + 100 * row["offset"]
        headers = [(name, _b64(value)) for name, value in row["headers"]]
        record = RustRecord(row["offset"], stamp, _b64(row["key_b64"]), _b64(row["value_b64"]), headers)
        out.setdefault((row["topic"], row["partition"]), []).append(as_stored(record))
    return out


def _manifest(kind: str) -> dict[str, Any]:
    root = FIXTURES / "backups" / kind
    (backup,) = [p for p in root.iterdir() if p.is_dir()]
    return dict(json.loads((backup / "manifest.json").read_text()))


@pytest.fixture(scope="module")
def truth() -> dict[tuple[str, int], list[RustRecord]]:
    if not FIXTURES.exists():
        pytest.fail(f"the Rust tool's fixture backups are missing: {FIXTURES}")
    return _ground_truth()


@pytest.mark.parametrize("kind", ["none", "zstd", "lz4"])
def test_every_segment_is_written_as_the_tool_wrote_it(
    kind: str, truth: dict[tuple[str, int], list[RustRecord]]
) -> None:
    manifest = _manifest(kind)
    root = FIXTURES / "backups" / kind
    checked = 0
    for topic in manifest["topics"]:
        for part in topic["partitions"]:
            records = {r.offset: r for r in truth[(topic["name"], part["partition_id"])]}
            for seg in part["segments"]:
                run = [records[o] for o in range(seg["start_offset"], seg["end_offset"] + 1)]
                data, area = encode_segment(run, kind)
                stored = (root / seg["key"]).read_bytes()
                assert area == seg["uncompressed_size"]
                assert data[:32] == stored[:32]
                assert stored[-4:] == data[-4:] == b"BKAE"
                if kind == "lz4":  # lz4_flex and liblz4 choose different matches: compare what they decode to
                    assert lz4.block.decompress(data[32:-8]) == lz4.block.decompress(stored[32:-8])
                else:
                    assert data == stored, seg["key"]
                    assert len(data) == seg["compressed_size"]
                checked += 1
    assert checked == 11


@pytest.mark.parametrize("kind", ["none", "zstd"])
def test_the_manifest_is_the_tool_s(kind: str, truth: dict[tuple[str, int], list[RustRecord]]) -> None:
    expected = _manifest(kind)
    backend = create_backend_from_config(MemoryConfig())
    writer = RustBackupWriter(
        backend,
        expected["backup_id"],
        compression=kind,
        created_at=expected["created_at"],
        segment_max_records=400,
    )
    for topic in expected["topics"]:
        for part in sorted(topic["partitions"], key=lambda p: p["partition_id"]):
            end = part["segments"][-1][
                "end_offset"
            ]  # the ground truth also has the incremental run's records
            records = [r for r in truth[(topic["name"], part["partition_id"])] if r.offset <= end]
            writer.write_partition(
                topic["name"],
                part["partition_id"],
                records,
                partition_count=topic["original_partition_count"],
            )
    writer.write_manifest()
    written = json.loads(backend.get(f"{expected['backup_id']}/manifest.json"))
    # The tool lists partitions in the order they finished; the writer sorts them.
    for topic in expected["topics"]:
        topic["partitions"].sort(key=lambda p: p["partition_id"])
    expected["topics"].sort(key=lambda t: t["name"])
    written["topics"].sort(key=lambda t: t["name"])
    assert written == expected
    assert manifest_json(expected) == manifest_json(written)
    text = (FIXTURES / "backups" / kind / expected["backup_id"] / "manifest.json").read_text()
    assert manifest_json(json.loads(text)).decode() == text.rstrip("\n")


def test_the_group_snapshot_is_the_tool_s() -> None:
    stored = json.loads((FIXTURES / "backups/zstd/fxa-zstd/consumer-groups-snapshot.json").read_text())
    backend = create_backend_from_config(MemoryConfig())
    writer = RustBackupWriter(backend, "fxa-zstd")
    groups = {
        g["group_id"]: {t: {int(p): o for p, o in ps.items()} for t, ps in g["offsets"].items()}
        for g in stored["groups"]
    }
    writer.write_groups(stored["snapshot_time"], groups)
    assert json.loads(backend.get("fxa-zstd/consumer-groups-snapshot.json")) == stored


def test_offset_headers_are_little_endian_and_last() -> None:
    record = as_stored(RustRecord(7, 1_700_000_000_000, b"k", None, [("a", None), ("d", b"1"), ("d", b"2")]))
    assert record.headers == [
        ("a", b""),
        ("d", b"2"),
        ("x-original-offset", struct.pack("<q", 7)),
        ("x-original-timestamp", struct.pack("<q", 1_700_000_000_000)),
    ]
