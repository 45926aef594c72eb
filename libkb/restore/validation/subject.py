"""What a validation run compares: each restored partition's expected records and where they must be.

With a stored restore into the validated cluster (the latest complete one
whose target cluster id matches, or ``restore_id``), its offset mapping says
exactly which target offsets hold the backup's records: the checks are
exact. Without one (the backup's own cluster, or one restored by other
means), partitions are compared by topic name and offset, as the original
tool compares them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from libkb.errors import ConfigError, FormatError
from libkb.format.models import GroupOffsets, Manifest, manifest_key, parse_stored_topic
from libkb.restore.mapping import OffsetMapping, PartitionMapping
from libkb.restore.state import RestoreState, mapping_key, state_key
from libkb.source import BackupSource, open_backup
from libkb.storage import NotFoundError, StorageBackend


@dataclass(frozen=True, slots=True)
class Expected:
    """One source partition's records as they must be found in the target partition."""

    source_topic: str
    source_partition: int
    target_topic: str
    target_partition: int
    start: int  # target offset of the first record
    end: int  # target offset after the last
    records: int
    mapping: PartitionMapping | None = None  # None: compared by name and offset

    @property
    def target(self) -> tuple[str, int]:
        return self.target_topic, self.target_partition


@dataclass(slots=True)
class Subject:
    backup_id: str
    manifest: Manifest
    manifest_sha256: str
    source: BackupSource
    partitions: list[Expected]
    groups: list[GroupOffsets] | None  # the backup's snapshot; None without one
    restore: RestoreState | None = None
    mapping: OffsetMapping | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        """Whether a stored restore's mapping locates every record."""
        return self.mapping is not None


def find_subject(
    backend: StorageBackend, backup_id: str, cluster_id: str | None, restore_id: str | None = None
) -> Subject:
    """The backup and the restore to check: ``restore_id``, else the latest complete one into the cluster."""
    source = open_backup(backend, backup_id)
    manifest = source.manifest()
    digest = hashlib.sha256(backend.get(manifest_key(backup_id))).hexdigest()
    snapshot = source.groups()
    groups = snapshot[1] if snapshot is not None else None
    state = _restore(backend, backup_id, cluster_id, restore_id)
    if state is None:
        subject = Subject(backup_id, manifest, digest, source, _by_name(source, manifest), groups)
        subject.notes.append(
            "no stored restore of this backup into the cluster: partitions are compared by topic name "
            "and offset (give restore_id to check a restore)"
        )
        return subject
    key = mapping_key(backup_id, state.restore_id)
    try:
        mapping = OffsetMapping.from_json(backend.get(key), name=key)
    except NotFoundError:
        raise ConfigError(
            f"restore {state.restore_id} of backup {backup_id!r} has no stored offset mapping yet "
            f"(status {state.status}): finish it first",
            key="restore_id",
        ) from None
    expected = [
        Expected(
            p.source_topic,
            p.source_partition,
            p.target_topic,
            p.target_partition,
            p.target_start,
            p.target_end,
            p.count,
            p,
        )
        for p in mapping.partitions
    ]
    subject = Subject(backup_id, manifest, digest, source, expected, groups, state, mapping)
    if state.status != "complete":
        subject.notes.append(f"restore {state.restore_id} is {state.status}, not complete")
    return subject


def _by_name(source: BackupSource, manifest: Manifest) -> list[Expected]:
    """Each backed-up partition at its own offsets, from its first to its last stored record.

    Of a topic deleted and re-created between runs, only the latest incarnation
    can be what a topic of its name holds.
    """
    out = []
    for topic, info in sorted(manifest.topics.items()):
        name = parse_stored_topic(topic)[0]
        if manifest.incarnations(name)[-1] != topic:
            continue
        for partition in range(info.partitions):
            stored = [s for s in source.readable_coverage(topic, partition).segments if s.record_count]
            if stored:
                first, last = min(s.first_offset for s in stored), max(s.last_offset for s in stored)
                records = sum(s.record_count for s in stored)
                out.append(Expected(topic, partition, name, partition, first, last + 1, records))
    return out


def _restore(
    backend: StorageBackend, backup_id: str, cluster_id: str | None, restore_id: str | None
) -> RestoreState | None:
    states = []
    prefix = f"{backup_id}/restores/"
    ids = sorted({k.split("/")[2] for k in backend.iter_keys(prefix) if k.endswith("/state.json")})
    for rid in ids:
        key = state_key(backup_id, rid)
        try:
            states.append(RestoreState.from_json(backend.get(key), name=key))
        except (NotFoundError, FormatError):
            continue
    if restore_id is not None:
        chosen = [s for s in states if s.restore_id == restore_id]
        if not chosen:
            raise ConfigError(
                f"backup {backup_id!r} has no stored restore {restore_id!r} "
                f"(restores: {', '.join(s.restore_id for s in states) or 'none'})",
                key="restore_id",
            )
        return chosen[0]
    candidates = [
        s
        for s in states
        if s.status == "complete" and (cluster_id is None or s.target_cluster_id in (None, cluster_id))
    ]
    return max(candidates, key=lambda s: s.created_ms) if candidates else None
