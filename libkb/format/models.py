"""Index and manifest models and the key layout of a backup. Pure: JSON in, JSON out.

Layout under the storage location (``{id}`` is the backup id)::

    {id}/manifest.json                                   small: topics, runs, status
    {id}/lease/{generation:012}.json                     the writer's lease, one object per generation
    {id}/lease.json                                      the lease of earlier builds (read, never written)
    {id}/topics/{topic}/partition={p}/segment-{base:020}.kbs
    {id}/topics/{topic}/partition={p}/index.json         written by that partition's owner
    {id}/consumer-groups.json                            committed offsets at the last run's end
    {id}/offset-snapshots/{snapshot_id}.json             group offsets saved before a change (libkb.offsets)

Segments are the truth: an index lists the segments its writer has
confirmed, and can be rebuilt from a listing plus each segment's footer.

Each object is written with the lowest format version that can hold it
(an index listing an lz4 segment, or a manifest whose compression is lz4,
is version 2; everything else stays version 1), and states it; readers
check it per object.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, TypeVar

from libkb.errors import FormatError
from libkb.format.encryption import ALGORITHM, ENCRYPTION_VERSION
from libkb.format.restarts import RestartPoint, point_problem, points_from_json
from libkb.format.segment import (
    CODECS,
    FOOTER_SIZE,
    FORMAT_VERSION,
    RESTART_POINTS_VERSION,
    SEGMENT_SUFFIX,
    SegmentFooter,
    codec_version,
    header_size,
    newer_version,
)
from libkb.format.strict import (
    array,
    build,
    integer,
    load_object,
    malformed,
    mapping,
    partition_offsets,
    string,
)

# Kafka facts the manifest and the groups object store; re-exported for readers of the format.
from libkb.kafka.types import GroupOffsets as GroupOffsets
from libkb.kafka.types import TopicInfo as TopicInfo

FORMAT_NAME = "libkb-backup"
T = TypeVar("T")

#: The format version that added pruned ranges to the partition index. An index
#: states it only once it holds one, so an index without pruned ranges stays
#: readable by every earlier libkb (docs/format.rst, "Versioning").
PRUNED_RANGES_VERSION = 4
#: The format version that added topic ids (KIP-516) to the manifest's topic infos, and
#: incarnations: a topic deleted and re-created under its name, stored under its own name
#: ``{topic}@{n}`` (docs/format.rst, "Topic incarnations"). Only a manifest recording a topic id,
#: and the index of an incarnation after the first, state it.
TOPIC_IDS_VERSION = 5
#: Between a topic's name and its incarnation number in a stored name; Kafka topic names never hold it.
INCARNATION_SEPARATOR = "@"
#: The newest version any object of this libkb's format may state (kept as a name for the prune code).
READ_VERSION = FORMAT_VERSION


# -- keys -------------------------------------------------------------------


def manifest_key(backup_id: str) -> str:
    return f"{backup_id}/manifest.json"


def lease_key(backup_id: str) -> str:
    """The prefix of a backup's lease generations (what :class:`libkb.backup.lease.Lease` takes)."""
    return f"{backup_id}/lease/"


def lease_generation_key(backup_id: str, generation: int) -> str:
    return f"{lease_key(backup_id)}{generation:012d}.json"


def legacy_lease_key(backup_id: str) -> str:
    """The single lease object of earlier builds; still honoured as generation 0."""
    return f"{backup_id}/lease.json"


def parse_lease_key(key: str) -> tuple[str, int] | None:
    """(backup_id, generation) of a lease object key (``lease.json`` is generation 0), or None."""
    parts = key.split("/")
    if len(parts) == 2 and parts[1] == "lease.json":
        return parts[0], 0
    if len(parts) != 3 or parts[1] != "lease" or not parts[2].endswith(".json"):
        return None
    digits = parts[2][: -len(".json")]
    if not (digits.isascii() and digits.isdigit()) or int(digits) < 1:
        return None  # generation 0 is lease.json alone
    return parts[0], int(digits)


def groups_key(backup_id: str) -> str:
    return f"{backup_id}/consumer-groups.json"


def partition_prefix(backup_id: str, topic: str, partition: int) -> str:
    return f"{backup_id}/topics/{topic}/partition={partition}/"


def index_key(backup_id: str, topic: str, partition: int) -> str:
    return partition_prefix(backup_id, topic, partition) + "index.json"


def segment_key(backup_id: str, topic: str, partition: int, base_offset: int) -> str:
    return partition_prefix(backup_id, topic, partition) + f"segment-{base_offset:020d}{SEGMENT_SUFFIX}"


def parse_segment_key(key: str) -> tuple[str, str, int, int] | None:
    """(backup_id, topic, partition, base_offset) of a segment key, or None."""
    parts = key.split("/")
    if len(parts) != 5 or parts[1] != "topics" or not parts[3].startswith("partition="):
        return None
    name = parts[4]
    if not (name.startswith("segment-") and name.endswith(SEGMENT_SUFFIX)):
        return None
    try:
        partition = int(parts[3][len("partition=") :])
        base = int(name[len("segment-") : -len(SEGMENT_SUFFIX)])
    except ValueError:
        return None
    return parts[0], parts[2], partition, base


def stored_topic(topic: str, incarnation: int) -> str:
    """The name incarnation ``incarnation`` of ``topic`` is stored under: the first keeps the topic's name."""
    return topic if incarnation == 1 else f"{topic}{INCARNATION_SEPARATOR}{incarnation}"


def parse_stored_topic(name: str) -> tuple[str, int]:
    """(Kafka topic, incarnation) of a stored topic name; a name without a number is incarnation 1."""
    topic, sep, number = name.rpartition(INCARNATION_SEPARATOR)
    if sep and topic and number.isascii() and number.isdigit() and int(number) >= 2:
        return topic, int(number)
    return name, 1


# -- partition index ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SegmentEntry:
    """One stored segment: its key and the stats of its footer."""

    key: str
    base_offset: int
    end_offset: int  # exclusive
    record_count: int
    first_offset: int
    last_offset: int
    min_timestamp: int
    max_timestamp: int
    size: int
    raw_bytes: int
    codec: str
    #: ``"AES-256-GCM"`` when the blocks are encrypted (format version 6: the segment has a key
    #: object); None (left out of the JSON) when not.
    encryption: str | None = None
    #: The segment's restart intervals (format version 8, :mod:`libkb.format.restarts`) when it has
    #: more than one and its writer recorded them; None (left out of the JSON): read it whole.
    restarts: tuple[RestartPoint, ...] | None = None

    @classmethod
    def from_footer(
        cls,
        key: str,
        base_offset: int,
        footer: SegmentFooter,
        size: int,
        codec: str,
        encryption: str | None = None,
        restarts: tuple[RestartPoint, ...] | None = None,
    ) -> SegmentEntry:
        return cls(
            key=key,
            base_offset=base_offset,
            end_offset=footer.end_offset,
            record_count=footer.record_count,
            first_offset=footer.first_offset,
            last_offset=footer.last_offset,
            min_timestamp=footer.min_timestamp,
            max_timestamp=footer.max_timestamp,
            size=size,
            raw_bytes=footer.raw_bytes,
            codec=codec,
            encryption=encryption,
            restarts=restarts,
        )

    def to_dict(self) -> dict[str, Any]:
        body = asdict(self)
        if self.encryption is None:
            del body["encryption"]  # a reader of versions 1 to 5 knows no such field
        if self.restarts is None:
            del body["restarts"]  # nor of versions 1 to 7 of this one
        else:
            body["restarts"] = [p.to_json() for p in self.restarts]
        return body

    @classmethod
    def from_dict(cls, item: object, name: str, path: str) -> SegmentEntry:
        """An entry as an index stores it, every field checked (``restarts``: arrays of integers)."""
        fields = dict(mapping(item, name, path))
        stated = fields.pop("restarts", None)
        entry = build(cls, fields, name, path)
        if stated is None:
            return entry
        restarts = points_from_json(stated, f"{name}: {path}.restarts")
        topic = parse_segment_key(entry.key)
        problem = point_problem(
            restarts,
            first_offset=entry.first_offset,
            last_offset=entry.last_offset,
            record_count=entry.record_count,
            min_timestamp=entry.min_timestamp,
            max_timestamp=entry.max_timestamp,
            body=(header_size(topic[1]) if topic else -1, entry.size - FOOTER_SIZE),
        )
        if problem is not None:
            raise FormatError(f"{name}: {path}.restarts: {problem}")
        return replace(entry, restarts=restarts)


@dataclass(frozen=True, slots=True)
class MissingRange:
    """Offsets that were gone from Kafka before they could be backed up."""

    start: int
    end: int  # exclusive
    reason: str


@dataclass(frozen=True, slots=True)
class PrunedRange:
    """Offsets whose segments retention deleted on purpose: what they held, when and why.

    Only an oldest-first prefix of a partition is ever pruned, so pruned ranges
    come first in its tiling. Timestamps are -1 when the pruned segments held
    no record.
    """

    start: int
    end: int  # exclusive
    segments: int
    records: int
    bytes: int  # stored bytes of the deleted segments
    min_timestamp: int
    max_timestamp: int
    pruned_ms: int  # when (the last prune that extended the range)
    reason: str  # why: the rule that chose it, e.g. "kafka-backup prune --older-than 30d"

    def merged(self, later: PrunedRange) -> PrunedRange:
        """This range extended by ``later``, which starts where it ends."""
        stamps = [t for r in (self, later) for t in (r.min_timestamp, r.max_timestamp) if t >= 0]
        return PrunedRange(
            self.start,
            later.end,
            self.segments + later.segments,
            self.records + later.records,
            self.bytes + later.bytes,
            min(stamps, default=-1),
            max(stamps, default=-1),
            later.pruned_ms,
            later.reason,
        )


@dataclass(slots=True)
class PartitionIndex:
    """What is stored for one partition: pruned ranges, segments and missing ranges tiling
    ``[start_offset, end_offset)``."""

    topic: str
    partition: int
    segments: list[SegmentEntry] = field(default_factory=list)
    missing: list[MissingRange] = field(default_factory=list)
    #: The version the index was read as (1 for a new one); :meth:`to_json` writes :attr:`needed_version`.
    format_version: int = 1
    pruned: list[PrunedRange] = field(default_factory=list)

    @property
    def needed_version(self) -> int:
        """The lowest format version that can hold this index: its newest codec's, or pruned ranges'."""
        codecs = max((codec_version(s.codec) for s in self.segments), default=1)
        later = TOPIC_IDS_VERSION if parse_stored_topic(self.topic)[1] > 1 else 1
        encrypted = ENCRYPTION_VERSION if any(s.encryption for s in self.segments) else 1
        restarts = RESTART_POINTS_VERSION if any(s.restarts for s in self.segments) else 1
        return max(codecs, PRUNED_RANGES_VERSION if self.pruned else 1, later, encrypted, restarts)

    @property
    def start_offset(self) -> int | None:
        """Where the backed-up range starts, pruned ranges included."""
        starts = [s.base_offset for s in self.segments] + [m.start for m in self.missing]
        starts += [p.start for p in self.pruned]
        return min(starts) if starts else None

    @property
    def end_offset(self) -> int | None:
        """Exclusive end of everything covered, pruned ranges included; where a resumed backup continues."""
        ends = [s.end_offset for s in self.segments] + [m.end for m in self.missing]
        ends += [p.end for p in self.pruned]
        return max(ends) if ends else None

    @property
    def retained_start(self) -> int | None:
        """The first offset not pruned: where what the backup still holds starts."""
        starts = [s.base_offset for s in self.segments] + [m.start for m in self.missing]
        if starts:
            return min(starts)
        return self.end_offset

    def pruned_at(self, offset: int) -> PrunedRange | None:
        """The pruned range holding ``offset``, if any."""
        return next((p for p in self.pruned if p.start <= offset < p.end), None)

    def prune(self, segments: list[SegmentEntry], when_ms: int, reason: str) -> PrunedRange:
        """Drop ``segments``, which must be the oldest ones in order, and record them as pruned.

        The new range runs from the retained start to the last dropped segment's
        end; a missing range inside it goes with it (nothing of it is left to
        explain). It extends the previous pruned range when it continues it for
        the same reason, so regular retention keeps one range. Returns the range
        of this cut alone. Raises ValueError, changing nothing, when
        ``segments`` is not the index's oldest-first prefix (it changed since).
        """
        count = len(segments)
        if not count or self.segments[:count] != segments:
            raise ValueError(f"{self.topic}/{self.partition}: the segments to prune are not its oldest")
        start = self.retained_start
        assert start is not None
        end = segments[-1].end_offset
        stamps = [t for s in segments if s.record_count for t in (s.min_timestamp, s.max_timestamp) if t >= 0]
        cut = PrunedRange(
            start,
            end,
            count,
            sum(s.record_count for s in segments),
            sum(s.size for s in segments),
            min(stamps, default=-1),
            max(stamps, default=-1),
            when_ms,
            reason,
        )
        del self.segments[:count]
        self.missing = [m for m in self.missing if m.start >= end]
        last = self.pruned[-1] if self.pruned else None
        if last is not None and last.end == start and last.reason == reason:
            self.pruned[-1] = last.merged(cut)
        else:
            self.pruned.append(cut)
        self.format_version = max(self.format_version, PRUNED_RANGES_VERSION)
        return cut

    @property
    def record_count(self) -> int:
        return sum(s.record_count for s in self.segments)

    @property
    def size(self) -> int:
        return sum(s.size for s in self.segments)

    def coverage_problems(self) -> list[str]:
        """Holes or overlaps in the tiling of pruned ranges, segments and missing ranges."""
        spans = sorted(
            [(s.base_offset, s.end_offset, s.key) for s in self.segments]
            + [(m.start, m.end, f"missing range ({m.reason})") for m in self.missing]
            + [(p.start, p.end, f"pruned range [{p.start}, {p.end})") for p in self.pruned]
        )
        problems = []
        retained = [s.base_offset for s in self.segments] + [m.start for m in self.missing]
        for p in self.pruned:
            if retained and p.start >= min(retained):
                problems.append(
                    f"{self.topic}/{self.partition}: pruned range [{p.start}, {p.end}) follows stored "
                    "offsets (only the oldest offsets are ever pruned)"
                )
        for (_, end, what), (start, _, nxt) in itertools.pairwise(spans):
            if start > end:
                problems.append(
                    f"{self.topic}/{self.partition}: hole [{end}, {start}) between {what} and {nxt}"
                )
            elif start < end:
                problems.append(f"{self.topic}/{self.partition}: {what} overlaps {nxt}")
        for s in self.segments:
            if s.end_offset < s.base_offset or (
                s.record_count and not s.base_offset <= s.first_offset <= s.last_offset < s.end_offset
            ):
                problems.append(f"{s.key}: records outside its range [{s.base_offset}, {s.end_offset})")
        return problems

    def to_json(self) -> bytes:
        body = {
            "format": FORMAT_NAME,
            "format_version": self.needed_version,
            "topic": self.topic,
            "partition": self.partition,
            "segments": [s.to_dict() for s in self.segments],
            "missing": [asdict(m) for m in self.missing],
        }
        if self.pruned:
            body["pruned"] = [asdict(p) for p in self.pruned]
        return json.dumps(body, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes, *, name: str = "index") -> PartitionIndex:
        body = _load(data, name)
        with malformed(name, "partition index"):
            index = cls(
                topic=string(body.get("topic"), name, "topic"),
                partition=integer(body.get("partition"), name, "partition"),
                segments=[
                    SegmentEntry.from_dict(item, name, f"segments[{i}]")
                    for i, item in enumerate(array(body.get("segments"), name, "segments"))
                ],
                missing=_list_of(MissingRange, body.get("missing", []), name, "missing"),
                format_version=integer(body["format_version"], name, "format_version"),
                pruned=_list_of(PrunedRange, body.get("pruned", []), name, "pruned"),
            )
        for entry in index.segments:
            _check_codec(name, entry.codec, index.format_version)
            if entry.encryption is not None and (
                entry.encryption != ALGORITHM or index.format_version < ENCRYPTION_VERSION
            ):
                raise FormatError(
                    f"{name}: {entry.key}: encryption {entry.encryption!r} needs format version "
                    f"{ENCRYPTION_VERSION} and {ALGORITHM}; the index says version {index.format_version}"
                )
            if entry.restarts is not None and index.format_version < RESTART_POINTS_VERSION:
                raise FormatError(
                    f"{name}: {entry.key}: restart points need format version {RESTART_POINTS_VERSION}, "
                    f"the index says version {index.format_version}"
                )
        if index.pruned and index.format_version < PRUNED_RANGES_VERSION:
            raise FormatError(
                f"{name}: has pruned ranges but states format version {index.format_version}; "
                f"pruned ranges came with version {PRUNED_RANGES_VERSION}"
            )
        if parse_stored_topic(index.topic)[1] > 1 and index.format_version < TOPIC_IDS_VERSION:
            raise FormatError(
                f"{name}: is a topic incarnation ({index.topic}) but states format version "
                f"{index.format_version}; incarnations came with version {TOPIC_IDS_VERSION}"
            )
        return index


# -- manifest -----------------------------------------------------------------


@dataclass(slots=True)
class RunInfo:
    run_id: str
    started_ms: int
    finished_ms: int | None = None
    status: str = "running"  # running | complete | stopped (continuous) | interrupted | failed
    mode: str = "snapshot"  # snapshot | continuous
    records: int = 0
    bytes: int = 0


#: The format version that added :class:`Continuation` (a backup continuing another tool's).
CONTINUATION_VERSION = 3


@dataclass(slots=True)
class Continuation:
    """The other tool's backup that a libkb backup continues (an adopted backup id, format version 3).

    ``ends``: per topic and partition, the offset after the last one the other
    tool had stored when libkb took over; libkb's part starts there, and a
    reader takes the other tool's records only below it.
    """

    writer: str  # "kafka-backup (Rust)"
    adopted_ms: int
    ends: dict[str, dict[int, int]] = field(default_factory=dict)

    def end(self, topic: str, partition: int) -> int | None:
        return self.ends.get(topic, {}).get(partition)

    @classmethod
    def from_dict(cls, body: object, name: str = "manifest") -> Continuation:
        fields = mapping(body, name, "continues")
        ends = {
            t: partition_offsets(parts, name, f"continues.ends.{t}")
            for t, parts in mapping(fields.get("ends"), name, "continues.ends").items()
        }
        writer = string(fields.get("writer"), name, "continues.writer")
        return cls(writer, integer(fields.get("adopted_ms"), name, "continues.adopted_ms"), ends)


@dataclass(slots=True)
class Manifest:
    """The small top-level description of a backup; rewritten only by the lease holder."""

    backup_id: str
    created_ms: int
    updated_ms: int
    compression: str
    topics: dict[str, TopicInfo] = field(default_factory=dict)
    runs: list[RunInfo] = field(default_factory=list)
    source_cluster_id: str | None = None
    libkb_version: str = ""
    #: The version the manifest was read as (1 for a new one); :meth:`to_json` writes :attr:`needed_version`.
    format_version: int = 1
    #: Set when this backup continues another tool's backup of the same id (an adopted one).
    continues: Continuation | None = None

    @property
    def status(self) -> str:
        return self.runs[-1].status if self.runs else "empty"

    @property
    def needed_version(self) -> int:
        """The lowest format version that can hold this manifest: that of its compression,
        continuation, topic ids or incarnations."""
        ids = self.records_topic_ids
        return max(
            codec_version(self.compression),
            CONTINUATION_VERSION if self.continues else 1,
            TOPIC_IDS_VERSION if ids else 1,
        )

    @property
    def records_topic_ids(self) -> bool:
        """Whether a topic info holds a topic id, or a topic has several incarnations (version 5)."""
        return any(i.topic_id is not None or parse_stored_topic(n)[1] > 1 for n, i in self.topics.items())

    def incarnations(self, topic: str) -> list[str]:
        """The stored names of the Kafka topic ``topic``'s incarnations, oldest first."""
        found = [(parse_stored_topic(n)[1], n) for n in self.topics if parse_stored_topic(n)[0] == topic]
        return [name for _, name in sorted(found)]

    def to_json(self) -> bytes:
        body = {"format": FORMAT_NAME, **asdict(self), "format_version": self.needed_version}
        if self.continues is None:
            del body["continues"]  # a version-1/2 reader knows no such field
        for info in body["topics"].values():
            if info["topic_id"] is None:
                del info["topic_id"]  # a version-1 to 4 reader refuses the field
        return json.dumps(body, indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes, *, name: str = "manifest") -> Manifest:
        body = _load(data, name)
        with malformed(name, "manifest"):
            topics = mapping(body.get("topics", {}), name, "topics")
            manifest = cls(
                backup_id=string(body.get("backup_id"), name, "backup_id"),
                created_ms=integer(body.get("created_ms"), name, "created_ms"),
                updated_ms=integer(body.get("updated_ms"), name, "updated_ms"),
                compression=string(body.get("compression"), name, "compression"),
                topics={k: build(TopicInfo, v, name, f"topics.{k}") for k, v in topics.items()},
                runs=_list_of(RunInfo, body.get("runs", []), name, "runs"),
                source_cluster_id=_optional(string, body.get("source_cluster_id"), name, "source_cluster_id"),
                libkb_version=string(body.get("libkb_version", ""), name, "libkb_version"),
                format_version=integer(body["format_version"], name, "format_version"),
                continues=Continuation.from_dict(body["continues"], name) if "continues" in body else None,
            )
        if manifest.continues is not None and manifest.format_version < CONTINUATION_VERSION:
            raise FormatError(
                f"{name}: 'continues' needs format version {CONTINUATION_VERSION}, "
                f"the manifest says {manifest.format_version}"
            )
        if any(not isinstance(i.topic_id, str | None) for i in manifest.topics.values()):
            raise FormatError(f"{name}: malformed manifest (a topic_id is not a string)")
        if manifest.records_topic_ids and manifest.format_version < TOPIC_IDS_VERSION:
            raise FormatError(
                f"{name}: topic ids and incarnations need format version {TOPIC_IDS_VERSION}, "
                f"the manifest says {manifest.format_version}"
            )
        _check_codec(name, manifest.compression, manifest.format_version, known_only=True)
        return manifest


def groups_to_json(groups: Iterable[GroupOffsets], taken_ms: int) -> bytes:
    groups = list(groups)
    incarnation = any(parse_stored_topic(t)[1] > 1 for g in groups for t in g.offsets)
    body = {
        "format": FORMAT_NAME,
        # Unchanged since version 1, but for offsets on a topic's later incarnation (``orders@2``).
        "format_version": TOPIC_IDS_VERSION if incarnation else 1,
        "taken_ms": taken_ms,
        "groups": {
            g.group: {t: {str(p): o for p, o in parts.items()} for t, parts in g.offsets.items()}
            for g in groups
        },
    }
    return json.dumps(body, indent=2, sort_keys=True).encode()


def groups_from_json(data: bytes, *, name: str = "consumer groups") -> tuple[int, list[GroupOffsets]]:
    body = _load(data, name)
    with malformed(name, "consumer-group snapshot"):
        groups = [
            GroupOffsets(
                g,
                {
                    t: partition_offsets(parts, name, f"groups.{g}.{t}")
                    for t, parts in mapping(topics, name, f"groups.{g}").items()
                },
            )
            for g, topics in mapping(body.get("groups"), name, "groups").items()
        ]
        return integer(body.get("taken_ms"), name, "taken_ms"), groups


def _list_of(cls: type[T], items: object, name: str, path: str) -> list[T]:
    return [build(cls, item, name, f"{path}[{i}]") for i, item in enumerate(array(items, name, path))]


def _optional(check: Callable[[object, str, str], T], value: object, name: str, path: str) -> T | None:
    return None if value is None else check(value, name, path)


def _load(data: bytes, name: str) -> Mapping[str, Any]:
    body = load_object(data, name)
    if body.get("format") != FORMAT_NAME:
        raise FormatError(f"{name}: not a libkb object")
    version = body.get("format_version")
    if type(version) is not int or version > FORMAT_VERSION:
        raise FormatError(newer_version(name, version))
    return body


def _check_codec(name: str, codec: str, version: int, *, known_only: bool = False) -> None:
    """A codec the object's own version has (lz4 needs 2); ``known_only``: an unknown name passes."""
    if codec not in CODECS:
        if known_only:
            return  # the manifest's compression is informational
        raise FormatError(f"{name}: unknown codec {codec!r}")
    if codec_version(codec) > version:
        raise FormatError(
            f"{name}: codec {codec} needs format version {codec_version(codec)}, the object says {version}"
        )
