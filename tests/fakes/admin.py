"""The raw ``AdminClient`` calls the engines make, answered from a :class:`FakeCluster`.

The engines take a :class:`~libkb.kafka.admin.KafkaAdmin`; :func:`fake_admin`
wraps this fake in the real one, so its look-ups (topic selection, configs,
offsets, group offsets) run as they do against a broker, and the restore's
direct use of ``admin.admin`` (topic creation, config checks, group offsets)
reaches the fake too. Answers are confluent-kafka's own result types in
already-completed futures.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import Future
from typing import Any, TypeVar, cast

from confluent_kafka import (
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Node,
    TopicCollection,
    TopicPartition,
    Uuid,
)
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # not re-exported in stubs
    AdminClient,
    BrokerMetadata,
    ClusterMetadata,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    ConsumerGroupDescription,
    ConsumerGroupListing,
    DeletedRecords,
    ListConsumerGroupsResult,
    ListOffsetsResultInfo,
    NewTopic,
    OffsetSpec,
    PartitionMetadata,
    TopicDescription,
    TopicMetadata,
)

from libkb.kafka.admin import KafkaAdmin
from tests.fakes.cluster import FakeCluster

T = TypeVar("T")

#: Broker defaults ``describe_configs`` reports for settings a topic does not set.
DEFAULT_TOPIC_CONFIGS = {
    "cleanup.policy": "delete",
    "retention.ms": "604800000",
    "message.timestamp.type": "CreateTime",
    "message.timestamp.before.max.ms": "9223372036854775807",
}


def fake_admin(cluster: FakeCluster) -> KafkaAdmin:
    """The engines' ``admin=`` argument: libkb's own KafkaAdmin over :class:`FakeAdminClient`."""
    return KafkaAdmin(cast(AdminClient, FakeAdminClient(cluster)), timeout=5)


class FakeAdminClient:
    """``list_topics``, ``describe_configs``, ``create_topics``, ``list_offsets``,
    ``delete_records`` and the group calls."""

    def __init__(self, cluster: FakeCluster) -> None:
        self.cluster = cluster

    def poll(self, timeout: float = 0) -> int:
        return 0

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> ClusterMetadata:
        metadata = ClusterMetadata()
        metadata.cluster_id = self.cluster.cluster_id  # type: ignore[assignment]  # declared None
        metadata.controller_id = 0
        broker = BrokerMetadata()
        broker.id, broker.port = 0, 9092
        broker.host = "fake"  # type: ignore[assignment]  # declared None
        metadata.brokers = {0: broker}
        metadata.topics = {}
        for name, info in self.cluster.topics.items():
            topic_metadata = TopicMetadata()
            topic_metadata.topic = name
            topic_metadata.error = None
            topic_metadata.partitions = {}
            for p in range(len(info.partitions)):
                part = PartitionMetadata()
                part.id, part.leader, part.error = p, 0, None
                part.replicas = part.isrs = list(range(info.replication_factor))
                topic_metadata.partitions[p] = part
            metadata.topics[name] = topic_metadata
        return metadata

    def describe_topics(
        self, topics: TopicCollection, request_timeout: float = -1
    ) -> dict[str, Future[TopicDescription]]:
        out = {}
        for name in topics.topic_names:
            topic = self.cluster.topics.get(name)
            if topic is None:
                out[name] = _failed(KafkaError.UNKNOWN_TOPIC_OR_PART, f"unknown topic {name}")
                continue
            out[name] = _done(TopicDescription(name, Uuid(*topic.uuid), False, []))
        return out

    def describe_configs(
        self, resources: list[ConfigResource], request_timeout: float = -1
    ) -> dict[ConfigResource, Future[dict[str, ConfigEntry]]]:
        out = {}
        for resource in resources:
            topic = self.cluster.topics.get(resource.name)
            if topic is None:
                out[resource] = _failed(KafkaError.UNKNOWN_TOPIC_OR_PART, f"unknown topic {resource.name}")
                continue
            entries = {
                k: ConfigEntry(k, v, ConfigSource.DEFAULT_CONFIG) for k, v in DEFAULT_TOPIC_CONFIGS.items()
            }
            entries |= {
                k: ConfigEntry(k, v, ConfigSource.DYNAMIC_TOPIC_CONFIG) for k, v in topic.configs.items()
            }
            out[resource] = _done(entries)
        return out

    def create_topics(
        self, new_topics: list[NewTopic], request_timeout: float = -1
    ) -> dict[str, Future[None]]:
        out = {}
        for new in new_topics:
            if new.topic in self.cluster.topics:
                out[new.topic] = _failed(KafkaError.TOPIC_ALREADY_EXISTS, f"topic {new.topic} exists")
                continue
            self.cluster.create_topic(new.topic, new.num_partitions, new.config, new.replication_factor)
            out[new.topic] = _done(None)
        return out

    def list_offsets(
        self, requests: dict[TopicPartition, OffsetSpec], **_: Any
    ) -> dict[TopicPartition, Future[ListOffsetsResultInfo]]:
        out = {}
        earliest = type(OffsetSpec.earliest())  # type: ignore[no-untyped-call]
        for tp, spec in requests.items():
            low, high = self.cluster.watermarks(tp.topic, tp.partition)
            offset = low if isinstance(spec, earliest) else high
            out[tp] = _done(ListOffsetsResultInfo(offset, -1, -1))
        return out

    def delete_records(
        self, topic_partition_offsets: list[TopicPartition], **_: Any
    ) -> dict[TopicPartition, Future[DeletedRecords]]:
        """As Kafka: refused on a topic whose cleanup.policy lacks delete, or past the end;
        ``cluster.refused_deletes`` (topic -> error code) refuses others."""
        out: dict[TopicPartition, Future[DeletedRecords]] = {}
        for tp in topic_partition_offsets:
            topic = self.cluster.topics.get(tp.topic)
            policy = topic.configs.get("cleanup.policy", "delete") if topic is not None else ""
            refused = self.cluster.refused_deletes.get(tp.topic)
            if topic is None:
                out[tp] = _failed(KafkaError.UNKNOWN_TOPIC_OR_PART, "Broker: Unknown topic or partition")
            elif refused is not None:
                out[tp] = _failed(refused, "Broker: refused")
            elif "delete" not in policy.split(","):
                out[tp] = _failed(KafkaError.POLICY_VIOLATION, "Broker: Policy violation")
            elif tp.offset > self.cluster.watermarks(tp.topic, tp.partition)[1]:
                out[tp] = _failed(KafkaError.OFFSET_OUT_OF_RANGE, "Broker: Offset out of range")
            else:
                self.cluster.delete_records(tp.topic, tp.partition, tp.offset)
                out[tp] = _done(DeletedRecords(self.cluster.watermarks(tp.topic, tp.partition)[0]))
        return out

    def list_consumer_groups(self, request_timeout: float = -1) -> Future[ListConsumerGroupsResult]:
        listings = [ConsumerGroupListing(group, False) for group in sorted(self.cluster.groups)]
        return _done(ListConsumerGroupsResult(valid=listings))

    def list_consumer_group_offsets(
        self, requests: list[ConsumerGroupTopicPartitions], request_timeout: float = -1
    ) -> dict[str, Future[ConsumerGroupTopicPartitions]]:
        return {r.group_id: _done(self._committed(r.group_id)) for r in requests}

    def describe_consumer_groups(
        self, group_ids: Iterable[str], request_timeout: float = -1
    ) -> dict[str, Future[ConsumerGroupDescription]]:
        return {group: _done(self._description(group)) for group in group_ids}

    def alter_consumer_group_offsets(
        self, requests: list[ConsumerGroupTopicPartitions], request_timeout: float = -1
    ) -> dict[str, Future[ConsumerGroupTopicPartitions]]:
        for request in requests:
            for tp in request.topic_partitions or []:
                self.cluster.commit(request.group_id, tp.topic, tp.partition, tp.offset)
        return {r.group_id: _done(r) for r in requests}

    def _committed(self, group: str) -> ConsumerGroupTopicPartitions:
        committed = self.cluster.groups.get(group, {})
        return ConsumerGroupTopicPartitions(
            group, [TopicPartition(t, p, o) for (t, p), o in sorted(committed.items())]
        )

    def _description(self, group: str) -> ConsumerGroupDescription:
        active = group in self.cluster.active_groups
        members: list[Any] = [object()] if active else []  # the engine only counts them
        state = "STABLE" if active else "EMPTY"
        return ConsumerGroupDescription(group, False, members, "range", state, Node(0, "fake", 9092))


def _done(value: T) -> Future[T]:
    future: Future[T] = Future()
    future.set_result(value)
    return future


def _failed(code: int, text: str) -> Future[Any]:
    future: Future[Any] = Future()
    future.set_exception(KafkaException(KafkaError(code, text)))
    return future
