"""Security settings become the right librdkafka properties, and secrets stay out of reprs.

No broker needed: librdkafka checks property names, loads certificates and
decrypts keys when a client is constructed, which is what these tests do.
"""

from __future__ import annotations

import socket
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer

from integration.services.tls import TestPki, make_test_pki
from libkb.config import parse_config
from libkb.config.models import JobConfig, KafkaSecurity, SourceOptions
from libkb.kafka.admin import KafkaAdmin
from libkb.kafka.clients import (
    ConnectionErrors,
    KafkaConnectionError,
    LibkbAdminClient,
    base_config,
    is_rejection,
    make_admin,
    make_consumer,
    make_producer,
)

SASL_PASSWORD = "sasl-pw-7f3a9c"
KEY_PASSWORD = "key-pw-51d2e8"
KEYSTORE_PASSWORD = "keystore-pw-0b6e44"
SECRETS = (SASL_PASSWORD, KEY_PASSWORD, KEYSTORE_PASSWORD)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_test_pki(Path(tmp_path_factory.mktemp("pki")), key_password=KEY_PASSWORD)


def _security(pki: TestPki) -> dict[str, Any]:
    """Every key of the ``security`` block, each with a value that is easy to recognise."""
    return {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_username": "backup-user",
        "sasl_password": SASL_PASSWORD,
        "ssl_ca_location": str(pki.ca.cert_path),
        "ssl_certificate_location": str(pki.client_encrypted.cert_path),
        "ssl_key_location": str(pki.client_encrypted.key_path),
        "ssl_key_password": KEY_PASSWORD,
        "ssl_endpoint_identification_algorithm": "https",
    }


def _expected(pki: TestPki) -> dict[str, str]:
    return {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "backup-user",
        "sasl.password": SASL_PASSWORD,
        "ssl.ca.location": str(pki.ca.cert_path),
        "ssl.certificate.location": str(pki.client_encrypted.cert_path),
        "ssl.key.location": str(pki.client_encrypted.key_path),
        "ssl.key.password": KEY_PASSWORD,
        "ssl.endpoint.identification.algorithm": "https",
    }


def _job(pki: TestPki, mode: str) -> JobConfig:
    side = "source" if mode == "backup" else "target"
    return parse_config(
        {
            "mode": mode,
            "backup_id": "bk",
            side: {
                "bootstrap_servers": ["127.0.0.1:9093", "127.0.0.1:9094"],
                "security": _security(pki),
                "client_config": {"ssl.keystore.password": KEYSTORE_PASSWORD, "socket.timeout.ms": 7000},
            },
            "storage": {"backend": "filesystem", "path": "/nonexistent"},
        }
    )


def _cluster(job: JobConfig) -> SourceOptions:
    cluster = job.source if job.mode == "backup" else job.target
    assert cluster is not None
    return cluster


@pytest.mark.parametrize("mode", ["backup", "restore"])
def test_every_security_key_reaches_librdkafka(pki: TestPki, mode: str) -> None:
    cluster = _cluster(_job(pki, mode))
    config = base_config(cluster)
    for prop, value in _expected(pki).items():
        assert config.get(prop) == value, prop
    assert config["bootstrap.servers"] == "127.0.0.1:9093,127.0.0.1:9094"
    assert config["ssl.keystore.password"] == KEYSTORE_PASSWORD  # client_config passes through
    # librdkafka accepts every name, finds the files and decrypts the key with the password:
    make_admin(cluster)
    make_consumer(cluster, {"group.id": "g"}).close()
    make_producer(cluster, {}).flush(0)


def test_lower_case_protocol_and_mechanism_are_normalised(pki: TestPki) -> None:
    job = parse_config(
        {
            "backup_id": "bk",
            "source": {
                "bootstrap_servers": "127.0.0.1:9093",
                "security": {
                    "security_protocol": "sasl_plaintext",
                    "sasl_mechanism": "scram-sha-256",
                    "sasl_username": "u",
                    "sasl_password": SASL_PASSWORD,
                },
            },
            "storage": {"backend": "memory"},
        }
    )
    config = base_config(_cluster(job))
    assert config["security.protocol"] == "SASL_PLAINTEXT"
    assert config["sasl.mechanism"] == "SCRAM-SHA-256"


def test_unset_keys_are_left_to_librdkafka() -> None:
    config = base_config(SourceOptions(bootstrap_servers=("127.0.0.1:9092",)))
    assert config["security.protocol"] == "PLAINTEXT"
    assert not [k for k in config if k.startswith(("sasl.", "ssl."))]


def test_a_wrong_key_password_fails_when_the_client_is_made(pki: TestPki) -> None:
    cluster = _cluster(_job(pki, "backup"))
    wrong = replace(cluster, security=replace(cluster.security, ssl_key_password="wrong"))
    with pytest.raises(KafkaException, match=r"ssl\.key"):
        Producer({k: v for k, v in base_config(wrong).items() if k != "logger"})
    with pytest.raises(KafkaException, match=r"ssl\.key"):
        Consumer({**base_config(wrong), "group.id": "g"})


@pytest.mark.parametrize("mode", ["backup", "restore"])
def test_passwords_appear_in_no_repr(pki: TestPki, mode: str) -> None:
    job = _job(pki, mode)
    cluster = _cluster(job)
    shown = [
        repr(job),
        str(job),
        repr(cluster),
        str(cluster),
        repr(cluster.security),
        str(cluster.security),
        f"{cluster.security}",
        repr(KafkaSecurity(sasl_password=SASL_PASSWORD, ssl_key_password=KEY_PASSWORD)),
    ]
    for text in shown:
        for secret in SECRETS:
            assert secret not in text, text
    assert "backup-user" in repr(cluster)  # the rest is still there to debug with
    assert "'socket.timeout.ms': 7000" in repr(cluster)
    assert "'ssl.keystore.password': '***'" in repr(cluster)


# ------------------------------------------------- connection failures


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_admin_clients_remember_connection_errors() -> None:
    admin = make_admin(SourceOptions(bootstrap_servers=(f"127.0.0.1:{_closed_port()}",)))
    assert isinstance(admin, LibkbAdminClient)
    assert isinstance(admin.connection_errors, ConnectionErrors)


def test_no_broker_fails_after_the_timeout_with_the_last_error() -> None:
    admin = KafkaAdmin(
        make_admin(SourceOptions(bootstrap_servers=(f"127.0.0.1:{_closed_port()}",))), timeout=2
    )
    started = time.monotonic()
    with pytest.raises(KafkaConnectionError, match=r"no Kafka broker answered within 2s") as info:
        admin.cluster_id()
    assert 1.5 < time.monotonic() - started < 10
    assert "last error" in str(info.value)


@pytest.mark.parametrize(
    ("code", "text", "rejected"),
    [
        (KafkaError._AUTHENTICATION, "SASL authentication error: Authentication failed", True),
        (KafkaError._SSL, "SSL handshake failed: certificate verify failed", True),
        (KafkaError._TRANSPORT, "Receive failed: ssl/tls alert bad certificate", True),
        (KafkaError._TRANSPORT, "SSL handshake failed: connecting to a PLAINTEXT broker listener?", True),
        (KafkaError._TRANSPORT, "Connect to ipv4#127.0.0.1:9 failed: Connection refused", False),
        (KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down", False),
        (KafkaError._TIMED_OUT, "timed out", False),
    ],
)
def test_which_errors_are_rejections(code: int, text: str, rejected: bool) -> None:
    assert is_rejection(KafkaError(code, text)) is rejected
    errors = ConnectionErrors()
    errors(KafkaError(code, text))
    assert errors.last() == text
    assert errors.rejection() is None  # once may be a glitch
    errors(KafkaError(code, text))
    assert (errors.rejection() == text) is rejected  # twice is a refusal
    errors.reset()
    assert errors.last() is None and errors.rejection() is None
