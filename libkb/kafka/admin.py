"""Admin look-ups the engines need: topics, their settings, offsets, consumer groups."""

from __future__ import annotations

import concurrent.futures
import contextlib
import time
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any, TypeVar

from confluent_kafka import (
    ConsumerGroupTopicPartitions,
    IsolationLevel,
    KafkaError,
    KafkaException,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # not re-exported in stubs
    AdminClient,
    ConfigResource,
    ConfigSource,
    OffsetSpec,
)
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_exponential

from libkb.config.models import TopicSelection
from libkb.kafka.clients import ConnectionErrors, KafkaConnectionError
from libkb.kafka.errors import kafka_boundary
from libkb.kafka.types import GroupOffsets, TopicInfo

#: Metadata requests are made in slices this long, so that a refused login or
#: certificate is reported after about this long instead of the whole timeout.
_METADATA_SLICE_SECS = 1.0

INTERNAL_PREFIXES = ("__",)

#: The id a broker without topic ids reports (the zero UUID, base64).
_NO_TOPIC_ID = "AAAAAAAAAAAAAAAAAAAAAA"

T = TypeVar("T")


def _selects_topic(
    selection: TopicSelection, name: str, *, include_internal: bool | AbstractSet[str]
) -> bool:
    """Whether a backup selection picks topic ``name``.

    Without ``include_internal`` an internal topic (``__consumer_offsets``) is
    matched only by an include pattern that itself starts with ``__`` (its
    exact name, or ``"__*"``), so ``*`` does not back up the cluster's own
    bookkeeping while asking for it by name still works. A set of names (the
    original tool's ``internal_topics``) lets generic patterns reach just
    those internal topics. Excludes always win.
    """
    reachable = include_internal is True or (
        not isinstance(include_internal, bool) and name in include_internal
    )
    if not reachable and name.startswith(INTERNAL_PREFIXES):
        explicit = tuple(p for p in selection.include if p.startswith(INTERNAL_PREFIXES))
        selection = TopicSelection(include=explicit, exclude=selection.exclude)
    return selection.matches(name)


def exclusion_rule(
    selection: TopicSelection, name: str, *, include_internal: bool | AbstractSet[str]
) -> str | None:
    """Why a backup selection leaves topic ``name`` out, naming the rule; None if it picks it.

    ``backup --dry-run`` lists excluded topics with this, so an operator sees
    which pattern or setting to change.
    """
    if _selects_topic(selection, name, include_internal=include_internal):
        return None
    for pattern in selection.exclude:
        if TopicSelection(include=(pattern,)).matches(name):
            return f"source.topics.exclude {pattern!r}"
    if name.startswith(INTERNAL_PREFIXES) and selection.matches(name):
        if include_internal is False:
            return "internal topic (backup.include_internal_topics is false; or include it by name)"
        return "internal topic not in backup.internal_topics"
    return "no source.topics.include pattern matches"


# Answers that mean "not yet": leadership moving, a topic just created, a slow broker.
# A just-created topic can answer UNKNOWN_LEADER_EPOCH for a moment: the client's
# metadata already has the new leader epoch, the broker has not applied it yet.
_NOT_YET = {
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.UNKNOWN_LEADER_EPOCH,
    KafkaError.FENCED_LEADER_EPOCH,
    KafkaError.OFFSET_NOT_AVAILABLE,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.NOT_COORDINATOR,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError.REQUEST_TIMED_OUT,
    KafkaError._TRANSPORT,
    KafkaError._TIMED_OUT,
}


_STALE_EPOCH = {KafkaError.FENCED_LEADER_EPOCH, KafkaError.UNKNOWN_LEADER_EPOCH}


def _retriable(exc: BaseException) -> bool:
    if not isinstance(exc, KafkaException) or not exc.args:
        return False
    error = exc.args[0]
    return bool(error.retriable()) or error.code() in _NOT_YET


def until_ready(ask: Callable[[], T], timeout: float) -> T:
    """``ask()``, asked again while the cluster answers "not yet" (for up to ``timeout``)."""
    retrying = Retrying(
        retry=retry_if_exception(_retriable),
        stop=stop_after_delay(timeout),
        wait=wait_exponential(multiplier=0.02, max=2),  # a just-created topic is usually ready in ms
        reraise=True,
    )
    return retrying(ask)


@dataclass(frozen=True, slots=True)
class PartitionOffsets:
    low: int  # first offset still in the log
    high: int  # the high watermark, or the last stable offset for read_committed


class KafkaAdmin:
    """Thin, typed wrapper; every call has a timeout so a dead cluster fails clearly."""

    def __init__(self, admin: AdminClient, *, timeout: float = 30.0) -> None:
        self.admin = admin
        self.timeout = timeout

    @kafka_boundary
    def cluster_id(self) -> str | None:
        metadata = self.metadata()
        return getattr(metadata, "cluster_id", None)

    @kafka_boundary
    def metadata(self) -> Any:
        """The cluster's metadata; :class:`KafkaConnectionError` if no broker can be used.

        A refused authentication or TLS handshake fails within about a second,
        with librdkafka's reason (it would otherwise retry until the timeout
        and then say only "Broker transport failure").
        """
        errors: ConnectionErrors | None = getattr(self.admin, "connection_errors", None)
        if errors is None:  # a plain AdminClient: one request, librdkafka's own error
            return self.admin.list_topics(timeout=self.timeout)
        errors.reset()
        deadline = time.monotonic() + self.timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                metadata = self.admin.list_topics(timeout=max(min(_METADATA_SLICE_SECS, remaining), 0.05))
            except KafkaException as exc:
                if not exc.args or exc.args[0].code() not in (KafkaError._TRANSPORT, KafkaError._TIMED_OUT):
                    raise
                self.admin.poll(0)  # serves error_cb (and librdkafka's log lines)
                if (refused := errors.rejection()) is not None:
                    raise KafkaConnectionError(
                        f"cannot connect to Kafka: {refused} (check the security settings: "
                        "security_protocol, credentials, certificates)"
                    ) from exc
                if time.monotonic() >= deadline:
                    last = errors.last() or exc.args[0].str()
                    raise KafkaConnectionError(
                        f"no Kafka broker answered within {self.timeout:g}s (last error: {last})"
                    ) from exc
                time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))  # no busy loop
                continue
            self.admin.poll(0)  # drain queued error and log events
            return metadata

    @kafka_boundary
    def partition_counts(self) -> dict[str, int]:
        """Topic name -> partition count of every topic the cluster has."""
        return {name: len(t.partitions) for name, t in self.metadata().topics.items() if t.error is None}

    @kafka_boundary
    def select_topics(
        self, selection: TopicSelection, *, include_internal: bool | AbstractSet[str]
    ) -> dict[str, int]:
        """Topic name -> partition count for the topics the selection matches.

        ``include_internal`` only decides whether generic patterns (``*``) reach
        internal topics; see :func:`_selects_topic`.
        """
        return self.classify_topics(selection, include_internal=include_internal)[0]

    def classify_topics(
        self, selection: TopicSelection, *, include_internal: bool | AbstractSet[str]
    ) -> tuple[dict[str, int], dict[str, str]]:
        """:meth:`select_topics`, and every other topic with the rule that excluded it."""
        metadata = self.metadata()
        chosen, excluded = {}, {}
        for name, topic in metadata.topics.items():
            if topic.error is not None:
                continue
            rule = exclusion_rule(selection, name, include_internal=include_internal)
            if rule is None:
                chosen[name] = len(topic.partitions)
            else:
                excluded[name] = rule
        return dict(sorted(chosen.items())), dict(sorted(excluded.items()))

    @kafka_boundary
    def topic_infos(self, names: Iterable[str]) -> dict[str, TopicInfo]:
        """Partition count, replication factor and non-default configs of each topic."""
        names = list(names)
        if not names:
            return {}
        metadata = self.metadata()
        resources = [ConfigResource(ConfigResource.Type.TOPIC, n) for n in names]
        futures = self.admin.describe_configs(resources, request_timeout=self.timeout)
        infos = {}
        for resource, future in futures.items():
            entries = future.result(timeout=self.timeout)
            configs = {
                name: entry.value
                for name, entry in entries.items()
                if entry.value is not None
                and not entry.is_sensitive
                and entry.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
            }
            topic = metadata.topics[resource.name]
            partitions = topic.partitions
            replicas = len(partitions[0].replicas) if partitions else 1
            infos[resource.name] = TopicInfo(len(partitions), replicas, dict(sorted(configs.items())))
        for name, topic_id in self.topic_ids(names).items():
            infos[name].topic_id = topic_id
        return infos

    @kafka_boundary
    def topic_ids(self, names: Iterable[str], *, missing_ok: bool = False) -> dict[str, str | None]:
        """Each topic's id (KIP-516) in Kafka's base64 form; None where the broker has none (before 2.8).

        A topic deleted and re-created under its name gets a new id: the backup
        and the restore tell the two logs apart by it. ``missing_ok``: a topic
        that does not exist is left out (else it is asked again until the timeout).
        """
        wanted = sorted(set(names))
        if not wanted:
            return {}

        def ask() -> dict[str, str | None]:
            futures = self.admin.describe_topics(TopicCollection(wanted), request_timeout=self.timeout)
            ids = {}
            for name, future in futures.items():
                try:
                    topic_id = str(future.result(timeout=self.timeout).topic_id)
                except KafkaException as exc:
                    if missing_ok and exc.args and exc.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                        continue
                    raise
                ids[name] = None if topic_id == _NO_TOPIC_ID else topic_id
            return ids

        return until_ready(ask, self.timeout)

    @kafka_boundary
    def offsets(
        self, partitions: Iterable[tuple[str, int]], *, read_committed: bool
    ) -> dict[tuple[str, int], PartitionOffsets]:
        """Low and high (or last stable) offsets of each partition."""
        tps = [TopicPartition(t, p) for t, p in partitions]
        if not tps:
            return {}
        isolation = IsolationLevel.READ_COMMITTED if read_committed else IsolationLevel.READ_UNCOMMITTED
        low = self._list_offsets(tps, OffsetSpec.earliest(), isolation)  # type: ignore[no-untyped-call]
        high = self._list_offsets(tps, OffsetSpec.latest(), isolation)  # type: ignore[no-untyped-call]
        return {tp: PartitionOffsets(low[tp], high[tp]) for tp in low}

    def _list_offsets(
        self, tps: list[TopicPartition], spec: OffsetSpec, isolation: IsolationLevel
    ) -> dict[tuple[str, int], int]:
        def ask() -> dict[tuple[str, int], int]:
            futures = self.admin.list_offsets(
                {tp: spec for tp in tps}, isolation_level=isolation, request_timeout=self.timeout
            )
            timeout = self.timeout
            try:
                return {
                    (tp.topic, tp.partition): f.result(timeout=timeout).offset for tp, f in futures.items()
                }
            except KafkaException as exc:
                if exc.args and exc.args[0].code() in _STALE_EPOCH:
                    # After a broker restart the client's cached leader epochs are older than the
                    # broker's, and ListOffsets does not refresh them: ask for metadata first.
                    with contextlib.suppress(KafkaException):
                        self.admin.list_topics(timeout=timeout)
                raise

        # Leadership moves (and new topics) answer NOT_LEADER for a moment: retry those.
        return until_ready(ask, self.timeout)

    @kafka_boundary
    def cleanup_policies(self, topics: Iterable[str]) -> dict[str, str]:
        """Each topic's ``cleanup.policy`` in force (its own, else the broker's default)."""
        resources = [ConfigResource(ConfigResource.Type.TOPIC, t) for t in sorted(set(topics))]
        if not resources:
            return {}
        futures = self.admin.describe_configs(resources, request_timeout=self.timeout)
        policies = {}
        for resource, future in futures.items():
            entry = future.result(timeout=self.timeout).get("cleanup.policy")
            policies[resource.name] = entry.value if entry is not None and entry.value else "delete"
        return policies

    @kafka_boundary
    def delete_records(
        self, before: Mapping[tuple[str, int], int]
    ) -> tuple[dict[tuple[str, int], int], dict[tuple[str, int], KafkaError]]:
        """DeleteRecords: each partition's log then starts at its offset in ``before``.

        Returns the new low watermarks, and Kafka's error for each partition it
        refused. Answers that mean "not yet" (a leader moving) are asked again
        until ``timeout``.
        """
        done: dict[tuple[str, int], int] = {}
        refused: dict[tuple[str, int], KafkaError] = {}
        pending = dict(before)
        deadline = time.monotonic() + self.timeout
        while pending:
            tps = [TopicPartition(t, p, offset) for (t, p), offset in pending.items()]
            futures = self.admin.delete_records(
                tps, request_timeout=self.timeout, operation_timeout=self.timeout
            )
            for tp, future in futures.items():
                key = (tp.topic, tp.partition)
                try:
                    done[key] = future.result(timeout=self.timeout).low_watermark
                    del pending[key]
                except KafkaException as exc:
                    error = exc.args[0] if exc.args else KafkaError(KafkaError._FAIL)
                    if not (_retriable(exc) and time.monotonic() < deadline):
                        refused[key] = error
                        del pending[key]
            if pending:
                time.sleep(0.2)
        return done, refused

    @kafka_boundary
    def group_offsets(self, topics: Iterable[str], *, wait_secs: float | None = None) -> list[GroupOffsets]:
        """Committed offsets of every consumer group, on the given topics only.

        ``wait_secs``: how long a cluster that does not answer (a broker
        restarting) is asked again; default: the client's timeout.
        """
        wanted = set(topics)
        return until_ready(lambda: self._group_offsets(wanted), wait_secs or self.timeout)

    def _group_offsets(self, wanted: set[str]) -> list[GroupOffsets]:
        try:
            listing = self.admin.list_consumer_groups(request_timeout=self.timeout).result(
                timeout=self.timeout
            )
        except concurrent.futures.TimeoutError:
            raise KafkaException(
                KafkaError(KafkaError._TIMED_OUT, "listing the consumer groups timed out")
            ) from None
        result = []
        for group in sorted(g.group_id for g in listing.valid):
            futures = self.admin.list_consumer_group_offsets(
                [ConsumerGroupTopicPartitions(group)], request_timeout=self.timeout
            )
            try:
                answer = futures[group].result(timeout=self.timeout)
            except KafkaException as exc:
                err = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
                if err is not None and err.code() == KafkaError.GROUP_ID_NOT_FOUND:
                    continue  # the group went away meanwhile
                # Anything else (e.g. not authorized) must not leave the group out unnoticed.
                code = err.code() if err is not None else KafkaError._FAIL
                said = err.str() if err is not None else str(exc)
                raise KafkaException(KafkaError(code, f"consumer group {group!r}: {said}")) from exc
            offsets: dict[str, dict[int, int]] = {}
            for tp in answer.topic_partitions or []:
                if tp.topic in wanted and tp.offset >= 0:
                    offsets.setdefault(tp.topic, {})[tp.partition] = tp.offset
            if offsets:
                result.append(GroupOffsets(group, offsets))
        return result
