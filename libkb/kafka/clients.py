"""Build confluent-kafka clients from libkb's source/target settings.

The one place config keys become librdkafka properties, so SSL, mTLS, SASL
(PLAIN, SCRAM-SHA-256/512, GSSAPI) and the connection settings behave the
same for backup, restore and the health checks.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

import libkb.config.fixed_properties as fixed
from libkb.config.models import SourceOptions
from libkb.errors import ConfigError
from libkb.kafka.errors import KafkaConnectionError as KafkaConnectionError
from libkb.kafka.kerberos import kerberos_properties
from libkb.version import __version__

log = logging.getLogger("libkb.kafka")
# librdkafka's own lines (connection refused, retried coordinator states) go to a
# third-party logger: the CLI shows them with -v, and libkb's error says what failed.
librdkafka_log = logging.getLogger("librdkafka")


class RetriedStates(logging.Filter):
    """librdkafka's warnings about states it retries by itself (``...: retrying``, e.g. a
    coordinator still loading on a fresh broker) become INFO: expected, not a problem."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.WARNING and record.getMessage().endswith(": retrying"):
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


librdkafka_log.addFilter(RetriedStates())
# A library prints nothing of its own unless the application configures logging (without
# a handler, Python's last resort would print librdkafka's warnings bare on stderr).
librdkafka_log.addHandler(logging.NullHandler())

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
    """librdkafka properties shared by every client of one cluster (``client_config`` last, so it wins)."""
    return {**cluster_config(options, client_id=client_id), **options.client_config}


def cluster_config(options: SourceOptions, *, client_id: str) -> dict[str, Any]:
    """The cluster's connection and security keys as librdkafka properties, without ``client_config``."""
    config: dict[str, Any] = {
        "bootstrap.servers": ",".join(options.bootstrap_servers),
        "client.id": f"{client_id}/{__version__}",
        "logger": librdkafka_log,
        "socket.keepalive.enable": options.connection.tcp_keepalive,
        "socket.nagle.disable": options.connection.tcp_nodelay,
        # librdkafka 2.x drops the bootstrap connection once it knows the brokers, failing the
        # request in flight on it, and then waits half this backoff before connecting again:
        # 50 ms of every job's start at the default 100 (the backoff still doubles up to
        # reconnect.backoff.max.ms, 10 s, through an outage).
        "reconnect.backoff.ms": 20,
    }
    for attr, prop in _SECURITY_KEYS.items():
        value = getattr(options.security, attr)
        if value is not None:
            config[prop] = value
    if options.security.sasl_mechanism == "GSSAPI":
        config.update(kerberos_properties(options.security))
    return config


def client_settings(options: SourceOptions, client_id: str, extra: dict[str, Any]) -> dict[str, Any]:
    """The cluster's keys, libkb's tuning in ``extra``, ``client_config``, then ``extra``'s fixed part.

    ``client_config`` overrides libkb's own tuning (compression, linger, queue
    sizes), never what :mod:`libkb.config.fixed_properties` lists: the job file loader
    refuses a ``client_config`` that changes those, and a client built from
    options made in code gets libkb's value.
    """
    tuned, fixed_part = fixed.split(extra)
    return {**cluster_config(options, client_id=client_id), **tuned, **options.client_config, **fixed_part}


def _built(make: Any, config: dict[str, Any]) -> Any:
    """``make(config)``, with librdkafka's "no GSSAPI" refusal turned into what to do about it."""
    try:
        return make(config)
    except KafkaException as exc:
        text = str(exc.args[0].str() if exc.args and hasattr(exc.args[0], "str") else exc)
        if "No provider for SASL mechanism GSSAPI" in text:
            raise ConfigError(
                "this librdkafka has no Kerberos (GSSAPI) support: the confluent-kafka wheel from "
                "PyPI is built without it. Install confluent-kafka from source against a librdkafka "
                "built with libsasl2 (e.g. pip install --no-binary confluent-kafka confluent-kafka "
                "with librdkafka-dev and libsasl2-modules-gssapi-mit installed)",
                key="security.sasl_mechanism",
            ) from None
        raise


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
    client: AdminClient = _built(LibkbAdminClient, base_config(options, client_id="libkb-admin"))
    return client


def make_consumer(options: SourceOptions, extra: dict[str, Any]) -> Consumer:
    consumer: Consumer = _built(Consumer, client_settings(options, "libkb-backup", extra))
    return consumer


def make_producer(options: SourceOptions, extra: dict[str, Any]) -> Producer:
    producer: Producer = _built(Producer, client_settings(options, "libkb-restore", extra))
    return producer
