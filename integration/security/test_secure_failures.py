"""Wrong credentials and missing certificates fail clearly and soon, never hang.

librdkafka retries a connection that failed authentication for ever and its
metadata requests just time out; libkb must turn that into an error that
says what is wrong (authentication, certificate) within seconds.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from integration.kafka_data import produce
from integration.security.broker import SecureKafka
from integration.security.modes import KEEP_FOREVER, Mode, mode, run_backup, run_restore, topic_name
from integration.services.kafka import create_kafka_topic, delete_kafka_topic
from libkb.errors import LibkbError

pytestmark = pytest.mark.kafka

#: A liveness bound, not a timing check: a refusal is reported after about a
#: second; without the fix it surfaced only at libkb's 30 s admin timeout.
DEADLINE_SECS = 20.0


@pytest.fixture(scope="module")
def topic(secure_kafka: SecureKafka) -> Iterator[str]:
    """A topic with a few records; every test here fails before reading it."""
    name = create_kafka_topic(secure_kafka.plaintext, topic_name("fail"), config=KEEP_FOREVER)
    produce(secure_kafka.plaintext.bootstrap_servers, name, 10)
    yield name
    delete_kafka_topic(secure_kafka.plaintext, name)


def _fails_quickly(action: Callable[[], Any], pattern: str) -> LibkbError:
    started = time.monotonic()
    with pytest.raises(LibkbError) as info:
        action()
    elapsed = time.monotonic() - started
    assert elapsed < DEADLINE_SECS, f"took {elapsed:.1f}s to fail"
    assert re.search(pattern, str(info.value), re.IGNORECASE), str(info.value)
    return info.value


def _with(base: Mode, **changes: Any) -> Mode:
    security = {k: v for k, v in {**base.security, **changes}.items() if v is not None}
    return Mode(base.endpoint, security)


@pytest.mark.parametrize(
    "name", ["sasl_plaintext-plain", "sasl_plaintext-scram-sha-256", "sasl_ssl-scram-sha-512"]
)
def test_backup_with_wrong_password_fails_clearly(
    secure_kafka: SecureKafka, topic: str, name: str, tmp_path: Path
) -> None:
    bad = _with(mode(secure_kafka, name), sasl_password="not-the-password")
    error = _fails_quickly(
        lambda: run_backup(bad.endpoint, bad.security, tmp_path, [topic]), r"authentication"
    )
    assert "not-the-password" not in str(error)


def test_backup_with_unknown_user_fails_clearly(
    secure_kafka: SecureKafka, topic: str, tmp_path: Path
) -> None:
    bad = _with(mode(secure_kafka, "sasl_plaintext-scram-sha-512"), sasl_username="mallory")
    _fails_quickly(lambda: run_backup(bad.endpoint, bad.security, tmp_path, [topic]), r"authentication")


def test_restore_with_wrong_password_fails_clearly(
    secure_kafka: SecureKafka, topic: str, tmp_path: Path
) -> None:
    good = mode(secure_kafka, "sasl_ssl-scram-sha-256")
    assert run_backup(good.endpoint, good.security, tmp_path, [topic]).status == "complete"
    bad = _with(good, sasl_password="not-the-password")
    target = f"{topic}-never"
    _fails_quickly(
        lambda: run_restore(bad.endpoint, bad.security, tmp_path, {topic: target}), r"authentication"
    )


def test_backup_without_client_certificate_on_mtls_listener_fails_clearly(
    secure_kafka: SecureKafka, topic: str, tmp_path: Path
) -> None:
    bad = _with(mode(secure_kafka, "mtls"), ssl_certificate_location=None, ssl_key_location=None)
    _fails_quickly(lambda: run_backup(bad.endpoint, bad.security, tmp_path, [topic]), r"certificate")


def test_backup_with_untrusted_client_certificate_fails_clearly(
    secure_kafka: SecureKafka, topic: str, tmp_path: Path
) -> None:
    rogue = secure_kafka.pki.rogue_client
    bad = _with(
        mode(secure_kafka, "mtls"),
        ssl_certificate_location=str(rogue.cert_path),
        ssl_key_location=str(rogue.key_path),
    )
    _fails_quickly(lambda: run_backup(bad.endpoint, bad.security, tmp_path, [topic]), r"certificate")


def test_backup_without_the_ca_fails_clearly(secure_kafka: SecureKafka, topic: str, tmp_path: Path) -> None:
    """The client does not trust the broker's certificate (no ssl_ca_location)."""
    bad = _with(mode(secure_kafka, "ssl"), ssl_ca_location=None)
    _fails_quickly(lambda: run_backup(bad.endpoint, bad.security, tmp_path, [topic]), r"certificate")
