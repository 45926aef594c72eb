"""The run controller: ``RestoreEngine`` restores a backup into a Kafka cluster, exactly and resumably.

The run: open the backup through the segment source (``latest`` = the most
recently created) and plan it (:mod:`.plan`); check the target
(:mod:`.target`); compare what an earlier run wrote past its last checkpoint
with the plan (:mod:`.verify`) and record where each target partition starts
(:mod:`.resume`); then restore every partition on a thread of its own, up to
``max_concurrent_partitions`` at once (:mod:`.partition`), through one
idempotent ``acks=all`` producer (:mod:`.producer`), storing checkpoints
meanwhile (:mod:`.checkpoint`). A partition that fails stops the others;
what was produced is flushed and the state stored either way. At the end the
offset mapping is stored next to the backup and, if asked, applied to
consumer groups (:mod:`.groups`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer

import libkb.config.fixed_properties as fixed
from libkb.config.models import JobConfig, RestoreOptions, SourceOptions
from libkb.errors import LibkbError
from libkb.format.models import Manifest
from libkb.gctune import fewer_collections
from libkb.kafka.admin import KafkaAdmin
from libkb.kafka.clients import make_admin, make_consumer, make_producer
from libkb.kafka.errors import kafka_boundary
from libkb.keys import keyring_from_config
from libkb.metrics import RunMetrics
from libkb.ratelimit import RateLimiter
from libkb.restore import purge, resume, verify
from libkb.restore.checkpoint import CHECKPOINT_SECS, Checkpoints, vouch
from libkb.restore.direct import DirectProducer, open_direct
from libkb.restore.groups import (
    TranslatedOffset,
    apply_offsets,
    refuse_by_key,
    translate_groups,
    untranslated_notes,
    untranslated_offsets,
)
from libkb.restore.mapping import OffsetMapping
from libkb.restore.partition import PartitionRestorer, RestoreContext
from libkb.restore.plan import PartitionTask, RestorePlan, SpreadTask, plan_restore
from libkb.restore.producer import Deliveries, Poller, polling, producer_config
from libkb.restore.progress import RestoreProgress, RunCounters
from libkb.restore.result import RestoreError, RestoreResult
from libkb.restore.spread import SpreadRestorer
from libkb.restore.state import RestoreState, derive_restore_id, mapping_key
from libkb.restore.target import guard_source_cluster, prepare_topics
from libkb.source import BackupSource, resolve_backup
from libkb.storage import OutageWatch, StorageBackend, create_backend_from_config
from libkb.version import __version__

__all__ = ["RestoreEngine", "RestoreError", "RestoreProgress", "RestoreResult"]

log = logging.getLogger("libkb.restore")

Task = PartitionTask | SpreadTask


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
        consumer_factory: Callable[[SourceOptions, dict[str, Any]], Consumer] = make_consumer,
        reset_groups: Callable[[list[TranslatedOffset], str], list[str]] | None = None,
    ) -> None:
        """``reset_groups(offsets, restore_id)`` commits the translated group offsets
        (``reset_consumer_offsets``) and returns the groups changed; the command
        line passes one that stores a rollback snapshot first. Default: commit
        them directly (active groups are still refused)."""
        if config.target is None:
            raise RestoreError("the config has no target cluster (target.bootstrap_servers)")
        self.config = config
        self.options: RestoreOptions = config.restore
        self.target = config.target
        self._backend = backend
        #: The run's metrics; pass the ops server's to have them served (a private registry by default).
        self.metrics = metrics if metrics is not None else RunMetrics()
        self._progress = progress
        #: (backup id, restore id, records planned) of the run, once planned: the progress metrics' labels.
        self._labels: tuple[str, str, int] | None = None
        self._reset_groups = reset_groups
        self._admin = admin
        self._producer_factory = producer_factory
        self._consumer_factory = consumer_factory  # reads back what an earlier run left unverified
        #: Seconds between checkpoints (:mod:`.checkpoint`).
        self.checkpoint_secs = CHECKPOINT_SECS
        self._stop = threading.Event()
        self._counters = RunCounters()
        #: How the run waits through a storage outage; its waits feed the metric (and the CLI's watchdog).
        self.outage = OutageWatch(
            self.options.storage_outage_timeout_secs, setting="restore.storage_outage_timeout_secs"
        )
        self.outage.subscribe(self.metrics.storage_wait.labels(config.backup_id).inc)

    def stop(self) -> None:
        """Finish what is in flight and return; a re-run resumes (thread- and signal-safe)."""
        self._stop.set()
        self.outage.abandon()  # no more waiting through a storage outage

    # -- planning ---------------------------------------------------------

    def _open(
        self, admin: Callable[[], KafkaAdmin] | None = None
    ) -> tuple[StorageBackend, BackupSource, Manifest, RestorePlan]:
        """The backend, the backup and its plan; a backend made here is closed again if that fails.

        With ``admin``, the plan knows which target topics exist and their
        partition counts (``repartition: auto``); without, it plans offline.
        """
        backend = self._backend or create_backend_from_config(
            self.config.storage, metrics=self.metrics.storage
        )
        try:
            source = resolve_backup(backend, self.config.backup_id)
            source.keep_tool_headers = self.options.keep_rust_tool_headers
            source.keyring = keyring_from_config(self.config.encryption)
            manifest = source.manifest()
            coverage = {
                (topic, partition): source.readable_coverage(topic, partition)
                for topic, info in manifest.topics.items()
                for partition in range(info.partitions)
            }
            counts = admin().partition_counts() if admin is not None else None
            plan = plan_restore(
                manifest,
                coverage,
                self.options,
                self.target.topics,
                counts,
                exact_time_bounds=source.exact_time_bounds,
            )
            # A wrong or missing key is one error here, before anything is created or written.
            source.check_keys(s for task in plan.tasks for s in task.segments)
        except BaseException:
            if self._backend is None:
                backend.close()
            raise
        return backend, source, manifest, plan

    @kafka_boundary
    def plan(self) -> RestoreResult:
        """The plan alone: nothing is written anywhere (``validate-restore``, ``--dry-run``).

        With ``purge_topics`` it asks the target what the purge would delete (and plans
        with the target's topics, as a run does).
        """
        purging = self.options.purge_topics
        backend, _, manifest, plan = self._open(self._target_admin if purging else None)
        try:
            result = RestoreResult(
                manifest.backup_id,
                self.options.restore_id or "",
                "planned",
                records=plan.max_records,
                partitions=len(plan.tasks),
                plan=plan,
                notes=list(plan.notes),
            )
            if purging:
                admin = self._target_admin()
                cluster_id = admin.cluster_id()
                result.restore_id = self._restore_id(manifest.backup_id, cluster_id, plan)
                state = resume.load_state(backend, manifest.backup_id, result.restore_id, cluster_id)
                result.purge = purge.preview(admin, state, plan)
            return result
        finally:
            if self._backend is None:
                backend.close()

    # -- the run ----------------------------------------------------------

    @kafka_boundary
    def run(self) -> RestoreResult:
        if self.options.dry_run:
            return self.plan()
        started = time.monotonic()
        backend, source, manifest, plan = self._open(self._target_admin)
        # Storage answered: from here an outage is waited through (reads, checkpoints).
        backend.ride_outages(self.outage)
        try:
            admin = self._target_admin()
            result = self._run(backend, source, admin, manifest, plan)
            result.duration_secs = time.monotonic() - started
            self.metrics.restore_duration.labels(manifest.backup_id).observe(result.duration_secs)
            return result
        except BaseException as exc:
            self.metrics.restore_errors.labels(manifest.backup_id, type(exc).__name__).inc()
            raise
        finally:
            backend.ride_outages(None)
            if self._backend is None:
                backend.close()

    def _target_admin(self) -> KafkaAdmin:
        if self._admin is None:
            self._admin = KafkaAdmin(make_admin(self.target))
        return self._admin

    def _run(
        self,
        backend: StorageBackend,
        source: BackupSource,
        admin: KafkaAdmin,
        manifest: Manifest,
        plan: RestorePlan,
    ) -> RestoreResult:
        backup_id = manifest.backup_id
        cluster_id = admin.cluster_id()
        guard_source_cluster(manifest, plan, cluster_id, allowed=self.options.allow_restore_to_source)
        snapshot = source.groups()
        if self.options.reset_consumer_offsets and snapshot is not None:
            spread = {s.source_topic: (s.target_topic, s.partitions) for s in plan.spread}
            refuse_by_key(snapshot[1], spread, self.options.consumer_groups)
        restore_id = self._restore_id(backup_id, cluster_id, plan)
        partitions = len(plan.targets())
        result = RestoreResult(backup_id, restore_id, "interrupted", partitions=partitions, plan=plan)
        self._labels = (backup_id, restore_id, plan.max_records)
        for note in plan.notes:
            log.warning(note)
        state = resume.load_state(backend, backup_id, restore_id, cluster_id)
        if state.partitions:  # an earlier run wrote: its targets must be the same topics
            resume.check_target_ids(
                state, admin.topic_ids((t.topic for t in plan.targets()), missing_ok=True)
            )
        origin = source.provenance(manifest)
        result.notes = [f"{origin.format}: {note}" for note in origin.notes] + list(plan.notes)
        if state.status != "complete":
            prep = prepare_topics(admin, manifest, plan, self.options)
            result.created_topics = prep.created
            result.notes += prep.notes
            for note in prep.notes:
                log.warning(note)
            mapping = self._execute(backend, source, admin, plan, state, result)
            result.notes += source.read_notes()
        else:
            log.info("restore %s is already complete; only consumer-group offsets are applied", restore_id)
            mapping = OffsetMapping.from_json(backend.get(mapping_key(backup_id, restore_id)))
            result.status = "complete"
        result.mapping = mapping
        if result.status == "complete":
            self._groups(source, admin, mapping, result)
            self.metrics.restore_last_success.labels(backup_id).set(time.time())
        return result

    def _restore_id(self, backup_id: str, cluster_id: str | None, plan: RestorePlan) -> str:
        return self.options.restore_id or _derive_restore_id(
            backup_id, cluster_id or ",".join(self.target.bootstrap_servers), plan
        )

    def _execute(
        self,
        backend: StorageBackend,
        source: BackupSource,
        admin: KafkaAdmin,
        plan: RestorePlan,
        state: RestoreState,
        result: RestoreResult,
    ) -> OffsetMapping:
        """Check what earlier runs wrote, produce the rest from there; store the state and the mapping."""
        targets = [(t.topic, t.partition) for t in plan.targets()]
        resume.check_target_ids(state, admin.topic_ids(t for t, _ in targets))  # stored with the starts
        ends = admin.offsets(targets, read_committed=False)
        verify.check_unverified(
            verify.unverified(state, plan, ends),
            source,
            lambda: self._read_back_consumer(state.restore_id),
            add_headers=self.options.include_original_offset_header,
        )
        if self.options.purge_topics:
            result.purge = purge.purge(backend, state, plan, admin, ends)
            if note := purge.kept_note(result.purge):
                log.warning(note)
                result.notes.append(note)
        skips = resume.record_starts(backend, state, plan, ends)
        deliveries = Deliveries(self._stop)
        producer = self._producer_factory(self.target, {**self._producer_config(), "on_delivery": deliveries})
        mapping = resume.new_mapping(state, plan)
        with polling(producer) as poller:
            checkpoints = Checkpoints(
                backend, state, plan, admin, poller.serve, deliveries.failed, self.checkpoint_secs
            )
            direct = open_direct(producer, deliveries)
            errors = self._produce(source, producer, poller, checkpoints, plan, mapping, skips, direct)
            remaining = producer.flush(self.options.delivery_timeout_ms / 1000)
            poller.serve()
        self._finish(backend, admin, plan, state, mapping, deliveries, remaining, errors)
        result.records, result.bytes = self._counters.records, self._counters.bytes
        result.skipped_records = self._counters.skipped
        result.status = state.status
        return mapping

    def _finish(
        self,
        backend: StorageBackend,
        admin: KafkaAdmin,
        plan: RestorePlan,
        state: RestoreState,
        mapping: OffsetMapping,
        deliveries: Deliveries,
        remaining: int,
        errors: list[tuple[Task, BaseException]],
    ) -> None:
        """Confirm against the broker, vouch for what is known written, store; raise what went wrong."""
        failures = deliveries.messages()
        if remaining:
            failures.append(f"{remaining} records were not acknowledged in time")
        interrupted = self._stop.is_set() and not failures and not errors
        ends = admin.offsets([(t.topic, t.partition) for t in plan.targets()], read_committed=False)
        if not remaining:  # every delivery is accounted for: trust the partitions without a failure
            vouch(state, plan, ends, deliveries.failed())
        if not failures and not errors:
            # The target holds exactly the planned records (so far, when interrupted).
            failures += resume.confirm(state, mapping, ends, interrupted=interrupted)
        state.status = "failed" if failures or errors else ("interrupted" if interrupted else "complete")
        resume.store(backend, state, mapping)
        if errors:
            raise _partition_error(errors, failures)
        if failures:
            raise RestoreError("the restore failed (re-run to resume): " + "; ".join(failures[:10]))

    def _produce(
        self,
        source: BackupSource,
        producer: Producer,
        poller: Poller,
        checkpoints: Checkpoints,
        plan: RestorePlan,
        mapping: OffsetMapping,
        skips: dict[str, int],
        direct: DirectProducer | None,
    ) -> list[tuple[Task, BaseException]]:
        """Every partition (and every topic restored by key) on a thread of its own; their errors.

        Progress and checkpoints meanwhile. The first error stops the others
        (``_restore``); so does anything that interrupts the controller, which
        then re-raises it.
        """
        total, started = len(plan.tasks) + len(plan.spread), time.monotonic()
        reader_pool = ThreadPoolExecutor(max(2, self.options.max_concurrent_partitions), "libkb-read")
        ctx = self._context(source, producer, reader_pool, poller, direct)
        restorers: list[PartitionRestorer | SpreadRestorer] = [
            PartitionRestorer(task, pm, skips[pm.key], ctx)
            for task, pm in zip(plan.tasks, mapping.partitions, strict=True)
        ]
        for task in plan.spread:
            parts = mapping.spread_into(task.source_topic)
            restorers.append(SpreadRestorer(task, parts, [skips[p.key] for p in parts], ctx))
        try:
            with (
                fewer_collections(),
                ThreadPoolExecutor(self.options.max_concurrent_partitions, "libkb-restore") as pool,
            ):
                futures = [pool.submit(self._restore, r) for r in restorers]
                self._wait(futures, checkpoints, total, started)
            return [(r.task, exc) for r, f in zip(restorers, futures, strict=True) if (exc := f.exception())]
        finally:
            reader_pool.shutdown(cancel_futures=True)
            self._report(total, started)

    def _wait(
        self, futures: list[Future[None]], checkpoints: Checkpoints, total: int, started: float
    ) -> None:
        """Until every partition has returned: progress reports, checkpoints; stops the run if interrupted."""
        try:
            # Returns as soon as the last partition does (a sleep would add up to its length to every run).
            while wait(futures, timeout=0.25).not_done:
                self._report(total, started)
                checkpoints.maybe()
        except BaseException:
            self._stop.set()  # so that the pool's threads return
            raise

    def _context(
        self,
        source: BackupSource,
        producer: Producer,
        reader_pool: ThreadPoolExecutor,
        poller: Poller,
        direct: DirectProducer | None,
    ) -> RestoreContext:
        limiter = RateLimiter(
            bytes_per_sec=self.options.rate_limit_bytes_per_sec,
            records_per_sec=self.options.rate_limit_records_per_sec,
            stop=self._stop,
        )
        return RestoreContext(
            source,
            producer,
            reader_pool,
            limiter,
            self._stop,
            self._counters,
            self.metrics,
            self.config.backup_id,
            self.options.include_original_offset_header,
            poller.poll,
            direct,
        )

    def _restore(self, restorer: PartitionRestorer | SpreadRestorer) -> None:
        """One partition (or topic restored by key), on a pool thread (a method, so a profiler can wrap it).

        An error stops the run: the other partitions finish what is in flight and return.
        """
        try:
            restorer.run()
        except BaseException:
            self._stop.set()
            raise

    def _report(self, total: int, started: float) -> None:
        progress = self._counters.progress(total, started)
        self._progress_metrics(progress)
        if self._progress is not None:
            self._progress(progress)

    def _progress_metrics(self, progress: RestoreProgress) -> None:
        """Percent, rate and ETA of the run (the restore being set by :meth:`_run`)."""
        if self._labels is None:
            return
        planned, done = self._labels[2], progress.records
        rate = done / progress.elapsed_secs if progress.elapsed_secs > 0 else 0.0
        labels = self._labels[:2]
        self.metrics.restore_progress.labels(*labels).set(
            min(100.0, 100.0 * done / planned) if planned else 100.0
        )
        self.metrics.restore_rate.labels(*labels).set(rate)
        self.metrics.restore_eta.labels(*labels).set(max(0, planned - done) / rate if rate else 0.0)

    def _producer_config(self) -> dict[str, Any]:
        return producer_config(self.options)

    def _read_back_consumer(self, restore_id: str) -> Consumer:
        """A consumer of the target, for :mod:`.verify` (assigned, never subscribed or committed)."""
        return self._consumer_factory(
            self.target,
            {
                "group.id": f"libkb-restore-{restore_id}",
                "client.id": f"libkb-restore/{__version__}",
                **fixed.READ_BACK_CONSUMER,  # read_uncommitted: as the high watermarks the restore reads
            },
        )

    def _groups(
        self, source: BackupSource, admin: KafkaAdmin, mapping: OffsetMapping, result: RestoreResult
    ) -> None:
        snapshot = source.groups()
        if snapshot is None:
            return
        result.group_offsets = translate_groups(snapshot[1], mapping, self.options.consumer_groups)
        result.untranslated = untranslated_offsets(snapshot[1], mapping, self.options.consumer_groups)
        result.notes += untranslated_notes(result.untranslated)
        if self.options.reset_consumer_offsets and result.group_offsets:
            if self._reset_groups is not None:
                result.groups_reset = self._reset_groups(result.group_offsets, mapping.restore_id)
            else:
                result.groups_reset = apply_offsets(admin.admin, result.group_offsets)


def _partition_error(errors: list[tuple[Task, BaseException]], failures: list[str]) -> BaseException:
    """What a failed partition raises: libkb's own errors as they are, others as a RestoreError naming it."""
    for task, exc in errors[1:]:
        log.error("%s failed too: %s", _what(task), exc)
    for failure in failures:
        log.error("delivery failed: %s", failure)
    task, exc = errors[0]
    if isinstance(exc, LibkbError) or not isinstance(exc, Exception):
        return exc
    reason = exc.args[0] if isinstance(exc, KafkaException) and exc.args else None
    error = RestoreError(
        f"restoring {_what(task)} failed (re-run to resume): "
        + (reason.str() if isinstance(reason, KafkaError) else str(exc))
    )
    error.__cause__ = exc
    return error


def _what(task: Task) -> str:
    if isinstance(task, SpreadTask):
        return f"{task.source_topic} by key into {task.target_topic} ({task.partitions} partitions)"
    return f"{task.source_topic}[{task.source_partition}] into {task.target_topic}[{task.target_partition}]"


def _derive_restore_id(backup_id: str, target: str, plan: RestorePlan) -> str:
    """The same backup, target and plan give the same id, so re-running a config resumes it."""
    tasks = [
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
    ]
    spread = [
        (
            s.source_topic,
            s.target_topic,
            s.partitions,
            s.strategy,
            [(t.source_partition, t.start_offset, t.end_offset) for t in s.sources],
            s.sources[0].time_window,
        )
        for s in plan.spread
    ]
    return derive_restore_id(backup_id, target, tasks, spread)
