"""Kafka's errors as libkb's: no ``confluent_kafka`` exception reaches a library caller or the CLI.

librdkafka reports failures as :class:`confluent_kafka.KafkaException`
carrying a :class:`confluent_kafka.KafkaError`. Inside libkb, code catches
and inspects those (codes decide retries); at the boundary a caller sees,
every remaining one becomes a :class:`KafkaClientError`, which keeps the code
and whether Kafka calls it retriable. :func:`kafka_boundary` marks such a
boundary: the engines' ``run``, the offset commands, :class:`~libkb.kafka.admin.KafkaAdmin`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from confluent_kafka import KafkaError, KafkaException

from libkb.errors import LibkbError

P = ParamSpec("P")
R = TypeVar("R")


class KafkaClientError(LibkbError):
    """Kafka (librdkafka) refused or failed an operation; ``code`` is its error code, when it gave one."""

    def __init__(self, message: str, *, code: int | None = None, retriable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.retriable = retriable


class KafkaConnectionError(KafkaClientError, ConnectionError):
    """No broker of the cluster could be used: refused credentials or certificates, or none answered."""


def from_kafka(exc: KafkaException) -> KafkaClientError:
    """The libkb error for ``exc``: "Kafka: " and librdkafka's own words, its code kept."""
    err = exc.args[0] if exc.args else None
    if isinstance(err, KafkaError):
        return KafkaClientError(f"Kafka: {err.str()}", code=err.code(), retriable=err.retriable())
    return KafkaClientError(f"Kafka: {exc}")


def kafka_boundary(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn``, with a :class:`KafkaException` escaping it raised as a :class:`KafkaClientError`."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except KafkaException as exc:
            raise from_kafka(exc) from exc

    return wrapper
