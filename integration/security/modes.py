"""libkb ``security`` blocks for each listener of the ``secure_kafka`` broker, and job helpers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from integration.security.broker import PLAIN_USERS, SCRAM_USERS, SecureKafka
from integration.services.endpoints import KafkaEndpoint
from libkb.backup.engine import BackupEngine, BackupResult
from libkb.config import parse_config
from libkb.restore.engine import RestoreEngine, RestoreResult


@dataclass(frozen=True)
class Mode:
    """How a client reaches one listener: the endpoint and libkb's ``security:`` mapping."""

    endpoint: KafkaEndpoint
    security: dict[str, Any]


def mode(secure: SecureKafka, name: str) -> Mode:
    """The :class:`Mode` called ``name`` (see :data:`MODES`)."""
    pki = secure.pki
    ca = str(pki.ca.cert_path)
    if name == "sasl_plaintext-plain":
        return Mode(
            secure.sasl_plaintext,
            {
                "security_protocol": "SASL_PLAINTEXT",
                "sasl_mechanism": "PLAIN",
                "sasl_username": "alice",
                "sasl_password": PLAIN_USERS["alice"],
            },
        )
    if name.startswith(("sasl_plaintext-scram", "sasl_ssl-scram")):
        mechanism = name.split("-", 1)[1].upper()
        user, password = SCRAM_USERS[mechanism]
        security: dict[str, Any] = {
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": mechanism,
            "sasl_username": user,
            "sasl_password": password,
        }
        if name.startswith("sasl_plaintext"):
            return Mode(secure.sasl_plaintext, security)
        # Lower case on purpose: the loader normalises it.
        security.update({"security_protocol": "sasl_ssl", "ssl_ca_location": ca})
        return Mode(secure.sasl_ssl, security)
    if name == "ssl":
        # Hostname verification on explicitly: the server certificate names 127.0.0.1.
        return Mode(
            secure.ssl,
            {
                "security_protocol": "SSL",
                "ssl_ca_location": ca,
                "ssl_endpoint_identification_algorithm": "https",
            },
        )
    if name == "mtls":
        return Mode(
            secure.mtls,
            {
                "security_protocol": "SSL",
                "ssl_ca_location": ca,
                "ssl_certificate_location": str(pki.client.cert_path),
                "ssl_key_location": str(pki.client.key_path),
            },
        )
    if name == "mtls-encrypted-key":
        return Mode(
            secure.mtls,
            {
                "security_protocol": "SSL",
                "ssl_ca_location": ca,
                "ssl_certificate_location": str(pki.client_encrypted.cert_path),
                "ssl_key_location": str(pki.client_encrypted.key_path),
                "ssl_key_password": pki.client_encrypted.key_password,
            },
        )
    raise ValueError(f"unknown security mode {name!r}")


MODES = (
    "sasl_plaintext-plain",
    "sasl_plaintext-scram-sha-256",
    "sasl_plaintext-scram-sha-512",
    "ssl",
    "mtls",
    "mtls-encrypted-key",
    "sasl_ssl-scram-sha-256",
    "sasl_ssl-scram-sha-512",
)


def topic_name(prefix: str) -> str:
    return f"sec-{prefix}-{uuid.uuid4().hex[:10]}"


#: The test records carry 2020 timestamps: without this, time retention deletes
#: them as soon as the broker's first retention check runs (30 s after start).
KEEP_FOREVER = {"retention.ms": "-1"}


def run_backup(
    endpoint: KafkaEndpoint,
    security: dict[str, Any],
    store: Path,
    topics: list[str],
    *,
    backup_id: str = "bk",
    **client_config: Any,
) -> BackupResult:
    config = parse_config(
        {
            "backup_id": backup_id,
            "source": {
                "bootstrap_servers": endpoint.bootstrap_servers,
                "topics": {"include": topics},
                "security": security,
                "client_config": client_config,
            },
            "storage": {"backend": "filesystem", "path": str(store)},
            "backup": {"block_bytes": 8192, "segment_max_records": 100},
        }
    )
    return BackupEngine(config).run()


def run_restore(
    endpoint: KafkaEndpoint,
    security: dict[str, Any],
    store: Path,
    mapping: dict[str, str],
    *,
    backup_id: str = "bk",
    **client_config: Any,
) -> RestoreResult:
    config = parse_config(
        {
            "mode": "restore",
            "backup_id": backup_id,
            "target": {
                "bootstrap_servers": endpoint.bootstrap_servers,
                "topics": {"include": list(mapping.values())},
                "security": security,
                "client_config": client_config,
            },
            "storage": {"backend": "filesystem", "path": str(store)},
            "restore": {"topic_mapping": mapping, "create_topics": True},
        }
    )
    return RestoreEngine(config).run()
