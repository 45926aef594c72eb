"""Read stored backups: list them, describe one, validate one. No printing, no writes.

What is read, and why it stays cheap:

- :func:`list_backups` lists the location once (a backup is a top-level
  prefix holding ``manifest.json``) and reads each manifest and partition
  index; segments are never opened.
- :func:`describe_backup` reads one manifest, its partitions' indexes and the
  consumer-group snapshot.
- :func:`validate_backup` checks structure from the listing, the indexes and
  one ``head`` per segment; ``deep`` also downloads every segment and decodes
  every record. Each problem names the object key and what is wrong.

Reads run on a small thread pool: object stores answer many small requests
in parallel far faster than one after another.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from libkb.backup.lease import current_lease, lease_is_live
from libkb.backup.state import AFTER_HOLE, LEFTOVER, OVERLAP, judge_strays, read_segment_entry
from libkb.errors import FormatError, LibkbError
from libkb.format.models import (
    GroupOffsets,
    Manifest,
    MissingRange,
    PartitionIndex,
    SegmentEntry,
    groups_from_json,
    groups_key,
    index_key,
    lease_key,
    manifest_key,
    parse_lease_key,
    parse_segment_key,
    partition_prefix,
)
from libkb.format.segment import CODEC_NAMES, SegmentReader
from libkb.storage import NotFoundError, StorageBackend, StorageError

_T = TypeVar("_T")
_R = TypeVar("_R")
_MANIFEST_NAME = "manifest.json"
_INDEX_NAME = "index.json"
_READ_WORKERS = 8
_DEEP_WORKERS = 2


class BackupNotFoundError(LibkbError, FileNotFoundError):
    """No backup with the requested id is stored at the location."""

    def __init__(self, backup_id: str, existing: Iterable[str], location: str) -> None:
        self.backup_id = backup_id
        self.existing = sorted(existing)
        shown = ", ".join(self.existing[:20]) + (" ..." if len(self.existing) > 20 else "")
        where = f"backups there: {shown}" if self.existing else "no backups are stored there"
        super().__init__(f"no backup {backup_id!r} at {location} ({where})")

    def __str__(self) -> str:  # FileNotFoundError would format "[Errno ...]"
        return str(self.args[0])


def iso_ms(ms: int | None) -> str | None:
    """Epoch milliseconds as an ISO-8601 UTC string (None and negatives stay None)."""
    if ms is None or ms < 0:
        return None
    return (
        dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


# -- list -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BackupSummary:
    """One line of ``kafka-backup list``; ``error`` is set when the manifest is unreadable."""

    backup_id: str
    created_ms: int | None
    updated_ms: int | None
    status: str
    topics: list[str]
    partitions: int
    records: int
    stored_bytes: int
    format_version: int | None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body["created"] = iso_ms(self.created_ms)
        body["updated"] = iso_ms(self.updated_ms)
        return body


def list_backups(backend: StorageBackend) -> list[BackupSummary]:
    """Every backup at the location, sorted by id (one listing, no segment reads)."""
    ids, index_keys, leased = _scan(backend)
    manifests = _parallel(lambda b: _read_summary_manifest(backend, b, b in leased), ids)
    stats = _parallel(lambda k: _index_stats(backend, k), [k for b in ids for k in index_keys[b]])
    totals: dict[str, list[int]] = {b: [0, 0] for b in ids}
    for backup_id, records, size in stats:
        totals[backup_id][0] += records
        totals[backup_id][1] += size
    out = []
    for backup_id, manifest in zip(ids, manifests, strict=True):
        if isinstance(manifest, str):
            out.append(BackupSummary(backup_id, None, None, "unreadable", [], 0, 0, 0, None, manifest))
            continue
        out.append(
            BackupSummary(
                backup_id=backup_id,
                created_ms=manifest.created_ms,
                updated_ms=manifest.updated_ms,
                status=manifest.status,
                topics=sorted(manifest.topics),
                partitions=sum(t.partitions for t in manifest.topics.values()),
                records=totals[backup_id][0],
                stored_bytes=totals[backup_id][1],
                format_version=manifest.format_version,
            )
        )
    return out


def _scan(backend: StorageBackend) -> tuple[list[str], dict[str, list[str]], set[str]]:
    """Backup ids (prefixes holding a manifest), each one's index keys, and the ids with a lease."""
    manifests: set[str] = set()
    leased: set[str] = set()
    indexes: dict[str, list[str]] = defaultdict(list)
    for key in backend.iter_keys(""):
        head, sep, rest = key.partition("/")
        if not sep:
            continue
        if rest == _MANIFEST_NAME:
            manifests.add(head)
        elif (lease := parse_lease_key(key)) is not None and lease[0] == head:
            leased.add(head)  # {id}/lease/{generation}.json or an earlier build's {id}/lease.json
        elif rest.startswith("topics/") and rest.endswith("/" + _INDEX_NAME):
            indexes[head].append(key)
    return sorted(manifests), indexes, leased


def _settle_dead_run(backend: StorageBackend, manifest: Manifest, *, leased: bool = True) -> None:
    """Show a last run still ``running`` whose lease is gone, expired or released as ``interrupted``.

    Its process died without recording its end; the next run records it so
    (and resumes). Only the in-memory manifest changes: reading never writes.
    """
    last = manifest.runs[-1] if manifest.runs else None
    if last is None or last.status != "running":
        return
    if not (leased and lease_is_live(backend, lease_key(manifest.backup_id))):
        last.status = "interrupted"


def _read_summary_manifest(backend: StorageBackend, backup_id: str, leased: bool) -> Manifest | str:
    key = manifest_key(backup_id)
    try:
        manifest = Manifest.from_json(backend.get(key), name=key)
        _settle_dead_run(backend, manifest, leased=leased)
    except (FormatError, StorageError) as exc:
        return str(exc)  # listed as unreadable: one bad backup must not hide the others
    return manifest


def _index_stats(backend: StorageBackend, key: str) -> tuple[str, int, int]:
    backup_id = key.split("/", 1)[0]
    try:
        index = PartitionIndex.from_json(backend.get(key), name=key)
    except (FormatError, NotFoundError):
        return backup_id, 0, 0  # validate reports it; a listing should still show the backup
    return backup_id, index.record_count, index.size


# -- describe -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PartitionDescription:
    """What is stored for one partition; ``start``/``end`` are None when nothing is."""

    topic: str
    partition: int
    indexed: bool
    start_offset: int | None
    end_offset: int | None  # exclusive
    records: int
    segments: int
    stored_bytes: int
    raw_bytes: int
    min_timestamp: int | None
    max_timestamp: int | None
    missing: list[MissingRange] = field(default_factory=list)

    @classmethod
    def from_index(cls, index: PartitionIndex | None, topic: str, partition: int) -> PartitionDescription:
        if index is None:
            return cls(topic, partition, False, None, None, 0, 0, 0, 0, None, None)
        stamps = [s for s in index.segments if s.record_count]
        return cls(
            topic=topic,
            partition=partition,
            indexed=True,
            start_offset=index.start_offset,
            end_offset=index.end_offset,
            records=index.record_count,
            segments=len(index.segments),
            stored_bytes=index.size,
            raw_bytes=sum(s.raw_bytes for s in index.segments),
            min_timestamp=min((s.min_timestamp for s in stamps), default=None),
            max_timestamp=max((s.max_timestamp for s in stamps), default=None),
            missing=list(index.missing),
        )

    def to_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body["min_time"] = iso_ms(self.min_timestamp)
        body["max_time"] = iso_ms(self.max_timestamp)
        return body


@dataclass(frozen=True, slots=True)
class GroupSnapshot:
    """The consumer-group offsets recorded at the end of the last run."""

    taken_ms: int
    groups: list[GroupOffsets]

    def to_dict(self) -> dict[str, Any]:
        return {
            "taken_ms": self.taken_ms,
            "taken": iso_ms(self.taken_ms),
            "groups": {
                g.group: {t: {str(p): o for p, o in sorted(parts.items())} for t, parts in g.offsets.items()}
                for g in self.groups
            },
        }


@dataclass(frozen=True, slots=True)
class BackupDescription:
    manifest: Manifest
    partitions: list[PartitionDescription]
    groups: GroupSnapshot | None

    @property
    def records(self) -> int:
        return sum(p.records for p in self.partitions)

    @property
    def stored_bytes(self) -> int:
        return sum(p.stored_bytes for p in self.partitions)

    @property
    def segments(self) -> int:
        return sum(p.segments for p in self.partitions)

    def to_dict(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "backup_id": m.backup_id,
            "status": m.status,
            "created_ms": m.created_ms,
            "created": iso_ms(m.created_ms),
            "updated_ms": m.updated_ms,
            "updated": iso_ms(m.updated_ms),
            "compression": m.compression,
            "format_version": m.format_version,
            "libkb_version": m.libkb_version,
            "source_cluster_id": m.source_cluster_id,
            "records": self.records,
            "segments": self.segments,
            "stored_bytes": self.stored_bytes,
            "topics": {name: asdict(info) for name, info in sorted(m.topics.items())},
            "runs": [asdict(r) for r in m.runs],
            "partitions": [p.to_dict() for p in self.partitions],
            "consumer_groups": self.groups.to_dict() if self.groups else None,
        }


def describe_backup(backend: StorageBackend, backup_id: str) -> BackupDescription:
    """Manifest, per-partition coverage and the consumer-group snapshot of one backup."""
    manifest = read_manifest(backend, backup_id)
    _settle_dead_run(backend, manifest)
    tps = [(t, p) for t, info in sorted(manifest.topics.items()) for p in range(info.partitions)]

    def describe(tp: tuple[str, int]) -> PartitionDescription:
        key = index_key(backup_id, *tp)
        try:
            index: PartitionIndex | None = PartitionIndex.from_json(backend.get(key), name=key)
        except NotFoundError:
            index = None
        return PartitionDescription.from_index(index, *tp)

    partitions = _parallel(describe, tps)
    try:
        key = groups_key(backup_id)
        taken, groups = groups_from_json(backend.get(key), name=key)
        snapshot: GroupSnapshot | None = GroupSnapshot(taken, groups)
    except NotFoundError:
        snapshot = None
    return BackupDescription(manifest, partitions, snapshot)


def read_manifest(backend: StorageBackend, backup_id: str) -> Manifest:
    """The backup's manifest; an unknown id raises :class:`BackupNotFoundError` listing the ids."""
    key = manifest_key(backup_id)
    try:
        data = backend.get(key)
    except NotFoundError:
        raise _not_found(backend, backup_id) from None
    return Manifest.from_json(data, name=key)


def _not_found(backend: StorageBackend, backup_id: str) -> BackupNotFoundError:
    return BackupNotFoundError(backup_id, _scan(backend)[0], _location(backend))


def _location(backend: StorageBackend) -> str:
    prefix = getattr(backend, "prefix", "")
    return f"{backend.name} storage" + (f" under {prefix!r}" if prefix else "")


# -- validate -----------------------------------------------------------------


@dataclass(slots=True)
class ValidationReport:
    """``problems`` make a backup invalid; ``warnings`` are facts worth knowing (data lost to retention)."""

    backup_id: str
    deep: bool
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    checked_partitions: int = 0
    checked_segments: int = 0
    checked_records: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def validate_backup(backend: StorageBackend, backup_id: str, deep: bool = False) -> ValidationReport:
    """Check a backup's structure; ``deep`` also verifies every segment byte and record."""
    return _Validator(backend, backup_id, deep).run()


class _Validator:
    def __init__(self, backend: StorageBackend, backup_id: str, deep: bool) -> None:
        self.backend = backend
        self.backup_id = backup_id
        self.report = ValidationReport(backup_id, deep)

    def problem(self, text: str) -> None:
        self.report.problems.append(text)

    def run(self) -> ValidationReport:
        bid = self.backup_id
        keys = list(self.backend.iter_keys(f"{bid}/"))
        if manifest_key(bid) not in keys:
            raise _not_found(self.backend, bid)
        manifest = self._manifest()
        current = current_lease(self.backend, lease_key(bid)) if any(map(parse_lease_key, keys)) else None
        if current is not None and (current[1] is None or not current[1].released):
            # Live, or its run died without releasing it (as lease.json of earlier builds).
            self.report.warnings.append(
                f"{current[0]}: a run holds the lease; segments it is writing may show as problems"
            )
        segments = {k for k in keys if parse_segment_key(k) is not None}
        index_keys = [k for k in keys if k.startswith(f"{bid}/topics/") and k.endswith("/" + _INDEX_NAME)]
        known = segments.union(index_keys)
        for key in keys:
            if key not in known and key.startswith(f"{bid}/topics/"):
                self.report.warnings.append(f"{key}: not a file of the libkb format; ignored")
        indexes = self._indexes(index_keys)
        self.report.checked_partitions = len(indexes)
        self._check_against_manifest(manifest, indexes, segments)
        entries: list[SegmentEntry] = []
        for ikey, index in sorted(indexes.items()):
            entries += self._check_index(ikey, index, segments)
        indexed = {e.key for e in entries}
        strays: dict[tuple[str, int], list[tuple[int, str]]] = defaultdict(list)
        for key in segments - indexed:
            parsed = parse_segment_key(key)
            if parsed is not None:
                strays[(parsed[1], parsed[2])].append((parsed[3], key))
        for (topic, partition), unlisted in sorted(strays.items()):
            owner = indexes.get(index_key(bid, topic, partition))
            entries += self._check_strays(topic, partition, owner, unlisted)
        present = [e for e in entries if e.key in segments]
        # Deep checks hold whole segments in memory: fewer at once.
        workers = _DEEP_WORKERS if self.report.deep else _READ_WORKERS
        for found, records in _parallel(self._check_segment, present, workers=workers):
            self.report.problems += found
            self.report.checked_records += records
        self.report.checked_segments = len(present)
        if groups_key(bid) in keys:
            try:
                groups_from_json(self.backend.get(groups_key(bid)), name=groups_key(bid))
            except FormatError as exc:
                self.problem(str(exc))
        return self.report

    def _manifest(self) -> Manifest | None:
        key = manifest_key(self.backup_id)
        try:
            manifest = Manifest.from_json(self.backend.get(key), name=key)
        except FormatError as exc:
            self.problem(str(exc))
            return None
        if manifest.backup_id != self.backup_id:
            self.problem(f"{key}: names backup {manifest.backup_id!r}, not {self.backup_id!r}")
        return manifest

    def _indexes(self, keys: list[str]) -> dict[str, PartitionIndex]:
        def load(key: str) -> PartitionIndex | str:
            try:
                return PartitionIndex.from_json(self.backend.get(key), name=key)
            except FormatError as exc:
                return str(exc)

        out = {}
        for key, result in zip(keys, _parallel(load, keys), strict=True):
            if isinstance(result, str):
                self.problem(result)
                continue
            if key != index_key(self.backup_id, result.topic, result.partition):
                self.problem(f"{key}: the index says it is for {result.topic}/{result.partition}")
                continue
            out[key] = result
        return out

    def _check_against_manifest(
        self, manifest: Manifest | None, indexes: dict[str, PartitionIndex], segments: set[str]
    ) -> None:
        if manifest is None:
            return
        bid = self.backup_id
        expected = {(t, p) for t, info in manifest.topics.items() for p in range(info.partitions)}
        found = {(i.topic, i.partition) for i in indexes.values()}
        stored: dict[tuple[str, int], int] = defaultdict(int)
        for parsed in map(parse_segment_key, segments):
            if parsed is not None:
                stored[(parsed[1], parsed[2])] += 1
        for topic, partition in sorted(expected - found):
            # No index and no segment: the partition was empty when backed up. One
            # segment: a run was killed before its first index (judged as a stray).
            if stored[(topic, partition)] > 1:
                self.problem(
                    f"{index_key(bid, topic, partition)}: missing, but {stored[(topic, partition)]} "
                    f"segments of {topic}/{partition} are stored"
                )
        for topic, partition in sorted(found - expected):
            self.problem(
                f"{index_key(bid, topic, partition)}: {topic}/{partition} is not in the manifest's topics"
            )

    def _check_strays(
        self, topic: str, partition: int, index: PartitionIndex | None, found: list[tuple[int, str]]
    ) -> list[SegmentEntry]:
        """Segments the index does not list, judged as the next run will treat them.

        A run stores a segment before the index listing it, so one killed in
        between leaves segments that continue the indexed coverage: intact,
        and adopted by the next run (``libkb.backup.state.load_index``). Those,
        and leftover copies of indexed offsets, are warnings; a segment past a
        hole or overlapping the index is a problem. Adoptable ones are returned
        so a deep check reads them too.
        """
        ikey = index_key(self.backup_id, topic, partition)
        entries = []
        for base, key in sorted(found):
            try:
                entries.append(read_segment_entry(self.backend, key, base))
            except (FormatError, ValueError, StorageError) as exc:
                self.problem(f"{key}: stored but not listed in {ikey}, and unreadable: {exc}")
        adoptable: list[SegmentEntry] = []
        end = index.end_offset if index is not None else None
        for entry, verdict, before in judge_strays(end, entries):
            key = entry.key
            if verdict == LEFTOVER:
                self.report.warnings.append(
                    f"{key}: a leftover copy of offsets already in indexed segments; "
                    "the next backup run deletes it"
                )
            elif verdict == OVERLAP:
                self.problem(f"{key}: stored but not listed in {ikey}, and overlaps the indexed segments")
            elif verdict == AFTER_HOLE:
                self.problem(
                    f"{key}: stored but not listed in {ikey}, after offsets {before}-{entry.base_offset - 1} "
                    "that nothing accounts for (the index lost them)"
                )
            elif adoptable or (index is None and len(found) > 1):
                # A run leaves at most one stored-but-unlisted segment per partition.
                self.problem(
                    f"{key}: stored but not listed in {ikey}, which lost it (more than one unlisted "
                    "segment); the next backup run adopts it"
                )
            else:
                self.report.warnings.append(
                    f"{key}: stored but not yet listed in {ikey} (a run was interrupted after storing "
                    "it); the next backup run adopts it, and restores leave it out until then"
                )
                adoptable.append(entry)
        return adoptable

    def _check_index(self, ikey: str, index: PartitionIndex, segments: set[str]) -> list[SegmentEntry]:
        for text in index.coverage_problems():
            self.problem(f"{ikey}: {text}")
        for gap in index.missing:
            self.report.warnings.append(
                f"{ikey}: offsets [{gap.start}, {gap.end}) of {index.topic}/{index.partition} "
                f"are not in the backup ({gap.reason})"
            )
        prefix = partition_prefix(self.backup_id, index.topic, index.partition)
        entries = []
        for entry in index.segments:
            parsed = parse_segment_key(entry.key)
            if not entry.key.startswith(prefix) or parsed is None or parsed[3] != entry.base_offset:
                self.problem(
                    f"{ikey}: lists {entry.key}, which is not a segment of base offset "
                    f"{entry.base_offset} in {prefix}"
                )
                continue
            entries.append(entry)
            if entry.key not in segments:
                self.problem(f"{entry.key}: listed in {ikey} but not stored")
        return entries

    def _check_segment(self, entry: SegmentEntry) -> tuple[list[str], int]:
        """(problems, records decoded) of one indexed segment; runs on a pool thread."""
        try:
            size = self.backend.size(entry.key)
            if size != entry.size:
                return [f"{entry.key}: {size} bytes stored, the index says {entry.size}"], 0
            if not self.report.deep:
                return [], 0
            data = self.backend.get(entry.key)
        except NotFoundError:
            return [f"{entry.key}: listed in its index but not stored (deleted meanwhile?)"], 0
        try:
            reader = SegmentReader(data, name=entry.key)
            reader.verify()
            return _check_records(reader, entry)
        except FormatError as exc:
            return [str(exc)], 0


def _check_records(reader: SegmentReader, entry: SegmentEntry) -> tuple[list[str], int]:
    """Decode every record; check range, order and that the footer and index tell the truth."""
    key = entry.key
    header, footer = reader.header, reader.footer
    problems = []
    expected_topic, expected_partition = _topic_partition(key)
    if (header.topic, header.partition, header.base_offset) != (
        expected_topic,
        expected_partition,
        entry.base_offset,
    ):
        problems.append(
            f"{key}: header says {header.topic}/{header.partition} from offset {header.base_offset}"
        )
    count, last, low_ts, high_ts, first = 0, entry.base_offset - 1, None, None, None
    for offset, timestamp, *_ in reader.records():
        if offset <= last:
            problems.append(f"{key}: offset {offset} follows {last} (offsets must increase)")
        if not entry.base_offset <= offset < footer.end_offset:
            problems.append(
                f"{key}: offset {offset} lies outside the segment's range "
                f"[{entry.base_offset}, {footer.end_offset})"
            )
        first = offset if first is None else first
        last = offset
        low_ts = timestamp if low_ts is None else min(low_ts, timestamp)
        high_ts = timestamp if high_ts is None else max(high_ts, timestamp)
        count += 1
    actual = (
        count,
        first if count else -1,
        last if count else -1,
        low_ts if count else -1,
        high_ts if count else -1,
        sum(b.raw_len for b in reader.blocks()),
    )
    stated = (
        footer.record_count,
        footer.first_offset,
        footer.last_offset,
        footer.min_timestamp,
        footer.max_timestamp,
        footer.raw_bytes,
    )
    names = ("records", "first offset", "last offset", "min timestamp", "max timestamp", "raw bytes")
    for name, got, said in zip(names, actual, stated, strict=True):
        if got != said:
            problems.append(f"{key}: footer says {name} {said}, the records give {got}")
    indexed = (
        entry.record_count,
        entry.first_offset,
        entry.last_offset,
        entry.min_timestamp,
        entry.max_timestamp,
        entry.raw_bytes,
    )
    for name, said_index, said_footer in zip(names, indexed, stated, strict=True):
        if said_index != said_footer:
            problems.append(f"{key}: index says {name} {said_index}, the footer says {said_footer}")
    if entry.end_offset != footer.end_offset:
        problems.append(f"{key}: index says end offset {entry.end_offset}, the footer {footer.end_offset}")
    if CODEC_NAMES[header.codec] != entry.codec:
        problems.append(f"{key}: index says codec {entry.codec}, the header {CODEC_NAMES[header.codec]}")
    return problems, count


def _topic_partition(segment: str) -> tuple[str, int]:
    parsed = parse_segment_key(segment)
    if parsed is None:
        raise ValueError(f"{segment}: not a segment key")
    return parsed[1], parsed[2]


def _parallel(fn: Callable[[_T], _R], items: Iterable[_T], *, workers: int = _READ_WORKERS) -> list[_R]:
    """``[fn(x) for x in items]`` on a few threads, results in input order."""
    items = list(items)
    if len(items) <= 1 or workers <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(min(workers, len(items)), "libkb-catalog") as pool:
        return list(pool.map(fn, items))
