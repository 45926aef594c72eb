"""The structure of a stored libkb v1 backup: manifest, lease, indexes and the segments they list.

Checked from one listing of the backup's prefix, the indexes, and nothing
else: no segment is read here (``check_segment`` does that, one by one). The
segments a deep check must read are returned with the findings: every indexed
segment that is stored, and an unindexed one the next run will adopt.
"""

from __future__ import annotations

from collections import defaultdict

from libkb.backup.lease import current_lease
from libkb.backup.state import AFTER_HOLE, LEFTOVER, OVERLAP, judge_strays, pruned_end, read_segment_entry
from libkb.errors import FormatError
from libkb.format.encryption import key_object_key, segment_of_key_object
from libkb.format.models import (
    Manifest,
    PartitionIndex,
    SegmentEntry,
    index_key,
    lease_key,
    manifest_key,
    parse_lease_key,
    parse_segment_key,
    partition_prefix,
)
from libkb.source.base import Structure
from libkb.source.checks import coverage_findings, pruned_notes
from libkb.source.libkb_v1.listing import is_index_key, not_found
from libkb.source.parallel import parallel_map
from libkb.storage import StorageBackend, StorageError

TP = tuple[str, int]


def check_layout(backend: StorageBackend, backup_id: str) -> Structure:
    """The structural findings on the backup, and the segments to check one by one."""
    return _LayoutCheck(backend, backup_id).run()


class _LayoutCheck:
    def __init__(self, backend: StorageBackend, backup_id: str) -> None:
        self.backend = backend
        self.backup_id = backup_id
        self.found = Structure()

    def problem(self, text: str) -> None:
        self.found.problems.append(text)

    def warning(self, text: str) -> None:
        self.found.warnings.append(text)

    def run(self) -> Structure:
        bid = self.backup_id
        keys = list(self.backend.iter_keys(f"{bid}/"))
        if manifest_key(bid) not in keys:
            raise not_found(self.backend, bid)
        manifest = self._manifest()
        self._lease(keys)
        segments = {k for k in keys if parse_segment_key(k) is not None}
        index_keys = [k for k in keys if is_index_key(bid, k)]
        key_objects = {k for k in keys if segment_of_key_object(k) in segments}
        known = segments.union(index_keys, key_objects)
        for key in keys:
            if key in known or not key.startswith(f"{bid}/topics/"):
                continue
            if segment_of_key_object(key) is not None:
                self.warning(
                    f"{key}: a key object without its segment (a run stopped before storing the segment; "
                    "the run that stores it replaces the key object); ignored"
                )
            else:
                self.warning(f"{key}: not a file of the libkb format; ignored")
        indexes = self._indexes(index_keys)
        self.found.partitions = len(indexes)
        self._check_against_manifest(manifest, indexes, segments)
        entries: list[SegmentEntry] = []
        for ikey, index in sorted(indexes.items()):
            entries += self._check_index(ikey, index, segments)
        entries += self._unlisted(indexes, segments - {e.key for e in entries})
        self.found.segments = [e for e in entries if e.key in segments]
        for entry in self.found.segments:
            if entry.encryption and key_object_key(entry.key) not in key_objects:
                self.problem(
                    f"{key_object_key(entry.key)}: missing: the encrypted segment {entry.key} cannot be "
                    "read without it (its data key is lost)"
                )
        return self.found

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

    def _lease(self, keys: list[str]) -> None:
        if not any(map(parse_lease_key, keys)):
            return
        current = current_lease(self.backend, lease_key(self.backup_id))
        if current is not None and (current[1] is None or not current[1].released):
            # Live, or its run died without releasing it (as lease.json of earlier builds).
            self.warning(f"{current[0]}: a run holds the lease; segments it is writing may show as problems")

    def _indexes(self, keys: list[str]) -> dict[str, PartitionIndex]:
        def load(key: str) -> PartitionIndex | str:
            try:
                return PartitionIndex.from_json(self.backend.get(key), name=key)
            except FormatError as exc:
                return str(exc)

        out = {}
        for key, result in zip(keys, parallel_map(load, keys), strict=True):
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
        stored: dict[TP, int] = defaultdict(int)
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

    def _check_index(self, ikey: str, index: PartitionIndex, segments: set[str]) -> list[SegmentEntry]:
        problems, warnings = coverage_findings(ikey, index)
        self.found.problems += problems
        self.found.warnings += warnings
        self.found.notes += pruned_notes(ikey, index)
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

    def _unlisted(self, indexes: dict[str, PartitionIndex], unlisted: set[str]) -> list[SegmentEntry]:
        """Stored segments no index lists, judged partition by partition; those a run will adopt."""
        strays: dict[TP, list[tuple[int, str]]] = defaultdict(list)
        for key in unlisted:
            parsed = parse_segment_key(key)
            if parsed is not None:
                strays[(parsed[1], parsed[2])].append((parsed[3], key))
        entries: list[SegmentEntry] = []
        for (topic, partition), found in sorted(strays.items()):
            owner = indexes.get(index_key(self.backup_id, topic, partition))
            entries += self._check_strays(topic, partition, owner, found)
        return entries

    def _check_strays(
        self, topic: str, partition: int, index: PartitionIndex | None, found: list[tuple[int, str]]
    ) -> list[SegmentEntry]:
        """Segments the index does not list, judged as the next run will treat them.

        A run stores a segment before the index listing it, so one killed in
        between leaves segments that continue the indexed coverage: intact,
        adopted by the next run (``libkb.backup.state.load_index``), and read
        by restores meanwhile (they adopt them in memory, ``repair=False``). Those,
        and leftover copies of indexed offsets, are warnings; a segment past a
        hole or overlapping the index is a problem. Adoptable ones are returned
        so a deep check reads them too.
        """
        ikey = index_key(self.backup_id, topic, partition)
        cut = pruned_end(index) if index is not None else None
        entries = []
        for base, key in sorted(found):
            if cut is not None and base < cut:
                self.warning(
                    f"{key}: pruned from {ikey}, but the prune was stopped before deleting it; "
                    "restores ignore it, and the next prune or backup run deletes it"
                )
                continue
            try:
                entries.append(read_segment_entry(self.backend, key, base))
            except (FormatError, ValueError, StorageError) as exc:
                self.problem(f"{key}: stored but not listed in {ikey}, and unreadable: {exc}")
        adoptable: list[SegmentEntry] = []
        end = index.end_offset if index is not None else None
        for entry, verdict, before in judge_strays(end, entries):
            if verdict == LEFTOVER:
                self.warning(
                    f"{entry.key}: a leftover copy of offsets already in indexed segments; "
                    "the next backup run deletes it"
                )
            elif verdict == OVERLAP:
                self.problem(
                    f"{entry.key}: stored but not listed in {ikey}, and overlaps the indexed segments"
                )
            elif verdict == AFTER_HOLE:
                self.problem(
                    f"{entry.key}: stored but not listed in {ikey}, after offsets {before}-"
                    f"{entry.base_offset - 1} that nothing accounts for (the index lost them)"
                )
            elif adoptable or (index is None and len(found) > 1):
                # A run leaves at most one stored-but-unlisted segment per partition.
                self.problem(
                    f"{entry.key}: stored but not listed in {ikey}, which lost it (more than one unlisted "
                    "segment); the next backup run adopts it"
                )
            else:
                self.warning(
                    f"{entry.key}: stored but not yet listed in {ikey} (a run was interrupted after storing "
                    "it); restores already include it, and the next backup run adopts it into the index"
                )
                adoptable.append(entry)
        return adoptable
