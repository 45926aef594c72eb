"""Back up Kafka partitions into segments, resumably, with flat memory.

Threads and their jobs:

- the **consuming thread** (the caller of :meth:`BackupEngine.run`) reads
  batches, turns each run of one partition's records into tuples with one
  comprehension and packs them with one C loop into the partition's open
  block, seals full blocks and closes segments (bytes, records, time, end);
- **compression threads** zstd-compress sealed blocks (zstd releases the GIL);
- **upload threads** stream each closed segment to storage as its blocks
  finish compressing, then rewrite that partition's index. Uploads of one
  partition run in order (each waits for the previous), so an index always
  lists a gap-free run of segments.

Memory is bounded by :class:`ByteBudget`: a sealed block holds budget until
storage has taken it (the filesystem has written it; a cloud upload has moved
past it by as many bytes as the driver buffers), and the upload drops it then.
When the budget is full, the open segment holding the most bytes is closed
early so its upload can free memory. A segment closes at half the budget at
the latest, so that one partition's next segment fills while the previous
one is stored instead of waiting for it.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from libkb import __version__
from libkb.backup.lease import Lease, LeaseLostError
from libkb.backup.plan import PartitionPlan, plan_partitions
from libkb.backup.state import load_index
from libkb.config.models import JobConfig, SourceOptions
from libkb.errors import LibkbError
from libkb.format.models import (
    Manifest,
    MissingRange,
    PartitionIndex,
    RunInfo,
    SegmentEntry,
    groups_key,
    groups_to_json,
    index_key,
    lease_key,
    manifest_key,
    segment_key,
)
from libkb.format.packer import STOP_BOUND, STOP_FULL, STOP_UNUSUAL
from libkb.format.segment import CODECS, Block, BlockEncoder, RawBlock, SegmentFooter, SegmentWriter
from libkb.gctune import fewer_collections
from libkb.kafka.admin import KafkaAdmin
from libkb.kafka.clients import make_admin, make_consumer
from libkb.metrics import RunMetrics
from libkb.ratelimit import RateLimiter
from libkb.storage import BytesLike, NotFoundError, StorageBackend, create_backend_from_config

log = logging.getLogger("libkb.backup")

TP = tuple[str, int]
# consume() batch: 2,000 rather than 10,000 keeps fewer Message objects alive
# across garbage collections (0.7 -> 0.2 s of GC per GiB of 1 KiB records).
_BATCH = 2_000
_HOUSEKEEPING_SECS = 0.5


# Raw block buffers kept for reuse (about 1 MiB each): enough for the encoders
# to find one ready while the compression threads work through the queue.
_SPARE_BUFFERS = 16


class BackupError(LibkbError):
    """The backup could not be completed; storage is left consistent."""


@dataclass(frozen=True, slots=True)
class BackupProgress:
    records: int
    bytes: int
    partitions_done: int
    partitions_total: int
    segments: int
    elapsed_secs: float


@dataclass(slots=True)
class BackupResult:
    backup_id: str
    run_id: str
    status: str  # complete | stopped | interrupted
    records: int = 0
    bytes: int = 0
    stored_bytes: int = 0
    segments: int = 0
    partitions: int = 0
    topics: list[str] = field(default_factory=list)
    missing_ranges: list[str] = field(default_factory=list)
    duration_secs: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status in ("complete", "stopped")


class ByteBudget:
    """Counts bytes handed off but not yet taken by storage; blocks the consumer when full."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._cond = threading.Condition()

    def try_acquire(self, n: int) -> bool:
        with self._cond:
            if self.used == 0 or self.used + n <= self.limit:
                self.used += n
                return True
            return False

    def wait(self, timeout: float) -> None:
        with self._cond:
            self._cond.wait(timeout)

    def release(self, n: int) -> None:
        with self._cond:
            self.used -= n
            self._cond.notify_all()


class _Partition:
    """Consume-loop state of one partition (owned by the consuming thread)."""

    __slots__ = (
        "chain",
        "covered_to",
        "done",
        "enc",
        "index",
        "index_lock",
        "partition",
        "sealed_last",
        "seg_base",
        "seg_blocks",
        "seg_opened",
        "seg_raw",
        "seg_records",
        "target_end",
        "topic",
    )

    def __init__(
        self,
        plan: PartitionPlan,
        index: PartitionIndex,
        block_bytes: int = 1 << 20,
        spare: deque[bytearray] | None = None,
    ) -> None:
        self.topic = plan.topic
        self.partition = plan.partition
        self.enc = BlockEncoder(block_bytes, spare)
        self.target_end = plan.end
        self.done = plan.done
        self.seg_base = plan.start
        self.covered_to = plan.start  # exclusive end of what the consumer has passed
        self.sealed_last = plan.start - 1
        self.seg_blocks: list[Future[Block]] = []
        self.seg_raw = 0
        self.seg_records = 0
        self.seg_opened = time.monotonic()
        self.chain: Future[None] | None = None
        self.index = index
        self.index_lock = threading.Lock()


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
    ) -> None:
        if config.source is None:
            raise BackupError("the config has no source cluster")
        self.config = config
        self.options = config.backup
        self.source = config.source
        self.backup_id = config.backup_id
        self._backend = backend
        #: The run's metrics; pass the ops server's to have them served (a private registry by default).
        self.metrics = metrics if metrics is not None else RunMetrics()
        self._progress = progress
        self._admin = admin
        self._consumer_factory = consumer_factory
        self._stop = threading.Event()
        self._lease_lost = threading.Event()
        self._codec = CODECS[self.options.compression]
        self._stream_hold = 0  # the backend's stream_hold_bytes, set by run()
        # Raw block buffers handed back after compression, for the encoders to reuse.
        self._spare: deque[bytearray] = deque(maxlen=_SPARE_BUFFERS)
        self.run_id = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:8]}"
        self._uploads: list[Future[None]] = []
        self._manifest: Manifest | None = None  # this run's, once written
        self._segments = 0
        self._stored_bytes = 0
        self._compressed_bytes = 0
        self._raw_bytes = 0
        self._stats_lock = threading.Lock()

    def stop(self) -> None:
        """Ask the run to finish its open segments and return (thread- and signal-safe)."""
        self._stop.set()

    # -- the run -----------------------------------------------------------

    def run(self) -> BackupResult:
        started = time.monotonic()
        backend = self._backend or create_backend_from_config(
            self.config.storage, metrics=self.metrics.storage
        )
        self._stream_hold = backend.stream_hold_bytes
        lease = Lease(backend, lease_key(self.backup_id), self.run_id, self.options.lease_ttl_secs)
        lease.acquire()
        self._lease_lost = lease.lost
        compress_pool = ThreadPoolExecutor(self.options.compression_threads, "libkb-compress")
        upload_pool = ThreadPoolExecutor(self.options.max_concurrent_partitions, "libkb-upload")
        result = BackupResult(self.backup_id, self.run_id, "interrupted")
        manifest: Manifest | None = None
        try:
            admin = self._admin or KafkaAdmin(make_admin(self.source))
            manifest, states = self._prepare(backend, admin, result)
            with fewer_collections():
                status = self._consume(backend, admin, lease, states, compress_pool, upload_pool, result)
                self._wait_uploads()
            result.status = status
            if self.options.consumer_group_snapshot:
                try:
                    groups = admin.group_offsets(result.topics)
                except (KafkaException, LibkbError) as exc:
                    raise BackupError(
                        f"the records are stored, but the consumer groups' committed offsets could not "
                        f"be read ({exc}); grant this client Describe on the consumer groups, or set "
                        "backup.consumer_group_snapshot: false"
                    ) from exc
                backend.put(groups_key(self.backup_id), groups_to_json(groups, _now_ms()))
            if result.ok:
                self.metrics.last_success.labels(self.backup_id).set(time.time())
        except BaseException as exc:
            self.metrics.errors.labels(self.backup_id, type(exc).__name__).inc()
            result.status = "failed"
            self._stop.set()
            self._wait_uploads(quiet=True)
            raise
        finally:
            result.segments = self._segments
            result.stored_bytes = self._stored_bytes
            result.duration_secs = time.monotonic() - started
            if manifest is not None and not lease.lost.is_set():
                # A run that lost its lease must not overwrite the new holder's manifest.
                self._finish_manifest(backend, manifest, result)
            compress_pool.shutdown(cancel_futures=True)
            upload_pool.shutdown(cancel_futures=True)
            lease.release()
            if self._backend is None:
                backend.close()
        return result

    def _prepare(
        self, backend: StorageBackend, admin: KafkaAdmin, result: BackupResult
    ) -> tuple[Manifest, dict[TP, _Partition]]:
        topics = admin.select_topics(
            self.source.topics, include_internal=self.options.include_internal_topics
        )
        if not topics:
            raise BackupError(
                f"no topic on {','.join(self.source.bootstrap_servers)} matches source.topics "
                f"(include {list(self.source.topics.include)}, exclude "
                f"{list(self.source.topics.exclude)})"
            )
        result.topics = list(topics)
        infos = admin.topic_infos(topics)
        now = _now_ms()
        try:
            manifest = Manifest.from_json(
                backend.get(manifest_key(self.backup_id)), name=manifest_key(self.backup_id)
            )
        except NotFoundError:
            manifest = Manifest(self.backup_id, now, now, self.options.compression)
        for run in manifest.runs:
            if run.status == "running":
                # We hold the lease, so no earlier run is still writing: this one died.
                run.status = "interrupted"
                log.warning(
                    "run %s of backup %r did not finish (its process ended without recording it); "
                    "marked interrupted, this run continues from what it stored",
                    run.run_id,
                    self.backup_id,
                )
        manifest.topics.update(infos)
        manifest.source_cluster_id = manifest.source_cluster_id or admin.cluster_id()
        manifest.libkb_version = __version__
        snapshot = not self.options.continuous and self.options.stop_at_current_offsets
        mode = "snapshot" if snapshot else "continuous"
        manifest.runs.append(RunInfo(self.run_id, now, mode=mode))
        manifest.updated_ms = now
        backend.put(manifest_key(self.backup_id), manifest.to_json())
        tps = [(t, p) for t, n in topics.items() for p in range(n)]
        states = self._plan_states(backend, admin, tps, result, self.options.start_offset, snapshot)
        result.partitions = len(states)
        self._manifest = manifest
        return manifest, states

    def _plan_states(
        self,
        backend: StorageBackend,
        admin: KafkaAdmin,
        tps: list[TP],
        result: BackupResult,
        start_offset: str,
        snapshot: bool,
    ) -> dict[TP, _Partition]:
        """Consume-loop state for each partition: its index (adopting stray segments) and plan."""
        indexes = {}
        for topic, partition in tps:
            index, changed = load_index(backend, self.backup_id, topic, partition)
            if changed:
                backend.put(index_key(self.backup_id, topic, partition), index.to_json())
            indexes[(topic, partition)] = index
        offsets = admin.offsets(tps, read_committed=self.options.isolation_level == "read_committed")
        plans = plan_partitions(
            {tp: idx.end_offset for tp, idx in indexes.items()},
            offsets,
            start_offset=start_offset,
            snapshot=snapshot,
        )
        states = {}
        for plan in plans:
            tp = (plan.topic, plan.partition)
            index = indexes[tp]
            if plan.missing is not None:
                index.missing.append(plan.missing)
                backend.put(index_key(self.backup_id, *tp), index.to_json())
                result.missing_ranges.append(
                    f"{plan.topic}[{plan.partition}] offsets {plan.missing.start}-{plan.missing.end - 1} "
                    "were deleted by retention before they could be backed up"
                )
                log.warning(result.missing_ranges[-1])
            states[tp] = _Partition(plan, index, self.options.block_bytes, self._spare)
        return states

    def _discover(
        self, backend: StorageBackend, admin: KafkaAdmin, known: dict[TP, _Partition], result: BackupResult
    ) -> dict[TP, _Partition]:
        """Continuous mode: states for matching topics and partitions created since the run began.

        They start at their earliest offset: every record in them is newer than
        the run. The manifest learns of them before any of their segments.
        """
        internal = self.options.include_internal_topics
        topics = admin.select_topics(self.source.topics, include_internal=internal)
        tps = [(t, p) for t, n in topics.items() for p in range(n) if (t, p) not in known]
        if not tps:
            return {}
        names = sorted({t for t, _ in tps})
        manifest = self._manifest
        assert manifest is not None  # written by _prepare before the loop starts
        manifest.topics.update(admin.topic_infos(names))
        manifest.updated_ms = _now_ms()
        backend.put(manifest_key(self.backup_id), manifest.to_json())
        for name in names:
            if name not in result.topics:
                result.topics.append(name)
        states = self._plan_states(backend, admin, tps, result, "earliest", snapshot=False)
        result.partitions += len(states)
        log.info(
            "backing up %d new partition(s): %s",
            len(states),
            ", ".join(f"{t}[{p}]" for t, p in sorted(states)),
        )
        return states

    def _consume(
        self,
        backend: StorageBackend,
        admin: KafkaAdmin,
        lease: Lease,
        states: dict[TP, _Partition],
        compress_pool: ThreadPoolExecutor,
        upload_pool: ThreadPoolExecutor,
        result: BackupResult,
    ) -> str:
        opts = self.options
        block_bytes = opts.block_bytes
        budget = ByteBudget(opts.max_bytes_in_flight)
        # A segment holds at most half the budget, so the next one can fill while
        # it is stored (a partition's segments are stored one after another).
        segment_bytes = min(opts.segment_max_bytes, max(opts.max_bytes_in_flight // 2, block_bytes))
        limiter = RateLimiter(bytes_per_sec=opts.rate_limit_bytes_per_sec, stop=self._stop)
        level = opts.compression_level
        codec = self._codec
        backup_id = self.backup_id
        algorithm = opts.compression
        records_counter = self.metrics.backup_records.labels(backup_id)
        bytes_counter = self.metrics.backup_bytes.labels(backup_id)
        gaps_counter = self.metrics.backup_offset_gaps.labels(backup_id)
        raw_counter = self.metrics.uncompressed_bytes.labels(algorithm, backup_id)
        totals = {"records": 0, "bytes": 0}

        def upload(
            st: _Partition, base: int, end: int, blocks: list[Future[Block]], raw: int
        ) -> Future[None]:
            prev = st.chain
            fut = upload_pool.submit(self._upload, backend, st, base, end, blocks, prev, raw, budget)
            st.chain = fut
            self._uploads.append(fut)
            return fut

        def close_segment(st: _Partition) -> None:
            end = st.covered_to
            if not st.seg_blocks and end <= st.seg_base:
                st.seg_opened = time.monotonic()
                return
            upload(st, st.seg_base, end, st.seg_blocks, st.seg_raw)
            st.seg_base = end
            st.seg_blocks = []
            st.seg_raw = 0
            st.seg_records = 0
            st.seg_opened = time.monotonic()

        def reserve(n: int) -> None:
            waited = time.monotonic()
            while not budget.try_acquire(n):
                victim = max(states.values(), key=lambda s: s.seg_raw)
                uploading = budget.used - sum(s.seg_raw for s in states.values())
                if victim.seg_raw > 0 and uploading < budget.limit // 2:
                    close_segment(victim)  # free memory by storing the fullest open segment
                else:
                    # Uploads under way hold half the budget or more; they free it
                    # block by block as storage takes their blocks.
                    budget.wait(0.2)
                    now = time.monotonic()
                    if now - waited >= _HOUSEKEEPING_SECS:
                        # Waiting on slow storage (which retries with timeouts) is
                        # the loop working, not stuck: keep liveness fed.
                        waited = now
                        self._report(totals, total - active, total, now - started)
                self._check_uploads()

        def compress(raw: RawBlock) -> Future[Block]:
            if codec == CODECS["none"]:
                done: Future[Block] = Future()
                done.set_result(raw.compress(codec))
                return done
            return compress_pool.submit(compress_and_recycle, raw)

        spare = self._spare

        def compress_and_recycle(raw: RawBlock) -> Block:
            block = raw.compress(codec, level)
            if isinstance(raw.data, bytearray):
                spare.append(raw.data)  # only the payload is needed now; an encoder reuses the buffer
            return block

        def seal(st: _Partition) -> None:
            raw = st.enc.take()
            n = len(raw.data)
            gaps = (raw.last_offset - raw.first_offset + 1 - raw.record_count) + (
                raw.first_offset - st.sealed_last - 1
            )
            if gaps:
                gaps_counter.inc(gaps)
            st.sealed_last = raw.last_offset
            # Reserve first: a full budget may close this very segment, which
            # must then end before this block (the block opens the next one).
            reserve(n)
            st.covered_to = raw.last_offset + 1
            st.seg_blocks.append(compress(raw))
            st.seg_raw += n
            st.seg_records += raw.record_count
            totals["records"] += raw.record_count
            totals["bytes"] += n
            records_counter.inc(raw.record_count)
            bytes_counter.inc(n)
            raw_counter.inc(n)
            limiter.consume(nbytes=n)
            if st.seg_raw >= segment_bytes or (
                opts.segment_max_records is not None and st.seg_records >= opts.segment_max_records
            ):
                close_segment(st)

        active = sum(1 for st in states.values() if not st.done)
        total = len(states)

        def finish(st: _Partition, end: int) -> None:
            nonlocal active
            if st.enc.count:
                seal(st)
            st.covered_to = max(st.covered_to, end)
            close_segment(st)
            st.done = True
            active -= 1
            consumer.pause([TopicPartition(st.topic, st.partition)])

        consumer = self._consumer_factory(self.source, self._consumer_config())
        try:
            assignment = [
                TopicPartition(st.topic, st.partition, st.seg_base) for st in states.values() if not st.done
            ]
            if assignment:
                consumer.assign(assignment)
            started = time.monotonic()
            last_tick = last_discovery = started
            continuous = opts.continuous or not opts.stop_at_current_offsets
            interval = opts.segment_max_interval_ms / 1000
            eof_code = KafkaError._PARTITION_EOF
            reset_code = KafkaError._AUTO_OFFSET_RESET
            stop = self._stop
            max_records = opts.segment_max_records

            def segment_full(st: _Partition) -> bool:
                """The open segment holds ``segment_max_records`` with the open block."""
                return max_records is not None and st.seg_records + st.enc.count >= max_records

            def offsets_deleted(st: _Partition, why: str) -> None:
                """The next offset to read is gone (``auto.offset.reset: error``).

                Retention (or ``delete_records``) moved the log start past it while
                the run was reading: store what was read, record the lost offsets
                as a missing range after it, and continue at the new start.
                """
                if st.done:
                    return
                if st.enc.count:
                    seal(st)
                position = st.covered_to
                low, high = consumer.get_watermark_offsets(
                    TopicPartition(st.topic, st.partition), timeout=admin.timeout
                )
                if position > high:
                    raise BackupError(
                        f"{st.topic}[{st.partition}]: the backup has read up to offset {position} but the "
                        f"partition now ends at {high}; the topic was probably deleted and recreated "
                        "(or an unclean leader election lost records). Use a new backup_id."
                    )
                if low <= position:  # not deleted after all (e.g. a leader change): read it again
                    restart_at(st, position)
                    return
                end = low if st.target_end is None else min(low, st.target_end)
                close_segment(st)  # segments first: the missing range goes after them
                lost = MissingRange(position, end, "retention")
                st.chain = upload_pool.submit(self._record_missing, backend, st, lost, st.chain)
                self._uploads.append(st.chain)
                text = (
                    f"{st.topic}[{st.partition}] offsets {position}-{end - 1} were deleted by retention "
                    f"while the backup was reading them ({why})"
                )
                result.missing_ranges.append(text)
                log.warning(text)
                st.seg_base = st.covered_to = end
                st.sealed_last = end - 1
                if st.target_end is not None and end >= st.target_end:
                    finish(st, st.target_end)
                else:
                    restart_at(st, end)

            def restart_at(st: _Partition, offset: int) -> None:
                # After an offset-reset error the partition's fetcher is stopped and
                # refuses seek(); assigning it again starts it at ``offset``.
                consumer.incremental_unassign([TopicPartition(st.topic, st.partition)])
                consumer.incremental_assign([TopicPartition(st.topic, st.partition, offset)])

            def per_record(msgs: list[Any]) -> bool:
                """Records one by one (runs with errors or a partition's end); True: stop."""
                for msg in msgs:
                    err = msg.error()
                    if err is not None:
                        if err.code() == eof_code:
                            st = states[(msg.topic(), msg.partition())]
                            off = msg.offset()
                            if st.done:
                                continue
                            if st.target_end is not None and off >= st.target_end:
                                finish(st, st.target_end)
                            elif not st.enc.count and off > st.covered_to:
                                st.covered_to = off  # passed transaction markers / aborted records
                            continue
                        if err.code() == reset_code and (msg.topic(), msg.partition()) in states:
                            offsets_deleted(states[(msg.topic(), msg.partition())], err.str())
                            continue
                        if err.fatal() or not err.retriable():
                            raise BackupError(f"Kafka error on {msg.topic()}[{msg.partition()}]: {err.str()}")
                        log.warning("Kafka: %s", err.str())
                        continue
                    st = states[(msg.topic(), msg.partition())]
                    if st.done:
                        continue
                    off = msg.offset()
                    end = st.target_end
                    if end is not None and off >= end:
                        finish(st, end)
                        continue
                    ts_type, ts = msg.timestamp()
                    size = st.enc.add(off, ts, ts_type, msg.key(), msg.value(), msg.headers())
                    if end is not None and off + 1 >= end:
                        finish(st, end)
                    elif size >= block_bytes or segment_full(st):
                        seal(st)
                        if stop.is_set():
                            return True  # the rest of the batch is read again by the next run
                return False

            # A consume() batch holds runs of consecutive records of one
            # partition (one fetch response each). Each run is packed by one
            # call into the partition's block (C when built, see
            # libkb.format.packer), which stops at a full block, another
            # partition, an event/error or the partition's end offset; only
            # those stops come back to Python.
            one_topic = len({st.topic for st in states.values()}) <= 1
            while active > 0 or (continuous and assignment):
                if stop.is_set():
                    break
                # Typed Any: the stubs make offset()/topic() Optional, which a
                # per-record check would pay for at runtime.
                msgs: list[Any] = consumer.consume(_BATCH, 0.2) if assignment else []
                i, n = 0, len(msgs)
                while i < n:
                    msg = msgs[i]
                    if msg.error() is not None:
                        i += 1
                        if per_record([msg]):
                            break
                        continue
                    st = states[(msg.topic(), msg.partition())]
                    if st.done:
                        i += 1
                        continue
                    end = st.target_end
                    batch = msgs
                    if max_records is not None:
                        # Pack no more records than the open segment has room for.
                        room = max_records - st.seg_records - st.enc.count
                        if i + room < n:
                            batch = msgs[: i + room]
                    i, reason = st.enc.add_messages(
                        batch,
                        i,
                        block_bytes,
                        None if one_topic else st.topic,
                        st.partition,
                        -1 if end is None else end,
                    )
                    if end is not None and (reason == STOP_BOUND or st.enc.last_offset + 1 >= end > 0):
                        finish(st, end)
                    elif reason == STOP_FULL or segment_full(st):
                        seal(st)
                        if stop.is_set():
                            break  # the rest of the batch is read again by the next run
                    elif reason == STOP_UNUSUAL:
                        i += 1
                        if per_record([msgs[i - 1]]):
                            break
                now = time.monotonic()
                if now - last_tick >= _HOUSEKEEPING_SECS:
                    last_tick = now
                    if lease.lost.is_set():
                        raise LeaseLostError(
                            f"lost the lease on backup {self.backup_id!r}; another run may be writing it"
                        )
                    self._check_uploads()
                    for st in states.values():
                        if not st.done and now - st.seg_opened >= interval:
                            if st.enc.count:
                                seal(st)
                            close_segment(st)
                    if continuous and now - last_discovery >= opts.topic_refresh_secs:
                        last_discovery = now
                        try:
                            added = self._discover(backend, admin, states, result)
                        except (KafkaException, LibkbError) as exc:
                            # An outage must not end a continuous backup; the next look retries.
                            log.warning("could not look for new topics and partitions: %s", exc)
                            added = {}
                        if added:
                            states.update(added)
                            total += len(added)
                            active += sum(1 for st in added.values() if not st.done)
                            one_topic = len({st.topic for st in states.values()}) <= 1
                            fresh = [TopicPartition(t, p, st.seg_base) for (t, p), st in added.items()]
                            consumer.incremental_assign(fresh)
                            assignment.extend(fresh)
                    self._record_lag(consumer, states)
                    self._report(totals, total - active, total, now - started)
            # Stopped, or every partition reached its end: store what is open.
            for st in states.values():
                if not st.done:
                    if st.enc.count:
                        seal(st)
                    close_segment(st)
            self._report(totals, total - active, total, time.monotonic() - started)
        finally:
            consumer.close()
        result.records = totals["records"]
        result.bytes = totals["bytes"]
        if active == 0 and not (continuous and self._stop.is_set()):
            return "complete"
        return "stopped" if continuous else "interrupted"

    def _record_lag(self, consumer: Consumer, states: dict[TP, _Partition]) -> None:
        """``kafka_backup_lag_records``: the partition's end (as last fetched) minus our position."""
        for st in states.values():
            position = st.enc.last_offset + 1 if st.enc.count else st.covered_to
            if st.done:
                lag = 0
            else:
                _, high = consumer.get_watermark_offsets(TopicPartition(st.topic, st.partition), cached=True)
                if high is None or high < 0:
                    continue  # nothing fetched yet
                lag = max(0, high - position)
            self.metrics.backup_lag.labels(st.topic, str(st.partition), self.backup_id).set(lag)

    def _consumer_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "group.id": f"libkb-backup-{self.backup_id}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": True,
            "isolation.level": self.options.isolation_level,
            # Never skip silently: an out-of-range position (retention deleted the
            # offsets mid-run) comes back as an error event and is recorded.
            "auto.offset.reset": "error",
            "queued.max.messages.kbytes": 32768,
            # librdkafka's default (1000 ms) idles the fetcher for a second each
            # time the 32 MiB queue fills, which capped a 1-partition backup at
            # ~55 MB/s on loopback; 10 ms keeps it fed (bench/backup_bench.py).
            "fetch.queue.backoff.ms": 10,
        }
        if fetch := self.options.fetch_max_bytes:
            config["fetch.max.bytes"] = fetch
            # librdkafka refuses a fetch.max.bytes below message.max.bytes (default
            # 1,000,000; for a consumer only its request size) or above
            # receive.message.max.bytes - 512 (default 100,000,000).
            config["message.max.bytes"] = min(1_000_000, fetch)
            config["receive.message.max.bytes"] = max(100_000_000, fetch + 512)
        return config

    # -- uploads (upload threads) ---------------------------------------------

    def _upload(
        self,
        backend: StorageBackend,
        st: _Partition,
        base: int,
        end: int,
        blocks: list[Future[Block]],
        prev: Future[None] | None,
        raw: int,
        budget: ByteBudget,
    ) -> None:
        released = 0
        try:
            if prev is not None:
                prev.result()  # keep each partition's segments in offset order
            writer = SegmentWriter(st.topic, st.partition, base, self._codec, _now_ms())
            footer: list[SegmentFooter] = []

            def chunks() -> Iterator[BytesLike]:
                nonlocal released
                yield writer.header
                pulled = 0
                taken: deque[tuple[int, int]] = deque()  # (raw bytes, bytes pulled once written)
                while blocks:
                    block = blocks.pop(0).result()  # the list must not keep the block alive
                    head, payload = writer.add_block(block)
                    if head:
                        yield head
                        yield payload
                    pulled += len(head) + len(payload)
                    taken.append((block.raw_len, pulled))
                    del block, head, payload
                    # Resumed: storage has taken the block. Free its budget once the
                    # driver's buffers (self._stream_hold bytes) have moved past it.
                    while taken and pulled - taken[0][1] >= self._stream_hold:
                        n = taken.popleft()[0]
                        budget.release(n)
                        released += n
                done, data = writer.finish(end)
                footer.append(done)
                yield data

            key = segment_key(self.backup_id, st.topic, st.partition, base)
            backend.put_stream(key, chunks())
            entry = SegmentEntry.from_footer(key, base, footer[0], writer.size, self.options.compression)
            data = self._store_index(backend, st, key, lambda index: index.segments.append(entry))
            payload_bytes = writer.size - len(writer.header)
            with self._stats_lock:
                self._segments += 1
                self._stored_bytes += writer.size
                self._compressed_bytes += payload_bytes
                self._raw_bytes += writer.raw_bytes
                ratio = self._raw_bytes / self._compressed_bytes if self._compressed_bytes else 0.0
            algorithm = self.options.compression
            self.metrics.segments.labels(self.backup_id).inc()
            self.metrics.storage_write_bytes.labels(backend.name, self.backup_id).inc(writer.size + len(data))
            self.metrics.compressed_bytes.labels(algorithm, self.backup_id).inc(payload_bytes)
            self.metrics.compression_ratio.labels(algorithm, self.backup_id).set(ratio)
        finally:
            budget.release(raw - released)

    def _record_missing(
        self, backend: StorageBackend, st: _Partition, lost: MissingRange, prev: Future[None] | None
    ) -> None:
        """Add a missing range to the partition's index once the segments before it are stored."""
        if prev is not None:
            prev.result()
        what = f"the missing range {lost.start}-{lost.end - 1}"
        self._store_index(backend, st, what, lambda index: index.missing.append(lost))

    def _store_index(
        self, backend: StorageBackend, st: _Partition, what: str, change: Callable[[PartitionIndex], None]
    ) -> bytes:
        """Apply ``change`` to the partition's index and store it; refuse once the lease is lost."""
        with st.index_lock:
            change(st.index)
            data = st.index.to_json()
        if self._lease_lost.is_set():
            raise LeaseLostError(f"lost the lease on backup {self.backup_id!r}; {what} is not indexed")
        backend.put(index_key(self.backup_id, st.topic, st.partition), data)
        return data

    def _check_uploads(self) -> None:
        done = [f for f in self._uploads if f.done()]
        for f in done:
            f.result()  # re-raise an upload's error in the consuming thread
        if done:
            self._uploads = [f for f in self._uploads if not f.done()]

    def _wait_uploads(self, *, quiet: bool = False) -> None:
        for f in list(self._uploads):
            try:
                f.result()
            except BaseException:
                if not quiet:
                    raise
        self._uploads = []

    def _report(self, totals: dict[str, int], done: int, total: int, elapsed: float) -> None:
        if self._progress is not None:
            self._progress(
                BackupProgress(totals["records"], totals["bytes"], done, total, self._segments, elapsed)
            )

    def _finish_manifest(self, backend: StorageBackend, manifest: Manifest, result: BackupResult) -> None:
        run = manifest.runs[-1]
        run.finished_ms = _now_ms()
        run.status = result.status
        run.records = result.records
        run.bytes = result.bytes
        manifest.updated_ms = run.finished_ms
        try:
            backend.put(manifest_key(self.backup_id), manifest.to_json())
        except LibkbError as exc:
            log.error("could not record the run's end in the manifest: %s", exc)


def _now_ms() -> int:
    return int(time.time() * 1000)
