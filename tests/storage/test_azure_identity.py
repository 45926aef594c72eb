"""The original tool's Azure identity keys choose the azure-identity credential, in its order."""

from __future__ import annotations

from typing import Any

import azure.identity as identity  # in the test extras
import pytest

from libkb.errors import ConfigError
from libkb.storage import AzureConfig
from libkb.storage.drivers.azure import credentials as az_credentials
from libkb.storage.drivers.azure.credentials import resolve_azure_auth


def cfg(**kw: Any) -> AzureConfig:
    return AzureConfig(account_name="acct", container_name="cont", **kw)


@pytest.fixture(autouse=True)
def _no_azure_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AZURE_STORAGE_KEY", "AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)


def credential(config: AzureConfig) -> Any:
    key, source = resolve_azure_auth(config)
    assert key is None and source is not None
    return source.credential


def test_a_client_secret_is_a_service_principal() -> None:
    cred = credential(cfg(client_id="c", tenant_id="t", client_secret="s3cr3t"))
    assert isinstance(cred, identity.ClientSecretCredential)


def test_a_service_principal_takes_its_ids_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_CLIENT_ID", "c")
    monkeypatch.setenv("AZURE_TENANT_ID", "t")
    assert isinstance(credential(cfg(client_secret="s3cr3t")), identity.ClientSecretCredential)


def test_a_service_principal_without_its_ids_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_azure_auth(cfg(client_secret="s3cr3t", client_id="c"))
    assert info.value.key == "storage.client_secret"
    assert "needs client_id and tenant_id" in str(info.value)


def test_workload_identity(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    token = tmp_path / "token"
    token.write_text("jwt")
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(token))
    cred = credential(cfg(use_workload_identity=True, client_id="c", tenant_id="t"))
    assert isinstance(cred, identity.WorkloadIdentityCredential)


def test_managed_identity() -> None:
    cred = credential(cfg(use_managed_identity=True, client_id="c"))
    assert isinstance(cred, identity.ManagedIdentityCredential)


def test_the_account_key_comes_first_as_in_the_original_tool() -> None:
    key, source = resolve_azure_auth(cfg(account_key="a2V5", client_secret="s", client_id="c", tenant_id="t"))
    assert (key, source) == ("a2V5", None)


def test_no_identity_named_is_the_default_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    sentinel = object()
    monkeypatch.setattr(az_credentials, "_default_azure_credential", lambda: sentinel)
    assert credential(cfg(client_id="only-an-id")) is sentinel


def test_the_client_secret_is_not_shown() -> None:
    assert "s3cr3t" not in repr(cfg(client_id="c", tenant_id="t", client_secret="s3cr3t"))
