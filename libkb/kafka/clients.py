"""Build confluent-kafka clients from libkb's source/target settings.

The one place config keys become librdkafka properties, so SSL, mTLS and
SASL (PLAIN, SCRAM-SHA-256/512) behave the same for backup and restore.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient

from libkb.config.models import SourceOptions
from libkb.errors import LibkbError
from libkb.version import __version__

log = logging.getLogger("libkb.kafka")

_SECURITY_KEYS = {
    "security_protocol": "security.protocol",
    "sasl_mechanism": "sasl.mechanism",
    "sasl_username": "sasl.username",
    "sasl_password": "sasl.password",
    "ssl_ca_location": "ssl.ca.location",
    "ssl_certificate_location": "ssl.certificate.location",
    "ssl_key_location": "ssl.key.location",
    "ssl_key_password": "ssl.key.password",
    "ssl_endpoint_identification_algorithm": "ssl.endpoint.identification.algorithm",
}


def base_config(options: SourceOptions, *, client_id: str = "libkb") -> dict[str, Any]:
    """librdkafka properties shared by every client of one cluster."""
    config: dict[str, Any] = {
        "bootstrap.servers": ",".join(options.bootstrap_servers),
        "client.id": f"{client_id}/{__version__}",
        "logger": log,
    }
    for attr, prop in _SECURITY_KEYS.items():
        value = getattr(options.security, attr)
        if value is not None:
            config[prop] = value
    config.update(options.client_config)
    return config


class KafkaConnectionError(LibkbError, ConnectionError):
    """No broker of the cluster could be used: refused credentials or certificates, or none answered."""


class ConnectionErrors:
    """What librdkafka reported about a client's connections (its ``error_cb``).

    librdkafka retries a connection that failed SASL authentication or the TLS
    handshake for ever, and requests meanwhile just time out with "Broker
    transport failure". The reason reaches the application only through
    ``error_cb``, which ``poll()`` serves: :class:`~libkb.kafka.admin.KafkaAdmin`
    polls after a failed request and reports :meth:`rejection` at once.

    A rejection counts once it has happened ``repeats`` times since
    :meth:`reset`: a refused login or certificate repeats on every reconnect
    (several a second), a one-off glitch (a broker going down mid-handshake)
    does not.
    """

    def __init__(self, repeats: int = 2) -> None:
        self._lock = threading.Lock()
        self._repeats = repeats
        self._rejections = 0
        self._rejection: str | None = None
        self._last: str | None = None

    def __call__(self, error: KafkaError) -> None:
        text = error.str()
        log.debug("Kafka client error: %s", text)
        with self._lock:
            self._last = text
            if is_rejection(error):
                self._rejections += 1
                self._rejection = text

    def rejection(self) -> str | None:
        """The latest refused authentication or TLS handshake, once it has repeated since :meth:`reset`."""
        with self._lock:
            return self._rejection if self._rejections >= self._repeats else None

    def last(self) -> str | None:
        """The latest error of any kind since :meth:`reset`."""
        with self._lock:
            return self._last

    def reset(self) -> None:
        with self._lock:
            self._rejection = self._last = None
            self._rejections = 0


def is_rejection(error: KafkaError) -> bool:
    """The broker (or the client's own TLS checks) refused this connection: retrying won't help."""
    code = error.code()
    if code in (KafkaError._AUTHENTICATION, KafkaError._SSL):
        return True
    text = error.str()
    return code == KafkaError._TRANSPORT and ("ssl/tls alert" in text or "SSL handshake failed" in text)


class LibkbAdminClient(AdminClient):
    """An ``AdminClient`` that remembers its connection errors (``connection_errors``)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.connection_errors = ConnectionErrors()
        settings: dict[str, Any] = {**config, "error_cb": self.connection_errors}
        super().__init__(settings)


def make_admin(options: SourceOptions) -> AdminClient:
    return LibkbAdminClient(base_config(options, client_id="libkb-admin"))


def make_consumer(options: SourceOptions, extra: dict[str, Any]) -> Consumer:
    return Consumer({**base_config(options, client_id="libkb-backup"), **extra})


def make_producer(options: SourceOptions, extra: dict[str, Any]) -> Producer:
    return Producer({**base_config(options, client_id="libkb-restore"), **extra})
