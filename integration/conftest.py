"""Fixtures giving integration tests real Kafka, S3, Azure Blob and GCS services.

Services start lazily, once per session, when a test first asks for them;
which provider runs them (local processes, Docker, external endpoints) is
chosen by environment variables, see ``docs/testing.rst``. Under ``CI=true``
a service that cannot be installed or started fails the test with the tail
of its log; elsewhere the test is skipped with the reason.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, NoReturn

import pytest

from integration.services import (
    AzureContainer,
    AzureEndpoint,
    GcsBucket,
    GcsEndpoint,
    KafkaEndpoint,
    S3Bucket,
    S3Endpoint,
    Service,
    ServiceError,
    ServiceRegistry,
    create_azure_container,
    create_gcs_bucket,
    create_kafka_topic,
    create_s3_bucket,
    delete_azure_container,
    delete_gcs_bucket,
    delete_kafka_topic,
    delete_s3_bucket,
)
from integration.services.kafka import BrokerFactory, TopicFactory
from integration.services.local_kms import KmsEndpoint, LocalKmsService
from integration.services.minio_tls import MinioTlsEndpoint, MinioTlsService
from integration.services.pushgateway import PushgatewayService

_log = logging.getLogger("libkb.integration")

IN_CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}
_KAFKA_FIXTURES = {"kafka_service", "kafka_topic_factory", "kafka_broker_factory", "kafka_process"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests that use Kafka, so ``-m 'not kafka'`` can leave them out."""
    for item in items:
        if _KAFKA_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.kafka)


def _unavailable(name: str, registry: ServiceRegistry, exc: ServiceError) -> NoReturn:
    try:
        provider = registry.provider(name)
    except ValueError as bad:
        provider = f"invalid ({bad})"
    if IN_CI:
        pytest.fail(f"{name} service ({provider} provider) failed: {exc.describe()}", pytrace=False)
    pytest.skip(f"{name} service ({provider} provider) unavailable: {exc}")


def _start(registry: ServiceRegistry, name: str) -> Service[Any]:
    try:
        return registry.start(name)
    except (ServiceError, ValueError) as exc:
        error = exc if isinstance(exc, ServiceError) else ServiceError(str(exc))
        _unavailable(name, registry, error)


def _start_standalone(name: str, service: Any) -> Any:
    """Start a service outside the registry (local process only); its ``start()`` result.

    Like :func:`_start`: a failure fails the test under CI and skips it elsewhere, with the reason.
    """
    try:
        return service.start()
    except ServiceError as exc:
        service.close()
        if IN_CI:
            pytest.fail(f"{name} service failed: {exc.describe()}", pytrace=False)
        pytest.skip(f"{name} service unavailable: {exc}")


def unique_name(request: pytest.FixtureRequest, max_len: int = 63) -> str:
    """A bucket/container/topic name valid everywhere, derived from the test name.

    Lower-case letters, digits and single hyphens, starting with a letter,
    ending with a random suffix so reruns and parallel workers never clash.
    """
    base = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-") or "t"
    suffix = uuid.uuid4().hex[:10]
    base = base[: max_len - len(suffix) - 3].strip("-")
    return f"t-{base}-{suffix}" if base else f"t-{suffix}"


def _cleanup(what: str, action: Callable[[], object]) -> None:
    """Best-effort teardown: a failed cleanup must not fail the test."""
    try:
        action()
    except Exception as exc:
        _log.warning("cleanup of %s failed: %s", what, exc)


# ---------------------------------------------------------------- services


@pytest.fixture(scope="session")
def service_registry() -> Iterator[ServiceRegistry]:
    """All services of this session; closed (processes stopped) at the end."""
    registry = ServiceRegistry()
    yield registry
    registry.close_all()


@pytest.fixture(scope="session")
def kafka_service(service_registry: ServiceRegistry) -> KafkaEndpoint:
    """A single-node Kafka cluster (KRaft)."""
    endpoint = _start(service_registry, "kafka").endpoint
    assert isinstance(endpoint, KafkaEndpoint)
    return endpoint


@pytest.fixture(scope="session")
def minio_service(service_registry: ServiceRegistry) -> S3Endpoint:
    """MinIO, an S3-compatible server."""
    endpoint = _start(service_registry, "minio").endpoint
    assert isinstance(endpoint, S3Endpoint)
    return endpoint


@pytest.fixture(scope="session")
def kms_service() -> Iterator[KmsEndpoint]:
    """local-kms, an AWS KMS-compatible server (built from its Go module, local provider only)."""
    service = LocalKmsService()
    endpoint: KmsEndpoint = _start_standalone("local-kms", service)
    yield endpoint
    service.close()


@pytest.fixture(scope="session")
def minio_tls_service() -> Iterator[MinioTlsEndpoint]:
    """A second MinIO, over TLS (a throwaway CA) with its built-in KMS: for server-side encryption."""
    service = MinioTlsService()
    _start_standalone("minio-tls", service)
    yield service.tls_endpoint
    service.close()


@pytest.fixture(scope="session")
def seaweedfs_service(service_registry: ServiceRegistry) -> S3Endpoint:
    """SeaweedFS's S3 gateway, a second S3 implementation."""
    endpoint = _start(service_registry, "seaweedfs").endpoint
    assert isinstance(endpoint, S3Endpoint)
    return endpoint


@pytest.fixture(scope="session")
def azurite_service(service_registry: ServiceRegistry) -> AzureEndpoint:
    """Azurite's blob service with the development account."""
    endpoint = _start(service_registry, "azurite").endpoint
    assert isinstance(endpoint, AzureEndpoint)
    return endpoint


@pytest.fixture(scope="session")
def fake_gcs_service(service_registry: ServiceRegistry) -> GcsEndpoint:
    """fake-gcs-server, a GCS JSON API emulator (no auth)."""
    endpoint = _start(service_registry, "gcs").endpoint
    assert isinstance(endpoint, GcsEndpoint)
    return endpoint


@pytest.fixture(scope="session")
def pushgateway_service() -> Iterator[str]:
    """A Prometheus Pushgateway (Debian's package, local process only): its base URL."""
    service = PushgatewayService()
    endpoint: str = _start_standalone("pushgateway", service)
    yield endpoint
    service.close()


# ------------------------------------------------- stop/start for resilience


def _control(registry: ServiceRegistry, name: str) -> Iterator[Service[Any]]:
    service = _start(registry, name)
    if not service.supports_restart:
        pytest.skip(f"the {service.provider} {name} service cannot be stopped by tests")
    yield service
    if not service.running:  # leave it running for the tests that follow
        try:
            service.start()
        except ServiceError as exc:
            _unavailable(name, registry, exc)


@pytest.fixture
def kafka_process(service_registry: ServiceRegistry) -> Iterator[Service[KafkaEndpoint]]:
    """The shared Kafka handle: ``.stop()``/``.start()`` keep endpoint and data."""
    yield from _control(service_registry, "kafka")


@pytest.fixture
def minio_process(service_registry: ServiceRegistry) -> Iterator[Service[S3Endpoint]]:
    """The shared MinIO handle: ``.stop()``/``.start()`` keep endpoint and data."""
    yield from _control(service_registry, "minio")


@pytest.fixture
def seaweedfs_process(service_registry: ServiceRegistry) -> Iterator[Service[S3Endpoint]]:
    """The shared SeaweedFS handle: ``.stop()``/``.start()`` keep endpoint and data."""
    yield from _control(service_registry, "seaweedfs")


@pytest.fixture
def azurite_process(service_registry: ServiceRegistry) -> Iterator[Service[AzureEndpoint]]:
    """The shared Azurite handle: ``.stop()``/``.start()`` keep endpoint and data."""
    yield from _control(service_registry, "azurite")


@pytest.fixture
def fake_gcs_process(service_registry: ServiceRegistry) -> Iterator[Service[GcsEndpoint]]:
    """The shared fake-gcs-server handle; a restart keeps the endpoint, not the data."""
    yield from _control(service_registry, "gcs")


# ------------------------------------------------------- per-test resources


@pytest.fixture
def minio_bucket(minio_service: S3Endpoint, request: pytest.FixtureRequest) -> Iterator[S3Bucket]:
    """A fresh MinIO bucket, emptied and deleted after the test."""
    name = create_s3_bucket(minio_service, unique_name(request))
    yield S3Bucket(minio_service, name)
    _cleanup(f"bucket {name}", lambda: delete_s3_bucket(minio_service, name))


@pytest.fixture
def seaweedfs_bucket(seaweedfs_service: S3Endpoint, request: pytest.FixtureRequest) -> Iterator[S3Bucket]:
    """A fresh SeaweedFS bucket, emptied and deleted after the test."""
    name = create_s3_bucket(seaweedfs_service, unique_name(request))
    yield S3Bucket(seaweedfs_service, name)
    _cleanup(f"bucket {name}", lambda: delete_s3_bucket(seaweedfs_service, name))


@pytest.fixture
def azurite_container(
    azurite_service: AzureEndpoint, request: pytest.FixtureRequest
) -> Iterator[AzureContainer]:
    """A fresh blob container, deleted (with its blobs) after the test."""
    name = create_azure_container(azurite_service, unique_name(request))
    yield AzureContainer(azurite_service, name)
    _cleanup(f"container {name}", lambda: delete_azure_container(azurite_service, name))


@pytest.fixture
def gcs_bucket(fake_gcs_service: GcsEndpoint, request: pytest.FixtureRequest) -> Iterator[GcsBucket]:
    """A fresh GCS bucket, emptied and deleted after the test."""
    name = create_gcs_bucket(fake_gcs_service, unique_name(request))
    yield GcsBucket(fake_gcs_service, name)
    _cleanup(f"bucket {name}", lambda: delete_gcs_bucket(fake_gcs_service, name))


@pytest.fixture
def kafka_topic_factory(
    kafka_service: KafkaEndpoint, request: pytest.FixtureRequest
) -> Iterator[TopicFactory]:
    """Create uniquely named, ready-to-use topics; all are deleted after the test."""
    created: list[str] = []

    def factory(partitions: int = 1, config: dict[str, str] | None = None, name: str | None = None) -> str:
        topic = name or unique_name(request, max_len=200)
        create_kafka_topic(kafka_service, topic, partitions=partitions, config=config)
        created.append(topic)
        return topic

    yield factory
    for topic in created:
        _cleanup(f"topic {topic}", functools.partial(delete_kafka_topic, kafka_service, topic))


@pytest.fixture(scope="session")
def kafka_consumer_groups_sh(kafka_service: KafkaEndpoint) -> Path:
    """Apache Kafka's ``kafka-consumer-groups.sh`` for the test broker's version (installed once, cached)."""
    from integration.services.kafka import kafka_tools

    try:
        return kafka_tools() / "bin" / "kafka-consumer-groups.sh"
    except ServiceError as exc:
        if IN_CI:
            pytest.fail(f"Kafka's command-line tools could not be installed: {exc.describe()}", pytrace=False)
        # On a developer's machine only: with CI=true the line above fails the test instead.
        pytest.skip(f"Kafka's command-line tools unavailable: {exc}")


@pytest.fixture(scope="session")
def kafka_broker_factory(service_registry: ServiceRegistry) -> BrokerFactory:
    """Start an additional broker with extra server properties (closed at session end)."""

    def factory(extra_properties: Mapping[str, str]) -> KafkaEndpoint:
        if service_registry.provider("kafka") == "external":
            pytest.skip("the external Kafka provider cannot start extra brokers")
        try:
            service = service_registry.new("kafka", extra_properties=dict(extra_properties))
            endpoint = service.start()
        except ServiceError as exc:
            _unavailable("kafka", service_registry, exc)
        assert isinstance(endpoint, KafkaEndpoint)
        return endpoint

    return factory


def pytest_report_header(config: pytest.Config) -> str:
    """Say where services come from, so a log shows it at the top."""
    from integration.services.base import cache_root

    chosen = os.environ.get("LIBKB_SERVICES", "auto")
    return f"libkb services: LIBKB_SERVICES={chosen}, install cache {cache_root()}, CI={IN_CI}"
