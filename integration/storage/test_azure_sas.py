"""Azure with a SAS token instead of the account key, against Azurite.

The tokens are made as Azure makes them, by azure-storage-blob for Azurite's
development account: an account SAS and a container SAS. Each runs the
storage conformance suite; a read-only and an expired token give one clear
line naming the container; a job file with a token backs up, validates and
restores through the command line, and ``-vv`` logs show no signature.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from azure.storage.blob import (  # in the test extra
    AccountSasPermissions,
    ContainerSasPermissions,
    ResourceTypes,
    generate_account_sas,
    generate_container_sas,
)

from integration.kafka_data import consume_all, produce
from integration.services.endpoints import AzureContainer, KafkaEndpoint
from integration.storage.configs import FAST
from libkb.cli import main
from libkb.storage import (
    AzureConfig,
    LibcloudBackend,
    PermissionDeniedError,
    StorageBackend,
    create_backend_from_config,
)
from libkb.storage.drivers.azure import LibkbAzureBlobsDriver, parse_sas_token
from libkb.storage.secrets import storage_secrets
from libkb.storage.testing import (
    CredentialConformance,
    MakeBackend,
    MissingContainerConformance,
    StorageConformance,
)

ALL = "racwdl"
WRONG_KEY = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleQ=="


def account_sas(
    container: AzureContainer, permissions: str = ALL, *, key: str | None = None, hours: float = 1
) -> str:
    """An account SAS for the blob service (containers and objects), as the portal makes one."""
    service = container.service
    return str(
        generate_account_sas(
            service.account_name,
            key or service.account_key,
            ResourceTypes(container=True, object=True),
            AccountSasPermissions.from_string(permissions),  # type: ignore[no-untyped-call]
            datetime.now(UTC) + timedelta(hours=hours),
            start=datetime.now(UTC) - timedelta(hours=2),
        )
    )


def container_sas(container: AzureContainer, permissions: str = ALL) -> str:
    """A service SAS for the one container."""
    service = container.service
    return str(
        generate_container_sas(
            service.account_name,
            container.name,
            service.account_key,
            permission=ContainerSasPermissions.from_string(permissions),
            expiry=datetime.now(UTC) + timedelta(hours=1),
        )
    )


def sas_config(container: AzureContainer, token: str, prefix: str | None = None) -> AzureConfig:
    """No account key: the token alone authorises."""
    return AzureConfig(
        account_name=container.service.account_name,
        container_name=container.name,
        endpoint=container.service.endpoint,
        sas_token=token,
        prefix=prefix,
        resilience=FAST,
    )


def sas_backend(container: AzureContainer, token: str, prefix: str | None = None) -> StorageBackend:
    config = sas_config(container, token, prefix)
    return create_backend_from_config(config)


class TestAccountSas(StorageConformance, CredentialConformance, MissingContainerConformance):
    @pytest.fixture
    def token(self, azurite_container: AzureContainer) -> str:
        return "?" + account_sas(azurite_container)  # as the portal shows it, with '?'

    @pytest.fixture
    def known_secrets(self, azurite_container: AzureContainer, token: str) -> Sequence[str]:
        return (azurite_container.service.account_key, *storage_secrets(sas_config(azurite_container, token)))

    @pytest.fixture
    def make_backend(self, azurite_container: AzureContainer, token: str) -> MakeBackend:
        return lambda prefix=None: sas_backend(azurite_container, token, prefix)

    @pytest.fixture
    def make_backend_with_bad_credentials(self, azurite_container: AzureContainer) -> MakeBackend:
        forged = account_sas(azurite_container, key=WRONG_KEY)  # signed with another key
        return lambda: sas_backend(azurite_container, forged)

    @pytest.fixture
    def make_backend_on_missing_container(self, azurite_container: AzureContainer, token: str) -> MakeBackend:
        missing = AzureContainer(azurite_container.service, f"{azurite_container.name}-missing")
        return lambda: sas_backend(missing, token)


class TestContainerSas(StorageConformance):
    @pytest.fixture
    def known_secrets(self, azurite_container: AzureContainer) -> Sequence[str]:
        return (azurite_container.service.account_key,)

    @pytest.fixture
    def make_backend(self, azurite_container: AzureContainer) -> MakeBackend:
        token = container_sas(azurite_container)
        return lambda prefix=None: sas_backend(azurite_container, token, prefix)


def test_a_read_only_token_reads_and_says_what_a_write_needs(azurite_container: AzureContainer) -> None:
    sas_backend(azurite_container, account_sas(azurite_container)).put("k", b"v")
    token = container_sas(azurite_container, "rl")
    reader = sas_backend(azurite_container, token)
    assert reader.get("k") == b"v" and reader.list() == ["k"]
    with pytest.raises(PermissionDeniedError) as info:
        reader.put("other", b"x")
    text = str(info.value)
    assert text == (
        "[azure] 'other': access denied (InvalidCredsError: HTTP 403: AuthorizationPermissionMismatch: "
        "This request is not authorized to perform this operation using this permission.) "
        f"(the SAS token (storage.sas_token) for container {azurite_container.name!r} grants rl "
        "(read, list): libkb needs racwdl (read, add, create, write, delete, list; an account SAS also "
        "needs resource types container and object, srt=co); give a token that allows them and is "
        "valid now)"
    )
    for secret in storage_secrets(sas_config(azurite_container, token)):
        assert secret not in text


def test_an_expired_token_is_refused_naming_the_container(azurite_container: AzureContainer) -> None:
    expired = account_sas(azurite_container, hours=-1)
    config = sas_config(azurite_container, expired)
    with pytest.raises(Exception) as built:
        create_backend_from_config(config)
    assert str(built.value) == (
        "storage.sas_token: the SAS token for container "
        f"{azurite_container.name!r} expired at {parse_sas_token(expired).expires:%Y-%m-%dT%H:%M:%SZ}; "
        "give a new one with permissions racwdl (read, add, create, write, delete, list)"
    )
    # One that expires while a run goes: Azurite refuses it, and the error says why.
    driver = LibkbAzureBlobsDriver(
        config.account_name, sas_token=parse_sas_token(expired), endpoint=config.endpoint
    )
    backend = LibcloudBackend(driver, azurite_container.name, resilience=FAST)
    with pytest.raises(PermissionDeniedError) as info:
        backend.get("anything")
    assert "\n" not in str(info.value)
    assert str(info.value).endswith(
        f"(the SAS token (storage.sas_token) for container {azurite_container.name!r} expired at "
        f"{parse_sas_token(expired).expires:%Y-%m-%dT%H:%M:%SZ}; give a new one with permissions racwdl "
        "(read, add, create, write, delete, list))"
    )


@pytest.fixture
def _cli_logging() -> Iterator[None]:
    from libkb.cli.logs import unconfigure

    yield
    unconfigure()


@pytest.mark.kafka
def test_a_job_file_with_a_token_backs_up_validates_and_restores(
    azurite_container: AzureContainer,
    kafka_service: KafkaEndpoint,
    kafka_topic_factory: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    _cli_logging: None,  # after capsys: logging stops before the capture closes
) -> None:
    source = kafka_topic_factory(partitions=2, config={"retention.ms": "-1"})
    target = kafka_topic_factory(partitions=2, config={"retention.ms": "-1"})
    produce(kafka_service.bootstrap_servers, source, 500, partitions=2)
    token = account_sas(azurite_container)
    monkeypatch.setenv("KAFKA_BACKUP_SAS", token)
    storage = {
        "backend": "azure",
        "account_name": azurite_container.service.account_name,
        "container_name": azurite_container.name,
        "endpoint": azurite_container.service.endpoint,
        "sas_token": "${KAFKA_BACKUP_SAS}",
    }
    cluster = {"bootstrap_servers": [kafka_service.bootstrap_servers]}
    backup_file, restore_file = tmp_path / "backup.yaml", tmp_path / "restore.yaml"
    backup_file.write_text(
        yaml.safe_dump(
            {
                "mode": "backup",
                "backup_id": "sas",
                "source": {**cluster, "topics": {"include": [source]}},
                "storage": storage,
            }
        )
    )
    restore_file.write_text(
        yaml.safe_dump(
            {
                "mode": "restore",
                "backup_id": "sas",
                "target": {**cluster, "topics": {"include": [target]}},
                "storage": storage,
                "restore": {"topic_mapping": {source: target}},
            }
        )
    )
    assert main(["-vv", "backup", "--config", str(backup_file)]) == 0
    logs = capsys.readouterr()
    assert 'HTTP/1.1" 201' in logs.err  # -vv logs every request's URL: each with the token masked
    # A --path URL takes its token from AZURE_STORAGE_SAS_TOKEN, as in the original tool.
    monkeypatch.setenv("AZURE_STORAGE_SAS_TOKEN", token)
    service = azurite_container.service
    path = f"azure://{service.account_name}/{azurite_container.name}?endpoint={service.endpoint}"
    assert main(["validate", "--path", path, "--backup-id", "sas", "--deep"]) == 0
    assert main(["-vv", "restore", "--config", str(restore_file)]) == 0
    logs2 = capsys.readouterr()
    for secret in storage_secrets(sas_config(azurite_container, token)):
        assert secret not in logs.out + logs.err + logs2.out + logs2.err
    got = consume_all(kafka_service.bootstrap_servers, target, 2)
    want = consume_all(kafka_service.bootstrap_servers, source, 2)
    for p in (0, 1):
        assert [r[1:] for r in got[p]] == [r[1:] for r in want[p]]
