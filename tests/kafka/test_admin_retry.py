"""Offset look-ups on a just-created topic retry the broker's passing "not yet" answers."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from libkb.kafka.admin import KafkaAdmin
from libkb.kafka.errors import KafkaClientError


class _Answer:
    def __init__(self, offset: int) -> None:
        self.offset = offset


class _FlakyAdmin:
    """Answers ``list_offsets`` with the given errors first, then with offset 7."""

    def __init__(self, errors: list[int]) -> None:
        self.errors = list(errors)
        self.calls = 0
        self.metadata_requests = 0

    def list_topics(self, **_: Any) -> None:
        self.metadata_requests += 1

    def list_offsets(self, request: dict[Any, Any], **_: Any) -> dict[Any, Future[_Answer]]:
        self.calls += 1
        futures: dict[Any, Future[_Answer]] = {}
        for tp in request:
            future: Future[_Answer] = Future()
            if self.errors:
                future.set_exception(KafkaException(KafkaError(self.errors[0])))
            else:
                future.set_result(_Answer(7))
            futures[tp] = future
        if self.errors:
            self.errors.pop(0)
        return futures


@pytest.mark.parametrize(
    "code",
    [
        KafkaError.UNKNOWN_LEADER_EPOCH,  # seen in CI right after create_topics
        KafkaError.FENCED_LEADER_EPOCH,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError.OFFSET_NOT_AVAILABLE,
    ],
)
def test_passing_leadership_errors_are_retried(code: int) -> None:
    fake = _FlakyAdmin([code, code])
    admin = KafkaAdmin(fake, timeout=10)  # type: ignore[arg-type]
    offsets = admin.offsets([("t", 0), ("t", 1)], read_committed=False)
    assert offsets[("t", 0)].low == 7 and offsets[("t", 1)].high == 7
    assert fake.calls == 4  # two refusals, then one answer each for earliest and latest
    # A stale leader epoch (after a broker restart) is refreshed before asking again.
    stale = code in (KafkaError.UNKNOWN_LEADER_EPOCH, KafkaError.FENCED_LEADER_EPOCH)
    assert fake.metadata_requests == (2 if stale else 0)


def test_a_lasting_error_is_raised_not_retried() -> None:
    fake = _FlakyAdmin([KafkaError.TOPIC_AUTHORIZATION_FAILED])
    admin = KafkaAdmin(fake, timeout=10)  # type: ignore[arg-type]
    with pytest.raises(KafkaClientError) as raised:  # libkb's error at KafkaAdmin's boundary, code kept
        admin.offsets([("t", 0)], read_committed=False)
    assert raised.value.code == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert fake.calls == 1
