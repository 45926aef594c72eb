"""The segment source: the one interface through which restore, validate, describe and list read a backup.

A reader never opens a storage key itself; it asks a :class:`BackupSource`
for the facts of one backup, and the source knows its on-disk format:

- the **manifest** facts (topics, partition counts, configs, runs);
- each partition's **coverage**: its segments with their offset ranges, time
  ranges and record counts, and the offset ranges known to be missing;
- the **records** of a segment, as batches in offset order (one block each
  for libkb's format, so a restore hands whole blocks to its fast path);
- **checks**: the structure of the stored objects, and a (deep) check of one
  segment.

Facts are libkb's format models (:class:`~libkb.format.models.Manifest`,
:class:`~libkb.format.models.PartitionIndex` as a partition's coverage,
:class:`~libkb.format.models.SegmentEntry`), records are
:data:`~libkb.format.segment.Record` tuples: they are plain data, so a source
for another on-disk format fills them from its own layout.
:mod:`libkb.source.locate` picks the source that reads a backup's layout.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from libkb.errors import LibkbError
from libkb.format.models import GroupOffsets, Manifest, PartitionIndex, SegmentEntry
from libkb.format.segment import DecodedBlock, Record
from libkb.keys import Keyring
from libkb.storage import StorageBackend

#: When a backup's consumer-group offsets were taken (epoch ms), and the groups.
GroupsSnapshot = tuple[int, list[GroupOffsets]]


@dataclass(frozen=True, slots=True)
class Provenance:
    """Who wrote a backup, in which format, and what that format cannot keep."""

    writer: str  # "libkb 0.1.0", "kafka-backup (Rust) 0.12 or later"
    format: str  # "libkb format 1", "kafka-backup (Rust) segment format 1"
    #: libkb's format version; None for another tool's format.
    format_version: int | None
    #: The backup's status, for a format that records no runs (None: the manifest's).
    status: str | None = None
    #: What the format loses or changes, one plain sentence each (``describe`` and a restore's summary).
    notes: tuple[str, ...] = ()


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


class SegmentCheck(NamedTuple):
    """What checking one segment found, and how many records it decoded."""

    problems: list[str]
    records: int


@dataclass(slots=True)
class Structure:
    """The structural findings on a backup's stored objects, and the segments left to check one by one."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: What is worth knowing and is no fault: offsets pruned by retention on purpose.
    notes: list[str] = field(default_factory=list)
    partitions: int = 0  # partitions whose coverage was read
    segments: list[SegmentEntry] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Wanted:
    """What a reader will keep of a segment: offsets ``[start, end)`` whose timestamps lie in
    ``[low, high]`` (inclusive; None: unbounded). A source may then read less than the whole object."""

    start: int
    end: int
    low: int | None = None
    high: int | None = None


class StoredSegment(ABC):
    """One segment's bytes, already read: decoding is left to the thread that consumes the records."""

    key: str
    #: The bytes read from storage for it (less than its size when only its tail was read).
    read_bytes: int

    @abstractmethod
    def batches(self, start: int, end: int) -> Iterator[list[Record]]:
        """The records of the blocks that reach into ``[start, end)``, a batch per block, in offset order.

        A batch may hold records outside the range (a block is not split);
        a corrupt block raises :class:`~libkb.errors.FormatError` naming the
        segment before any of its records is returned.
        """

    def decoded(self, start: int, end: int) -> Iterator[DecodedBlock | list[Record]]:
        """As :meth:`batches`, where the format allows with blocks whose records are not made yet
        (:class:`~libkb.format.segment.DecodedBlock`: the restore's C path produces from its bytes)."""
        return self.batches(start, end)


class BackupSource(ABC):
    """One stored backup, read through its on-disk format. Thread-safe: readers call it from pools."""

    #: Whether a segment's time range bounds every record's timestamp, so a time-window restore
    #: may skip segments outside the window (False: it reads every segment of its offset range).
    exact_time_bounds: bool = True

    def __init__(self, backend: StorageBackend, backup_id: str) -> None:
        self.backend = backend
        self.backup_id = backup_id
        #: Keep the headers the writing tool added to each record (only a format whose writer
        #: added any has a use for it; set before reading records: ``restore.keep_rust_tool_headers``).
        self.keep_tool_headers = False
        #: The keys that read encrypted segments (set before reading records; empty: none given).
        self.keyring = Keyring()

    @classmethod
    @abstractmethod
    def claims(cls, backend: StorageBackend, backup_id: str) -> bool:
        """Whether the backup stored as ``backup_id`` has this format's layout (a cheap look)."""

    @abstractmethod
    def manifest(self, *, settle: bool = False) -> Manifest:
        """The backup's manifest facts; :class:`BackupNotFoundError` when there is no such backup.

        ``settle``: show a last run that is still ``running`` but whose writer
        is gone as ``interrupted`` (what ``list`` and ``describe`` show).
        """

    @abstractmethod
    def coverage(self, topic: str, partition: int) -> PartitionIndex | None:
        """The partition's segments and missing ranges as the backup records them; None if none are."""

    @abstractmethod
    def readable_coverage(self, topic: str, partition: int) -> PartitionIndex:
        """Every segment of the partition a restore can read, in offset order (may be empty)."""

    @abstractmethod
    def stored_totals(self) -> tuple[int, int]:
        """(records, stored bytes) over every partition, for listings; unreadable parts count 0."""

    @abstractmethod
    def groups(self) -> GroupsSnapshot | None:
        """The consumer-group offsets stored with the backup, or None without a snapshot."""

    @abstractmethod
    def load(self, segment: SegmentEntry, wanted: Wanted | None = None) -> StoredSegment:
        """Read one segment (I/O only, so it can run on a pool thread ahead of the consumer).

        ``wanted``: what the caller keeps of it; the source may read only the part that can hold it
        (libkb's format from version 8: from a restart point on), and :meth:`StoredSegment.batches`
        then gives at least every block of that part. None: read it whole.
        """

    @abstractmethod
    def check_structure(self) -> Structure:
        """Check the stored objects against each other (no segment is read whole)."""

    @abstractmethod
    def check_segment(self, segment: SegmentEntry, *, deep: bool) -> SegmentCheck:
        """Check one segment is stored as recorded; ``deep`` also reads it and checks every record."""

    @abstractmethod
    def provenance(self, manifest: Manifest, *, peek: bool = False) -> Provenance:
        """Who wrote the backup (``manifest``: its facts, as read) and what its format loses.

        ``peek``: may read a record to say more (``describe``; not ``list``).
        """

    def check_keys(self, segments: Iterable[SegmentEntry], *, strict: bool = True) -> None:
        """Raise :class:`~libkb.errors.EncryptionKeyError` unless :attr:`keyring` reads every segment given.

        Called before anything is written (restore) or read (``validate --deep``), so a wrong or missing
        key is one error naming the key id, not a restore that stops half-way. ``strict``: also raise
        when only some segments cannot be read (altered key objects; ``validate`` reports them one by
        one instead). Formats without encryption have nothing to check.
        """
        return None

    def read_notes(self) -> list[str]:
        """What the records read so far had that a reader should know (a restore's summary says it)."""
        return []
