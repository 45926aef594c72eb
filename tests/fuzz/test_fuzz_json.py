"""Hostile JSON objects: index, manifest, groups, lease, restore state, offset mapping and snapshot.

Each property takes a valid object and changes it: a field given another JSON
type, a key removed or added, bytes changed. A reader must either give the
object back or raise :class:`~libkb.errors.FormatError` naming it; and a
field whose value changed to a different (non-null) JSON type must be
refused, not coerced or let through.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from libkb.backup.lease import LeaseInfo
from libkb.errors import FormatError
from libkb.format.models import (
    Continuation,
    GroupOffsets,
    Manifest,
    MissingRange,
    PartitionIndex,
    PrunedRange,
    RunInfo,
    SegmentEntry,
    TopicInfo,
    groups_from_json,
    groups_to_json,
)
from libkb.kafka.types import CommittedOffset
from libkb.offsets.snapshot import OffsetSnapshot
from libkb.restore.mapping import OffsetMapping, PartitionMapping, SpreadPartition
from libkb.restore.state import PartitionState, RestoreState
from libkb.source.rust_v1.manifest import parse_groups, parse_manifest
from tests.fuzz.budget import fuzz

NAME = "b1/some/object.json"
_SEG = SegmentEntry("b1/t/p/s.kbs", 10, 20, 5, 11, 19, 1, 2, 300, 400, "lz4")
_INDEX = PartitionIndex(
    "t",
    0,
    [_SEG],
    [MissingRange(0, 5, "gone")],
    4,
    [PrunedRange(5, 10, 1, 3, 99, 1, 2, 7, "prune --older-than 1d")],
)
_MANIFEST = Manifest(
    "b1",
    1,
    2,
    "zstd",
    {"t": TopicInfo(3, 1, {"cleanup.policy": "delete"})},
    [RunInfo("r1", 1, 2, "complete", "snapshot", 5, 6)],
    "cluster-a",
    "1.0",
    3,
    Continuation("kafka-backup (Rust)", 9, {"t": {0: 10}}),
)
_STATE = RestoreState(
    "b1", "r1", 5, "cluster-b", "running", {"t/0": PartitionState("t", 0, 7, 3, True, 10, 4, True)}
)
_MAPPING = OffsetMapping(
    "b1",
    "r1",
    [PartitionMapping("t", 0, "u", 1, 7, [(0, 7, 3)])],
    [SpreadPartition("t", "u", 2, 0, [(0, 3, 0, 2)])],
)
_SNAPSHOT = OffsetSnapshot(
    "s1", "b1", 5, {"g": {("t", 0): CommittedOffset(7, "m", 2)}}, ["k:9092"], "c1", "before reset", "r1"
)

_RUST_SEGMENT = {
    "key": "b1/topics/t/partition=0/segment-0001.bin.zst",
    "start_offset": 10,
    "end_offset": 19,
    "start_timestamp": 1,
    "end_timestamp": 2,
    "record_count": 10,
    "uncompressed_size": 300,
    "compressed_size": 100,
}
_RUST_MANIFEST = {
    "backup_id": "b1",
    "created_at": 1,
    "source_cluster_id": "c1",
    "compression": "zstd",
    "topics": [
        {
            "name": "t",
            "original_partition_count": 3,
            "partitions": [{"partition_id": 0, "segments": [_RUST_SEGMENT]}],
        }
    ],
}
_RUST_GROUPS = {"snapshot_time": 5, "groups": [{"group_id": "g", "offsets": {"t": {"0": 7}}}]}


def _rust_manifest(data: bytes) -> object:
    manifest = parse_manifest(data, NAME)
    return list(manifest.segments())


READERS: dict[str, tuple[bytes, Callable[[bytes], object]]] = {
    "rust manifest": (json.dumps(_RUST_MANIFEST).encode(), _rust_manifest),
    "rust groups": (json.dumps(_RUST_GROUPS).encode(), lambda d: parse_groups(d, NAME)),
    "index": (_INDEX.to_json(), lambda d: PartitionIndex.from_json(d, name=NAME)),
    "manifest": (_MANIFEST.to_json(), lambda d: Manifest.from_json(d, name=NAME)),
    "groups": (
        groups_to_json([GroupOffsets("g", {"t": {0: 5}})], 9),
        lambda d: groups_from_json(d, name=NAME),
    ),
    "lease": (LeaseInfo("r1", "h", 4, 99, 2, False).to_json(), lambda d: LeaseInfo.parse(d, NAME)),
    "restore state": (_STATE.to_json(), lambda d: RestoreState.from_json(d, name=NAME)),
    "offset mapping": (_MAPPING.to_json(), lambda d: OffsetMapping.from_json(d, name=NAME)),
    "offset snapshot": (_SNAPSHOT.to_json(), lambda d: OffsetSnapshot.from_json(d, name=NAME)),
}

hostile_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(1 << 70), 1 << 70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=6),
    st.just("12"),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in _leaves(v, (*path, k))] + [(path, value)]
    if isinstance(value, list):
        return [leaf for i, v in enumerate(value) for leaf in _leaves(v, (*path, i))] + [(path, value)]
    return [(path, value)]


def _json_type(value: Any) -> str:
    return {
        bool: "bool",
        int: "int",
        float: "float",
        str: "str",
        type(None): "null",
        list: "list",
        dict: "dict",
    }[type(value)]


@st.composite
def mutated_objects(draw: st.DrawFn) -> tuple[str, bytes, bool]:
    """(which reader, bytes, whether it must be refused)."""
    kind = draw(st.sampled_from(sorted(READERS)))
    body = json.loads(READERS[kind][0])
    leaves = [leaf for leaf in _leaves(body) if leaf[0]]
    path, old = draw(st.sampled_from(leaves))
    parent = body
    for step in path[:-1]:
        parent = parent[step]
    action = draw(st.sampled_from(["retype", "delete", "add", "bytes"]))
    must_fail = False
    if action == "retype":
        new = draw(hostile_values)
        parent[path[-1]] = new
        scalar = _json_type(old) in ("int", "str", "bool")
        must_fail = scalar and _json_type(new) not in (_json_type(old), "null")
    elif action == "delete" and isinstance(parent, dict):
        del parent[path[-1]]
    elif action == "add" and isinstance(parent, dict):
        parent[draw(st.text(min_size=1, max_size=4))] = draw(hostile_values)
    data = json.dumps(body).encode()
    if action == "bytes":
        raw = bytearray(data)
        for _ in range(draw(st.integers(1, 3))):
            raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
        data = bytes(raw)
    return kind, data, must_fail


def _read(case: tuple[str, bytes, bool]) -> None:
    kind, data, must_fail = case
    try:
        READERS[kind][1](data)
    except FormatError as exc:
        assert str(exc).startswith(NAME + ": "), exc
        return
    assert not must_fail, f"{kind}: a field of another type was accepted: {data!r}"


test_mutated_json, test_mutated_json_soak = fuzz(_read, mutated_objects(), examples=400)


@st.composite
def any_bytes(draw: st.DrawFn) -> tuple[str, bytes, bool]:
    kind = draw(st.sampled_from(sorted(READERS)))
    data = draw(
        st.one_of(st.binary(max_size=40), st.sampled_from([b"[" * 50_000, b'{"a":' * 50_000, b"\xff{}"]))
    )
    return kind, data, False


test_any_bytes_as_json, test_any_bytes_as_json_soak = fuzz(_read, any_bytes(), examples=100)


def test_the_samples_read_back() -> None:
    """The fuzz starts from valid objects: each reads back as it was written."""
    for kind, (data, reader) in READERS.items():
        assert reader(data) is not None, kind
