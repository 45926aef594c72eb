"""The Rust kafka-backup's fixture backups, their ground truth, and a writer of that format for tests.

- :data:`FIXTURES`: the backups the real tool (v0.17.4) wrote, in
  ``tests/data/rust-0.17.4`` (read-only: :func:`upload_fixture` copies one into
  a backend first);
- :func:`ground_truth` and :func:`as_stored`: the records a consumer read from
  the source topics, and what the Rust format keeps of each (the losses listed
  in docs/format.rst), for record-by-record comparisons;
- :func:`encode_segment` and :func:`write_backup`: the tool's segment and
  manifest layout, written from records, through :mod:`tests.rust_format`
  (the writer the benchmark uses, checked against the fixtures byte for byte).
"""

from __future__ import annotations

import base64
import gzip
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from libkb.format.segment import Record
from libkb.storage import StorageBackend
from tests import rust_format
from tests.rust_format import RustRecord

ROOT = Path(__file__).resolve().parents[1] / "data" / "rust-0.17.4"
#: name -> (directory under backups/, backup id)
FIXTURES = {
    "zstd": ("zstd", "fxa-zstd"),
    "lz4": ("lz4", "fxa-lz4"),
    "none": ("none", "fxa-none"),
    "incremental": ("incremental-zstd", "fxa-incr"),
    "incremental-run1": ("incremental-zstd-after-run1", "fxa-incr"),
}
ORDERS, AUDIT = "fxa-orders", "fxa-audit-lat"
TP = tuple[str, int]


def fixture_dir(name: str) -> Path:
    return ROOT / "backups" / FIXTURES[name][0]


def upload_fixture(backend: StorageBackend, name: str) -> str:
    """Copy fixture backup ``name`` into ``backend``, key for key; returns its backup id."""
    root = fixture_dir(name)
    for path in sorted(root.rglob("*")):
        if path.is_file():
            backend.put(path.relative_to(root).as_posix(), path.read_bytes())
    return FIXTURES[name][1]


@cache
def ground_truth() -> dict[TP, list[dict[str, Any]]]:
    """Every source record as a consumer read it, by topic-partition, in offset order."""
    out: dict[TP, list[dict[str, Any]]] = defaultdict(list)
    for line in gzip.decompress((ROOT / "source-records.jsonl.gz").read_bytes()).decode().splitlines():
        row = json.loads(line)
        out[(row["topic"], row["partition"])].append(row)
    return {tp: sorted(rows, key=lambda r: r["offset"]) for tp, rows in out.items()}


def group_offsets() -> dict[str, dict[str, dict[int, int]]]:
    raw = json.loads((ROOT / "group-offsets.json").read_text())
    return {g: {t: {int(p): o for p, o in parts.items()} for t, parts in ts.items()} for g, ts in raw.items()}


def _b64(value: str | None) -> bytes | None:
    return None if value is None else base64.b64decode(value)


def as_consumed(row: dict[str, Any]) -> Record:
    """A ground-truth row as libkb's record: exactly what the consumer saw."""
    headers = [(name, _b64(value)) for name, value in row["headers"]] or None
    ts_type = 2 if row["timestamp_type"] == "LogAppendTime" else 1
    return (row["offset"], row["timestamp"], ts_type, _b64(row["key_b64"]), _b64(row["value_b64"]), headers)


def as_stored(row: dict[str, Any]) -> Record:
    """What the Rust format keeps of a ground-truth row (its own headers left out): the losses applied.

    - the timestamp type is lost (CreateTime), and for LogAppendTime the stored
      timestamp is the producer's: the generator set ``1700000000000 + 100 * i``
      and ``fxa-audit-lat``'s record ``i`` is at offset ``i``;
    - null header values become empty;
    - a repeated header name keeps its last value, at its first place.
    """
    offset, ts, ts_type, key, value, headers = as_consumed(row)
    if ts_type == 2:
        ts = 1700000000000 + 100 * offset
    merged: dict[str, bytes] = {}
    for name, hval in headers or []:
        merged[name] = hval if hval is not None else b""
    return (offset, ts, 1, key, value, list(merged.items()) or None)


def losses(row: dict[str, Any]) -> list[str]:
    """Which of the format's losses change this record."""
    names = [name for name, _ in row["headers"]]
    found = []
    if row["timestamp_type"] == "LogAppendTime":
        found.append("timestamp type (LogAppendTime stored as the producer's CreateTime)")
    if any(value is None for _, value in row["headers"]):
        found.append("null header value stored as empty")
    if len(set(names)) != len(names):
        found.append("repeated header name collapsed to its last value")
    return found


def stored_records(name: str) -> dict[TP, list[Record]]:
    """What fixture backup ``name`` must hold, from the ground truth: the records it covers, as stored."""
    manifest = json.loads((fixture_dir(name) / FIXTURES[name][1] / "manifest.json").read_text())
    out = {}
    for topic in manifest["topics"]:
        for part in topic["partitions"]:
            last = max(s["end_offset"] for s in part["segments"])
            rows = ground_truth()[(topic["name"], part["partition_id"])]
            out[(topic["name"], part["partition_id"])] = [as_stored(r) for r in rows if r["offset"] <= last]
    return out


# -- the format, written ---------------------------------------------------------------

CODECS = {"none": 0, "zstd": 1, "lz4": 2}
SUFFIX = {"none": ".bin", "zstd": ".bin.zst", "lz4": ".bin.lz4"}


def _rust(record: Record) -> RustRecord:
    offset, ts, _, key, value, headers = record
    return RustRecord(offset, ts, key, value, list(headers or []))


def encode_record(record: Record) -> bytes:
    return rust_format.encode_record(_rust(record))


def with_tool_headers(record: Record, cluster: str | None = None) -> Record:
    """The record with the headers the tool appends by default (``include_offset_headers``)."""
    offset, ts, ts_type, key, value, headers = record
    extra = [
        ("x-original-offset", offset.to_bytes(8, "little", signed=True)),
        ("x-original-timestamp", ts.to_bytes(8, "little", signed=True)),
    ]
    if cluster is not None:
        extra.append(("x-source-cluster", cluster.encode()))
    return (offset, ts, ts_type, key, value, [*(headers or []), *extra])


def encode_segment(records: Sequence[Record], codec: str = "zstd") -> bytes:
    """One segment of ``records`` (their headers as given), as the tool writes it."""
    return rust_format.encode_segment([_rust(r) for r in records], codec)[0]


def segment_meta(key: str, records: Sequence[Record], data: bytes) -> dict[str, Any]:
    return {
        "key": key,
        "start_offset": records[0][0],
        "end_offset": records[-1][0],
        "start_timestamp": records[0][1],
        "end_timestamp": records[-1][1],
        "record_count": len(records),
        "uncompressed_size": sum(len(encode_record(r)) for r in records),
        "compressed_size": len(data),
    }


def write_backup(
    backend: StorageBackend,
    backup_id: str,
    partitions: Mapping[TP, Iterable[Sequence[Record]]],
    *,
    codec: str = "zstd",
    partition_counts: dict[str, int] | None = None,
    gaps: dict[TP, list[tuple[int, int]]] | None = None,
    groups: dict[str, dict[str, dict[int, int]]] | None = None,
    created_at: int = 1796358314524,
) -> dict[str, Any]:
    """A backup as the tool stores it: segments (records as given, one segment per list), manifest, groups."""
    topics: dict[str, dict[str, Any]] = {}
    for (topic, partition), segments in partitions.items():
        count = (partition_counts or {}).get(topic)
        entry = topics.setdefault(topic, {"name": topic, "original_partition_count": count, "partitions": []})
        metas = []
        for records in segments:
            name = f"segment-{records[0][0]:020d}{SUFFIX[codec]}"
            key = f"{backup_id}/topics/{topic}/partition={partition}/{name}"
            data = encode_segment(records, codec)
            backend.put(key, data)
            metas.append(segment_meta(key, records, data))
        part: dict[str, Any] = {"partition_id": partition, "segments": metas}
        if gaps and gaps.get((topic, partition)):
            part["gaps"] = [
                {
                    "start_offset": a,
                    "end_offset": b,
                    "reason": "offset_out_of_range",
                    "detected_at": created_at,
                }
                for a, b in gaps[(topic, partition)]
            ]
        entry["partitions"].append(part)
    manifest = {
        "backup_id": backup_id,
        "created_at": created_at,
        "source_cluster_id": None,
        "source_brokers": [],
        "compression": codec,
        "topics": list(topics.values()),
    }
    backend.put(f"{backup_id}/manifest.json", json.dumps(manifest, indent=2).encode())
    if groups is not None:
        snapshot = {
            "snapshot_time": created_at + 100,
            "groups": [
                {
                    "group_id": g,
                    "offsets": {t: {str(p): o for p, o in parts.items()} for t, parts in ts.items()},
                }
                for g, ts in groups.items()
            ],
        }
        backend.put(f"{backup_id}/consumer-groups-snapshot.json", json.dumps(snapshot, indent=2).encode())
    return manifest


def records(start: int, count: int, *, step: int = 1, ts: int = 1700000000000) -> list[Record]:
    """Plain records at offsets ``start, start + step, ...`` with a header each (none of the tool's)."""
    return [
        (o, ts + o, 1, f"k{o}".encode(), f"value {o}".encode() * 3, [("h", str(o).encode())])
        for o in range(start, start + count * step, step)
    ]
