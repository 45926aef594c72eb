"""``backup --dry-run``: what a backup job would read, from which offsets, and about how much.

Nothing is written anywhere: storage is opened without creating it (a
location that does not exist yet is reported, not made), indexes are read
without repairing them, no lease is taken, and the consumer that samples
record sizes is only assigned partitions (no group join, no commit). Where
each partition starts comes from the backup's own planner
(:func:`libkb.backup.plan.plan_partitions`) and which topics are taken from
its topic selection (:meth:`libkb.kafka.admin.KafkaAdmin.classify_topics`),
so the dry run and the run cannot disagree.

The byte estimate: Kafka's log-dir sizes would be exact per partition, but
confluent-kafka has no DescribeLogDirs call, so records to read (offsets) are
multiplied by the average size of records sampled from the end of each
partition; the result says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaError, TopicPartition

from libkb.backup.plan import PartitionPlan, plan_partitions
from libkb.backup.state import load_index
from libkb.catalog.status import LeaseStatus, lease_status
from libkb.catalog.times import iso_ms
from libkb.config.models import JobConfig, SourceOptions
from libkb.format.models import Continuation, Manifest, RunInfo, manifest_key
from libkb.kafka.admin import KafkaAdmin
from libkb.source.adopted import backup_target
from libkb.storage import ContainerNotFoundError, NotFoundError, StorageBackend

TP = tuple[str, int]
ConsumerFactory = Callable[[SourceOptions, dict[str, Any]], Consumer]

#: At most this many records are sampled in all, and per partition, within this long.
SAMPLE_RECORDS, SAMPLE_PER_PARTITION, SAMPLE_SECS = 1000, 100, 10.0
SAMPLED = "sampled"
ESTIMATE_WHY = (
    "offsets to read x the average record size (key + value + headers) sampled at each partition's "
    "end; Kafka's log-dir sizes are not available through confluent-kafka"
)


@dataclass(frozen=True, slots=True)
class PlannedPartition:
    topic: str
    partition: int
    #: Where the backup would start reading, and why (see ``PartitionPlan.origin``).
    start_offset: int
    origin: str
    #: Exclusive end: the high watermark (snapshot); None in continuous mode, which does not stop.
    end_offset: int | None
    low_watermark: int
    high_watermark: int
    #: Where the backup's stored coverage ends (its resume point); None if nothing is stored.
    stored_end: int | None
    estimated_bytes: int

    @property
    def offsets_to_read(self) -> int:
        """Up to the high watermark now (records, unless compaction or transactions left gaps)."""
        return max(0, self.high_watermark - self.start_offset)


@dataclass(frozen=True, slots=True)
class ByteEstimate:
    bytes: int
    method: str  # "sampled", or "nothing to read"
    sampled_records: int
    average_record_bytes: float
    why: str


@dataclass(slots=True)
class BackupDryRun:
    backup_id: str
    location: str
    mode: str  # snapshot | continuous
    location_exists: bool
    #: The backup id is already stored: the run resumes it.
    exists: bool
    last_run: RunInfo | None
    lease: LeaseStatus | None
    partitions: list[PlannedPartition]
    excluded: dict[str, str]
    estimate: ByteEstimate
    notes: list[str] = field(default_factory=list)

    @property
    def topics(self) -> list[str]:
        return sorted({p.topic for p in self.partitions})

    def to_dict(self) -> dict[str, Any]:
        last = asdict(self.last_run) if self.last_run is not None else None
        if last is not None:
            last["started"] = iso_ms(last["started_ms"])
            last["finished"] = iso_ms(last["finished_ms"])
        return {
            "backup_id": self.backup_id,
            "status": "planned",
            "location": self.location,
            "location_exists": self.location_exists,
            "mode": self.mode,
            "resume": {"backup_exists": self.exists, "last_run": last},
            "lease": self.lease.to_dict() if self.lease is not None else None,
            "topics": self.topics,
            "partitions": [{**asdict(p), "offsets_to_read": p.offsets_to_read} for p in self.partitions],
            "excluded_topics": [{"topic": t, "rule": r} for t, r in self.excluded.items()],
            "offsets_to_read": sum(p.offsets_to_read for p in self.partitions),
            "estimate": asdict(self.estimate),
            "notes": self.notes,
        }


def plan_backup(
    config: JobConfig,
    backend: StorageBackend,
    admin: KafkaAdmin,
    consumer_factory: ConsumerFactory,
    *,
    location: str,
) -> BackupDryRun:
    """The dry run of ``config`` against ``backend`` (opened with ``create=False``) and the cluster."""
    assert config.source is not None
    options, backup_id = config.backup, config.backup_id
    continuous = options.continuous or not options.stop_at_current_offsets  # as the engine decides
    exists_at = _location_exists(backend, backup_id)
    target, continues, manifest, lease = backend, None, None, None
    if exists_at:
        target, continues = backup_target(backend, backup_id, options.adopt_rust_backup)
        manifest = _manifest(target, backup_id)
        lease = lease_status(target, backup_id)
    topics, excluded = admin.classify_topics(config.source.topics, include_internal=options.include_internal)
    tps = [(t, p) for t, n in topics.items() for p in range(n)]
    stored = {tp: _stored_end(target, backup_id, tp, continues) if exists_at else None for tp in tps}
    offsets = admin.offsets(tps, read_committed=options.isolation_level == "read_committed")
    plans = plan_partitions(
        stored,
        offsets,
        start_offset=options.start_offset,
        snapshot=not continuous,
        start_offsets=options.start_offsets,
    )
    sizes = sample_sizes(consumer_factory(config.source, _sampler_config(backup_id)), plans, offsets)
    estimate, per_partition = _estimate(plans, offsets, sizes)
    partitions = [
        PlannedPartition(
            p.topic,
            p.partition,
            p.start,
            p.origin,
            p.end,
            offsets[(p.topic, p.partition)].low,
            offsets[(p.topic, p.partition)].high,
            stored[(p.topic, p.partition)],
            per_partition[(p.topic, p.partition)],
        )
        for p in plans
    ]
    result = BackupDryRun(
        backup_id,
        location,
        "continuous" if continuous else "snapshot",
        exists_at,
        manifest is not None,
        manifest.runs[-1] if manifest is not None and manifest.runs else None,
        lease,
        partitions,
        excluded,
        estimate,
    )
    result.notes = _notes(result, plans)
    return result


def _location_exists(backend: StorageBackend, backup_id: str) -> bool:
    try:
        next(iter(backend.iter_keys(f"{backup_id}/")), None)
    except ContainerNotFoundError:
        return False
    return True


def _manifest(backend: StorageBackend, backup_id: str) -> Manifest | None:
    key = manifest_key(backup_id)
    try:
        return Manifest.from_json(backend.get(key), name=key)
    except NotFoundError:
        return None


def _stored_end(
    backend: StorageBackend, backup_id: str, tp: TP, continues: Continuation | None
) -> int | None:
    """Where the partition's stored coverage ends (read, never repaired), as the engine resumes it."""
    end = load_index(backend, backup_id, *tp, repair=False)[0].end_offset
    if end is None and continues is not None:
        return continues.end(*tp)
    return end


def _sampler_config(backup_id: str) -> dict[str, Any]:
    """librdkafka needs a group id; partitions are only assigned, so no group is joined or committed."""
    return {
        "group.id": f"libkb-dry-run-{backup_id}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "latest",
    }


def sample_sizes(
    consumer: Consumer, plans: list[PartitionPlan], offsets: dict[TP, Any]
) -> dict[TP, list[int]]:
    """Sizes of up to SAMPLE_PER_PARTITION records at the end of each partition there is to read."""
    wanted = [p for p in plans if offsets[(p.topic, p.partition)].high > p.start]
    per = max(1, min(SAMPLE_PER_PARTITION, SAMPLE_RECORDS // max(1, len(wanted))))
    sizes: dict[TP, list[int]] = {(p.topic, p.partition): [] for p in wanted}
    if not wanted:
        consumer.close()
        return sizes
    pending = set(sizes)
    try:
        consumer.assign(
            [
                TopicPartition(p.topic, p.partition, max(p.start, offsets[(p.topic, p.partition)].high - per))
                for p in wanted
            ]
        )
        deadline = time.monotonic() + SAMPLE_SECS
        while pending and time.monotonic() < deadline:
            for message in consumer.consume(500, timeout=0.5):
                tp = (message.topic(), message.partition())
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        pending.discard(tp)
                    continue
                if tp in pending:
                    sizes[tp].append(record_size(message))
                    if len(sizes[tp]) >= per:
                        pending.discard(tp)
    finally:
        consumer.close()
    return sizes


def record_size(message: Any) -> int:
    """Key, value and headers: the bytes a backup reads for one record (framing aside)."""
    headers = message.headers() or []
    return (
        len(message.key() or b"")
        + len(message.value() or b"")
        + sum(len(k) + len(v or b"") for k, v in headers)
    )


def _estimate(
    plans: list[PartitionPlan], offsets: dict[TP, Any], sizes: dict[TP, list[int]]
) -> tuple[ByteEstimate, dict[TP, int]]:
    """Each partition's offsets to read x its sampled average (else the overall one)."""
    every = [n for found in sizes.values() for n in found]
    average = sum(every) / len(every) if every else 0.0
    per_partition = {}
    for p in plans:
        tp = (p.topic, p.partition)
        found = sizes.get(tp) or []
        mean = sum(found) / len(found) if found else average
        per_partition[tp] = round(max(0, offsets[tp].high - p.start) * mean)
    total = sum(per_partition.values())
    method = SAMPLED if any(max(0, offsets[(p.topic, p.partition)].high - p.start) for p in plans) else ""
    if not method:
        return ByteEstimate(0, "nothing to read", 0, 0.0, "no partition has offsets to read"), per_partition
    return ByteEstimate(total, method, len(every), round(average, 1), ESTIMATE_WHY), per_partition


def _notes(result: BackupDryRun, plans: list[PartitionPlan]) -> list[str]:
    notes = []
    if result.lease is not None and result.lease.valid:
        notes.append(
            f"run {result.lease.run_id} on {result.lease.host} holds the lease until "
            f"{iso_ms(result.lease.expires_ms)}: a run now would be refused"
        )
    for p in plans:
        if p.missing is not None:
            notes.append(
                f"{p.topic}[{p.partition}] offsets {p.missing.start}-{p.missing.end - 1} were deleted by "
                "retention after the stored ones: a run records them as missing"
            )
    if result.mode == "continuous":
        notes.append(
            "continuous mode: the run does not stop at the high watermark; the estimate is up to now"
        )
    return notes
