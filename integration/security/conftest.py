"""The ``secure_kafka`` fixture: one broker with every security listener, for this package.

See :mod:`integration.security.broker` for the listeners and the users. The
broker is a local process whatever ``LIBKB_SERVICES`` says (certificates and
SCRAM need files and a storage-format step), except that the ``external``
provider means "start nothing", so the tests skip. Under ``CI=true`` a broker
that fails to start fails the tests instead of skipping them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from integration.security.broker import SecureKafka, secure_endpoints, secure_kafka_service
from integration.services.base import ServiceError
from integration.services.providers import select_provider

IN_CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}


@pytest.fixture(scope="package")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureKafka]:
    """The multi-listener broker, started once for this package and closed after it."""
    try:
        provider = select_provider("kafka")
    except ValueError as exc:
        provider = f"invalid ({exc})"
    if provider == "external":
        pytest.skip("the external Kafka provider cannot start a broker with security listeners")
    service, pki = secure_kafka_service(Path(tmp_path_factory.mktemp("pki")))
    try:
        try:
            service.start()
        except ServiceError as exc:
            message = f"Kafka with security listeners (local process) failed to start: {exc.describe()}"
            if IN_CI:
                pytest.fail(message, pytrace=False)
            pytest.skip(message)
        yield secure_endpoints(service, pki)
    finally:
        service.close()
