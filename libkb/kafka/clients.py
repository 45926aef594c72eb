"""Build confluent-kafka clients from libkb's source/target settings.

The one place config keys become librdkafka properties, so SSL, mTLS and
SASL (PLAIN, SCRAM-SHA-256/512) behave the same for backup and restore.
"""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from libkb import __version__
from libkb.config.models import SourceOptions

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


def make_admin(options: SourceOptions) -> AdminClient:
    return AdminClient(base_config(options, client_id="libkb-admin"))


def make_consumer(options: SourceOptions, extra: dict[str, Any]) -> Consumer:
    return Consumer({**base_config(options, client_id="libkb-backup"), **extra})


def make_producer(options: SourceOptions, extra: dict[str, Any]) -> Producer:
    return Producer({**base_config(options, client_id="libkb-restore"), **extra})
