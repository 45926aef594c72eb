"""Restore a backup into a Kafka cluster: exact records, resumable, with offset translation.

The run: resolve the backup (``latest`` = most recently created), plan it
(:mod:`libkb.restore.plan`), check the target (same-cluster guard, topics,
retention), record where each target partition starts (:mod:`.state`), then
produce each partition's records in order with one idempotent ``acks=all``
producer, reading segments one ahead of the producer. At the end the offset
mapping is stored next to the backup and, if asked, applied to consumer groups.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from confluent_kafka import KafkaError, Producer

from libkb.backup.state import load_index
from libkb.catalog import BackupNotFoundError, list_backups, read_manifest
from libkb.config.models import JobConfig, RestoreOptions, SourceOptions
from libkb.errors import LibkbError
from libkb.format.models import Manifest, PartitionIndex, groups_from_json, groups_key
from libkb.format.segment import SegmentReader, block_records
from libkb.gctune import fewer_collections
from libkb.kafka.admin import KafkaAdmin
from libkb.kafka.clients import make_admin, make_producer
from libkb.metrics import RunMetrics
from libkb.ratelimit import RateLimiter
from libkb.restore.groups import TranslatedOffset, apply_offsets, translate_groups
from libkb.restore.mapping import OffsetMapping, PartitionMapping
from libkb.restore.plan import PartitionTask, RestorePlan, plan_restore
from libkb.restore.state import PartitionState, RestoreState, derive_restore_id, mapping_key, state_key
from libkb.restore.topics import TopicPreparation, prepare_target_topics
from libkb.storage import NotFoundError, StorageBackend, create_backend_from_config

log = logging.getLogger("libkb.restore")
_HEADER_OFFSET = "x-libkb-source-offset"
_HEADER_TIMESTAMP = "x-libkb-source-timestamp"


class RestoreError(LibkbError):
    """The restore cannot start or could not finish; what was written is resumable."""


@dataclass(frozen=True, slots=True)
class RestoreProgress:
    records: int
    bytes: int
    partitions_done: int
    partitions_total: int
    elapsed_secs: float
    segments: int = 0  # segments read


@dataclass(slots=True)
class RestoreResult:
    backup_id: str
    restore_id: str
    status: str  # complete | interrupted | planned (dry run)
    records: int = 0
    bytes: int = 0
    partitions: int = 0
    skipped_records: int = 0  # already restored by an earlier, interrupted run
    duration_secs: float = 0.0
    plan: RestorePlan | None = None
    mapping: OffsetMapping | None = None
    group_offsets: list[TranslatedOffset] = field(default_factory=list)
    groups_reset: list[str] = field(default_factory=list)
    created_topics: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status in ("complete", "planned")


_OFFSET, _KEY, _VALUE = itemgetter(0), itemgetter(3), itemgetter(4)


class RestoreEngine:
    """``RestoreEngine(config).run()`` restores the configured backup (``plan()`` only plans)."""

    def __init__(
        self,
        config: JobConfig,
        *,
        backend: StorageBackend | None = None,
        progress: Callable[[RestoreProgress], None] | None = None,
        admin: KafkaAdmin | None = None,
        producer_factory: Callable[[SourceOptions, dict[str, Any]], Producer] = make_producer,
        metrics: RunMetrics | None = None,
    ) -> None:
        if config.target is None:
            raise RestoreError("the config has no target cluster (target.bootstrap_servers)")
        self.config = config
        self.options: RestoreOptions = config.restore
        self.target = config.target
        self._backend = backend
        #: The run's metrics; pass the ops server's to have them served (a private registry by default).
        self.metrics = metrics if metrics is not None else RunMetrics()
        self._progress = progress
        self._admin = admin
        self._producer_factory = producer_factory
        self._stop = threading.Event()
        self._counts = {"records": 0, "bytes": 0, "done": 0, "segments": 0}
        self._lock = threading.Lock()

    def stop(self) -> None:
        """Finish what is in flight and return; a re-run resumes (thread- and signal-safe)."""
        self._stop.set()

    # -- planning ---------------------------------------------------------

    def _open(self) -> tuple[StorageBackend, Manifest, RestorePlan]:
        backend = self._backend or create_backend_from_config(
            self.config.storage, metrics=self.metrics.storage
        )
        manifest = resolve_backup(backend, self.config.backup_id)
        indexes: dict[tuple[str, int], PartitionIndex] = {}
        for topic, info in manifest.topics.items():
            for partition in range(info.partitions):
                index, _ = load_index(backend, manifest.backup_id, topic, partition, repair=False)
                indexes[(topic, partition)] = index
        plan = plan_restore(manifest, indexes, self.options, self.target.topics)
        return backend, manifest, plan

    def plan(self) -> RestoreResult:
        """The plan alone: nothing is written anywhere (``validate-restore``, ``--dry-run``)."""
        backend, manifest, plan = self._open()
        try:
            return RestoreResult(
                manifest.backup_id,
                self.options.restore_id or "",
                "planned",
                records=plan.max_records,
                partitions=len(plan.tasks),
                plan=plan,
            )
        finally:
            if self._backend is None:
                backend.close()

    # -- the run ----------------------------------------------------------

    def run(self) -> RestoreResult:
        if self.options.dry_run:
            return self.plan()
        started = time.monotonic()
        backend, manifest, plan = self._open()
        backup_id = manifest.backup_id
        try:
            admin = self._admin or KafkaAdmin(make_admin(self.target))
            cluster_id = admin.cluster_id()
            self._guard_source_cluster(manifest, plan, cluster_id)
            restore_id = self.options.restore_id or derive_restore_id(
                backup_id,
                cluster_id or ",".join(self.target.bootstrap_servers),
                [
                    (
                        t.source_topic,
                        t.source_partition,
                        t.target_topic,
                        t.target_partition,
                        t.start_offset,
                        t.end_offset,
                        t.time_window,
                    )
                    for t in plan.tasks
                ],
            )
            result = RestoreResult(
                backup_id, restore_id, "interrupted", partitions=len(plan.tasks), plan=plan
            )
            state = self._load_state(backend, backup_id, restore_id, cluster_id)
            if state.status != "complete":
                prep = self._prepare_topics(admin, manifest, plan)
                result.created_topics, result.notes = prep.created, prep.notes
                for note in prep.notes:
                    log.warning(note)
                mapping = self._execute(backend, admin, plan, state, result)
            else:
                log.info(
                    "restore %s is already complete; only consumer-group offsets are applied", restore_id
                )
                mapping = OffsetMapping.from_json(backend.get(mapping_key(backup_id, restore_id)))
                result.status = "complete"
            result.mapping = mapping
            if result.status == "complete":
                self._groups(backend, admin, manifest, mapping, result)
                self.metrics.restore_last_success.labels(backup_id).set(time.time())
            result.duration_secs = time.monotonic() - started
            return result
        except BaseException as exc:
            self.metrics.restore_errors.labels(backup_id, type(exc).__name__).inc()
            raise
        finally:
            if self._backend is None:
                backend.close()

    def _guard_source_cluster(self, manifest: Manifest, plan: RestorePlan, cluster_id: str | None) -> None:
        if self.options.allow_restore_to_source or cluster_id is None:
            return
        if manifest.source_cluster_id != cluster_id:
            return
        same = sorted({t.source_topic for t in plan.tasks if t.target_topic == t.source_topic})
        if same:
            raise RestoreError(
                f"the target cluster is the backup's source cluster and topic(s) {', '.join(same)} would be "
                "restored into themselves; map them to new names with restore.topic_mapping, or set "
                "restore.allow_restore_to_source: true if that is really intended"
            )

    def _load_state(
        self, backend: StorageBackend, backup_id: str, restore_id: str, cluster_id: str | None
    ) -> RestoreState:
        key = state_key(backup_id, restore_id)
        try:
            state = RestoreState.from_json(backend.get(key), name=key)
        except NotFoundError:
            return RestoreState(backup_id, restore_id, _now_ms(), cluster_id)
        if state.target_cluster_id and cluster_id and state.target_cluster_id != cluster_id:
            raise RestoreError(
                f"restore {restore_id} was started on cluster {state.target_cluster_id}, not {cluster_id}; "
                "set restore.restore_id to start a new restore"
            )
        return state

    def _prepare_topics(self, admin: KafkaAdmin, manifest: Manifest, plan: RestorePlan) -> TopicPreparation:
        oldest: dict[str, int] = {}
        for task in plan.tasks:
            for segment in task.segments:
                low = segment.min_timestamp
                if low >= 0 and (task.target_topic not in oldest or low < oldest[task.target_topic]):
                    oldest[task.target_topic] = low
        window_start = self.options.time_window_start
        if window_start is not None:
            oldest = {t: max(v, window_start) for t, v in oldest.items()}
        sources = {target: manifest.topics[source] for target, source in plan.target_sources.items()}
        return prepare_target_topics(
            admin.admin,
            plan.target_partitions,
            sources,
            oldest,
            create=self.options.create_topics,
            replication_factor=self.options.default_replication_factor,
        )

    def _execute(
        self,
        backend: StorageBackend,
        admin: KafkaAdmin,
        plan: RestorePlan,
        state: RestoreState,
        result: RestoreResult,
    ) -> OffsetMapping:
        backup_id, restore_id = state.backup_id, state.restore_id
        targets = [(t.target_topic, t.target_partition) for t in plan.tasks]
        ends = admin.offsets(targets, read_committed=False)
        skips: dict[str, int] = {}
        for task in plan.tasks:
            key = RestoreState.key_of(task.source_topic, task.source_partition)
            high = ends[(task.target_topic, task.target_partition)].high
            part = state.partitions.get(key)
            if part is None:
                state.partitions[key] = PartitionState(task.target_topic, task.target_partition, high)
                skips[key] = 0
            else:
                already = high - part.target_start
                if already < 0:
                    raise RestoreError(
                        f"{task.target_topic}[{task.target_partition}] ends at offset {high}, before where "
                        f"restore {restore_id} started writing ({part.target_start}): the topic was deleted "
                        "or truncated. Set restore.restore_id to start a new restore"
                    )
                skips[key] = already
        state.status = "running"
        backend.put(state_key(backup_id, restore_id), state.to_json())  # before the first record

        failures: list[str] = []

        def on_error(err: KafkaError | None, msg: Any) -> None:  # only failures are reported
            if err is not None:
                failures.append(f"{msg.topic()}[{msg.partition()}]: {err.str()}")
                self._stop.set()

        producer = self._producer_factory(self.target, {**self._producer_config(), "on_delivery": on_error})

        mapping = OffsetMapping(backup_id, restore_id)
        mappings = {}
        for task in plan.tasks:
            part = state.partitions[RestoreState.key_of(task.source_topic, task.source_partition)]
            pm = PartitionMapping(
                task.source_topic,
                task.source_partition,
                task.target_topic,
                task.target_partition,
                part.target_start,
            )
            mappings[(task.source_topic, task.source_partition)] = pm
            mapping.partitions.append(pm)

        polling = threading.Event()

        def poll() -> None:
            # Serve what is queued (failed deliveries, client errors) every 0.1 s. A blocking
            # poll(0.1) returns at every produce response, and each return takes the GIL
            # from the partition threads.
            while not polling.wait(0.1):
                producer.poll(0)

        poller = threading.Thread(target=poll, name="libkb-restore-poll", daemon=True)
        poller.start()
        limiter = RateLimiter(
            bytes_per_sec=self.options.rate_limit_bytes_per_sec,
            records_per_sec=self.options.rate_limit_records_per_sec,
            stop=self._stop,
        )
        total = len(plan.tasks)
        started = time.monotonic()
        reader_pool = ThreadPoolExecutor(max(2, self.options.max_concurrent_partitions), "libkb-read")
        try:
            with (
                fewer_collections(),
                ThreadPoolExecutor(self.options.max_concurrent_partitions, "libkb-restore") as pool,
            ):
                futures = [
                    pool.submit(
                        self._restore_partition,
                        backend,
                        producer,
                        task,
                        mappings[(task.source_topic, task.source_partition)],
                        skips[RestoreState.key_of(task.source_topic, task.source_partition)],
                        on_error,
                        limiter,
                        reader_pool,
                        result,
                    )
                    for task in plan.tasks
                ]
                while any(not f.done() for f in futures):
                    time.sleep(0.25)
                    self._report(total, started)
                for f in futures:
                    f.result()
            remaining = producer.flush(self.options.produce_timeout_ms / 1000)
            if remaining:
                failures.append(f"{remaining} records were not acknowledged in time")
        finally:
            polling.set()
            poller.join()
            reader_pool.shutdown(cancel_futures=True)
            self._report(total, started)

        interrupted = self._stop.is_set() and not failures
        if failures:
            state.status = "failed"
        else:
            # Confirm against the broker: the target holds exactly the planned records.
            now_ends = admin.offsets(targets, read_committed=False)
            for pm in mapping.partitions:
                state_part = state.partitions[RestoreState.key_of(pm.source_topic, pm.source_partition)]
                state_part.records = pm.count
                state_part.done = not interrupted
                high = now_ends[(pm.target_topic, pm.target_partition)].high
                if not interrupted and high != pm.target_end:
                    failures.append(
                        f"{pm.target_topic}[{pm.target_partition}] ends at {high}, expected {pm.target_end}: "
                        "something else wrote to the target partition during the restore"
                    )
            state.status = "failed" if failures else ("interrupted" if interrupted else "complete")
        backend.put(mapping_key(backup_id, restore_id), mapping.to_json())
        backend.put(state_key(backup_id, restore_id), state.to_json())
        result.records = self._counts["records"]
        result.bytes = self._counts["bytes"]
        if failures:
            raise RestoreError("the restore failed (re-run to resume): " + "; ".join(failures[:10]))
        result.status = state.status
        return mapping

    def _restore_partition(
        self,
        backend: StorageBackend,
        producer: Producer,
        task: PartitionTask,
        pm: PartitionMapping,
        skip: int,
        on_error: Callable[[KafkaError | None, Any], None],
        limiter: RateLimiter,
        reader_pool: ThreadPoolExecutor,
        result: RestoreResult,
    ) -> None:
        produce = producer.produce
        poll = producer.poll
        topic, partition = task.target_topic, task.target_partition
        start, end = task.start_offset, task.end_offset
        low, high = task.time_window
        add_headers = self.options.include_original_offset_header
        backup_id = self.config.backup_id
        records_counter = self.metrics.restore_records.labels(backup_id)
        bytes_counter = self.metrics.restore_bytes.labels(backup_id)
        segments = list(task.segments)
        skipped = 0
        # Runs of the offset mapping, built inline (cheaper than a call per record).
        runs = pm.runs
        run_src = run_tgt = run_len = 0
        next_tgt = pm.target_start
        prev = -2
        # Whole blocks go out in one tight loop when nothing is filtered, rate-limited,
        # skipped or added; otherwise (and at the range's edges) record by record.
        simple = not (add_headers or low is not None or high is not None or limiter.active)
        count = nbytes = 0

        def flush() -> None:
            nonlocal count, nbytes
            limiter.consume(nbytes=nbytes, records=count)
            self._add(count, nbytes)
            records_counter.inc(count)
            bytes_counter.inc(nbytes)
            count = nbytes = 0

        def fetch(index: int) -> Future[bytes]:
            return reader_pool.submit(backend.get, segments[index].key)

        pending = fetch(0) if segments else None
        for i, segment in enumerate(segments):
            if self._stop.is_set():
                break
            assert pending is not None
            data = pending.result()
            pending = fetch(i + 1) if i + 1 < len(segments) else None  # read one segment ahead
            self.metrics.restore_segments.labels(backup_id).inc()
            with self._lock:
                self._counts["segments"] += 1
            reader = SegmentReader(data, name=segment.key)
            codec = reader.header.codec
            stopped = False
            for info in reader.blocks():
                if info.last_offset < start:
                    continue
                if info.first_offset >= end:
                    break
                block = block_records(data, info, codec, name=reader.name)
                if not block:
                    continue
                first, last, n = block[0][0], block[-1][0], len(block)
                if (
                    simple
                    and not skip
                    and first >= start
                    and last < end
                    and last - first == n - 1
                    and list(map(_OFFSET, block)) == list(range(first, last + 1))
                ):
                    if first != prev + 1:
                        if run_len:
                            runs.append((run_src, run_tgt, run_len))
                        run_src, run_tgt, run_len = first, next_tgt, 0
                    run_len += n
                    next_tgt += n
                    prev = last
                    for _, ts, ts_type, key, value, headers in block:
                        # Positional: keywords cost ~0.4 µs a call. The two Nones are
                        # on_delivery and its alias callback (the producer's default);
                        # the ignores: list[tuple[str, bytes | None]] (invariant) for headers.
                        ts = ts if ts_type and ts >= 0 else 0
                        try:
                            produce(topic, value, key, partition, None, None, ts, headers)  # type: ignore[arg-type]
                        except BufferError:
                            while True:
                                poll(0.05)  # the local queue is full: let deliveries drain
                                try:
                                    produce(topic, value, key, partition, None, None, ts, headers)  # type: ignore[arg-type]
                                    break
                                except BufferError:
                                    pass
                    count += n
                    nbytes += sum(map(len, filter(None, map(_KEY, block)))) + sum(
                        map(len, filter(None, map(_VALUE, block)))
                    )
                    flush()
                    if self._stop.is_set():
                        break
                    continue
                for offset, ts, ts_type, key, value, headers in block:
                    if offset < start:
                        continue
                    if offset >= end:
                        stopped = True
                        break
                    if (low is not None and ts < low) or (high is not None and ts > high):
                        continue
                    if offset != prev + 1:
                        if run_len:
                            runs.append((run_src, run_tgt, run_len))
                        run_src, run_tgt, run_len = offset, next_tgt, 0
                    run_len += 1
                    next_tgt += 1
                    prev = offset
                    if skip:
                        skip -= 1
                        skipped += 1
                        continue
                    if add_headers:
                        headers = [
                            *(headers or []),
                            (_HEADER_OFFSET, offset.to_bytes(8, "little", signed=True)),
                            (_HEADER_TIMESTAMP, ts.to_bytes(8, "little", signed=True)),
                        ]
                    ts = ts if ts_type and ts >= 0 else 0
                    while True:
                        try:
                            produce(topic, value, key, partition, None, None, ts, headers)  # type: ignore[arg-type]
                            break
                        except BufferError:
                            poll(0.05)  # the local queue is full: let deliveries drain
                    count += 1
                    nbytes += (len(key) if key else 0) + (len(value) if value else 0)
                    if count & 0x3FF == 0:
                        flush()
                        if self._stop.is_set():
                            stopped = True
                            break
                if stopped:
                    break
            flush()
        if pending is not None:
            pending.cancel()
        if run_len:
            runs.append((run_src, run_tgt, run_len))
        with self._lock:
            self._counts["done"] += 1
            result.skipped_records += skipped

    def _add(self, records: int, nbytes: int) -> None:
        with self._lock:
            self._counts["records"] += records
            self._counts["bytes"] += nbytes

    def _report(self, total: int, started: float) -> None:
        if self._progress is not None:
            with self._lock:
                counts = dict(self._counts)
            self._progress(
                RestoreProgress(
                    counts["records"],
                    counts["bytes"],
                    counts["done"],
                    total,
                    time.monotonic() - started,
                    counts["segments"],
                )
            )

    def _producer_config(self) -> dict[str, Any]:
        return {
            "enable.idempotence": True,
            "acks": "all",
            "max.in.flight.requests.per.connection": 5,
            "linger.ms": 20,
            "batch.size": self.options.produce_batch_size,
            "batch.num.messages": 100_000,
            # 64 MiB of produced-but-unsent records keep the broker as busy as 256 MiB
            # did (bench/restore_bench.py: same speed) at 200-260 MiB less peak RSS.
            "queue.buffering.max.kbytes": 65_536,
            "queue.buffering.max.messages": 1_000_000,
            "message.timeout.ms": self.options.produce_timeout_ms,
            "compression.type": "lz4",
            "delivery.report.only.error": True,
            "error_cb": _log_client_error,
        }

    def _groups(
        self,
        backend: StorageBackend,
        admin: KafkaAdmin,
        manifest: Manifest,
        mapping: OffsetMapping,
        result: RestoreResult,
    ) -> None:
        try:
            _, groups = groups_from_json(backend.get(groups_key(manifest.backup_id)))
        except NotFoundError:
            return
        result.group_offsets = translate_groups(groups, mapping, self.options.consumer_groups)
        if self.options.reset_consumer_offsets and result.group_offsets:
            result.groups_reset = apply_offsets(admin.admin, result.group_offsets)


def resolve_backup(backend: StorageBackend, backup_id: str) -> Manifest:
    """The manifest of ``backup_id``; ``latest`` is the most recently created backup."""
    if backup_id != "latest":
        return read_manifest(backend, backup_id)
    readable = [s for s in list_backups(backend) if s.created_ms is not None]
    if not readable:
        raise BackupNotFoundError("latest", [], f"{backend.name} storage")
    newest = max(readable, key=lambda s: s.created_ms or 0)
    return read_manifest(backend, newest.backup_id)


def _log_client_error(err: KafkaError) -> None:
    log.warning("Kafka client: %s", err.str())


def _now_ms() -> int:
    return int(time.time() * 1000)
