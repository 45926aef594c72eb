"""local-kms (nsmithuk), an AWS KMS-compatible server, built from its Go module with ``go install``.

Why: client-side encryption with ``kms: aws`` is tested against a real KMS
API (Encrypt/Decrypt with encryption contexts, real error codes), not a stub.
The binary is built once into the install cache, like MinIO; the server
keeps its keys in a fresh data dir per start.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import requests

from .base import LocalProcessService, ServiceError, run_logged

__all__ = ["LOCAL_KMS_MODULE", "LOCAL_KMS_VERSION", "KmsEndpoint", "LocalKmsService"]

LOCAL_KMS_MODULE = "github.com/nsmithuk/local-kms"
LOCAL_KMS_VERSION = "v0.0.0-20260228092603-2a5e92d09ab6"


@dataclass(frozen=True)
class KmsEndpoint:
    """An AWS KMS-compatible endpoint; any credentials are accepted."""

    url: str
    region: str = "eu-west-2"


class LocalKmsService(LocalProcessService[KmsEndpoint]):
    name = "local-kms"
    version = LOCAL_KMS_VERSION
    start_timeout = 30.0

    @property
    def endpoint(self) -> KmsEndpoint:
        return KmsEndpoint(f"http://127.0.0.1:{self.ports['port']}")

    def _install_into(self, target: Path, log: Path) -> None:
        go = shutil.which("go")
        if not go:
            raise ServiceError("go not found: the Go toolchain is needed to build local-kms")
        env = {"GOBIN": str(target / "bin"), "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}
        module = f"{LOCAL_KMS_MODULE}@{LOCAL_KMS_VERSION}"
        run_logged([go, "install", "-trimpath", module], log, cwd=target, env=env, timeout=1200)
        if not (target / "bin" / "local-kms").is_file():
            raise ServiceError("go install finished but bin/local-kms is missing")

    def _command(self) -> list[str]:
        assert self.home is not None
        return [str(self.home / "bin" / "local-kms")]

    def _env(self) -> dict[str, str]:
        assert self.workdir is not None
        return {
            "PORT": str(self.ports["port"]),
            "KMS_REGION": self.endpoint.region,
            "KMS_DATA_PATH": str(self.workdir / "data"),
        }

    def _probe(self) -> None:
        # Any KMS call answers with JSON once the server listens (ListKeys needs no key).
        response = requests.post(
            self.endpoint.url,
            headers={"X-Amz-Target": "TrentService.ListKeys", "Content-Type": "application/x-amz-json-1.1"},
            data="{}",
            timeout=2,
        )
        if response.status_code != 200:
            raise ServiceError(f"{self.endpoint.url} answered {response.status_code}: {response.text[:200]}")
