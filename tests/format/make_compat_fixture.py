"""Write the backup-format compatibility fixture of one format version.

Run by hand, once per released format version, from the repository root::

    .venv/bin/python tests/format/make_compat_fixture.py          # writes tests/data/compat/v<N>/
    .venv/bin/python tests/format/make_compat_fixture.py --force  # only while v<N> is unreleased

``N`` is :data:`libkb.format.segment.FORMAT_VERSION` unless ``--version`` says
otherwise. The script writes through libkb's real filesystem storage backend
with libkb's real writers (:class:`~libkb.format.segment.SegmentWriter`,
:class:`~libkb.format.segment.BlockEncoder`, :func:`~libkb.format.segment.encode_segment`
and the index/manifest models), in the order the backup engine writes (lease,
manifest, then per partition each segment before the index that lists it,
consumer groups, final manifest).

The generated files are committed and must never change once the version is
released: ``tests/format/test_compat.py`` reads every ``tests/data/compat/v*/``
directory with the current code and compares it with expectations written out
by hand in the test. A new format version adds a new directory (bump
``FORMAT_VERSION``, add a writer for what the version added to :data:`WRITERS`,
run this script, then add that directory's expectations to the test); the old
directories stay and keep passing. See ``docs/format.rst`` ("Compatibility
fixtures").

``v1`` holds two backups:

``full``
    two complete runs (zstd, then none): 2 topics, 4 partitions (one never
    had data), null/empty keys and values, duplicate, null and empty header
    values, non-ASCII header names, all three timestamp types, timestamps out
    of order, offset gaps inside and at the end of a segment, a segment of
    several blocks, an empty-coverage segment, a missing range (retention),
    offsets above 2**32, and a consumer-group snapshot.
``crashed``
    a run that died: manifest still ``running``, its lease left behind, one
    segment stored but not yet in its partition's index, and a partition
    whose first index was never written. Readers rebuild both indexes from
    the listing and the segments' headers and footers.

``v3`` (a backup continuing another tool's) holds one backup, ``adopted``:
the Rust kafka-backup's part (written with ``tests/rust_format.py``, which
writes what that tool writes) and libkb's part under ``adopted/libkb/``,
whose manifest's ``continues`` says where each partition's Rust part ends.

``v4`` (pruned ranges) holds v1's two backups again and:

``pruned`` (version 4 on)
    retention at work, through libkb's own pruning code
    (:func:`libkb.retention.apply_cut`): ``metrics[0]`` pruned twice for
    different reasons (two pruned ranges), the second time stopped after its
    index was written and before its segment was deleted (a leftover inside a
    pruned range, never to be adopted); ``metrics[1]`` pruned across a
    missing range (it goes with the pruned range); ``metrics[2]`` pruned
    whole (its index keeps only a pruned range, and so its resume position).

``v5`` (topic ids and incarnations) holds v1's two backups again and:

``recreated`` (version 5 on)
    two runs over topics with ids (KIP-516). Between them ``orders`` (two
    partitions) was deleted and re-created with one partition and a new id;
    the second run (``backup.on_topic_recreated: new_incarnation``) stored
    the new log as incarnation 2, ``orders@2``, starting at offset 0 again,
    while ``audit`` (same id) continued. The manifest (it records ids) and
    ``orders@2``'s index are version 5; every other index and every segment
    stays version 1.

``v7`` (codec zstd-stream) holds one backup:

``stream``
    ``metrics[0]``: one zstd-stream segment of five blocks with a restart
    point every three blocks (block 0 restarts, 1 continues and repeats 0's
    bytes, 2 is incompressible and stored raw, 3 restarts, 4 continues);
    ``metrics[1]``: a zstd segment (``zstd_mode: block``) then a one-block
    zstd-stream segment from the whole-segment encoder. The segments and
    indexes that hold zstd-stream are version 7; the rest stays version 1.

``v8`` (restart points in index entries) holds one backup:

``ranged``
    ``clicks[0]``: a zstd-stream segment of five blocks with a restart
    interval every two blocks (three intervals; timestamps out of order
    inside blocks and across intervals; an incompressible block stored raw),
    whose index entry lists its three restart points, then a one-block
    segment whose entry lists none; ``clicks[1]``: a zstd (``zstd_mode:
    block``) segment of three blocks, two intervals. Both indexes are
    version 8; the segments keep their codec's version (7 and 1).

``v2`` (the lz4 codec) holds one backup:

``lz4``
    a run with ``compression: lz4`` (segments of two blocks, one block, and
    none; awkward records), then a run with zstd and none appending to the
    same partitions and filling a second topic. Each object has the lowest
    version that holds it: the lz4 segments, the indexes listing one and the
    manifest (compression lz4) are version 2; the zstd and none segments, the
    other topic's index and the consumer-group snapshot stay version 1.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from libkb import __version__
from libkb.backup.envelope import Envelope
from libkb.backup.lease import LeaseInfo
from libkb.format.encryption import ALGORITHM, ENCRYPTION_VERSION, FLAG_ENCRYPTED, BlockEncryption, DataKey
from libkb.format.models import (
    GroupOffsets,
    Manifest,
    MissingRange,
    PartitionIndex,
    RunInfo,
    SegmentEntry,
    TopicInfo,
    groups_key,
    groups_to_json,
    index_key,
    lease_generation_key,
    legacy_lease_key,
    manifest_key,
    segment_key,
    stored_topic,
)
from libkb.format.segment import (
    CODEC_LZ4,
    CODEC_NAMES,
    CODEC_NONE,
    CODEC_ZSTD,
    CODEC_ZSTD_STREAM,
    FORMAT_VERSION,
    RESTART_POINTS_VERSION,
    ZSTD_STREAM_VERSION,
    BlockEncoder,
    Record,
    SegmentFooter,
    SegmentReader,
    SegmentWriter,
    encode_segment,
    encrypted_chain,
)
from libkb.format.transforms import BlockContext
from libkb.format.zstream import StreamEncoder
from libkb.keys import Keyring, LocalKek
from libkb.metrics import RunMetrics
from libkb.retention import PartitionCut, apply_cut
from libkb.storage import FilesystemConfig, StorageBackend, create_backend_from_config

COMPAT_ROOT = Path(__file__).resolve().parent.parent / "data" / "compat"

# Fixed clocks: the fixture is the same whatever day it is generated.
RUN1_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
RUN2_MS = 1_704_153_600_000  # 2024-01-02T00:00:00Z
RUN3_MS = 1_704_240_000_000  # 2024-01-03T00:00:00Z
RUN4_MS = 1_704_326_400_000  # 2024-01-04T00:00:00Z
RUN5_MS = 1_704_412_800_000  # 2024-01-05T00:00:00Z
BIG = 2**32 + 100  # events[0] starts above 2**32: 64-bit offsets everywhere

# -- backup "full", run 1 (zstd) ------------------------------------------------------------

ORDERS_0_A: list[Record] = [
    (0, RUN1_MS, 1, b"k0", b"v0", None),
    (1, RUN1_MS + 500, 2, None, b"null key", [("trace", b"abc"), ("trace", b"def"), ("absent", None)]),
    (2, -1, 0, b"", b"", [("empty", b"")]),
    (3, RUN1_MS + 1000, 1, b"k3", None, None),
]
# offsets 5, 6, 8 were compacted away; 10 and 11 were transaction markers
ORDERS_0_B_BLOCKS: list[list[Record]] = [
    [
        (4, RUN1_MS + 2000, 1, b"k4", b"v4", None),
        (7, RUN1_MS + 3000, 1, b"k7", b"v7v7v7", [("h", b"1")]),
    ],
    [(9, RUN1_MS + 1500, 1, b"k9", b"v9", None)],
]
ORDERS_1_A: list[Record] = [
    (0, RUN1_MS + 10, 1, b"a", b"1", None),
    (1, RUN1_MS + 20, 1, b"b", b"2", None),
    (2, RUN1_MS + 30, 1, b"c", b"3", None),
]
EVENTS_0_A: list[Record] = [
    (BIG, RUN1_MS + 100, 2, None, b'{"event":"start"}', [("content-type", b"application/json")]),
    (BIG + 1, RUN1_MS + 200, 2, None, b'{"event":"tick"}', [("content-type", b"application/json")]),
    (BIG + 2, RUN1_MS + 300, 2, None, b'{"event":"stop"}', [("content-type", b"application/json")]),
]

# -- backup "full", run 2 (none) ------------------------------------------------------------

ORDERS_0_D: list[Record] = [
    (15, RUN2_MS + 1000, 2, b"k15", b"\x00\xff binary", [("\u00fc-utf8", b"\xc3\xbc")]),
    (16, RUN2_MS + 2000, 1, b"k16", b"v16", []),
]
ORDERS_1_B: list[Record] = [  # offsets 3-5 were deleted by retention before run 2
    (6, RUN2_MS + 10, 1, b"f", b"6", None),
    (7, RUN2_MS + 20, 1, b"g", b"7", None),
]
EVENTS_0_B: list[Record] = [
    (BIG + 3, RUN2_MS + 100, 1, b"e", b"x", [("a", None), ("a", None)]),
    (BIG + 4, RUN2_MS + 200, 0, b"e", b"y", None),
]

# -- backup "crashed" -------------------------------------------------------------------------

LOGS_0_A: list[Record] = [
    (0, RUN3_MS + 1, 1, b"l0", b"line 0", None),
    (1, RUN3_MS + 2, 1, b"l1", b"line 1", None),
]
LOGS_0_STRAY: list[Record] = [
    (2, RUN3_MS + 3, 1, b"l2", b"line 2", None),
    (4, RUN3_MS + 4, 1, b"l4", b"line 4", None),
]
LOGS_1_STRAY: list[Record] = [(10, RUN3_MS + 5, 1, None, b"line 10", None)]


# -- backup "lz4" (v2), run 1 (lz4) ----------------------------------------------------------

# offset 2 was compacted away; 5 was a transaction marker
METRICS_0_A_BLOCKS: list[list[Record]] = [
    [
        (0, RUN4_MS, 1, b"host-a", b"cpu=0.50 " * 20, [("unit", b"pct"), ("unit", None)]),
        (1, RUN4_MS + 10, 2, None, b"", None),
    ],
    [
        (3, -1, 0, b"", None, [("\u00e9t\u00e9", b"")]),
        (4, RUN4_MS + 5, 1, b"host-b", b"\x00\x01" * 40, None),
    ],
]
METRICS_1_A: list[Record] = [
    (0, RUN4_MS + 1, 1, b"host-c", b"mem=0.25 " * 10, None),
    (1, RUN4_MS + 2, 1, b"host-c", b"mem=0.25 " * 10, [("a", b"1"), ("b", b"2"), ("a", b"3")]),
    (2, RUN4_MS + 3, 2, b"host-c", None, None),
]

# -- backup "lz4" (v2), run 2 (zstd, then none) ----------------------------------------------

METRICS_0_C: list[Record] = [
    (8, RUN5_MS + 1, 1, b"host-a", b"cpu=0.75", None),
    (9, RUN5_MS + 2, 1, b"host-b", b"cpu=0.10", []),
]
METRICS_1_B: list[Record] = [
    (3, RUN5_MS + 3, 1, None, b"\xff" * 3, [("z", None)]),
    (4, RUN5_MS + 4, 1, b"host-c", b"mem=0.30", None),
]
PLAIN_0_A: list[Record] = [
    (0, RUN5_MS + 10, 1, b"p", b"plain 0", None),
    (1, RUN5_MS + 20, 1, b"p", b"plain 1", None),
]


def write_segment(
    backend: StorageBackend,
    backup_id: str,
    topic: str,
    partition: int,
    base: int,
    end: int,
    blocks: Sequence[Sequence[Record]],
    codec: int,
    created_ms: int,
) -> SegmentEntry:
    """Stream a segment as the engine does: BlockEncoder -> compress -> SegmentWriter -> put_stream."""
    writer = SegmentWriter(topic, partition, base, codec, created_ms)
    parts: list[bytes | bytearray] = [writer.header]
    for records in blocks:
        encoder = BlockEncoder()
        for record in records:
            encoder.add(*record)
        head, payload = writer.add_block(encoder.take().compress(codec, 3))
        parts += [head, payload]
    footer, tail = writer.finish(end)
    parts.append(tail)
    key = segment_key(backup_id, topic, partition, base)
    # The engine streams bytearray payloads too.
    backend.put_stream(key, iter(parts))
    return SegmentEntry.from_footer(key, base, footer, writer.size, CODEC_NAMES[codec])


def put_whole_segment(
    backend: StorageBackend,
    backup_id: str,
    topic: str,
    partition: int,
    base: int,
    end: int,
    records: list[Record],
    codec: int,
    created_ms: int,
) -> SegmentEntry:
    """The whole-segment encoder, for one segment, so both writers are exercised."""
    data = encode_segment(topic, partition, base, end, records, codec=codec, created_ms=created_ms)
    key = segment_key(backup_id, topic, partition, base)
    backend.put(key, data)
    footer = SegmentReader(data, name=key).footer
    return SegmentEntry.from_footer(key, base, footer, len(data), CODEC_NAMES[codec])


def stats(*segments: Sequence[Record]) -> tuple[int, int]:
    """(records, raw bytes) as the engine counts them for a run."""
    records = 0
    raw = 0
    for seg in segments:
        encoder = BlockEncoder()
        for record in seg:
            encoder.add(*record)
        records += encoder.count
        raw += len(encoder)
    return records, raw


def write_full(backend: StorageBackend) -> None:
    bid = "full"
    indexes = {
        ("orders", 0): PartitionIndex("orders", 0),
        ("orders", 1): PartitionIndex("orders", 1),
        ("events", 0): PartitionIndex("events", 0),
    }

    def store(topic: str, partition: int, entry: SegmentEntry) -> None:
        index = indexes[(topic, partition)]
        index.segments.append(entry)
        backend.put(index_key(bid, topic, partition), index.to_json())  # after its segment

    # run 1: snapshot, zstd
    run1 = RunInfo("20240101T000000Z-aaaaaaaa", RUN1_MS, mode="snapshot")
    lease = LeaseInfo(run1.run_id, "backup-host-1", 1111, RUN1_MS + 60_000)
    assert backend.put_if_absent(legacy_lease_key(bid), lease.to_json())
    manifest = Manifest(
        backup_id=bid,
        created_ms=RUN1_MS,
        updated_ms=RUN1_MS,
        compression="zstd",
        topics={
            "events": TopicInfo(1, 1, {}),
            "orders": TopicInfo(3, 3, {"cleanup.policy": "compact", "min.insync.replicas": "2"}),
        },
        runs=[run1],
        source_cluster_id="Q7s3nXn1T2yG2b2lGqkZ1w",
        libkb_version=__version__,
    )
    backend.put(manifest_key(bid), manifest.to_json())
    z = CODEC_ZSTD
    store("orders", 0, write_segment(backend, bid, "orders", 0, 0, 4, [ORDERS_0_A], z, RUN1_MS + 5000))
    store("orders", 0, write_segment(backend, bid, "orders", 0, 4, 12, ORDERS_0_B_BLOCKS, z, RUN1_MS + 6000))
    store("orders", 0, write_segment(backend, bid, "orders", 0, 12, 15, [], z, RUN1_MS + 7000))
    store("orders", 1, put_whole_segment(backend, bid, "orders", 1, 0, 3, ORDERS_1_A, z, RUN1_MS + 5000))
    store(
        "events", 0, write_segment(backend, bid, "events", 0, BIG, BIG + 3, [EVENTS_0_A], z, RUN1_MS + 5000)
    )
    run1.status = "complete"
    run1.finished_ms = RUN1_MS + 60_000
    run1.records, run1.bytes = stats(ORDERS_0_A, *ORDERS_0_B_BLOCKS, ORDERS_1_A, EVENTS_0_A)
    manifest.updated_ms = run1.finished_ms
    backend.put(manifest_key(bid), manifest.to_json())
    backend.delete(legacy_lease_key(bid))

    # run 2: snapshot, compression switched to none; retention took orders[1] 3-5 meanwhile
    run2 = RunInfo("20240102T000000Z-bbbbbbbb", RUN2_MS, mode="snapshot")
    lease = LeaseInfo(run2.run_id, "backup-host-2", 2222, RUN2_MS + 60_000)
    assert backend.put_if_absent(legacy_lease_key(bid), lease.to_json())
    manifest.runs.append(run2)
    manifest.updated_ms = RUN2_MS
    backend.put(manifest_key(bid), manifest.to_json())
    indexes[("orders", 1)].missing.append(MissingRange(3, 6, "retention"))
    backend.put(index_key(bid, "orders", 1), indexes[("orders", 1)].to_json())
    n = CODEC_NONE
    store("orders", 0, write_segment(backend, bid, "orders", 0, 15, 17, [ORDERS_0_D], n, RUN2_MS + 5000))
    store("orders", 1, write_segment(backend, bid, "orders", 1, 6, 8, [ORDERS_1_B], n, RUN2_MS + 5000))
    store(
        "events",
        0,
        write_segment(backend, bid, "events", 0, BIG + 3, BIG + 5, [EVENTS_0_B], n, RUN2_MS + 5000),
    )
    groups = [
        GroupOffsets("audit", {"events": {0: BIG + 5}}),
        GroupOffsets("billing", {"orders": {0: 17, 1: 7}}),
    ]
    backend.put(groups_key(bid), groups_to_json(groups, RUN2_MS + 59_000))
    run2.status = "complete"
    run2.finished_ms = RUN2_MS + 60_000
    run2.records, run2.bytes = stats(ORDERS_0_D, ORDERS_1_B, EVENTS_0_B)
    manifest.updated_ms = run2.finished_ms
    backend.put(manifest_key(bid), manifest.to_json())
    backend.delete(legacy_lease_key(bid))


def write_crashed(backend: StorageBackend) -> None:
    bid = "crashed"
    run = RunInfo("20240103T000000Z-cccccccc", RUN3_MS, mode="continuous")
    lease = LeaseInfo(run.run_id, "backup-host-3", 3333, RUN3_MS + 60_000)
    assert backend.put_if_absent(legacy_lease_key(bid), lease.to_json())
    manifest = Manifest(
        backup_id=bid,
        created_ms=RUN3_MS,
        updated_ms=RUN3_MS,
        compression="zstd",
        topics={"logs": TopicInfo(2, 1, {"retention.ms": "86400000"})},
        runs=[run],
        source_cluster_id=None,
        libkb_version=__version__,
    )
    backend.put(manifest_key(bid), manifest.to_json())
    z = CODEC_ZSTD
    index = PartitionIndex("logs", 0)
    index.segments.append(write_segment(backend, bid, "logs", 0, 0, 2, [LOGS_0_A], z, RUN3_MS + 1000))
    backend.put(index_key(bid, "logs", 0), index.to_json())
    # The process died after storing these segments and before writing their indexes.
    write_segment(backend, bid, "logs", 0, 2, 5, [LOGS_0_STRAY], z, RUN3_MS + 2000)
    write_segment(backend, bid, "logs", 1, 10, 12, [LOGS_1_STRAY], z, RUN3_MS + 2000)


def take_lease(backend: StorageBackend, bid: str, generation: int, lease: LeaseInfo) -> None:
    """Create the next lease generation and delete the older one, as a run starts."""
    assert backend.put_if_absent(lease_generation_key(bid, generation), lease.to_json())
    if generation > 1:
        backend.delete(lease_generation_key(bid, generation - 1))


def write_lz4(backend: StorageBackend) -> None:
    bid = "lz4"
    indexes = {
        ("metrics", 0): PartitionIndex("metrics", 0),
        ("metrics", 1): PartitionIndex("metrics", 1),
        ("plain", 0): PartitionIndex("plain", 0),
    }

    def store(topic: str, partition: int, entry: SegmentEntry) -> None:
        index = indexes[(topic, partition)]
        index.segments.append(entry)
        backend.put(index_key(bid, topic, partition), index.to_json())  # after its segment

    # run 1: snapshot, lz4
    run1 = RunInfo("20240104T000000Z-dddddddd", RUN4_MS, mode="snapshot")
    lease = LeaseInfo(run1.run_id, "backup-host-4", 4444, RUN4_MS + 60_000, generation=1)
    take_lease(backend, bid, 1, lease)
    manifest = Manifest(
        backup_id=bid,
        created_ms=RUN4_MS,
        updated_ms=RUN4_MS,
        compression="lz4",
        topics={"metrics": TopicInfo(2, 1, {"retention.ms": "604800000"}), "plain": TopicInfo(1, 1, {})},
        runs=[run1],
        source_cluster_id="lz4-cluster-0000000000",
        libkb_version=__version__,
    )
    backend.put(manifest_key(bid), manifest.to_json())
    lz = CODEC_LZ4
    store(
        "metrics", 0, write_segment(backend, bid, "metrics", 0, 0, 6, METRICS_0_A_BLOCKS, lz, RUN4_MS + 5000)
    )
    store("metrics", 0, write_segment(backend, bid, "metrics", 0, 6, 8, [], lz, RUN4_MS + 6000))
    store("metrics", 1, put_whole_segment(backend, bid, "metrics", 1, 0, 3, METRICS_1_A, lz, RUN4_MS + 5000))
    run1.status = "complete"
    run1.finished_ms = RUN4_MS + 60_000
    run1.records, run1.bytes = stats(*METRICS_0_A_BLOCKS, METRICS_1_A)
    manifest.updated_ms = run1.finished_ms
    backend.put(manifest_key(bid), manifest.to_json())
    backend.put(lease_generation_key(bid, 1), replace(lease, released=True).to_json())

    # run 2: snapshot, compression switched to zstd (and none for one segment, as a tool may write)
    run2 = RunInfo("20240105T000000Z-eeeeeeee", RUN5_MS, mode="snapshot")
    lease = LeaseInfo(run2.run_id, "backup-host-5", 5555, RUN5_MS + 60_000, generation=2)
    take_lease(backend, bid, 2, lease)
    manifest.runs.append(run2)
    manifest.updated_ms = RUN5_MS
    backend.put(manifest_key(bid), manifest.to_json())
    z, n = CODEC_ZSTD, CODEC_NONE
    store("metrics", 0, write_segment(backend, bid, "metrics", 0, 8, 10, [METRICS_0_C], z, RUN5_MS + 5000))
    store("metrics", 1, write_segment(backend, bid, "metrics", 1, 3, 5, [METRICS_1_B], n, RUN5_MS + 5000))
    store("plain", 0, write_segment(backend, bid, "plain", 0, 0, 2, [PLAIN_0_A], z, RUN5_MS + 5000))
    groups = [GroupOffsets("dashboards", {"metrics": {0: 10, 1: 4}, "plain": {0: 1}})]
    backend.put(groups_key(bid), groups_to_json(groups, RUN5_MS + 59_000))
    run2.status = "complete"
    run2.finished_ms = RUN5_MS + 60_000
    run2.records, run2.bytes = stats(METRICS_0_C, METRICS_1_B, PLAIN_0_A)
    manifest.updated_ms = run2.finished_ms
    backend.put(manifest_key(bid), manifest.to_json())
    backend.put(lease_generation_key(bid, 2), replace(lease, released=True).to_json())


# -- backup "adopted" (v3): a Rust kafka-backup backup id, continued by libkb -----------------

RUN6_MS = 1_704_499_200_000  # 2024-01-06T00:00:00Z: the Rust tool's run
RUN7_MS = 1_704_585_600_000  # 2024-01-07T00:00:00Z: libkb's first run on the id
#: What the Rust tool stored (its own x-original-* headers are added by the writer, as the tool does).
ADOPTED_RUST: dict[int, list[Record]] = {
    0: [(o, RUN6_MS + o, 1, b"acct-%d" % o, b"rust %d" % o, [("src", b"rust")]) for o in range(3)],
    1: [(o, RUN6_MS + 10 + o, 1, None, b"rust p1 %d" % o, None) for o in range(2)],
}
ADOPTED_OWN: dict[int, list[Record]] = {
    0: [(3, RUN7_MS, 1, b"acct-3", b"libkb 3", None), (4, RUN7_MS + 1, 1, b"acct-4", b"libkb 4", None)],
    1: [(2, RUN7_MS + 2, 1, None, b"libkb p1 2", [("h", None)])],
}


def write_adopted(backend: StorageBackend) -> None:
    """The Rust tool's part (written as that tool writes it), then libkb's part under ``{id}/libkb/``."""
    from libkb.format.models import Continuation
    from libkb.source.adopted import RUST_WRITER, libkb_part
    from tests.rust_format import RustBackupWriter, RustRecord, as_stored

    bid = "adopted"
    rust = RustBackupWriter(backend, bid, compression="zstd", created_at=RUN6_MS)
    for p, records in ADOPTED_RUST.items():
        stored = (as_stored(RustRecord(o, ts, k, v, list(h or []))) for o, ts, _, k, v, h in records)
        rust.write_partition("accounts", p, stored, partition_count=2)
    rust.write_manifest()
    rust.write_groups(RUN6_MS + 100, {"billing": {"accounts": {0: 2, 1: 1}}})

    part = libkb_part(backend, bid)
    run = RunInfo("20240107T000000Z-ffffffff", RUN7_MS, mode="snapshot")
    lease = LeaseInfo(run.run_id, "backup-host-7", 7777, RUN7_MS + 60_000, generation=1)
    take_lease(part, bid, 1, lease)
    continues = Continuation(RUST_WRITER, RUN7_MS, {"accounts": {0: 3, 1: 2}})
    manifest = Manifest(
        backup_id=bid,
        created_ms=RUN7_MS,
        updated_ms=RUN7_MS,
        compression="zstd",
        topics={"accounts": TopicInfo(2, 1, {})},
        runs=[run],
        source_cluster_id="adopted-cluster-00000000",
        libkb_version=__version__,
        continues=continues,
    )
    part.put(manifest_key(bid), manifest.to_json())
    for p, records in ADOPTED_OWN.items():
        base, end = records[0][0], records[-1][0] + 1
        entry = write_segment(part, bid, "accounts", p, base, end, [records], CODEC_ZSTD, RUN7_MS + 5000)
        part.put(index_key(bid, "accounts", p), PartitionIndex("accounts", p, [entry]).to_json())
    groups = [GroupOffsets("billing", {"accounts": {0: 4, 1: 3}})]
    part.put(groups_key(bid), groups_to_json(groups, RUN7_MS + 59_000))
    run.status, run.finished_ms = "complete", RUN7_MS + 60_000
    run.records, run.bytes = stats(*ADOPTED_OWN.values())
    manifest.updated_ms = run.finished_ms
    part.put(manifest_key(bid), manifest.to_json())
    part.put(lease_generation_key(bid, 1), replace(lease, released=True).to_json())


# -- backup "pruned" (format version 4) ---------------------------------------------------------

PRUNE1_MS = 1_707_091_200_000  # 2024-02-05T00:00:00Z
PRUNE2_MS = 1_707_177_600_000  # 2024-02-06T00:00:00Z
PRUNE1 = "kafka-backup prune --older-than 30d"
PRUNE2 = "backup.retention: max_age 7d, keep_segments 1"


def metrics_records(partition: int, first: int, end: int) -> list[Record]:
    """One record per offset of ``[first, end)``, a second apart, from RUN4_MS."""
    return [
        (o, RUN4_MS + 1000 * o + partition, 1, f"m{partition}-{o}".encode(), f"v{o}".encode(), None)
        for o in range(first, end)
    ]


def prune(
    backend: StorageBackend, index: PartitionIndex, count: int, when_ms: int, reason: str, *, delete: bool
) -> None:
    """Cut the ``count`` oldest segments as libkb does; without ``delete``, stop before the deletes."""
    gone = tuple(index.segments[:count])
    start = index.retained_start
    assert start is not None
    cut = PartitionCut(index.topic, index.partition, start, gone, 0, 0, -1)
    key = index_key("pruned", index.topic, index.partition)

    def write(change: Callable[[PartitionIndex], None]) -> None:
        change(index)
        backend.put(key, index.to_json())

    if delete:
        apply_cut(
            backend, cut, write, when_ms=when_ms, reason=reason, metrics=RunMetrics(), backup_id="pruned"
        )
    else:
        index.prune(list(gone), when_ms, reason)  # the process died after writing this index
        backend.put(key, index.to_json())


def write_pruned(backend: StorageBackend) -> None:
    bid = "pruned"
    run = RunInfo("20240104T000000Z-dddddddd", RUN4_MS, mode="snapshot")
    manifest = Manifest(
        backup_id=bid,
        created_ms=RUN4_MS,
        updated_ms=RUN4_MS,
        compression="zstd",
        topics={"metrics": TopicInfo(3, 1, {"retention.ms": "604800000"})},
        runs=[run],
        source_cluster_id="Q7s3nXn1T2yG2b2lGqkZ1w",
        libkb_version=__version__,
    )
    backend.put(manifest_key(bid), manifest.to_json())
    z = CODEC_ZSTD
    layout = {0: [(0, 3), (3, 6), (6, 9), (9, 12)], 1: [(0, 2), (5, 7), (7, 8)], 2: [(0, 4)]}
    indexes = {p: PartitionIndex("metrics", p) for p in layout}
    for p, spans in layout.items():
        for base, end in spans:
            if (p, base) == (1, 5):  # retention took 2-4 before the run could read them
                indexes[1].missing.append(MissingRange(2, 5, "retention"))
                backend.put(index_key(bid, "metrics", 1), indexes[1].to_json())
            created = RUN4_MS + 10_000 + base
            entry = write_segment(
                backend, bid, "metrics", p, base, end, [metrics_records(p, base, end)], z, created
            )
            indexes[p].segments.append(entry)
            backend.put(index_key(bid, "metrics", p), indexes[p].to_json())
    run.status, run.finished_ms = "complete", RUN4_MS + 60_000
    run.records, run.bytes = stats(
        *[metrics_records(p, b, e) for p, spans in layout.items() for b, e in spans]
    )
    manifest.updated_ms = run.finished_ms
    backend.put(manifest_key(bid), manifest.to_json())

    prune(backend, indexes[0], 2, PRUNE1_MS, PRUNE1, delete=True)
    prune(backend, indexes[1], 2, PRUNE1_MS, PRUNE1, delete=True)
    prune(backend, indexes[2], 1, PRUNE1_MS, PRUNE1, delete=True)
    prune(backend, indexes[0], 1, PRUNE2_MS, PRUNE2, delete=False)


RUN8_MS = 1_704_672_000_000  # 2024-01-08T00:00:00Z
RUN9_MS = 1_704_758_400_000  # 2024-01-09T00:00:00Z
ORDERS_ID_1 = "2bJ7mXq0R4aC1dE5fG9hIw"  # orders before it was deleted
ORDERS_ID_2 = "Vx3kL8pQ2nM6oR1sT5uW7g"  # orders re-created under the same name
AUDIT_ID = "Yz9aB2cD4eF6gH8iJ0kL1m"


def first_log(partition: int, first: int, end: int) -> list[Record]:
    return [
        (o, RUN8_MS + 1000 * o + partition, 1, f"old-{partition}-{o}".encode(), b"first log", None)
        for o in range(first, end)
    ]


def second_log(first: int, end: int) -> list[Record]:
    return [(o, RUN9_MS + 1000 * o, 1, f"new-{o}".encode(), b"second log", None) for o in range(first, end)]


def audit_log(first: int, end: int, when: int) -> list[Record]:
    return [(o, when + o, 1, None, f"audit {o}".encode(), [("who", b"ops")]) for o in range(first, end)]


def write_recreated(backend: StorageBackend) -> None:
    bid = "recreated"
    z = CODEC_ZSTD
    indexes: dict[tuple[str, int], PartitionIndex] = {}

    def store(topic: str, partition: int, base: int, records: list[Record], created: int) -> None:
        index = indexes.setdefault((topic, partition), PartitionIndex(topic, partition))
        end = records[-1][0] + 1
        index.segments.append(write_segment(backend, bid, topic, partition, base, end, [records], z, created))
        backend.put(index_key(bid, topic, partition), index.to_json())

    run1 = RunInfo("20240108T000000Z-eeeeeeee", RUN8_MS, mode="snapshot")
    take_lease(backend, bid, 1, LeaseInfo(run1.run_id, "backup-host-8", 8888, RUN8_MS + 60_000, generation=1))
    manifest = Manifest(
        backup_id=bid,
        created_ms=RUN8_MS,
        updated_ms=RUN8_MS,
        compression="zstd",
        topics={"audit": TopicInfo(1, 1, {}, AUDIT_ID), "orders": TopicInfo(2, 1, {}, ORDERS_ID_1)},
        runs=[run1],
        source_cluster_id="Q7s3nXn1T2yG2b2lGqkZ1w",
        libkb_version=__version__,
    )
    backend.put(manifest_key(bid), manifest.to_json())
    store("orders", 0, 0, first_log(0, 0, 3), RUN8_MS + 5000)
    store("orders", 1, 0, first_log(1, 0, 2), RUN8_MS + 5000)
    store("audit", 0, 0, audit_log(0, 2, RUN8_MS), RUN8_MS + 5000)
    run1.status, run1.finished_ms = "complete", RUN8_MS + 60_000
    run1.records, run1.bytes = stats(first_log(0, 0, 3), first_log(1, 0, 2), audit_log(0, 2, RUN8_MS))
    manifest.updated_ms = run1.finished_ms
    backend.put(manifest_key(bid), manifest.to_json())

    # run 2: orders has another id (deleted, re-created with one partition): its next incarnation
    run2 = RunInfo("20240109T000000Z-ffffffff", RUN9_MS, mode="snapshot")
    lease = LeaseInfo(run2.run_id, "backup-host-9", 9999, RUN9_MS + 60_000, generation=2)
    take_lease(backend, bid, 2, lease)
    incarnation = stored_topic("orders", 2)
    manifest.topics[incarnation] = TopicInfo(1, 1, {"retention.ms": "86400000"}, ORDERS_ID_2)
    manifest.runs.append(run2)
    manifest.updated_ms = RUN9_MS
    backend.put(manifest_key(bid), manifest.to_json())
    store(incarnation, 0, 0, second_log(0, 4), RUN9_MS + 5000)
    store("audit", 0, 2, audit_log(2, 4, RUN9_MS), RUN9_MS + 5000)
    run2.status, run2.finished_ms = "complete", RUN9_MS + 60_000
    run2.records, run2.bytes = stats(second_log(0, 4), audit_log(2, 4, RUN9_MS))
    manifest.updated_ms = run2.finished_ms
    backend.put(manifest_key(bid), manifest.to_json())
    backend.put(lease_generation_key(bid, 2), replace(lease, released=True).to_json())


# -- backup "sealed" (encryption, format version 6) ----------------------------------------------

#: The fixture's two local keys: published test keys (never use them), the first retired by rotation.
SEALED_KEYS = {
    "compat-kek-1": hashlib.sha256(b"libkb compat fixture v6: compat-kek-1").digest(),
    "compat-kek-2": hashlib.sha256(b"libkb compat fixture v6: compat-kek-2").digest(),
}
SEALED_0_A: list[list[Record]] = [
    [(0, RUN8_MS, 1, b"card-1", b"charge 10.00 EUR", [("trace", b"t1"), ("trace", None)])],
    [(1, RUN8_MS + 10, 2, None, b"charge 12.50 EUR", None), (2, RUN8_MS + 5, 1, b"card-1", None, None)],
]
SEALED_0_B: list[Record] = [
    (4, RUN8_MS + 40, 1, b"", b"", None),
    (5, RUN8_MS + 50, 1, b"card-3", b"\x00\xff", None),
]
SEALED_1_PLAIN: list[Record] = [(0, RUN8_MS + 1, 1, b"card-9", b"refund 3.00 EUR", None)]
SEALED_1_B: list[Record] = [(1, RUN8_MS + 61, 1, b"card-9", b"charge 7.00 EUR", None)]


def write_sealed_segment(
    backend: StorageBackend,
    envelope: Envelope,
    place: tuple[str, int, int, int],
    blocks: Sequence[Sequence[Record]],
    codec: int,
    created_ms: int,
) -> SegmentEntry:
    """An encrypted segment as the engine stores one: blocks compressed then encrypted with a fresh
    data key, the key object (wrapped key, sealed footer) written before the segment is stored."""
    topic, partition, base, end = place
    data_key = DataKey.generate()
    chain = encrypted_chain(codec, BlockEncryption(envelope.backup_id, data_key))
    writer = SegmentWriter(topic, partition, base, codec, created_ms, FLAG_ENCRYPTED)
    parts: list[bytes | bytearray] = [writer.header]
    for records in blocks:
        encoder = BlockEncoder()
        for record in records:
            encoder.add(*record)
        context = BlockContext(topic, partition, base, writer.block_count, encoder.size)
        parts += writer.add_block(encoder.take().transform(chain, context))
    footer, tail = writer.finish(end)
    key = segment_key(envelope.backup_id, topic, partition, base)
    envelope.store(key, (topic, partition, base), data_key, envelope.wrap(key, data_key), tail)
    backend.put_stream(key, iter([*parts, tail]))
    return SegmentEntry.from_footer(key, base, footer, writer.size, CODEC_NAMES[codec], ALGORITHM)


def write_sealed(backend: StorageBackend) -> None:
    """Two runs: the first under compat-kek-1 (partition 1 not yet encrypted: a backup that turned
    encryption on later), the second under compat-kek-2, with compat-kek-1 among the old keys."""
    bid = "sealed"
    indexes = {p: PartitionIndex("payments", p) for p in (0, 1)}

    def store(partition: int, entry: SegmentEntry) -> None:
        indexes[partition].segments.append(entry)
        backend.put(index_key(bid, "payments", partition), indexes[partition].to_json())

    def envelope(*ids: str) -> Envelope:
        return Envelope(backend, bid, Keyring(keks=[LocalKek(i, SEALED_KEYS[i]) for i in ids]))

    run1 = RunInfo("20240108T000000Z-eeeeeeee", RUN8_MS, mode="snapshot")
    take_lease(backend, bid, 1, LeaseInfo(run1.run_id, "backup-host-8", 8888, RUN8_MS + 60_000, 1))
    manifest = Manifest(
        backup_id=bid, created_ms=RUN8_MS, updated_ms=RUN8_MS, compression="zstd",
        topics={"payments": TopicInfo(2, 3, {"retention.ms": "-1"})}, runs=[run1],
        source_cluster_id="Q7s3nXn1T2yG2b2lGqkZ1w", libkb_version=__version__,
    )  # fmt: skip
    backend.put(manifest_key(bid), manifest.to_json())
    first = envelope("compat-kek-1")
    store(
        0, write_sealed_segment(backend, first, ("payments", 0, 0, 4), SEALED_0_A, CODEC_ZSTD, RUN8_MS + 5000)
    )
    store(1, write_segment(backend, bid, "payments", 1, 0, 1, [SEALED_1_PLAIN], CODEC_ZSTD, RUN8_MS + 5000))
    run1.status, run1.finished_ms = "complete", RUN8_MS + 60_000
    run1.records, run1.bytes = stats(*SEALED_0_A, SEALED_1_PLAIN)
    manifest.updated_ms = run1.finished_ms
    backend.put(manifest_key(bid), manifest.to_json())
    released = LeaseInfo(run1.run_id, "backup-host-8", 8888, RUN8_MS + 60_000, 1, released=True)
    backend.put(lease_generation_key(bid, 1), released.to_json())

    run2 = RunInfo("20240108T010000Z-ffffffff", RUN8_MS + 3_600_000, mode="snapshot")
    take_lease(backend, bid, 2, LeaseInfo(run2.run_id, "backup-host-8", 8889, RUN8_MS + 3_660_000, 2))
    manifest.runs.append(run2)
    second = envelope("compat-kek-2", "compat-kek-1")
    created = RUN8_MS + 3_605_000
    store(0, write_sealed_segment(backend, second, ("payments", 0, 4, 6), [SEALED_0_B], CODEC_NONE, created))
    store(0, write_sealed_segment(backend, second, ("payments", 0, 6, 8), [], CODEC_ZSTD, created))
    store(1, write_sealed_segment(backend, second, ("payments", 1, 1, 2), [SEALED_1_B], CODEC_LZ4, created))
    run2.status, run2.finished_ms = "complete", RUN8_MS + 3_660_000
    run2.records, run2.bytes = stats(SEALED_0_B, SEALED_1_B)
    manifest.updated_ms = run2.finished_ms
    backend.put(manifest_key(bid), manifest.to_json())
    released = LeaseInfo(run2.run_id, "backup-host-8", 8889, RUN8_MS + 3_660_000, 2, released=True)
    backend.put(lease_generation_key(bid, 2), released.to_json())


# -- backup "stream" (v7): codec zstd-stream, one zstd context across a segment's blocks --------

#: Repeats across blocks 0 and 1 (what zstd-stream finds and zstd alone does not).
_ROW = b'{"host":"host-a","rack":"r7","cpu":0.50,"mem":0.25,"disk":"ok","note":"steady"}' * 4


def _noise(seed: int, size: int) -> bytes:
    """Incompressible, deterministic bytes (a SHA-256 chain)."""
    out, block = b"", seed.to_bytes(8, "little")
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block
    return out[:size]


#: metrics[0]'s blocks with restart_blocks 3: 0 restarts, 1 continues (0's row found again, and
#: noise: it does not halve, so the next block is sampled), 2 is stored raw (noise), 3 restarts
#: (a new interval), 4 continues.
STREAM_0_BLOCKS: list[list[Record]] = [
    [(0, RUN8_MS, 1, b"host-a", _ROW, None), (1, RUN8_MS + 1, 1, b"host-b", _ROW[:200], [("unit", b"pct")])],
    [
        (2, RUN8_MS + 2, 1, b"host-a", _ROW, None),
        (4, RUN8_MS + 4, 2, None, _noise(2, 700), [("\u00e9t\u00e9", None)]),
    ],
    [(5, RUN8_MS + 5, 1, b"blob", _noise(1, 2048), None)],
    [(6, RUN8_MS + 6, 1, b"host-a", _ROW, None)],
    [(7, -1, 0, b"", None, None), (8, RUN8_MS + 8, 1, b"host-a", _ROW[:300], [("a", b"1"), ("a", b"2")])],
]
STREAM_1_A: list[Record] = [(0, RUN8_MS + 10, 1, b"k", b"zstd block " * 9, None)]
STREAM_1_B: list[Record] = [(1, RUN8_MS + 11, 1, b"k", b"zstd stream " * 9, None)]


def blocks_segment(
    place: tuple[str, int, int, int],
    blocks: Sequence[Sequence[Record]],
    codec: int,
    created_ms: int,
    restart_blocks: int,
) -> tuple[bytes, SegmentWriter, SegmentFooter]:
    """A segment of exactly these blocks, encoded as the store pipeline encodes them (one
    StreamEncoder across a zstd-stream segment's blocks), its writer (restart points) and footer."""
    topic, partition, base, end = place
    writer = SegmentWriter(topic, partition, base, codec, created_ms, restart_blocks=restart_blocks)
    streamer = StreamEncoder(3, restart_blocks) if codec == CODEC_ZSTD_STREAM else None
    parts: list[bytes | bytearray] = [writer.header]
    for records in blocks:
        encoder = BlockEncoder()
        for record in records:
            encoder.add(*record)
        raw = encoder.take()
        context = BlockContext(topic, partition, base, writer.block_count, len(raw.data))
        parts += writer.add_block(raw.stream(streamer, context) if streamer else raw.compress(codec, 3))
    footer, tail = writer.finish(end)
    return b"".join([*parts, tail]), writer, footer


def write_stream_segment(
    backend: StorageBackend,
    backup_id: str,
    topic: str,
    partition: int,
    base: int,
    end: int,
    blocks: Sequence[Sequence[Record]],
    created_ms: int,
    restart_blocks: int,
) -> SegmentEntry:
    """A zstd-stream segment as the engine streams one; its entry lists no restart points (version 7)."""
    data, writer, footer = blocks_segment(
        (topic, partition, base, end), blocks, CODEC_ZSTD_STREAM, created_ms, restart_blocks
    )
    key = segment_key(backup_id, topic, partition, base)
    backend.put(key, data)
    return SegmentEntry.from_footer(key, base, footer, writer.size, CODEC_NAMES[CODEC_ZSTD_STREAM])


def write_stream(backend: StorageBackend) -> None:
    bid = "stream"
    run = RunInfo("20240108T000000Z-ffffffff", RUN8_MS, mode="snapshot")
    lease = LeaseInfo(run.run_id, "backup-host-8", 8888, RUN8_MS + 60_000, generation=1)
    take_lease(backend, bid, 1, lease)
    manifest = Manifest(
        backup_id=bid,
        created_ms=RUN8_MS,
        updated_ms=RUN8_MS,
        compression="zstd",  # zstd_mode: stream (the default) is still compression zstd
        topics={"metrics": TopicInfo(2, 1, {})},
        runs=[run],
        source_cluster_id="stream-cluster-00000000",
        libkb_version=__version__,
    )
    backend.put(manifest_key(bid), manifest.to_json())
    i0, i1 = PartitionIndex("metrics", 0), PartitionIndex("metrics", 1)
    i0.segments.append(
        write_stream_segment(backend, bid, "metrics", 0, 0, 10, STREAM_0_BLOCKS, RUN8_MS + 5000, 3)
    )
    backend.put(index_key(bid, "metrics", 0), i0.to_json())
    # A zstd_mode: block segment, then a zstd-stream one from the whole-segment encoder.
    i1.segments.append(
        write_segment(backend, bid, "metrics", 1, 0, 1, [STREAM_1_A], CODEC_ZSTD, RUN8_MS + 5000)
    )
    backend.put(index_key(bid, "metrics", 1), i1.to_json())
    i1.segments.append(
        put_whole_segment(backend, bid, "metrics", 1, 1, 2, STREAM_1_B, CODEC_ZSTD_STREAM, RUN8_MS + 6000)
    )
    backend.put(index_key(bid, "metrics", 1), i1.to_json())
    run.status, run.finished_ms = "complete", RUN8_MS + 60_000
    groups = [GroupOffsets("graphs", {"metrics": {0: 9, 1: 2}})]
    backend.put(groups_key(bid), groups_to_json(groups, RUN8_MS + 59_000))
    run.records, run.bytes = stats(*STREAM_0_BLOCKS, STREAM_1_A, STREAM_1_B)
    manifest.updated_ms = run.finished_ms
    backend.put(manifest_key(bid), manifest.to_json())
    backend.put(lease_generation_key(bid, 1), replace(lease, released=True).to_json())


# -- backup "ranged" (v8): restart points in index entries ------------------------------------

RUN10_MS = 1_704_844_800_000  # 2024-01-10T00:00:00Z

#: clicks[0]'s first segment, zstd-stream with a restart interval every two blocks: three
#: intervals (blocks 0-1, 2-3, 4). Timestamps are out of order inside blocks and across intervals
#: (interval 1's smallest is below interval 0's largest); block 2 holds noise (it does not halve, so
#: block 3 is sampled) and block 3 is incompressible (stored raw); offset 5 and offset 10 (the
#: coverage's last) hold no record.
RANGED_0_BLOCKS: list[list[Record]] = [
    [(0, RUN10_MS + 100, 1, b"user-1", _ROW, None), (1, RUN10_MS + 50, 1, b"user-2", _ROW[:160], None)],
    [(2, RUN10_MS + 200, 1, b"user-1", _ROW, [("src", b"web")]), (3, RUN10_MS + 150, 2, None, b"", None)],
    [
        (4, RUN10_MS + 300, 1, b"user-3", _ROW[:240], None),
        (6, RUN10_MS + 90, 1, b"user-1", _noise(4, 600), None),
    ],
    [(7, RUN10_MS + 400, 1, b"blob", _noise(3, 1024), [("kind", None)])],
    [(8, RUN10_MS + 500, 1, b"user-2", _ROW[:200], None), (9, -1, 0, b"user-2", None, None)],
]
#: clicks[0]'s second segment: one block, one interval (its entry lists no restart points).
RANGED_0_TAIL: list[Record] = [(11, RUN10_MS + 600, 1, b"user-4", b"last", None)]
#: clicks[1]: a zstd (zstd_mode: block) segment of three blocks, an interval every two: its blocks
#: decode alone, the points say where each pair starts. The segment stays version 1.
RANGED_1_BLOCKS: list[list[Record]] = [
    [(0, RUN10_MS + 10, 1, b"k", b"block zero " * 8, None)],
    [(1, RUN10_MS + 20, 1, b"k", b"block one " * 8, None)],
    [(2, RUN10_MS + 5, 1, b"k", b"block two " * 8, [("late", b"1")])],
]


def write_ranged_segment(
    backend: StorageBackend,
    place: tuple[str, str, int, int, int],
    blocks: Sequence[Sequence[Record]],
    codec: int,
    created_ms: int,
    restart_blocks: int,
) -> SegmentEntry:
    """A segment as the engine stores one, and its index entry with the writer's restart points."""
    backup_id, topic, partition, base, end = place
    data, writer, footer = blocks_segment(
        (topic, partition, base, end), blocks, codec, created_ms, restart_blocks
    )
    key = segment_key(backup_id, topic, partition, base)
    backend.put(key, data)
    return SegmentEntry.from_footer(key, base, footer, writer.size, CODEC_NAMES[codec], None, writer.restarts)


def write_ranged(backend: StorageBackend) -> None:
    bid = "ranged"
    run = RunInfo("20240110T000000Z-abcdef01", RUN10_MS, mode="snapshot")
    lease = LeaseInfo(run.run_id, "backup-host-10", 1010, RUN10_MS + 60_000, generation=1)
    take_lease(backend, bid, 1, lease)
    manifest = Manifest(
        backup_id=bid,
        created_ms=RUN10_MS,
        updated_ms=RUN10_MS,
        compression="zstd",
        topics={"clicks": TopicInfo(2, 1, {})},
        runs=[run],
        source_cluster_id="ranged-cluster-0000000",
        libkb_version=__version__,
    )
    backend.put(manifest_key(bid), manifest.to_json())
    i0, i1 = PartitionIndex("clicks", 0), PartitionIndex("clicks", 1)
    i0.segments.append(
        write_ranged_segment(
            backend, (bid, "clicks", 0, 0, 11), RANGED_0_BLOCKS, CODEC_ZSTD_STREAM, RUN10_MS + 5000, 2
        )
    )
    backend.put(index_key(bid, "clicks", 0), i0.to_json())
    i1.segments.append(
        write_ranged_segment(
            backend, (bid, "clicks", 1, 0, 3), RANGED_1_BLOCKS, CODEC_ZSTD, RUN10_MS + 5000, 2
        )
    )
    backend.put(index_key(bid, "clicks", 1), i1.to_json())
    i0.segments.append(
        write_ranged_segment(
            backend, (bid, "clicks", 0, 11, 12), [RANGED_0_TAIL], CODEC_ZSTD_STREAM, RUN10_MS + 6000, 2
        )
    )
    backend.put(index_key(bid, "clicks", 0), i0.to_json())
    run.status, run.finished_ms = "complete", RUN10_MS + 60_000
    groups = [GroupOffsets("dashboards", {"clicks": {0: 7, 1: 3}})]
    backend.put(groups_key(bid), groups_to_json(groups, RUN10_MS + 59_000))
    run.records, run.bytes = stats(*RANGED_0_BLOCKS, RANGED_0_TAIL, *RANGED_1_BLOCKS)
    manifest.updated_ms = run.finished_ms
    backend.put(manifest_key(bid), manifest.to_json())
    backend.put(lease_generation_key(bid, 1), replace(lease, released=True).to_json())


#: What each format version's fixture holds: the writers of its backups.
WRITERS: dict[int, tuple[Callable[[StorageBackend], None], ...]] = {
    1: (write_full, write_crashed),
    2: (write_lz4,),
    3: (write_adopted,),
    4: (write_full, write_crashed, write_pruned),
    5: (write_full, write_crashed, write_recreated),
    ENCRYPTION_VERSION: (write_sealed,),
    ZSTD_STREAM_VERSION: (write_stream,),
    RESTART_POINTS_VERSION: (write_ranged,),
}


def write_fixture(target: Path, version: int) -> list[str]:
    """Write version ``version``'s backups into the storage location ``target``; returns its keys."""
    backend = create_backend_from_config(FilesystemConfig(path=str(target)))
    try:
        for writer in WRITERS[version]:
            writer(backend)
        return backend.list("")
    finally:
        backend.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--force", action="store_true", help="replace an existing directory (never for a released version)"
    )
    parser.add_argument("--root", type=Path, default=COMPAT_ROOT, help="default: %(default)s")
    parser.add_argument("--version", type=int, default=FORMAT_VERSION, choices=sorted(WRITERS))
    args = parser.parse_args(argv)
    target = args.root / f"v{args.version}"
    if target.exists():
        if not args.force:
            print(
                f"{target} exists. Fixtures of a released format version must never change; "
                "use --force only while this version is unreleased.",
                file=sys.stderr,
            )
            return 1
        shutil.rmtree(target)
    keys = write_fixture(target, args.version)
    total = sum((target / k).stat().st_size for k in keys)
    print(f"wrote {len(keys)} objects, {total} bytes, format version {args.version}, into {target}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests.rust_format, for version 3
    sys.exit(main())
