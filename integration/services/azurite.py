"""Azurite (Azure Blob emulator) from npm, plus container helpers.

Why strict mode (no ``--loose``): loose mode hides requests that real Azure
would reject; shared-key signatures are checked either way.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from .base import LocalProcessService, ServiceError, run_logged
from .endpoints import AzureEndpoint

__all__ = [
    "AZURITE_ACCOUNT",
    "AZURITE_KEY",
    "AZURITE_VERSION",
    "AzuriteService",
    "azure_service_client",
    "azurite_args",
    "create_azure_container",
    "delete_azure_container",
    "probe_azure",
]

AZURITE_VERSION = "3.35.0"
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
"""Azurite's well-known development account (public, documented by Microsoft)."""


def azure_service_client(endpoint: AzureEndpoint, *, retries: int = 3, timeout: float = 10) -> Any:
    """A ``BlobServiceClient`` using shared-key auth against ``endpoint``."""
    from azure.storage.blob import BlobServiceClient

    return BlobServiceClient(
        account_url=endpoint.endpoint,
        credential={"account_name": endpoint.account_name, "account_key": endpoint.account_key},
        retry_total=retries,
        connection_timeout=timeout,
        read_timeout=timeout,
    )


def probe_azure(endpoint: AzureEndpoint) -> None:
    """Raise unless a signed request (Get Blob Service Properties) succeeds."""
    azure_service_client(endpoint, retries=0, timeout=3).get_service_properties()


def create_azure_container(endpoint: AzureEndpoint, name: str) -> str:
    """Create blob container ``name`` and return it."""
    azure_service_client(endpoint).create_container(name)
    return name


def delete_azure_container(endpoint: AzureEndpoint, name: str) -> None:
    """Delete container ``name`` (with its blobs)."""
    azure_service_client(endpoint).delete_container(name)


def azurite_args(port: int, location: str) -> list[str]:
    """``azurite-blob`` arguments: blob service on loopback ``port``, data in ``location``."""
    return [
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(port),
        "--location",
        location,
        "--skipApiVersionCheck",
        "--disableTelemetry",
        "--silent",
    ]


class AzuriteService(LocalProcessService[AzureEndpoint]):
    """The Azurite blob service only, persisting under its work dir."""

    name = "azurite"
    version = AZURITE_VERSION
    port_names = ("port",)
    start_timeout = 60.0

    @property
    def endpoint(self) -> AzureEndpoint:
        return AzureEndpoint(
            endpoint=f"http://127.0.0.1:{self.ports['port']}/{AZURITE_ACCOUNT}",
            account_name=AZURITE_ACCOUNT,
            account_key=AZURITE_KEY,
        )

    def _install_into(self, target: Path, log: Path) -> None:
        npm = shutil.which("npm")
        if not npm:
            raise ServiceError("npm not found: Node.js and npm are needed for Azurite")
        run_logged(
            [
                npm,
                "install",
                "--prefix",
                str(target),
                "--no-audit",
                "--no-fund",
                "--no-save",
                "--loglevel=warn",
                f"azurite@{AZURITE_VERSION}",
            ],
            log,
            cwd=target,
            timeout=900,
        )
        if not self._main(target).is_file():
            raise ServiceError("npm finished but azurite's blob main.js is missing")

    @staticmethod
    def _main(home: Path) -> Path:
        return home / "node_modules" / "azurite" / "dist" / "src" / "blob" / "main.js"

    def _command(self) -> list[str]:
        assert self.home is not None and self.workdir is not None
        node = shutil.which("node")
        if not node:
            raise ServiceError("node not found on PATH")
        return [
            node,
            str(self._main(self.home)),
            *azurite_args(self.ports["port"], str(self.workdir / "data")),
        ]

    def _env(self) -> dict[str, str]:
        return {"AZURITE_ACCOUNTS": f"{AZURITE_ACCOUNT}:{AZURITE_KEY}"}

    def _probe(self) -> None:
        probe_azure(self.endpoint)
