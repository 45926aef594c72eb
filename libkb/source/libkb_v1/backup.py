"""libkb's own format (every version), as a :class:`~libkb.source.base.BackupSource` over a StorageBackend.

The manifest is ``{id}/manifest.json``; each partition's coverage is its
``index.json``; records are in ``.kbs`` segments (docs/format.rst). A run
stores a segment before the index that lists it, so a restore reads the
index reconciled with the listing (``load_index``: segments stored but not yet
listed continue the coverage), while ``describe`` shows the index as stored.
A segment whose index entry lists restart points (version 8) is read from
the one a restore needs on (:mod:`.restarts`).
"""

from __future__ import annotations

from collections.abc import Iterable

from libkb.backup.envelope import Envelope
from libkb.backup.lease import lease_is_live
from libkb.backup.state import load_index
from libkb.errors import EncryptionKeyError, FormatError, LibkbError
from libkb.format.encryption import FLAG_ENCRYPTED, DataKey, KeyObject
from libkb.format.models import (
    Manifest,
    PartitionIndex,
    SegmentEntry,
    groups_from_json,
    groups_key,
    index_key,
    lease_key,
    manifest_key,
    parse_segment_key,
)
from libkb.format.restarts import RestartPoint
from libkb.format.segment import CODECS, SegmentError, SegmentReader, stated_header
from libkb.source.base import BackupSource, GroupsSnapshot, Provenance, SegmentCheck, Structure, Wanted
from libkb.source.libkb_v1.layout import check_layout
from libkb.source.libkb_v1.listing import ListedBackup, is_index_key, not_found
from libkb.source.libkb_v1.restarts import start_point
from libkb.source.libkb_v1.segment import V1Segment
from libkb.source.parallel import parallel_map
from libkb.storage import NotFoundError, StorageBackend


class LibkbV1Source(BackupSource):
    """One libkb v1 backup; ``listed`` is what a listing of the location already showed of it."""

    def __init__(self, backend: StorageBackend, backup_id: str, listed: ListedBackup | None = None) -> None:
        super().__init__(backend, backup_id)
        self._listed = listed
        #: Each encrypted segment's data key and key object, unwrapped and read once (check_keys).
        self._data_keys: dict[str, tuple[DataKey, KeyObject]] = {}

    @classmethod
    def claims(cls, backend: StorageBackend, backup_id: str) -> bool:
        return True  # the default: what no other format claims is read as libkb's

    def manifest(self, *, settle: bool = False) -> Manifest:
        key = manifest_key(self.backup_id)
        try:
            data = self.backend.get(key)
        except NotFoundError:
            if self._listed is not None:
                raise  # listed a moment ago, so deleted meanwhile: not an unknown id
            raise not_found(self.backend, self.backup_id) from None
        manifest = Manifest.from_json(data, name=key)
        if settle:
            self._settle_dead_run(manifest)
        return manifest

    def _settle_dead_run(self, manifest: Manifest) -> None:
        """Show a last run still ``running`` whose lease is gone, expired or released as ``interrupted``.

        Its process died without recording its end; the next run records it so
        (and resumes). Only the in-memory manifest changes: reading never writes.
        """
        last = manifest.runs[-1] if manifest.runs else None
        if last is None or last.status != "running":
            return
        leased = self._listed.leased if self._listed is not None else True
        if not (leased and lease_is_live(self.backend, lease_key(manifest.backup_id))):
            last.status = "interrupted"

    def coverage(self, topic: str, partition: int) -> PartitionIndex | None:
        key = index_key(self.backup_id, topic, partition)
        try:
            return PartitionIndex.from_json(self.backend.get(key), name=key)
        except NotFoundError:
            return None

    def readable_coverage(self, topic: str, partition: int) -> PartitionIndex:
        return load_index(self.backend, self.backup_id, topic, partition, repair=False)[0]

    def stored_totals(self) -> tuple[int, int]:
        if self._listed is not None:
            keys = self._listed.index_keys
        else:
            keys = [
                k
                for k in self.backend.iter_keys(f"{self.backup_id}/topics/")
                if is_index_key(self.backup_id, k)
            ]
        stats = parallel_map(self._index_stats, keys)
        return sum(s[0] for s in stats), sum(s[1] for s in stats)

    def _index_stats(self, key: str) -> tuple[int, int]:
        try:
            index = PartitionIndex.from_json(self.backend.get(key), name=key)
        except (FormatError, NotFoundError):
            return 0, 0  # validate reports it; a listing should still show the backup
        return index.record_count, index.size

    def groups(self) -> GroupsSnapshot | None:
        key = groups_key(self.backup_id)
        try:
            return groups_from_json(self.backend.get(key), name=key)
        except NotFoundError:
            return None

    def provenance(self, manifest: Manifest, *, peek: bool = False) -> Provenance:
        version = manifest.format_version
        return Provenance(f"libkb {manifest.libkb_version or '?'}", f"libkb format {version}", version)

    def envelope(self) -> Envelope:
        return Envelope(self.backend, self.backup_id, self.keyring)

    def load(self, segment: SegmentEntry, wanted: Wanted | None = None) -> V1Segment:
        """The whole segment, or (``wanted``, format version 8) its tail from the first restart
        interval that may hold a wanted record: one ranged read, footer included."""
        start = start_point(segment, wanted)
        if start is not None:
            return self._load_tail(segment, start)
        data = self._read(segment)
        header = SegmentReader(data, name=segment.key).header
        if header.encrypted != bool(segment.encryption):
            raise SegmentError(
                f"{segment.key}: the index says it is {'en' if segment.encryption else 'un'}crypted, "
                "its header says otherwise (replaced or corrupt)"
            )
        if not header.encrypted:
            return V1Segment(segment, data)
        known = self._data_keys.get(segment.key)
        chain = self.envelope().reading_chain(segment.key, header, data, *(known or ()))
        return V1Segment(segment, data, chain)

    def _load_tail(self, segment: SegmentEntry, start: RestartPoint) -> V1Segment:
        """The segment from ``start`` on; its header is not read: its key and the index state it."""
        data = self._read(segment, start.position)
        if len(data) != segment.size - start.position:
            raise SegmentError(
                f"{segment.key}: {start.position + len(data)} bytes stored, the index says {segment.size} "
                "(truncated or replaced)"
            )
        parsed = parse_segment_key(segment.key)
        if parsed is None:
            raise SegmentError(f"{segment.key}: not a segment key")
        flags = FLAG_ENCRYPTED if segment.encryption else 0
        header = stated_header(parsed[1], parsed[2], segment.base_offset, CODECS[segment.codec], flags)
        chain = None
        if segment.encryption:
            known = self._data_keys.get(segment.key)
            chain = self.envelope().reading_chain(segment.key, header, data, *(known or ()))
        return V1Segment(segment, data, chain, header=header, start=start)

    def _read(self, segment: SegmentEntry, start: int = 0) -> bytes:
        """The segment's bytes from ``start`` to its end (the size its index entry states)."""
        try:
            if start == 0:
                return self.backend.get(segment.key)
            return self.backend.get_range(segment.key, start, segment.size)
        except NotFoundError as exc:
            # Never pruned (a prune drops a segment from its index before deleting it): something
            # else deleted it, such as a bucket lifecycle rule, which must not run on a live backup.
            raise NotFoundError(
                "listed in its partition's index but not stored: deleted by something other than "
                "libkb (a bucket lifecycle rule?); validate the backup",
                backend=exc.backend,
                key=segment.key,
            ) from None

    def check_keys(self, segments: Iterable[SegmentEntry], *, strict: bool = True) -> None:
        """Unwrap the data key of every encrypted segment (in parallel), kept for reading them.

        So a missing or wrong key is one error naming its id before anything is written (a restore)
        or read (``validate --deep``). A key that unwraps some data keys and not others is the right
        key: the others' key objects were altered or moved, which ``strict`` raises (the first, as a
        :class:`FormatError`) and which ``validate`` instead reports per segment.
        """
        envelope = self.envelope()
        todo = [s for s in segments if s.encryption and s.key not in self._data_keys]
        encrypted = [s.key for s in todo]

        def unwrap(entry: SegmentEntry) -> tuple[str, tuple[DataKey, KeyObject] | LibkbError]:
            try:
                obj = envelope.key_object(entry.key)
            except FormatError as exc:
                return "", exc
            try:
                key = envelope.data_key(entry.key, obj)
            except (FormatError, EncryptionKeyError) as exc:
                return obj.key_id, exc
            try:
                envelope.check_stored_seal(entry.key, entry.size, key, obj)
            except (FormatError, NotFoundError) as exc:
                return "", exc  # the key is right; the segment is not what was sealed
            return obj.key_id, (key, obj)

        failed: list[tuple[str, LibkbError]] = []
        unwrapped: set[str] = set()
        for key, (key_id, result) in zip(encrypted, parallel_map(unwrap, todo), strict=True):
            if isinstance(result, tuple):
                self._data_keys[key] = result
                unwrapped.add(key_id)
            else:
                failed.append((key_id, result))
        for key_id, error in failed:
            if isinstance(error, EncryptionKeyError) and key_id not in unwrapped:
                raise error  # the key is missing or wrong for every segment it wrapped
        if failed and strict:
            raise FormatError(str(failed[0][1]))

    def check_structure(self) -> Structure:
        return check_layout(self.backend, self.backup_id)

    def check_segment(self, segment: SegmentEntry, *, deep: bool) -> SegmentCheck:
        try:
            size = self.backend.size(segment.key)
            if size != segment.size:
                return SegmentCheck([f"{segment.key}: {size} bytes stored, the index says {segment.size}"], 0)
            if not deep:
                return SegmentCheck([], 0)
            stored = self.load(segment)
        except (FormatError, EncryptionKeyError) as exc:  # a key object missing, altered or moved
            return SegmentCheck([str(exc)], 0)
        except NotFoundError:
            return SegmentCheck(
                [f"{segment.key}: listed in its index but not stored (deleted meanwhile?)"], 0
            )
        try:
            return stored.verify()
        except (FormatError, EncryptionKeyError) as exc:
            return SegmentCheck([str(exc)], 0)
