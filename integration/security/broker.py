"""A Kafka broker with a listener per security mode (SASL PLAIN/SCRAM, TLS, mTLS, SASL_SSL).

Listeners of the ``secure_kafka`` broker (all on 127.0.0.1, each on its own port):

=============  ===============  ===========================================
name           protocol         clients authenticate with
=============  ===============  ===========================================
PLAINTEXT      PLAINTEXT        nothing (test set-up and read-back only)
SASLPLAIN      SASL_PLAINTEXT   PLAIN (JAAS users), SCRAM-SHA-256/512
SSL            SSL              nothing; the server proves itself (test CA)
MTLS           SSL              a client certificate (``ssl.client.auth``)
SASLSSL        SASL_SSL         SCRAM-SHA-256/512 over TLS
=============  ===============  ===========================================

SCRAM credentials are written into the cluster metadata by ``kafka-storage
format --add-scram``, so they exist before the broker accepts a connection.
One broker for every mode keeps the package at a single JVM start.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from integration.services.endpoints import KafkaEndpoint
from integration.services.kafka import KafkaService
from integration.services.tls import TestPki, make_test_pki, properties_pem

PLAIN_USERS = {"alice": "alice-plain-secret", "bob": "bob-plain-secret"}
SCRAM_USERS = {
    "SCRAM-SHA-256": ("bob", "bob-scram256-secret"),
    "SCRAM-SHA-512": ("carol", "carol-scram512-secret"),
}

_SCRAM_JAAS = "org.apache.kafka.common.security.scram.ScramLoginModule required;"


@dataclass(frozen=True)
class SecureKafka:
    """Endpoints of the ``secure_kafka`` broker, by security mode, and its PKI."""

    plaintext: KafkaEndpoint
    sasl_plaintext: KafkaEndpoint
    ssl: KafkaEndpoint
    mtls: KafkaEndpoint
    sasl_ssl: KafkaEndpoint
    pki: TestPki = field(repr=False)


def _plain_jaas() -> str:
    users = " ".join(f'user_{name}="{password}"' for name, password in PLAIN_USERS.items())
    return f"org.apache.kafka.common.security.plain.PlainLoginModule required {users};"


def secure_broker_properties(pki: TestPki) -> dict[str, str]:
    """Server properties for the listeners in the module docstring."""
    return {
        # TLS for every SSL/SASL_SSL listener: the server's key and chain inline
        # as PEM (ssl.keystore.key/certificate.chain), the test CA as a PEM file.
        "ssl.keystore.type": "PEM",
        "ssl.keystore.certificate.chain": properties_pem(pki.server.chain_pem),
        "ssl.keystore.key": properties_pem(pki.server.key_pem),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(pki.ca.cert_path),
        "ssl.client.auth": "none",
        "listener.name.mtls.ssl.client.auth": "required",
        # SASL
        "listener.name.saslplain.sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
        "listener.name.saslplain.plain.sasl.jaas.config": _plain_jaas(),
        "listener.name.saslplain.scram-sha-256.sasl.jaas.config": _SCRAM_JAAS,
        "listener.name.saslplain.scram-sha-512.sasl.jaas.config": _SCRAM_JAAS,
        "listener.name.saslssl.sasl.enabled.mechanisms": "SCRAM-SHA-256,SCRAM-SHA-512",
        "listener.name.saslssl.scram-sha-256.sasl.jaas.config": _SCRAM_JAAS,
        "listener.name.saslssl.scram-sha-512.sasl.jaas.config": _SCRAM_JAAS,
    }


def scram_format_args() -> list[str]:
    args: list[str] = []
    for mechanism, (user, password) in SCRAM_USERS.items():
        args += ["--add-scram", f"{mechanism}=[name={user},password={password}]"]
    return args


def secure_kafka_service(pki_dir: Path) -> tuple[KafkaService, TestPki]:
    """A not yet started broker with the listeners above, and the PKI it trusts."""
    pki = make_test_pki(pki_dir)
    service = KafkaService(
        secure_broker_properties(pki),
        extra_listeners={
            "SASLPLAIN": "SASL_PLAINTEXT",
            "SSL": "SSL",
            "MTLS": "SSL",
            "SASLSSL": "SASL_SSL",
        },
        format_args=scram_format_args(),
    )
    return service, pki


def secure_endpoints(service: KafkaService, pki: TestPki) -> SecureKafka:
    """The endpoints of a started :func:`secure_kafka_service`."""
    return SecureKafka(
        plaintext=service.endpoint,
        sasl_plaintext=service.listener_endpoint("SASLPLAIN"),
        ssl=service.listener_endpoint("SSL"),
        mtls=service.listener_endpoint("MTLS"),
        sasl_ssl=service.listener_endpoint("SASLSSL"),
        pki=pki,
    )
