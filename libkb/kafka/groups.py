"""Consumer-group offsets on a cluster: read them, commit them exactly, delete a group, count its members.

Kafka changes a group's offsets only while the group has no active members
(otherwise it answers ``UNKNOWN_MEMBER_ID`` for each partition), and it
answers a commit partition by partition, so one request can half succeed.
So callers check for members before changing anything, and every
partition's answer is read, never only the request's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from libkb.kafka.admin import until_ready
from libkb.kafka.errors import KafkaClientError
from libkb.kafka.types import CommittedOffset

TP = tuple[str, int]

#: Answers to a commit that mean the group has members: Kafka refuses to move their offsets.
ACTIVE_GROUP_ERRORS = frozenset(
    {
        KafkaError.UNKNOWN_MEMBER_ID,
        KafkaError.ILLEGAL_GENERATION,
        KafkaError.REBALANCE_IN_PROGRESS,
        KafkaError.NON_EMPTY_GROUP,
    }
)


class GroupOffsetError(KafkaClientError):
    """Consumer-group offsets could not be read or changed."""


def kafka_error(exc: KafkaException) -> KafkaError:
    if exc.args and isinstance(exc.args[0], KafkaError):
        return exc.args[0]
    return KafkaError(KafkaError._FAIL, str(exc))


def describe_commit_error(error: KafkaError) -> str:
    """Kafka's answer to one partition's commit, and what to do about it."""
    text = f"Kafka refused: {error.str()} ({error.name()})"
    code = error.code()
    if code in ACTIVE_GROUP_ERRORS:
        return f"{text}: the group has active members; stop its consumers, then run the command again"
    if code == KafkaError.UNKNOWN_TOPIC_OR_PART:
        return f"{text}: the topic or partition does not exist on this cluster"
    if code in (KafkaError.GROUP_AUTHORIZATION_FAILED, KafkaError.TOPIC_AUTHORIZATION_FAILED):
        return f"{text}: grant this client Read on the group and the topic"
    return text


class GroupAdmin:
    """The group calls of an ``AdminClient``; every call has a timeout so a dead cluster fails clearly."""

    def __init__(self, admin: AdminClient, *, timeout: float = 30.0) -> None:
        self.admin = admin
        self.timeout = timeout

    def list_groups(self) -> list[str]:
        """Every consumer group the cluster knows, sorted."""

        def ask() -> list[str]:
            listing = self.admin.list_consumer_groups(request_timeout=self.timeout)
            return sorted(g.group_id for g in listing.result(timeout=self.timeout).valid)

        return until_ready(ask, self.timeout)

    def committed(self, group: str) -> dict[TP, CommittedOffset]:
        """The group's committed offsets (empty when the group does not exist)."""

        def ask() -> ConsumerGroupTopicPartitions | None:
            request = [ConsumerGroupTopicPartitions(group)]
            future = self.admin.list_consumer_group_offsets(request, request_timeout=self.timeout)[group]
            try:
                answer: ConsumerGroupTopicPartitions = future.result(timeout=self.timeout)
            except KafkaException as exc:
                if kafka_error(exc).code() == KafkaError.GROUP_ID_NOT_FOUND:
                    return None
                raise
            return answer

        try:
            answer = until_ready(ask, self.timeout)
        except KafkaException as exc:
            raise GroupOffsetError(
                f"cannot read the committed offsets of consumer group {group!r}: {kafka_error(exc).str()}"
            ) from exc
        out: dict[TP, CommittedOffset] = {}
        for tp in (answer.topic_partitions or []) if answer is not None else []:
            if tp.error is not None:
                raise GroupOffsetError(
                    f"cannot read the offset of consumer group {group!r} on {tp.topic}[{tp.partition}]: "
                    f"{tp.error.str()}"
                )
            if tp.offset >= 0:
                epoch = tp.leader_epoch if tp.leader_epoch is not None and tp.leader_epoch >= 0 else None
                out[(tp.topic, tp.partition)] = CommittedOffset(tp.offset, tp.metadata or None, epoch)
        return dict(sorted(out.items()))

    def members(self, groups: Iterable[str]) -> dict[str, int]:
        """The number of active members of each group (0 for a group that does not exist)."""
        names = sorted(set(groups))
        if not names:
            return {}

        def ask() -> dict[str, int]:
            futures = self.admin.describe_consumer_groups(names, request_timeout=self.timeout)
            return {g: len(f.result(timeout=self.timeout).members) for g, f in futures.items()}

        try:
            return until_ready(ask, self.timeout)
        except KafkaException as exc:
            raise GroupOffsetError(
                f"cannot check consumer group(s) {', '.join(names)} for active members: "
                f"{kafka_error(exc).str()}; no offsets were changed"
            ) from exc

    def refuse_active(self, groups: Iterable[str], command: str) -> None:
        """Raise, naming every group that has active members; ``command`` is what to run once they stopped."""
        active = {g: n for g, n in self.members(groups).items() if n}
        if active:
            named = ", ".join(f"{g!r} ({n} member{'s' if n > 1 else ''})" for g, n in active.items())
            raise GroupOffsetError(
                f"consumer group(s) {named} have active members: Kafka changes the offsets of a group "
                f"only while none of its consumers runs. Stop them, then run {command}; "
                "no offsets were changed"
            )

    def commit(self, group: str, offsets: Mapping[TP, CommittedOffset]) -> dict[TP, KafkaError]:
        """Set the group's offsets on these partitions; returns Kafka's refusals, by partition."""
        if not offsets:
            return {}
        request = ConsumerGroupTopicPartitions(
            group, [_partition(tp, o) for tp, o in sorted(offsets.items())]
        )

        def ask() -> ConsumerGroupTopicPartitions:
            future = self.admin.alter_consumer_group_offsets([request], request_timeout=self.timeout)[group]
            answer: ConsumerGroupTopicPartitions = future.result(timeout=self.timeout)
            return answer

        try:
            answer = until_ready(ask, self.timeout)
        except KafkaException as exc:
            error = kafka_error(exc)
            return {tp: error for tp in offsets}
        return {
            (tp.topic, tp.partition): tp.error for tp in answer.topic_partitions or [] if tp.error is not None
        }

    def delete(self, group: str) -> bool:
        """Delete a group that has no members, offsets and all; False if it did not exist."""

        def ask() -> bool:
            future = self.admin.delete_consumer_groups([group], request_timeout=self.timeout)[group]
            try:
                future.result(timeout=self.timeout)
            except KafkaException as exc:
                if kafka_error(exc).code() == KafkaError.GROUP_ID_NOT_FOUND:
                    return False
                raise
            return True

        try:
            return until_ready(ask, self.timeout)
        except KafkaException as exc:
            raise GroupOffsetError(
                f"cannot delete consumer group {group!r}: {describe_commit_error(kafka_error(exc))}"
            ) from exc


def _partition(tp: TP, offset: CommittedOffset) -> TopicPartition:
    epoch = -1 if offset.leader_epoch is None else offset.leader_epoch  # -1: none
    if offset.metadata is None:  # confluent-kafka takes no None for metadata
        return TopicPartition(tp[0], tp[1], offset.offset, leader_epoch=epoch)
    return TopicPartition(tp[0], tp[1], offset.offset, metadata=offset.metadata, leader_epoch=epoch)


def commit_failure(group: str, failed: Mapping[TP, KafkaError]) -> str:
    """One line for a group whose commit Kafka refused on some partitions."""
    shown = sorted(failed.items())[:5]
    parts = "; ".join(f"{t}[{p}]: {describe_commit_error(e)}" for (t, p), e in shown)
    more = f" (and {len(failed) - len(shown)} more partitions)" if len(failed) > len(shown) else ""
    return f"consumer group {group!r}: {parts}{more}"
