"""Back up Kafka partitions into segments, resumably, with flat memory: the run controller.

Why this module exists: :class:`BackupEngine` runs one backup from start to
end and owns what concerns the backup as a whole. The data path lives in
its parts, each readable alone, in the order data flows:

1. :mod:`libkb.backup.reader`, the consuming thread (the caller of
   :meth:`BackupEngine.run`): Kafka batches packed into each partition's open
   block, one C call per run of records; partition ends, events and offsets
   deleted while reading.
2. :mod:`libkb.backup.builder`, on the same thread: each partition's open
   block and segment and the rules that seal and close them (bytes, records,
   time, end; half the byte budget at most; the fullest segment first when
   the budget is full).
3. :mod:`libkb.backup.store`: compression threads encode sealed blocks
   through the block transform chain; upload threads store each partition's
   segments in order, then its index, within the byte budget.

Here: ownership of the backup (:mod:`libkb.backup.ownership`), the
manifest, where each partition starts (its index, adopting segments stored
after it, and :mod:`libkb.backup.plan`), housekeeping while reading (the
ownership fence, segments open too long, new topics in continuous mode, lag
and progress, ``backup.retention`` in continuous mode), and the run's end
(consumer-group snapshot, ``backup.retention``, manifest).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaException

from libkb.backup.builder import OpenPartition, SegmentBuilder, SegmentLimits
from libkb.backup.envelope import Envelope
from libkb.backup.errors import BackupError
from libkb.backup.incarnations import TopicRecreatedError, choose_incarnations, recreated_since
from libkb.backup.lease import LeaseLostError
from libkb.backup.ownership import LeaseOwnership, PartitionOwnership
from libkb.backup.plan import PartitionPlan, plan_partitions
from libkb.backup.reader import HOUSEKEEPING_SECS, PartitionReader, consumer_config
from libkb.backup.state import load_index
from libkb.backup.store import PartitionLane, StorePipeline
from libkb.config.models import JobConfig, SourceOptions
from libkb.errors import FormatError, LibkbError
from libkb.format.models import (
    Continuation,
    GroupOffsets,
    Manifest,
    MissingRange,
    RunInfo,
    TopicInfo,
    groups_key,
    groups_to_json,
    manifest_key,
)
from libkb.format.segment import CODECS, codec_chain
from libkb.gctune import fewer_collections
from libkb.kafka.admin import KafkaAdmin
from libkb.kafka.clients import make_admin, make_consumer
from libkb.kafka.errors import kafka_boundary
from libkb.keys import keyring_from_config
from libkb.metrics import RunMetrics
from libkb.ratelimit import RateLimiter
from libkb.retention import RetentionPolicy, plan_retention, report_oldest
from libkb.storage import NotFoundError, OutageWatch, StorageBackend, create_backend_from_config
from libkb.version import __version__

__all__ = ["BackupEngine", "BackupError", "BackupProgress", "BackupResult"]

log = logging.getLogger("libkb.backup")

TP = tuple[str, int]
#: How long the run's end waits for a cluster that does not answer (a broker restarting).
KAFKA_OUTAGE_SECS = 300.0
#: A partition's plan and its place in the store pipeline (its index).
Planned = tuple[PartitionPlan, PartitionLane]


@dataclass(frozen=True, slots=True)
class BackupProgress:
    """Read: taken from Kafka (stored or not yet); stored: in segments in storage."""

    records: int
    bytes: int
    partitions_done: int
    partitions_total: int
    segments: int
    elapsed_secs: float
    stored_records: int = 0
    stored_bytes: int = 0


@dataclass(slots=True)
class BackupResult:
    backup_id: str
    run_id: str
    status: str  # complete | stopped | interrupted
    records: int = 0
    bytes: int = 0
    stored_records: int = 0
    stored_bytes: int = 0
    segments: int = 0
    partitions: int = 0
    topics: list[str] = field(default_factory=list)
    missing_ranges: list[str] = field(default_factory=list)
    duration_secs: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status in ("complete", "stopped")


@dataclass(slots=True)
class _Run:
    """What one run works with, and its clocks."""

    backend: StorageBackend
    admin: KafkaAdmin
    ownership: PartitionOwnership
    pipeline: StorePipeline
    result: BackupResult
    #: This run's manifest, once written.
    manifest: Manifest | None = None
    #: When reading began, and when continuous mode last looked for new partitions (monotonic).
    started: float = 0.0
    last_discovery: float = 0.0
    #: When continuous mode last pruned (monotonic; None: not yet).
    last_prune: float | None = None
    #: Every partition's lane (its index), for retention.
    lanes: dict[TP, PartitionLane] = field(default_factory=dict)
    #: The run's segment builder, once reading began.
    builder: SegmentBuilder | None = None
    #: Kafka topic -> the stored topic its records go to (its incarnation, :mod:`.incarnations`).
    stored: dict[str, str] = field(default_factory=dict)
    #: Kafka topics backed up as a new incarnation by this run: they start at their earliest offset.
    fresh: set[str] = field(default_factory=set)


class BackupEngine:
    """``BackupEngine(config).run()`` backs up the configured topics once (or until stopped)."""

    def __init__(
        self,
        config: JobConfig,
        *,
        backend: StorageBackend | None = None,
        progress: Callable[[BackupProgress], None] | None = None,
        admin: KafkaAdmin | None = None,
        consumer_factory: Callable[[SourceOptions, dict[str, Any]], Consumer] = make_consumer,
        metrics: RunMetrics | None = None,
        continues: Continuation | None = None,
    ) -> None:
        """``continues``: this backup continues another tool's (an adopted id, see
        :mod:`libkb.source.adopted`); ``backend`` is then the view of libkb's part,
        and a partition with nothing stored yet starts where that tool's part ended."""
        if config.source is None:
            raise BackupError("the config has no source cluster")
        self.config = config
        self.options = config.backup
        self.source = config.source
        self.backup_id = config.backup_id
        self._backend = backend
        self._continues = continues
        #: The run's metrics; pass the ops server's to have them served (a private registry by default).
        self.metrics = metrics if metrics is not None else RunMetrics()
        self._progress = progress
        self._admin = admin
        self._consumer_factory = consumer_factory
        self._stop = threading.Event()
        self._stream = self.options.compression == "zstd" and self.options.zstd_mode == "stream"
        codec = CODECS["none"] if self._stream else CODECS[self.options.compression]
        self._chain = codec_chain(codec, self.options.compression_level)
        self._continuous = self.options.continuous or not self.options.stop_at_current_offsets
        #: How the run waits through a storage outage; its waits feed the metric (and the CLI's watchdog).
        self.outage = OutageWatch(
            self.options.storage_outage_timeout_secs, setting="backup.storage_outage_timeout_secs"
        )
        self.outage.subscribe(self.metrics.storage_wait.labels(self.backup_id).inc)
        self.run_id = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:8]}"

    def stop(self) -> None:
        """Ask the run to finish its open segments and return (thread- and signal-safe).

        It no longer waits through a storage outage: what it could not store
        is read again by the next run.
        """
        self._stop.set()
        self.outage.abandon()

    # -- the run -----------------------------------------------------------

    @kafka_boundary
    def run(self) -> BackupResult:
        started = time.monotonic()
        backend = self._backend or create_backend_from_config(
            self.config.storage, metrics=self.metrics.storage
        )
        envelope = self._envelope(backend)  # a missing key fails here, before the lease is taken
        ownership = LeaseOwnership(backend, self.backup_id, self.run_id, self.options.lease_ttl_secs)
        ownership.acquire()
        # Storage answered: from here an outage is waited through, and every retry after
        # one is fenced by the lease (a run taken over meanwhile must not write again).
        self.outage.guard = ownership.fence
        backend.ride_outages(self.outage)
        pipeline = self._pipeline(backend, ownership, envelope)
        result = BackupResult(self.backup_id, self.run_id, "interrupted")
        run: _Run | None = None
        failed = False
        try:
            admin = self._admin or KafkaAdmin(make_admin(self.source))
            run = _Run(backend, admin, ownership, pipeline, result)
            planned = self._prepare(run)
            if not self._continuous:
                target = sum(max(0, (plan.end or plan.start) - plan.start) for plan, _ in planned)
                self.metrics.snapshot_target.labels(self.backup_id).set(target)
            with fewer_collections():
                status = self._consume(run, planned)
                pipeline.wait()
            self._report(run)  # the last segments are stored now: the display ends where the summary does
            if status == "complete" and not self._continuous:
                self._retain(run, wait=True)
            result.status = status
            self._snapshot_groups(run)
        except BaseException as exc:
            failed = True
            self.metrics.errors.labels(self.backup_id, type(exc).__name__).inc()
            result.status = "failed"
            self._stop.set()
            self.outage.abandon()
            pipeline.wait(quiet=True)
            raise
        finally:
            result.segments = pipeline.segments
            result.stored_bytes = pipeline.stored_bytes
            result.stored_records = pipeline.stored_records
            result.duration_secs = time.monotonic() - started
            self.metrics.backup_duration.labels(self.backup_id).observe(result.duration_secs)
            try:
                if run is not None and run.manifest is not None and not ownership.lost():
                    # A run that lost ownership must not overwrite the new owner's manifest.
                    self._finish_manifest(run.backend, ownership, run.manifest, result, strict=not failed)
            finally:
                pipeline.close()
                ownership.release()
                backend.ride_outages(None)
                if self._backend is None:
                    backend.close()
        if result.ok:
            self.metrics.last_success.labels(self.backup_id).set(time.time())
        return result

    def _envelope(self, backend: StorageBackend) -> Envelope | None:
        """Encryption's key objects, with the current key checked (None: the job encrypts nothing)."""
        if self.config.encryption is None:
            return None
        keyring = keyring_from_config(self.config.encryption)
        keyring.current()
        return Envelope(backend, self.backup_id, keyring)

    def _pipeline(
        self, backend: StorageBackend, ownership: PartitionOwnership, envelope: Envelope | None = None
    ) -> StorePipeline:
        opts = self.options
        return StorePipeline(
            backend,
            self.backup_id,
            ownership,
            self._chain,
            compression_threads=opts.compression_threads,
            upload_threads=opts.max_concurrent_partitions,
            max_bytes_in_flight=opts.max_bytes_in_flight,
            restart_blocks=opts.zstd_restart_blocks if self._stream else None,
            level=opts.compression_level,
            metrics=self.metrics,
            envelope=envelope,
        )

    # -- before reading: topics, manifest, plans ----------------------------------------

    def _prepare(self, run: _Run) -> list[Planned]:
        """Record this run in the manifest and plan every partition of the matching topics."""
        topics = run.admin.select_topics(self.source.topics, include_internal=self.options.include_internal)
        if not topics:
            raise BackupError(
                f"no topic on {','.join(self.source.bootstrap_servers)} matches source.topics "
                f"(include {list(self.source.topics.include)}, exclude "
                f"{list(self.source.topics.exclude)})"
            )
        run.result.topics = list(topics)
        manifest = self._open_manifest(run, topics)
        self._put_manifest(run.backend, run.ownership, manifest)
        tps = [(t, p) for t, n in topics.items() for p in range(n)]
        planned = self._plan(run, tps, self.options.start_offset, snapshot=not self._continuous)
        run.result.partitions = len(planned)
        run.manifest = manifest
        return planned

    def _open_manifest(self, run: _Run, topics: dict[str, int]) -> Manifest:
        """The stored manifest (or a new one) with this run appended and earlier dead runs marked."""
        infos = run.admin.topic_infos(topics)
        now = _now_ms()
        key = manifest_key(self.backup_id)
        try:
            manifest = Manifest.from_json(run.backend.get(key), name=key)
        except NotFoundError:
            manifest = Manifest(self.backup_id, now, now, self.options.compression, continues=self._continues)
        except FormatError as exc:
            raise BackupError(
                f"{key} is not a libkb manifest ({exc}); another tool's backup is stored as "
                f"{self.backup_id!r}: choose another backup_id (a Rust kafka-backup backup id is continued "
                "with backup.adopt_rust_backup: true)"
            ) from None
        for previous in manifest.runs:
            if previous.status == "running":
                # We own the backup, so no earlier run is still writing: this one died.
                previous.status = "interrupted"
                log.warning(
                    "run %s of backup %r did not finish (its process ended without recording it); "
                    "marked interrupted, this run continues from what it stored",
                    previous.run_id,
                    self.backup_id,
                )
        self._incarnations(run, manifest, infos)
        manifest.source_cluster_id = manifest.source_cluster_id or run.admin.cluster_id()
        manifest.libkb_version = __version__
        mode = "continuous" if self._continuous else "snapshot"
        manifest.runs.append(RunInfo(self.run_id, now, mode=mode))
        manifest.updated_ms = now
        return manifest

    def _incarnations(self, run: _Run, manifest: Manifest, infos: dict[str, TopicInfo]) -> None:
        """Record the topics in the manifest, each in the incarnation its topic id says."""
        known = {topic: manifest.incarnations(topic)[-1:] for topic in infos}
        stored = choose_incarnations(manifest, infos, on_recreated=self.options.on_topic_recreated)
        run.fresh |= {topic for topic, name in stored.items() if known[topic] and name not in known[topic]}
        run.stored.update(stored)

    def _plan(self, run: _Run, tps: list[TP], start_offset: str, snapshot: bool) -> list[Planned]:
        """Each partition's plan, from its index (adopting stray segments) and the cluster's offsets.

        Plans and the reader name Kafka's topics; lanes (what is stored) name
        the topic's stored incarnation.
        """
        lanes = {}
        for topic, partition in tps:
            name = run.stored.get(topic, topic)
            index, changed = load_index(run.backend, self.backup_id, name, partition)
            lane = lanes[(topic, partition)] = PartitionLane(name, partition, index)
            if changed:
                run.pipeline.store_index(lane, f"the repaired index of {name}[{partition}] is not stored")
            report_oldest(self.metrics, self.backup_id, index)
        run.lanes.update({(lane.topic, lane.partition): lane for lane in lanes.values()})
        read_committed = self.options.isolation_level == "read_committed"
        # A new incarnation is a new log: all of it is newer than what the backup holds.
        starts = {**self.options.start_offsets, **{t: {p: 0 for u, p in tps if u == t} for t in run.fresh}}
        plans = plan_partitions(
            {tp: self._stored_end((lane.topic, tp[1]), lane.index.end_offset) for tp, lane in lanes.items()},
            run.admin.offsets(tps, read_committed=read_committed),
            start_offset=start_offset,
            snapshot=snapshot,
            start_offsets=starts,
        )
        for plan in plans:
            if plan.missing is not None:
                self._missing_before_start(run, lanes[(plan.topic, plan.partition)], plan.missing)
        return [(plan, lanes[(plan.topic, plan.partition)]) for plan in plans]

    def _stored_end(self, tp: TP, end: int | None) -> int | None:
        """Where the partition's coverage ends: its index, or else the other tool's part it continues."""
        if end is None and self._continues is not None:
            return self._continues.end(*tp)
        return end

    def _missing_before_start(self, run: _Run, lane: PartitionLane, lost: MissingRange) -> None:
        """Retention deleted offsets after the stored ones before this run could read them."""
        what = f"the missing range {lost.start}-{lost.end - 1} is not indexed"
        run.pipeline.store_index(lane, what, lambda index: index.missing.append(lost))
        self.metrics.offsets_skipped.labels(self.backup_id).inc(lost.end - lost.start)
        run.result.missing_ranges.append(
            f"{lane.topic}[{lane.partition}] offsets {lost.start}-{lost.end - 1} "
            "were deleted by retention before they could be backed up"
        )
        log.warning(run.result.missing_ranges[-1])

    # -- reading ---------------------------------------------------------------------

    def _consume(self, run: _Run, planned: list[Planned]) -> str:
        """Read every planned partition to its end (or until stopped); the run's status."""
        opts = self.options
        builder = SegmentBuilder(
            run.pipeline,
            SegmentLimits.from_options(opts),
            metrics=self.metrics,
            backup_id=self.backup_id,
            limiter=RateLimiter(bytes_per_sec=opts.rate_limit_bytes_per_sec, stop=self._stop),
            heartbeat=lambda: self._report(run),
            heartbeat_secs=HOUSEKEEPING_SECS,
        )
        run.builder = builder
        for plan, lane in planned:
            builder.open(plan, lane)
        consumer = self._consumer_factory(self.source, consumer_config(opts, self.backup_id))
        reader: PartitionReader | None = None
        try:
            reader = PartitionReader(
                consumer,
                builder,
                continuous=self._continuous,
                stop=self._stop,
                timeout=run.admin.timeout,
                missing_ranges=run.result.missing_ranges,
                poll_secs=self.options.poll_timeout_secs,
                skipped=self.metrics.offsets_skipped.labels(self.backup_id).inc,
            )
            reader.start()
            run.started = run.last_discovery = time.monotonic()
            reader.run(lambda now: self._housekeeping(run, builder, reader, now))
            builder.close_all()  # stopped, or every partition reached its end: store what is open
            self._lag_metrics(reader)
            self._report(run)
        finally:
            if reader is not None:
                reader.close()  # the messages it holds go back to librdkafka before the consumer closes
            consumer.close()
        run.result.records = builder.records
        run.result.bytes = builder.bytes
        if builder.active == 0 and not (self._continuous and self._stop.is_set()):
            return "complete"
        return "stopped" if self._continuous else "interrupted"

    def _housekeeping(self, run: _Run, builder: SegmentBuilder, reader: PartitionReader, now: float) -> None:
        """Between batches, every HOUSEKEEPING_SECS: fence, surface store errors, time limits, discovery."""
        if run.ownership.lost():  # no storage call here: reading goes on while storage is down
            run.ownership.check_backup("another run may be writing it")
        run.pipeline.check()
        builder.close_expired(now)
        if self._continuous and now - run.last_discovery >= self.options.topic_refresh_secs:
            run.last_discovery = now
            self._add_new_partitions(run, builder, reader)
        retention = self.options.retention
        if (
            self._continuous
            and retention is not None
            and (run.last_prune is None or (now - run.last_prune) * 1000 >= retention.interval_ms)
        ):
            run.last_prune = now
            self._retain(run, wait=False)
        self._lag_metrics(reader)
        self._report(run)

    def _lag_metrics(self, reader: PartitionReader) -> None:
        total = peak = 0
        for topic, partition, lag in reader.lags():
            self.metrics.backup_lag.labels(topic, str(partition), self.backup_id).set(lag)
            total, peak = total + lag, max(peak, lag)
        self.metrics.backup_lag_sum.labels(self.backup_id).set(total)
        self.metrics.backup_lag_max.labels(self.backup_id).set(peak)
        if not self._continuous:
            self.metrics.snapshot_remaining.labels(self.backup_id).set(reader.remaining())

    def _add_new_partitions(self, run: _Run, builder: SegmentBuilder, reader: PartitionReader) -> None:
        try:
            planned = self._discover(run, builder.partitions)
        except (LeaseLostError, TopicRecreatedError):
            raise
        except (KafkaException, LibkbError) as exc:
            # An outage must not end a continuous backup; the next look retries.
            log.warning("could not look for new topics and partitions: %s", exc)
            return
        if planned:
            reader.add([builder.open(plan, lane) for plan, lane in planned])

    def _discover(self, run: _Run, known: dict[TP, OpenPartition]) -> list[Planned]:
        """Continuous mode: plans for matching topics and partitions created since the run began.

        They start at their earliest offset: every record in them is newer than
        the run. The manifest learns of them before any of their segments. A
        topic the run reads that was re-created meanwhile stops the run: the
        next run judges it by ``backup.on_topic_recreated``.
        """
        internal = self.options.include_internal
        topics = run.admin.select_topics(self.source.topics, include_internal=internal)
        assert run.manifest is not None  # written by _prepare before reading starts
        reading = {t: run.stored[t] for t in topics if t in run.stored}
        changed = recreated_since(run.manifest, reading, run.admin.topic_ids(reading))
        if changed is not None:
            raise TopicRecreatedError(f"{changed} (while this run was reading it)")
        tps = [(t, p) for t, n in topics.items() for p in range(n) if (t, p) not in known]
        if not tps:
            return []
        names = sorted({t for t, _ in tps})
        manifest = run.manifest
        assert manifest is not None  # written by _prepare before reading starts
        self._incarnations(run, manifest, run.admin.topic_infos(names))
        manifest.updated_ms = _now_ms()
        self._put_manifest(run.backend, run.ownership, manifest)
        for name in names:
            if name not in run.result.topics:
                run.result.topics.append(name)
        planned = self._plan(run, tps, "earliest", snapshot=False)
        run.result.partitions += len(planned)
        log.info(
            "backing up %d new partition(s): %s",
            len(planned),
            ", ".join(f"{plan.topic}[{plan.partition}]" for plan, _ in planned),
        )
        return planned

    def _retain(self, run: _Run, *, wait: bool) -> None:
        """``backup.retention``: queue the cuts of the oldest segments its policy chooses now.

        Planned on copies of the indexes; each cut runs in its partition's
        store queue, after the stores before it (:meth:`StorePipeline.prune`).
        ``wait``: return once they are made (a snapshot's end).
        """
        retention = self.options.retention
        if retention is None:
            return
        now = _now_ms()
        policy = RetentionPolicy.from_options(retention, now)
        plan = plan_retention({tp: lane.snapshot() for tp, lane in run.lanes.items()}, policy)
        if not plan.cap_met:
            log.warning(
                "backup.retention: the newest %d segments of each partition, which keep_segments keeps, "
                "take more than max_total_bytes (%d)",
                policy.keep_segments,
                policy.max_total_bytes,
            )
        for cut in plan.cuts:
            lane = run.lanes[(cut.topic, cut.partition)]
            run.pipeline.prune(lane, cut, when_ms=now, reason=policy.reason)
        if plan.cuts:
            log.info(
                "backup.retention: pruning %d segment(s), %d records, of %d partition(s)",
                plan.segments,
                plan.records,
                len(plan.cuts),
            )
        if wait:
            run.pipeline.wait()

    def _report(self, run: _Run) -> None:
        """Metrics and progress of what was read and what is stored, as of now."""
        builder = run.builder
        if builder is None:
            return
        records, nbytes = builder.report_read()
        if self._progress is not None:
            total = len(builder.partitions)
            pipeline = run.pipeline
            self._progress(
                BackupProgress(
                    records,
                    nbytes,
                    total - builder.active,
                    total,
                    pipeline.segments,
                    time.monotonic() - run.started,
                    pipeline.stored_records,
                    pipeline.stored_bytes,
                )
            )

    # -- the run's end ------------------------------------------------------------------

    def _snapshot_groups(self, run: _Run) -> None:
        """Store the consumer groups' committed offsets on the backed-up topics (if configured)."""
        if not self.options.consumer_group_snapshot:
            return
        try:
            groups = run.admin.group_offsets(run.result.topics, wait_secs=KAFKA_OUTAGE_SECS)
        except (KafkaException, LibkbError) as exc:
            raise BackupError(
                f"the records are stored, but the consumer groups' committed offsets could not "
                f"be read ({exc}); grant this client Describe on the consumer groups, or set "
                "backup.consumer_group_snapshot: false"
            ) from exc
        # Keyed by stored topic: a group's offsets are positions in the incarnation this run read.
        stored = [
            GroupOffsets(g.group, {run.stored.get(t, t): p for t, p in g.offsets.items()}) for g in groups
        ]
        run.backend.put(groups_key(self.backup_id), groups_to_json(stored, _now_ms()))

    def _finish_manifest(
        self,
        backend: StorageBackend,
        ownership: PartitionOwnership,
        manifest: Manifest,
        result: BackupResult,
        *,
        strict: bool,
    ) -> None:
        """Record the run's end. ``strict`` (the run itself succeeded): a failed write fails the run.

        Otherwise the manifest would say ``running`` while the run reported
        success (and the CLI exited 0). After a failure the run's own error is
        the one to report, so the manifest's is only logged.
        """
        this_run = manifest.runs[-1]
        this_run.finished_ms = _now_ms()
        this_run.status = result.status
        this_run.records = result.records
        this_run.bytes = result.bytes
        manifest.updated_ms = this_run.finished_ms
        try:
            self._put_manifest(backend, ownership, manifest)
        except LibkbError as exc:
            if strict:
                result.status = "failed"
                self.metrics.errors.labels(self.backup_id, type(exc).__name__).inc()
                raise BackupError(
                    f"the records are stored and indexed, but the run's end could not be recorded in "
                    f"the manifest ({exc}); run the backup again to record it"
                ) from exc
            log.error("could not record the run's end in the manifest: %s", exc)

    def _put_manifest(
        self, backend: StorageBackend, ownership: PartitionOwnership, manifest: Manifest
    ) -> None:
        ownership.check_backup("the manifest is not written")
        backend.put(manifest_key(self.backup_id), manifest.to_json())


def _now_ms() -> int:
    return int(time.time() * 1000)
