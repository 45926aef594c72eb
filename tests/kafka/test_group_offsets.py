"""Consumer-group snapshot: a group that vanished is skipped; one we may not read is an error."""

from __future__ import annotations

from concurrent.futures import Future
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from libkb.kafka.admin import KafkaAdmin
from libkb.kafka.errors import KafkaClientError


class _Groups:
    """``list_consumer_groups`` / ``list_consumer_group_offsets`` answering from a table."""

    def __init__(self, answers: dict[str, list[TopicPartition] | int]) -> None:
        self.answers = answers

    def list_consumer_groups(self, **_: Any) -> Future[Any]:
        done: Future[Any] = Future()
        done.set_result(SimpleNamespace(valid=[SimpleNamespace(group_id=g) for g in self.answers]))
        return done

    def list_consumer_group_offsets(self, requests: list[Any], **_: Any) -> dict[str, Future[Any]]:
        group = requests[0].group_id
        answer = self.answers[group]
        future: Future[Any] = Future()
        if isinstance(answer, int):
            future.set_exception(KafkaException(KafkaError(answer)))
        else:
            future.set_result(SimpleNamespace(topic_partitions=answer))
        return {group: future}


def test_offsets_on_the_backed_up_topics_only() -> None:
    fake = _Groups({"billing": [TopicPartition("orders", 0, 42), TopicPartition("other", 0, 7)]})
    [billing] = KafkaAdmin(fake, timeout=5).group_offsets(["orders"])  # type: ignore[arg-type]
    assert billing.group == "billing" and billing.offsets == {"orders": {0: 42}}


def test_a_group_deleted_meanwhile_is_skipped() -> None:
    fake = _Groups({"gone": KafkaError.GROUP_ID_NOT_FOUND, "billing": [TopicPartition("orders", 1, 5)]})
    groups = KafkaAdmin(fake, timeout=5).group_offsets(["orders"])  # type: ignore[arg-type]
    assert [g.group for g in groups] == ["billing"]


def test_a_group_we_may_not_read_is_an_error_naming_it() -> None:
    fake = _Groups({"audit": KafkaError.GROUP_AUTHORIZATION_FAILED, "billing": []})
    with pytest.raises(KafkaClientError) as info:
        KafkaAdmin(fake, timeout=5).group_offsets(["orders"])  # type: ignore[arg-type]
    assert str(info.value) == "Kafka: consumer group 'audit': Broker: Group authorization failed"
    assert info.value.code == KafkaError.GROUP_AUTHORIZATION_FAILED
