"""The storage conformance suite, unchanged, against real servers of every cloud backend."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from integration.services.endpoints import AzureContainer, GcsBucket, S3Bucket
from integration.storage.configs import azure_config, gcs_config, s3_config
from libkb.storage import StorageBackend, create_backend_from_config
from libkb.storage.testing import (
    CredentialConformance,
    MakeBackend,
    MissingContainerConformance,
    StorageConformance,
)

# Also run by CI's docker phase, against the same servers in containers.
pytestmark = pytest.mark.docker


class _S3(StorageConformance, CredentialConformance, MissingContainerConformance):
    bucket: S3Bucket

    @pytest.fixture
    def known_secrets(self) -> Sequence[str]:
        return (self.bucket.service.secret_key,)

    @pytest.fixture
    def make_backend(self) -> MakeBackend:
        def make(prefix: str | None = None) -> StorageBackend:
            return create_backend_from_config(s3_config(self.bucket, prefix))

        return make

    @pytest.fixture
    def make_backend_with_bad_credentials(self) -> MakeBackend:
        return lambda: create_backend_from_config(s3_config(self.bucket, secret_key="not-the-secret-key"))

    @pytest.fixture
    def make_backend_on_missing_container(self) -> MakeBackend:
        missing = S3Bucket(self.bucket.service, f"{self.bucket.name}-missing")
        return lambda: create_backend_from_config(s3_config(missing))


class TestMinio(_S3):
    @pytest.fixture(autouse=True)
    def _bucket(self, minio_bucket: S3Bucket) -> None:
        self.bucket = minio_bucket


class TestSeaweedfs(_S3):
    @pytest.fixture(autouse=True)
    def _bucket(self, seaweedfs_bucket: S3Bucket) -> None:
        self.bucket = seaweedfs_bucket


class TestAzurite(StorageConformance, CredentialConformance, MissingContainerConformance):
    @pytest.fixture
    def known_secrets(self, azurite_container: AzureContainer) -> Sequence[str]:
        return (azurite_container.service.account_key,)

    @pytest.fixture
    def make_backend(self, azurite_container: AzureContainer) -> MakeBackend:
        return lambda prefix=None: create_backend_from_config(azure_config(azurite_container, prefix))

    @pytest.fixture
    def make_backend_with_bad_credentials(self, azurite_container: AzureContainer) -> MakeBackend:
        wrong = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleQ=="
        return lambda: create_backend_from_config(azure_config(azurite_container, account_key=wrong))

    @pytest.fixture
    def make_backend_on_missing_container(self, azurite_container: AzureContainer) -> MakeBackend:
        missing = AzureContainer(azurite_container.service, f"{azurite_container.name}-missing")
        return lambda: create_backend_from_config(azure_config(missing))


class TestFakeGcs(StorageConformance, MissingContainerConformance):
    """fake-gcs-server checks no credentials; the driver's 401/403 mapping is unit-tested
    in tests/storage/test_gcs_driver_unit.py."""

    @pytest.fixture
    def make_backend(self, gcs_bucket: GcsBucket) -> MakeBackend:
        return lambda prefix=None: create_backend_from_config(gcs_config(gcs_bucket, prefix))

    @pytest.fixture
    def make_backend_on_missing_container(self, gcs_bucket: GcsBucket) -> MakeBackend:
        missing = GcsBucket(gcs_bucket.service, f"{gcs_bucket.name}-missing")
        return lambda: create_backend_from_config(gcs_config(missing))
