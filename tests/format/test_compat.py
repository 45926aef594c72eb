"""Every released backup format version stays readable by the current code.

``tests/data/compat/v<N>/`` holds a small backup written by the libkb that
introduced format version ``N`` (see ``tests/format/make_compat_fixture.py``).
Those files never change. This module reads each of them with the CURRENT
code and compares what it reads with expectations written out here by hand
(never regenerated from the files), checks every checksum and the offset
coverage, re-parses each segment with an independent reader written from
``docs/format.rst`` alone, lists, deep-validates and restores each backup
(into the in-memory fake Kafka of ``tests/fakes``) record for record, checks
that today's writers still write each old version byte for byte, and that
readers refuse versions newer than they know with the documented message.

Adding format version ``N+1``: bump ``FORMAT_VERSION``, add its writer to the
fixture script and run it, add ``"v<N+1>"`` to :data:`EXPECTED`; every older
entry must keep passing untouched.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import re
import shutil
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import lz4.frame
import msgpack
import pytest
import zstandard

from libkb.backup.lease import LeaseInfo
from libkb.backup.state import load_index, read_segment_entry
from libkb.catalog import list_backups, validate_backup
from libkb.config import parse_config
from libkb.errors import FormatError
from libkb.format.models import (
    PRUNED_RANGES_VERSION,
    GroupOffsets,
    Manifest,
    MissingRange,
    PartitionIndex,
    PrunedRange,
    RunInfo,
    SegmentEntry,
    TopicInfo,
    groups_from_json,
    groups_key,
    index_key,
    lease_generation_key,
    legacy_lease_key,
    manifest_key,
    parse_lease_key,
    parse_segment_key,
    parse_stored_topic,
    segment_key,
)
from libkb.format.restarts import RestartPoint
from libkb.format.segment import (
    FORMAT_VERSION,
    Record,
    SegmentError,
    SegmentFooter,
    SegmentReader,
    decode_header,
    encode_segment,
)
from libkb.restore.engine import RestoreEngine
from libkb.source import Wanted, open_backup
from libkb.storage import FilesystemConfig, StorageBackend, create_backend_from_config
from tests.fakes import FakeKafka
from tests.format.make_compat_fixture import write_fixture

COMPAT_ROOT = Path(__file__).resolve().parent.parent / "data" / "compat"
DOCS = Path(__file__).resolve().parent.parent.parent / "docs" / "format.rst"
VERSIONS = sorted((p.name for p in COMPAT_ROOT.glob("v*") if p.is_dir()), key=lambda v: int(v[1:]))

NEWER = "newer than this libkb reads"
BIG = 2**32 + 100
R1 = 1_704_067_200_000  # run 1 of "full" started
R2 = 1_704_153_600_000  # run 2 of "full" started
R3 = 1_704_240_000_000  # the run of "crashed" started
R4 = 1_704_326_400_000  # run 1 of "lz4" started
R5 = 1_704_412_800_000  # run 2 of "lz4" started
#: The format version each codec needs, as docs/format.rst states it (not taken from the code).
CODEC_VERSION = {0: 1, 1: 1, 2: 2, 3: 7}
JSON: list[tuple[str, bytes | None]] = [("content-type", b"application/json")]


@dataclass(frozen=True)
class Seg:
    """What one stored segment must hold."""

    codec: int
    topic: str
    partition: int
    base: int
    created_ms: int
    footer: SegmentFooter
    blocks: list[list[Record]]  # records, block by block


@dataclass(frozen=True)
class Expected:
    keys: list[str]
    #: backup id -> (status, records) as ``kafka-backup list`` shows them
    listed: dict[str, tuple[str, int]]
    manifests: dict[str, Manifest]
    indexes: dict[str, PartitionIndex]  # key -> content
    absent_indexes: list[str]  # partitions with no index object
    segments: dict[str, Seg]
    groups: dict[str, tuple[int, list[GroupOffsets]]]
    leases: dict[str, LeaseInfo]  # the lease.json of earlier builds
    generations: dict[str, LeaseInfo]  # lease generation key -> its content
    # after a crash: partition index key -> what a reader must rebuild
    recovered: dict[str, PartitionIndex]
    #: segments a stopped prune left inside a pruned range (never read, deleted by a repair)
    pruned_leftovers: list[str] = dataclasses.field(default_factory=list)
    #: backup id -> its restore's ``topic_mapping`` (stored topic -> target topic), where needed
    restore_mapping: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)


def _entry(
    bid: str, topic: str, partition: int, base: int, end: int, count: int, first: int, last: int,
    min_ts: int, max_ts: int, size: int, raw: int, codec: str,
) -> SegmentEntry:  # fmt: skip
    return SegmentEntry(
        segment_key(bid, topic, partition, base), base, end, count, first, last, min_ts, max_ts,
        size, raw, codec,
    )  # fmt: skip


def _seg(codec: int, topic: str, p: int, base: int, created: int, e: SegmentEntry, blocks: int,
         crc: int, records: list[list[Record]]) -> tuple[str, Seg]:  # fmt: skip
    footer = SegmentFooter(
        e.record_count, blocks, e.first_offset, e.last_offset, e.end_offset, e.min_timestamp,
        e.max_timestamp, e.raw_bytes, crc,
    )  # fmt: skip
    return e.key, Seg(codec, topic, p, base, created, footer, records)


def _v1() -> Expected:
    o0 = [
        _entry("full", "orders", 0, 0, 4, 4, 0, 3, -1, R1 + 1000, 265, 114, "zstd"),
        _entry("full", "orders", 0, 4, 12, 3, 4, 9, R1 + 1500, R1 + 3000, 271, 73, "zstd"),
        _entry("full", "orders", 0, 12, 15, 0, -1, -1, -1, -1, 120, 0, "zstd"),
        _entry("full", "orders", 0, 15, 17, 2, 15, 16, R2 + 1000, R2 + 2000, 217, 65, "none"),
    ]
    o1 = [
        _entry("full", "orders", 1, 0, 3, 3, 0, 2, R1 + 10, R1 + 30, 211, 57, "zstd"),
        _entry("full", "orders", 1, 6, 8, 2, 6, 7, R2 + 10, R2 + 20, 190, 38, "none"),
    ]
    e0 = [
        _entry("full", "events", 0, BIG, BIG + 3, 3, BIG, BIG + 2, R1 + 100, R1 + 300, 271, 217, "zstd"),
        _entry(
            "full", "events", 0, BIG + 3, BIG + 5, 2, BIG + 3, BIG + 4, R2 + 100, R2 + 200, 214, 62, "none"
        ),
    ]
    l0 = [
        _entry("crashed", "logs", 0, 0, 2, 2, 0, 1, R3 + 1, R3 + 2, 200, 50, "zstd"),
        _entry("crashed", "logs", 0, 2, 5, 2, 2, 4, R3 + 3, R3 + 4, 200, 50, "zstd"),
    ]
    l1 = [_entry("crashed", "logs", 1, 10, 12, 1, 10, 10, R3 + 5, R3 + 5, 182, 23, "zstd")]

    segments = dict(
        [
            _seg(1, "orders", 0, 0, R1 + 5000, o0[0], 1, 3535360418, [[
                (0, R1, 1, b"k0", b"v0", None),
                (1, R1 + 500, 2, None, b"null key", [("trace", b"abc"), ("trace", b"def"), ("absent", None)]),
                (2, -1, 0, b"", b"", [("empty", b"")]),
                (3, R1 + 1000, 1, b"k3", None, None),
            ]]),
            _seg(1, "orders", 0, 4, R1 + 6000, o0[1], 2, 1893568882, [
                [(4, R1 + 2000, 1, b"k4", b"v4", None), (7, R1 + 3000, 1, b"k7", b"v7v7v7", [("h", b"1")])],
                [(9, R1 + 1500, 1, b"k9", b"v9", None)],
            ]),
            _seg(1, "orders", 0, 12, R1 + 7000, o0[2], 0, 558161692, []),
            _seg(0, "orders", 0, 15, R2 + 5000, o0[3], 1, 3082618001, [[
                (15, R2 + 1000, 2, b"k15", b"\x00\xff binary", [("\u00fc-utf8", b"\xc3\xbc")]),
                (16, R2 + 2000, 1, b"k16", b"v16", []),
            ]]),
            _seg(1, "orders", 1, 0, R1 + 5000, o1[0], 1, 2336770155, [[
                (0, R1 + 10, 1, b"a", b"1", None),
                (1, R1 + 20, 1, b"b", b"2", None),
                (2, R1 + 30, 1, b"c", b"3", None),
            ]]),
            _seg(0, "orders", 1, 6, R2 + 5000, o1[1], 1, 2857019932, [[
                (6, R2 + 10, 1, b"f", b"6", None),
                (7, R2 + 20, 1, b"g", b"7", None),
            ]]),
            _seg(1, "events", 0, BIG, R1 + 5000, e0[0], 1, 1854221601, [[
                (BIG, R1 + 100, 2, None, b'{"event":"start"}', JSON),
                (BIG + 1, R1 + 200, 2, None, b'{"event":"tick"}', JSON),
                (BIG + 2, R1 + 300, 2, None, b'{"event":"stop"}', JSON),
            ]]),
            _seg(0, "events", 0, BIG + 3, R2 + 5000, e0[1], 1, 1399685949, [[
                (BIG + 3, R2 + 100, 1, b"e", b"x", [("a", None), ("a", None)]),
                (BIG + 4, R2 + 200, 0, b"e", b"y", None),
            ]]),
            _seg(1, "logs", 0, 0, R3 + 1000, l0[0], 1, 660292443, [[
                (0, R3 + 1, 1, b"l0", b"line 0", None),
                (1, R3 + 2, 1, b"l1", b"line 1", None),
            ]]),
            _seg(1, "logs", 0, 2, R3 + 2000, l0[1], 1, 4245869181, [[
                (2, R3 + 3, 1, b"l2", b"line 2", None),
                (4, R3 + 4, 1, b"l4", b"line 4", None),
            ]]),
            _seg(1, "logs", 1, 10, R3 + 2000, l1[0], 1, 1590825876, [[
                (10, R3 + 5, 1, None, b"line 10", None),
            ]]),
        ]
    )  # fmt: skip
    full = Manifest(
        backup_id="full",
        created_ms=R1,
        updated_ms=R2 + 60_000,
        compression="zstd",
        topics={
            "events": TopicInfo(1, 1, {}),
            "orders": TopicInfo(3, 3, {"cleanup.policy": "compact", "min.insync.replicas": "2"}),
        },
        runs=[
            RunInfo("20240101T000000Z-aaaaaaaa", R1, R1 + 60_000, "complete", "snapshot", 13, 461),
            RunInfo("20240102T000000Z-bbbbbbbb", R2, R2 + 60_000, "complete", "snapshot", 6, 165),
        ],
        source_cluster_id="Q7s3nXn1T2yG2b2lGqkZ1w",
        libkb_version="0.1.0",
        format_version=1,
    )
    crashed = Manifest(
        backup_id="crashed",
        created_ms=R3,
        updated_ms=R3,
        compression="zstd",
        topics={"logs": TopicInfo(2, 1, {"retention.ms": "86400000"})},
        runs=[RunInfo("20240103T000000Z-cccccccc", R3, None, "running", "continuous", 0, 0)],
        source_cluster_id=None,
        libkb_version="0.1.0",
        format_version=1,
    )
    keys = sorted(
        [manifest_key("full"), groups_key("full"), manifest_key("crashed"), legacy_lease_key("crashed")]
        + [index_key("full", t, p) for t, p in [("orders", 0), ("orders", 1), ("events", 0)]]
        + [index_key("crashed", "logs", 0)]
        + list(segments)
    )
    return Expected(
        keys=keys,
        listed={"crashed": ("interrupted", 2), "full": ("complete", 19)},  # the indexes' counts
        manifests={"full": full, "crashed": crashed},
        indexes={
            index_key("full", "orders", 0): PartitionIndex("orders", 0, o0, [], 1),
            index_key("full", "orders", 1): PartitionIndex(
                "orders", 1, o1, [MissingRange(3, 6, "retention")], 1
            ),
            index_key("full", "events", 0): PartitionIndex("events", 0, e0, [], 1),
            index_key("crashed", "logs", 0): PartitionIndex("logs", 0, l0[:1], [], 1),
        },
        absent_indexes=[index_key("full", "orders", 2), index_key("crashed", "logs", 1)],
        segments=segments,
        groups={
            "full": (
                R2 + 59_000,
                [
                    GroupOffsets("audit", {"events": {0: BIG + 5}}),
                    GroupOffsets("billing", {"orders": {0: 17, 1: 7}}),
                ],
            )
        },
        leases={"crashed": LeaseInfo("20240103T000000Z-cccccccc", "backup-host-3", 3333, R3 + 60_000)},
        generations={},
        recovered={
            index_key("crashed", "logs", 0): PartitionIndex("logs", 0, l0, [], 1),
            index_key("crashed", "logs", 1): PartitionIndex("logs", 1, l1, [], 1),
        },
    )


def _v2() -> Expected:
    m0 = [
        _entry("lz4", "metrics", 0, 0, 6, 4, 0, 4, -1, R4 + 10, 347, 357, "lz4"),
        _entry("lz4", "metrics", 0, 6, 8, 0, -1, -1, -1, -1, 121, 0, "lz4"),
        _entry("lz4", "metrics", 0, 8, 10, 2, 8, 9, R5 + 1, R5 + 2, 210, 62, "zstd"),
    ]
    m1 = [
        _entry("lz4", "metrics", 1, 0, 3, 3, 0, 2, R4 + 1, R4 + 3, 258, 266, "lz4"),
        _entry("lz4", "metrics", 1, 3, 5, 2, 3, 4, R5 + 3, R5 + 4, 207, 54, "none"),
    ]
    p0 = [_entry("lz4", "plain", 0, 0, 2, 2, 0, 1, R5 + 10, R5 + 20, 198, 50, "zstd")]
    segments = dict(
        [
            _seg(2, "metrics", 0, 0, R4 + 5000, m0[0], 2, 62024942, [
                [
                    (0, R4, 1, b"host-a", b"cpu=0.50 " * 20, [("unit", b"pct"), ("unit", None)]),
                    (1, R4 + 10, 2, None, b"", None),
                ],
                [
                    (3, -1, 0, b"", None, [("\u00e9t\u00e9", b"")]),
                    (4, R4 + 5, 1, b"host-b", b"\x00\x01" * 40, None),
                ],
            ]),
            _seg(2, "metrics", 0, 6, R4 + 6000, m0[1], 0, 558161692, []),
            _seg(1, "metrics", 0, 8, R5 + 5000, m0[2], 1, 2125809113, [[
                (8, R5 + 1, 1, b"host-a", b"cpu=0.75", None),
                (9, R5 + 2, 1, b"host-b", b"cpu=0.10", []),
            ]]),
            _seg(2, "metrics", 1, 0, R4 + 5000, m1[0], 1, 951715430, [[
                (0, R4 + 1, 1, b"host-c", b"mem=0.25 " * 10, None),
                (1, R4 + 2, 1, b"host-c", b"mem=0.25 " * 10, [("a", b"1"), ("b", b"2"), ("a", b"3")]),
                (2, R4 + 3, 2, b"host-c", None, None),
            ]]),
            _seg(0, "metrics", 1, 3, R5 + 5000, m1[1], 1, 294821349, [[
                (3, R5 + 3, 1, None, b"\xff" * 3, [("z", None)]),
                (4, R5 + 4, 1, b"host-c", b"mem=0.30", None),
            ]]),
            _seg(1, "plain", 0, 0, R5 + 5000, p0[0], 1, 3156704943, [[
                (0, R5 + 10, 1, b"p", b"plain 0", None),
                (1, R5 + 20, 1, b"p", b"plain 1", None),
            ]]),
        ]
    )  # fmt: skip
    manifest = Manifest(
        backup_id="lz4",
        created_ms=R4,
        updated_ms=R5 + 60_000,
        compression="lz4",
        topics={"metrics": TopicInfo(2, 1, {"retention.ms": "604800000"}), "plain": TopicInfo(1, 1, {})},
        runs=[
            RunInfo("20240104T000000Z-dddddddd", R4, R4 + 60_000, "complete", "snapshot", 7, 623),
            RunInfo("20240105T000000Z-eeeeeeee", R5, R5 + 60_000, "complete", "snapshot", 6, 166),
        ],
        source_cluster_id="lz4-cluster-0000000000",
        libkb_version="0.1.0",
        format_version=2,
    )
    lease = lease_generation_key("lz4", 2)
    indexes = {
        index_key("lz4", "metrics", 0): PartitionIndex("metrics", 0, m0, [], 2),  # lists lz4 segments
        index_key("lz4", "metrics", 1): PartitionIndex("metrics", 1, m1, [], 2),
        index_key("lz4", "plain", 0): PartitionIndex("plain", 0, p0, [], 1),  # no lz4: still version 1
    }
    return Expected(
        keys=sorted([manifest_key("lz4"), groups_key("lz4"), lease, *indexes, *segments]),
        listed={"lz4": ("complete", 13)},
        manifests={"lz4": manifest},
        indexes=indexes,
        absent_indexes=[],
        segments=segments,
        groups={
            "lz4": (R5 + 59_000, [GroupOffsets("dashboards", {"metrics": {0: 10, 1: 4}, "plain": {0: 1}})])
        },
        leases={},
        generations={
            lease: LeaseInfo("20240105T000000Z-eeeeeeee", "backup-host-5", 5555, R5 + 60_000, 2, True)
        },
        recovered={},
    )


P1 = 1_707_091_200_000  # its first prune
P2 = 1_707_177_600_000  # its second, stopped before deleting


def _v4() -> Expected:
    """Version 4 added pruned ranges: v1's backups again, and ``pruned``."""
    v1 = _v1()

    def m(p: int, base: int, end: int, size: int, raw: int) -> SegmentEntry:
        first_ts, last_ts = R4 + 1000 * base + p, R4 + 1000 * (end - 1) + p
        return _entry(
            "pruned", "metrics", p, base, end, end - base, base, end - 1, first_ts, last_ts, size, raw, "zstd"
        )

    def rec(p: int, o: int) -> Record:
        return (o, R4 + 1000 * o + p, 1, f"m{p}-{o}".encode(), f"v{o}".encode(), None)

    def seg(e: SegmentEntry, p: int, crc: int) -> tuple[str, Seg]:
        footer = SegmentFooter(
            e.record_count, 1, e.first_offset, e.last_offset, e.end_offset, e.min_timestamp,
            e.max_timestamp, e.raw_bytes, crc,
        )  # fmt: skip
        records = [rec(p, o) for o in range(e.base_offset, e.end_offset)]
        return e.key, Seg(1, "metrics", p, e.base_offset, R4 + 10_000 + e.base_offset, footer, [records])

    leftover, kept0, kept1 = m(0, 6, 9, 218, 69), m(0, 9, 12, 225, 73), m(1, 7, 8, 185, 23)
    older, week = "kafka-backup prune --older-than 30d", "backup.retention: max_age 7d, keep_segments 1"
    p0 = PartitionIndex("metrics", 0, [kept0], [], 4, [
        PrunedRange(0, 6, 2, 6, 436, R4, R4 + 5000, P1, older),
        PrunedRange(6, 9, 1, 3, 218, R4 + 6000, R4 + 8000, P2, week),
    ])  # fmt: skip
    p1 = PartitionIndex(
        "metrics", 1, [kept1], [], 4, [PrunedRange(0, 7, 2, 4, 408, R4 + 1, R4 + 6001, P1, older)]
    )
    p2 = PartitionIndex("metrics", 2, [], [], 4, [PrunedRange(0, 4, 1, 4, 232, R4 + 2, R4 + 3002, P1, older)])
    pruned = Manifest(
        backup_id="pruned",
        created_ms=R4,
        updated_ms=R4 + 60_000,
        compression="zstd",
        topics={"metrics": TopicInfo(3, 1, {"retention.ms": "604800000"})},
        runs=[RunInfo("20240104T000000Z-dddddddd", R4, R4 + 60_000, "complete", "snapshot", 21, 487)],
        source_cluster_id="Q7s3nXn1T2yG2b2lGqkZ1w",
        libkb_version="0.1.0",
        format_version=1,
    )
    segments = dict([seg(leftover, 0, 41689463), seg(kept0, 0, 414502128), seg(kept1, 1, 4072137384)])
    indexes = {index_key("pruned", "metrics", p): i for p, i in enumerate([p0, p1, p2])}
    return dataclasses.replace(
        v1,
        keys=sorted([*v1.keys, manifest_key("pruned"), *indexes, *segments]),
        manifests={**v1.manifests, "pruned": pruned},
        listed={
            **v1.listed,
            "pruned": ("complete", kept0.record_count + kept1.record_count),
        },  # not the leftover
        indexes={**v1.indexes, **indexes},
        segments={**v1.segments, **segments},
        pruned_leftovers=[leftover.key],
    )


R8 = 1_704_672_000_000  # run 1 of "recreated" started
R9 = 1_704_758_400_000  # run 2 of "recreated" started: orders had been deleted and re-created


def _v5() -> Expected:
    """v1's backups, and "recreated": topic ids, and a re-created topic backed up as incarnation 2."""
    v1 = _v1()
    b = "recreated"
    a0 = _entry(b, "audit", 0, 0, 2, 2, 0, 1, R8, R8 + 1, 208, 66, "zstd")
    a0b = _entry(b, "audit", 0, 2, 4, 2, 2, 3, R9 + 2, R9 + 3, 208, 66, "zstd")
    o0 = _entry(b, "orders", 0, 0, 3, 3, 0, 2, R8, R8 + 2000, 220, 99, "zstd")
    o1 = _entry(b, "orders", 1, 0, 2, 2, 0, 1, R8 + 1, R8 + 1001, 210, 66, "zstd")
    n0 = _entry(b, "orders@2", 0, 0, 4, 4, 0, 3, R9, R9 + 3000, 231, 128, "zstd")

    def first(p: int, lo: int, hi: int) -> list[list[Record]]:
        return [
            [(o, R8 + 1000 * o + p, 1, f"old-{p}-{o}".encode(), b"first log", None) for o in range(lo, hi)]
        ]

    def audit(lo: int, hi: int, when: int) -> list[list[Record]]:
        return [[(o, when + o, 1, None, f"audit {o}".encode(), [("who", b"ops")]) for o in range(lo, hi)]]

    second: list[list[Record]] = [
        [(o, R9 + 1000 * o, 1, f"new-{o}".encode(), b"second log", None) for o in range(4)]
    ]
    segments = dict([
        _seg(1, "audit", 0, 0, R8 + 5000, a0, 1, 1326364065, audit(0, 2, R8)),
        _seg(1, "audit", 0, 2, R9 + 5000, a0b, 1, 1217114860, audit(2, 4, R9)),
        _seg(1, "orders", 0, 0, R8 + 5000, o0, 1, 3285341989, first(0, 0, 3)),
        _seg(1, "orders", 1, 0, R8 + 5000, o1, 1, 2127673013, first(1, 0, 2)),
        # incarnation 2's segment names its stored topic; the segment itself is still version 1
        _seg(1, "orders@2", 0, 0, R9 + 5000, n0, 1, 2545520888, second),
    ])  # fmt: skip
    indexes = {
        index_key(b, "audit", 0): PartitionIndex("audit", 0, [a0, a0b], [], 1),
        index_key(b, "orders", 0): PartitionIndex("orders", 0, [o0], [], 1),
        index_key(b, "orders", 1): PartitionIndex("orders", 1, [o1], [], 1),
        index_key(b, "orders@2", 0): PartitionIndex("orders@2", 0, [n0], [], 5),
    }
    manifest = Manifest(
        backup_id=b,
        created_ms=R8,
        updated_ms=R9 + 60_000,
        compression="zstd",
        topics={
            "audit": TopicInfo(1, 1, {}, "Yz9aB2cD4eF6gH8iJ0kL1m"),
            "orders": TopicInfo(2, 1, {}, "2bJ7mXq0R4aC1dE5fG9hIw"),
            "orders@2": TopicInfo(1, 1, {"retention.ms": "86400000"}, "Vx3kL8pQ2nM6oR1sT5uW7g"),
        },
        runs=[
            RunInfo("20240108T000000Z-eeeeeeee", R8, R8 + 60_000, "complete", "snapshot", 7, 231),
            RunInfo("20240109T000000Z-ffffffff", R9, R9 + 60_000, "complete", "snapshot", 6, 194),
        ],
        source_cluster_id="Q7s3nXn1T2yG2b2lGqkZ1w",
        libkb_version="0.1.0",
        format_version=5,
    )
    lease = LeaseInfo("20240109T000000Z-ffffffff", "backup-host-9", 9999, R9 + 60_000, 2, True)
    return dataclasses.replace(
        v1,
        keys=sorted([*v1.keys, manifest_key(b), lease_generation_key(b, 2), *indexes, *segments]),
        manifests={**v1.manifests, b: manifest},
        listed={**v1.listed, b: ("complete", 13)},
        indexes={**v1.indexes, **indexes},
        segments={**v1.segments, **segments},
        generations={**v1.generations, lease_generation_key(b, 2): lease},
        # two incarnations of orders: each restored into a topic of its own
        restore_mapping={b: {"orders": "orders-first-log", "orders@2": "orders"}},
    )


ROW = b'{"host":"host-a","rack":"r7","cpu":0.50,"mem":0.25,"disk":"ok","note":"steady"}' * 4


def _noise(seed: int, size: int) -> bytes:
    out, block = b"", seed.to_bytes(8, "little")
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block
    return out[:size]


def _v7() -> Expected:
    """Version 7 added codec 3, zstd-stream: one backup, ``stream``."""
    m0 = [_entry("stream", "metrics", 0, 0, 10, 8, 0, 8, -1, R8 + 8, 3392, 4393, "zstd-stream")]
    m1 = [
        _entry("stream", "metrics", 1, 0, 1, 1, 0, 0, R8 + 10, R8 + 10, 198, 117, "zstd"),
        _entry("stream", "metrics", 1, 1, 2, 1, 1, 1, R8 + 11, R8 + 11, 200, 126, "zstd-stream"),
    ]
    segments = dict(
        [
            _seg(3, "metrics", 0, 0, R8 + 5000, m0[0], 5, 1609321350, [
                [(0, R8, 1, b"host-a", ROW, None), (1, R8 + 1, 1, b"host-b", ROW[:200], [("unit", b"pct")])],
                [
                    (2, R8 + 2, 1, b"host-a", ROW, None),
                    (4, R8 + 4, 2, None, _noise(2, 700), [("\u00e9t\u00e9", None)]),
                ],
                [(5, R8 + 5, 1, b"blob", _noise(1, 2048), None)],
                [(6, R8 + 6, 1, b"host-a", ROW, None)],
                [
                    (7, -1, 0, b"", None, None),
                    (8, R8 + 8, 1, b"host-a", ROW[:300], [("a", b"1"), ("a", b"2")]),
                ],
            ]),
            _seg(1, "metrics", 1, 0, R8 + 5000, m1[0], 1, 2087388942, [
                [(0, R8 + 10, 1, b"k", b"zstd block " * 9, None)],
            ]),
            _seg(3, "metrics", 1, 1, R8 + 6000, m1[1], 1, 3649817560, [
                [(1, R8 + 11, 1, b"k", b"zstd stream " * 9, None)],
            ]),
        ]
    )  # fmt: skip
    manifest = Manifest(
        backup_id="stream",
        created_ms=R8,
        updated_ms=R8 + 60_000,
        compression="zstd",
        topics={"metrics": TopicInfo(2, 1, {})},
        runs=[RunInfo("20240108T000000Z-ffffffff", R8, R8 + 60_000, "complete", "snapshot", 10, 4636)],
        source_cluster_id="stream-cluster-00000000",
        libkb_version="0.1.0",
        format_version=1,  # compression zstd: the manifest needs no newer version
    )
    lease = lease_generation_key("stream", 1)
    indexes = {
        index_key("stream", "metrics", 0): PartitionIndex("metrics", 0, m0, [], 7),
        index_key("stream", "metrics", 1): PartitionIndex("metrics", 1, m1, [], 7),
    }
    return Expected(
        keys=sorted([manifest_key("stream"), groups_key("stream"), lease, *indexes, *segments]),
        listed={"stream": ("complete", 10)},
        manifests={"stream": manifest},
        indexes=indexes,
        absent_indexes=[],
        segments=segments,
        groups={"stream": (R8 + 59_000, [GroupOffsets("graphs", {"metrics": {0: 9, 1: 2}})])},
        leases={},
        generations={
            lease: LeaseInfo("20240108T000000Z-ffffffff", "backup-host-8", 8888, R8 + 60_000, 1, True)
        },
        recovered={},
    )


R10 = 1_704_844_800_000  # the run of "ranged"


def _v8() -> Expected:
    """Version 8 added restart points to index entries: one backup, ``ranged``."""
    points_0 = (
        RestartPoint(44, 0, 0, 0, R10 + 50, R10 + 200),
        RestartPoint(284, 2, 4, 4, R10 + 90, R10 + 400),
        RestartPoint(2134, 4, 8, 7, -1, R10 + 500),
    )
    points_1 = (RestartPoint(44, 0, 0, 0, R10 + 10, R10 + 20), RestartPoint(197, 2, 2, 2, R10 + 5, R10 + 5))
    c0 = [
        replace(
            _entry("ranged", "clicks", 0, 0, 11, 9, 0, 9, -1, R10 + 500, 2369, 3066, "zstd-stream"),
            restarts=points_0,
        ),
        _entry("ranged", "clicks", 0, 11, 12, 1, 11, 11, R10 + 600, R10 + 600, 189, 27, "zstd-stream"),
    ]
    c1 = [
        replace(
            _entry("ranged", "clicks", 1, 0, 3, 3, 0, 2, R10 + 5, R10 + 20, 359, 311, "zstd"),
            restarts=points_1,
        )
    ]
    segments = dict(
        [
            _seg(3, "clicks", 0, 0, R10 + 5000, c0[0], 5, 624576298, [
                [(0, R10 + 100, 1, b"user-1", ROW, None), (1, R10 + 50, 1, b"user-2", ROW[:160], None)],
                [(2, R10 + 200, 1, b"user-1", ROW, [("src", b"web")]), (3, R10 + 150, 2, None, b"", None)],
                [
                    (4, R10 + 300, 1, b"user-3", ROW[:240], None),
                    (6, R10 + 90, 1, b"user-1", _noise(4, 600), None),
                ],
                [(7, R10 + 400, 1, b"blob", _noise(3, 1024), [("kind", None)])],
                [(8, R10 + 500, 1, b"user-2", ROW[:200], None), (9, -1, 0, b"user-2", None, None)],
            ]),
            _seg(3, "clicks", 0, 11, R10 + 6000, c0[1], 1, 783435304, [
                [(11, R10 + 600, 1, b"user-4", b"last", None)],
            ]),
            _seg(1, "clicks", 1, 0, R10 + 5000, c1[0], 3, 1447055100, [
                [(0, R10 + 10, 1, b"k", b"block zero " * 8, None)],
                [(1, R10 + 20, 1, b"k", b"block one " * 8, None)],
                [(2, R10 + 5, 1, b"k", b"block two " * 8, [("late", b"1")])],
            ]),
        ]
    )  # fmt: skip
    manifest = Manifest(
        backup_id="ranged",
        created_ms=R10,
        updated_ms=R10 + 60_000,
        compression="zstd",
        topics={"clicks": TopicInfo(2, 1, {})},
        runs=[RunInfo("20240110T000000Z-abcdef01", R10, R10 + 60_000, "complete", "snapshot", 13, 3404)],
        source_cluster_id="ranged-cluster-0000000",
        libkb_version="0.1.0",
        format_version=1,  # restart points are in indexes only
    )
    lease = lease_generation_key("ranged", 1)
    indexes = {
        index_key("ranged", "clicks", 0): PartitionIndex("clicks", 0, c0, [], 8),
        index_key("ranged", "clicks", 1): PartitionIndex("clicks", 1, c1, [], 8),
    }
    return Expected(
        keys=sorted([manifest_key("ranged"), groups_key("ranged"), lease, *indexes, *segments]),
        listed={"ranged": ("complete", 13)},
        manifests={"ranged": manifest},
        indexes=indexes,
        absent_indexes=[],
        segments=segments,
        groups={"ranged": (R10 + 59_000, [GroupOffsets("dashboards", {"clicks": {0: 7, 1: 3}})])},
        leases={},
        generations={
            lease: LeaseInfo("20240110T000000Z-abcdef01", "backup-host-10", 1010, R10 + 60_000, 1, True)
        },
        recovered={},
    )


EXPECTED: dict[str, Expected] = {
    "v1": _v1(),
    "v2": _v2(),
    "v4": _v4(),
    "v5": _v5(),
    "v7": _v7(),
    "v8": _v8(),
}
#: Versions whose fixture is not a plain libkb backup, each tested in a module of its own
#: (v6: encrypted with random data keys and nonces, so never rewritten byte for byte).
OTHER_LAYOUTS = {"v3": "tests/format/test_compat_adopted.py", "v6": "tests/format/test_compat_encrypted.py"}


@pytest.fixture(params=[v for v in VERSIONS if v in EXPECTED])
def version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def backend(version: str) -> Iterator[StorageBackend]:
    with create_backend_from_config(FilesystemConfig(path=str(COMPAT_ROOT / version))) as b:
        yield b


@pytest.fixture
def expected(version: str) -> Expected:
    return EXPECTED[version]


# -- an independent reader, written from docs/format.rst only ------------------------------


def parse_per_spec(data: bytes) -> dict[str, Any]:
    """Decode a segment with struct/zlib/zstandard/lz4/msgpack, checking every checksum as documented."""
    assert data[:4] == b"LKBS"
    version, codec, flags, header_len, partition, base, created, topic_len = struct.unpack_from(
        "<BBHIiqqH", data, 4
    )
    assert flags == 0
    assert header_len == 38 + topic_len
    topic = data[34 : 34 + topic_len].decode("utf-8")
    (header_crc,) = struct.unpack_from("<I", data, header_len - 4)
    assert zlib.crc32(data[: header_len - 4]) == header_crc

    footer = data[-76:]
    assert footer[:4] == b"LKBF" and footer[72:] == b"LKBE"
    f = struct.unpack_from("<QIqqqqqQII", footer, 4)
    assert zlib.crc32(footer[:68]) == f[9]
    assert zlib.crc32(data[:-76]) == f[8]

    blocks: list[list[Record]] = []
    pos = header_len
    stream: Any = None  # codec 3: the zstd context of the current restart interval
    while pos < len(data) - 76:
        block_len, raw_len, count, first, last, payload_crc = struct.unpack_from("<IIIqqI", data, pos)
        payload = data[pos + 32 : pos + 4 + block_len]
        assert len(payload) == block_len - 28
        assert zlib.crc32(payload) == payload_crc
        if codec == 1:
            raw = zstandard.ZstdDecompressor().decompress(payload, max_output_size=raw_len)
        elif codec == 2:
            raw = lz4.frame.decompress(payload)
        elif codec == 3:  # kind byte: 0 stored, 1 continues the frame, 2 starts a new one, 3 alone
            kind, body = payload[0], payload[1:]
            assert kind in (0, 1, 2, 3) and (kind != 1 or stream is not None)
            if kind == 2:
                stream = zstandard.ZstdDecompressor().decompressobj()
            if kind == 3:
                raw = zstandard.ZstdDecompressor().decompressobj().decompress(body)
            else:
                raw = body if kind == 0 else stream.decompress(body)
        else:
            raw = payload
        assert len(raw) == raw_len
        records: list[Record] = []
        unpacker = msgpack.Unpacker(raw=False, use_list=True)
        unpacker.feed(raw)
        for off, ts, ts_type, key, value, headers in unpacker:
            assert isinstance(off, int) and isinstance(ts, int) and ts_type in (0, 1, 2)
            assert key is None or isinstance(key, bytes)
            assert value is None or isinstance(value, bytes)
            if headers is not None:
                assert all(isinstance(n, str) and (v is None or isinstance(v, bytes)) for n, v in headers)
                headers = [(n, v) for n, v in headers]
            records.append((off, ts, ts_type, key, value, headers))
        assert len(records) == count
        assert (records[0][0], records[-1][0]) == (first, last)
        blocks.append(records)
        pos += 4 + block_len
    assert pos == len(data) - 76
    return {
        "version": version,
        "codec": codec,
        "topic": topic,
        "partition": partition,
        "base": base,
        "created_ms": created,
        "footer": SegmentFooter(*f[:9]),
        "blocks": blocks,
    }


# -- the fixtures -----------------------------------------------------------------------------


def test_every_format_version_has_a_fixture_and_expectations() -> None:
    assert [f"v{n}" for n in range(1, FORMAT_VERSION + 1)] == VERSIONS, (
        "each released format version needs tests/data/compat/v<N>/ (run tests/format/make_compat_fixture.py)"
    )
    assert sorted([*EXPECTED, *OTHER_LAYOUTS]) == sorted(VERSIONS), "add this version's expectations"


def test_listing_is_exactly_the_documented_objects(backend: StorageBackend, expected: Expected) -> None:
    assert backend.list("") == expected.keys
    for key in expected.keys:
        parsed = parse_segment_key(key)
        assert (parsed is not None) == key.endswith(".kbs")


def test_manifests(backend: StorageBackend, expected: Expected) -> None:
    for backup_id, manifest in expected.manifests.items():
        key = manifest_key(backup_id)
        assert Manifest.from_json(backend.get(key), name=key) == manifest


def test_indexes_tile_their_coverage(backend: StorageBackend, expected: Expected) -> None:
    for key, want in expected.indexes.items():
        index = PartitionIndex.from_json(backend.get(key), name=key)
        assert index == want
        assert index.coverage_problems() == []
        spans = sorted(
            [(s.base_offset, s.end_offset) for s in index.segments]
            + [(m.start, m.end) for m in index.missing]
            + [(p.start, p.end) for p in index.pruned]
        )
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert start == end  # half-open ranges meet exactly: no hole, no overlap
        assert (index.start_offset, index.end_offset) == (spans[0][0], spans[-1][1])
        for entry in index.segments:
            # the index is only a cache: header + footer give the same entry (restart points aside:
            # an entry rebuilt from them has none, and its segment is read whole)
            assert read_segment_entry(backend, entry.key, entry.base_offset) == replace(entry, restarts=None)
    for key in expected.absent_indexes:
        assert not backend.exists(key)


def test_segments_decode_exactly_and_checksums_hold(
    version: str, backend: StorageBackend, expected: Expected
) -> None:
    for key, want in expected.segments.items():
        data = backend.get(key)
        reader = SegmentReader(data, name=key)
        reader.verify()
        header = reader.header
        assert (header.codec, header.topic, header.partition, header.base_offset, header.created_ms) == (
            want.codec,
            want.topic,
            want.partition,
            want.base,
            want.created_ms,
        )
        assert parse_segment_key(key) == (key.split("/")[0], want.topic, want.partition, want.base)
        assert reader.footer == want.footer
        records = [r for block in want.blocks for r in block]
        assert list(reader.records()) == records
        assert [b.record_count for b in reader.blocks()] == [len(b) for b in want.blocks]

        # footer stats agree with the records, and the records lie inside [base, end)
        footer = reader.footer
        offsets = [r[0] for r in records]
        assert offsets == sorted(set(offsets))
        assert all(want.base <= o < footer.end_offset for o in offsets)
        if records:
            assert (footer.first_offset, footer.last_offset) == (offsets[0], offsets[-1])
            assert footer.min_timestamp == min(r[1] for r in records)
            assert footer.max_timestamp == max(r[1] for r in records)
        else:
            assert (footer.first_offset, footer.last_offset, footer.min_timestamp) == (-1, -1, -1)
            assert footer.max_timestamp == -1 and footer.block_count == 0 and footer.raw_bytes == 0

        # an independent reader built from the documentation agrees byte for byte
        spec = parse_per_spec(data)
        assert spec["version"] == header.version == CODEC_VERSION[want.codec]  # the lowest that has the codec
        assert (spec["codec"], spec["topic"], spec["partition"], spec["base"]) == (
            want.codec,
            want.topic,
            want.partition,
            want.base,
        )
        assert spec["footer"] == want.footer
        assert spec["blocks"] == want.blocks


def test_consumer_group_snapshots(backend: StorageBackend, expected: Expected) -> None:
    for backup_id, (taken_ms, groups) in expected.groups.items():
        assert groups_from_json(backend.get(groups_key(backup_id))) == (taken_ms, groups)
    for backup_id in expected.manifests:
        if backup_id not in expected.groups:
            assert not backend.exists(groups_key(backup_id))


def test_leases(backend: StorageBackend, expected: Expected) -> None:
    for backup_id, lease in expected.leases.items():
        assert LeaseInfo.from_json(backend.get(legacy_lease_key(backup_id))) == lease
    for key, lease in expected.generations.items():
        assert LeaseInfo.from_json(backend.get(key)) == lease
    for backup_id in expected.manifests:
        if backup_id not in expected.leases:
            assert not backend.exists(legacy_lease_key(backup_id))


def test_restart_points_are_where_the_documentation_says(backend: StorageBackend, expected: Expected) -> None:
    """Each ``restarts`` array, read from the raw JSON, against the segment's bytes walked per spec."""
    for key in expected.indexes:
        for seg in json.loads(backend.get(key))["segments"]:
            if "restarts" not in seg:
                continue
            data = backend.get(seg["key"])
            (header_len,) = struct.unpack_from("<I", data, 8)
            heads, pos = [], header_len
            while pos < len(data) - 76:
                block_len, _, count, first, _, _ = struct.unpack_from("<IIIqqI", data, pos)
                heads.append((pos, count, first))
                pos += 4 + block_len
            stamps = [[r[1] for r in block] for block in parse_per_spec(data)["blocks"]]
            points = seg["restarts"]
            assert len(points) >= 2 and points[0][:4] == [header_len, 0, seg["first_offset"], 0]
            ends = [p[1] for p in points[1:]] + [len(heads)]
            for (position, index, first, before, low, high), end in zip(points, ends, strict=True):
                assert (heads[index][0], heads[index][2]) == (position, first)
                assert sum(h[1] for h in heads[:index]) == before
                assert (low, high) == (
                    min(min(s) for s in stamps[index:end]),
                    max(max(s) for s in stamps[index:end]),
                )


def test_a_version_8_segment_is_read_from_the_restart_point_a_restore_needs() -> None:
    with create_backend_from_config(FilesystemConfig(path=str(COMPAT_ROOT / "v8"))) as backend:
        source = open_backup(backend, "ranged")
        entry = source.readable_coverage("clicks", 0).segments[0]
        stored = source.load(entry, Wanted(0, 11, low=R10 + 300))  # interval 0 is older than that
        assert stored.read_bytes == entry.size - 284  # from interval 1's first block head
        got = [r for batch in stored.batches(0, 11) for r in batch]
        assert [r[0] for r in got] == [4, 6, 7, 8, 9]  # intervals 1 and 2, whole blocks
        assert source.load(entry).read_bytes == entry.size
        assert (
            source.load(entry, Wanted(0, 11, low=R10 + 90)).read_bytes == entry.size
        )  # interval 0 may hold it


# -- what users run on it: list, validate --deep, restore ---------------------------------------


def test_list_shows_every_backup(backend: StorageBackend, expected: Expected) -> None:
    listed = {s.backup_id: (s.status, s.records) for s in list_backups(backend)}
    assert listed == expected.listed


def test_deep_validation_passes(backend: StorageBackend, expected: Expected) -> None:
    for backup_id, (_, records) in expected.listed.items():
        report = validate_backup(backend, backup_id, deep=True)
        assert report.ok, report.problems
        assert report.checked_records >= records  # the crashed run's unindexed segments are read too


def _stored(expected: Expected, backup_id: str) -> dict[tuple[str, int], list[Record]]:
    """The records of each partition of a backup, in offset order, from the expectations above."""
    out: dict[tuple[str, int], list[Record]] = {}
    for key, seg in sorted(expected.segments.items(), key=lambda kv: (kv[0].split("/")[:4], kv[1].base)):
        if key.startswith(f"{backup_id}/") and key not in expected.pruned_leftovers:
            out.setdefault((seg.topic, seg.partition), []).extend(r for b in seg.blocks for r in b)
    return out


def test_restore_gives_back_the_exact_records(version: str, expected: Expected, tmp_path: Path) -> None:
    """Each complete backup restored into an empty (fake) cluster: every partition's records, exactly."""
    for backup_id, (status, _) in expected.listed.items():
        if status != "complete":
            continue
        target = FakeKafka()
        config = parse_config(
            {
                "mode": "restore",
                "backup_id": backup_id,
                "target": {"bootstrap_servers": ["fake:9092"], "topics": {"include": ["*"]}},
                "storage": {"backend": "filesystem", "path": str(tmp_path / backup_id / version)},
                "restore": {
                    "create_topics": True,
                    "topic_mapping": expected.restore_mapping.get(backup_id, {}),
                },
            },
            source="test",
        )
        with _copy(version, tmp_path / backup_id) as backend:
            engine = RestoreEngine(
                config,
                backend=backend,
                admin=target.admin(),
                producer_factory=target.producer_factory,
                consumer_factory=target.consumer_factory,
            )
            result = engine.run()
        stored = _stored(expected, backup_id)
        assert result.status == "complete" and result.records == sum(map(len, stored.values()))
        mapping = expected.restore_mapping.get(backup_id, {})
        for (stored_name, partition), records in stored.items():
            topic = mapping.get(stored_name, parse_stored_topic(stored_name)[0])
            # A restore produces each record's timestamp, key, value and headers; a record without a
            # timestamp (type 0, or -1) gets the target's time; no headers and [] are one on the wire.
            want = [
                (ts if ts_type and ts >= 0 else None, k, v, h or None) for _, ts, ts_type, k, v, h in records
            ]
            got = [r.stored() for r in target.cluster.records(topic, partition)]
            assert len(got) == len(want), (topic, partition)
            got_as_wanted = [
                (g[1] if w[0] is not None else None, *g[3:]) for g, w in zip(got, want, strict=True)
            ]
            assert got_as_wanted == want, (topic, partition)


# -- crash consistency ------------------------------------------------------------------------


def _copy(version: str, tmp_path: Path) -> StorageBackend:
    target = tmp_path / version
    shutil.copytree(COMPAT_ROOT / version, target)
    return create_backend_from_config(FilesystemConfig(path=str(target)))


def test_crashed_run_indexes_are_rebuilt_from_the_listing(
    version: str, expected: Expected, tmp_path: Path
) -> None:
    with _copy(version, tmp_path) as backend:
        for key, want in expected.recovered.items():
            bid, _, topic, part, _ = key.split("/")
            partition = int(part.split("=")[1])
            index, changed = load_index(backend, bid, topic, partition, repair=True)
            assert changed
            assert index == want
            assert index.coverage_problems() == []
        assert backend.list("") == expected.keys  # adoption deleted nothing


def test_lost_indexes_are_rebuilt_from_segment_headers_and_footers(
    version: str, expected: Expected, tmp_path: Path
) -> None:
    with _copy(version, tmp_path) as backend:
        for key, want in expected.indexes.items():
            if want.missing or want.pruned:
                continue  # missing and pruned ranges are recorded only in the index (docs/format.rst)
            backend.delete(key)
            bid, _, topic, part, _ = key.split("/")
            index, changed = load_index(backend, bid, topic, int(part.split("=")[1]), repair=False)
            assert changed
            want_all = expected.recovered.get(key, want)
            assert index.segments == [replace(s, restarts=None) for s in want_all.segments]


# -- versioning -------------------------------------------------------------------------------


def test_segments_a_prune_left_are_never_adopted_and_a_repair_deletes_them(
    version: str, expected: Expected, tmp_path: Path
) -> None:
    with _copy(version, tmp_path) as backend:
        for key in expected.pruned_leftovers:
            bid, _, topic, part, _ = key.split("/")
            partition = int(part.split("=")[1])
            want = expected.indexes[index_key(bid, topic, partition)]
            assert load_index(backend, bid, topic, partition, repair=False) == (want, False)
            assert backend.exists(key)
            assert load_index(backend, bid, topic, partition, repair=True) == (want, False)
            assert not backend.exists(key)


def test_pruned_ranges_need_the_version_that_added_them() -> None:
    key = index_key("pruned", "metrics", 2)
    body = json.loads((COMPAT_ROOT / f"v{PRUNED_RANGES_VERSION}" / key).read_bytes())
    body["format_version"] = 1
    with pytest.raises(FormatError, match="has pruned ranges but states format version 1"):
        PartitionIndex.from_json(json.dumps(body).encode(), name=key)
    assert PartitionIndex("t", 0).to_json().startswith(b'{"format":"libkb-backup","format_version":1,')


# -- versioning -------------------------------------------------------------------------------

NEWEST_PLAIN = [v for v in VERSIONS if v in EXPECTED][-1]  # the newest with a plain libkb fixture


def _a_segment(expected: Expected) -> bytes:
    key = next(k for k, s in expected.segments.items() if s.footer.record_count)
    return (COMPAT_ROOT / NEWEST_PLAIN / key).read_bytes()


def test_a_future_segment_version_is_refused_clearly() -> None:
    data = bytearray(_a_segment(EXPECTED[NEWEST_PLAIN]))
    data[4] = FORMAT_VERSION + 1
    (header_len,) = struct.unpack_from("<I", data, 8)
    struct.pack_into("<I", data, header_len - 4, zlib.crc32(bytes(data[: header_len - 4])))
    with pytest.raises(SegmentError, match=f"format version {FORMAT_VERSION + 1} is {NEWER}"):
        decode_header(bytes(data), name="future.kbs")
    with pytest.raises(SegmentError, match=NEWER):
        SegmentReader(bytes(data), name="future.kbs")


def _newest_objects() -> list[tuple[str, Any]]:
    expected = EXPECTED[NEWEST_PLAIN]
    return [
        (next(iter(manifest_key(b) for b in expected.manifests)), Manifest.from_json),
        (next(iter(expected.indexes)), PartitionIndex.from_json),
        (groups_key(next(iter(expected.groups))), groups_from_json),
    ]


@pytest.mark.parametrize(("key", "loader"), _newest_objects())
def test_a_future_json_version_is_refused_clearly(key: str, loader: Any) -> None:
    body = json.loads((COMPAT_ROOT / NEWEST_PLAIN / key).read_bytes())
    body["format_version"] = FORMAT_VERSION + 1
    body["a_field_from_the_future"] = {"x": 1}
    with pytest.raises(FormatError, match=f"format version {FORMAT_VERSION + 1} is {NEWER}"):
        loader(json.dumps(body).encode(), name=key)


def test_todays_writers_still_write_every_version_byte_for_byte(version: str, tmp_path: Path) -> None:
    """An object is written with the lowest version that holds it: a backup using only what version N
    had is still written as version N, readable by every libkb since. (Leases carry no format version.)"""
    keys = write_fixture(tmp_path / version, int(version[1:]))
    assert keys == EXPECTED[version].keys
    for key in keys:
        if parse_lease_key(key) is None:
            assert (tmp_path / version / key).read_bytes() == (COMPAT_ROOT / version / key).read_bytes(), key


# -- the worked example in docs/format.rst ----------------------------------------------------


def _doc_dump() -> bytes:
    text = DOCS.read_text(encoding="utf-8")
    block = text.split(".. compat-hexdump-start", 1)[1].split(".. compat-hexdump-end", 1)[0]
    rows = re.findall(r"^\s+([0-9a-f]{4})  ((?:[0-9a-f]{2} ?)+)", block, flags=re.M)
    data = b"".join(bytes.fromhex(hexes) for _, hexes in rows)
    assert [int(o, 16) for o, _ in rows] == list(range(0, len(data), 16))
    return data


def test_the_documented_hex_dump_is_what_libkb_writes_and_reads() -> None:
    records: list[Record] = [
        (41, 1_700_000_000_000, 1, b"k", b"hi", [("h", b"1"), ("h", None)]),
        (42, 1_700_000_000_005, 2, None, b"", None),
    ]
    data = _doc_dump()
    reader = SegmentReader(data)
    reader.verify()
    assert list(reader.records()) == records
    assert (reader.header.topic, reader.header.partition, reader.header.base_offset) == ("demo", 0, 40)
    assert reader.footer.end_offset == 44
    assert parse_per_spec(data)["blocks"] == [records]
    assert encode_segment("demo", 0, 40, 44, records, codec=0, created_ms=1_700_000_001_000) == data
