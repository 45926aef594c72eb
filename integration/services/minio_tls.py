"""MinIO over TLS with its built-in KMS: the server for S3 server-side encryption (SSE-S3, SSE-KMS, SSE-C).

Why a second MinIO: SSE-C is refused over plain HTTP (by MinIO and by libkb),
and SSE-S3/SSE-KMS need a KMS, which ``MINIO_KMS_SECRET_KEY`` provides
(one static key named ``libkb-kms``). The shared MinIO of the suite stays
plain HTTP; this one starts only for the tests that ask for it. Its
certificate is issued at start by a throwaway CA, whose PEM file is the
``ca_bundle`` a client needs.
"""

from __future__ import annotations

import base64
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import requests

from .base import ServiceError, cached_install
from .endpoints import S3Endpoint
from .minio import MinioService
from .tls import CertificateAuthority

__all__ = ["KMS_KEY_NAME", "MinioTlsEndpoint", "MinioTlsService"]

KMS_KEY_NAME = "libkb-kms"


@dataclass(frozen=True)
class MinioTlsEndpoint:
    s3: S3Endpoint
    ca_bundle: str


class MinioTlsService(MinioService):
    name = "minio-tls"

    def __init__(self) -> None:
        super().__init__()
        self._kms_key = base64.b64encode(os.urandom(32)).decode()

    @property
    def endpoint(self) -> S3Endpoint:
        plain = super().endpoint
        return S3Endpoint(
            "minio-tls", plain.endpoint.replace("http://", "https://"), self.access_key, self.secret_key
        )

    @property
    def tls_endpoint(self) -> MinioTlsEndpoint:
        assert self.workdir is not None
        return MinioTlsEndpoint(self.endpoint, str(self.workdir / "pki" / "libkb-test-ca.crt"))

    def _installed(self) -> Path | None:
        """The plain MinIO's install (the same binary, built once)."""
        return cached_install(MinioService.name, self.version, self._install_into)

    def _prepare(self, workdir: Path) -> None:
        pki = workdir / "pki"
        shutil.rmtree(pki, ignore_errors=True)
        ca = CertificateAuthority(pki, "libkb test CA")
        server = ca.issue("minio", server=True, hosts=("127.0.0.1", "localhost"))
        certs = workdir / "certs"
        certs.mkdir(parents=True, exist_ok=True)
        shutil.copy(server.chain_path, certs / "public.crt")
        shutil.copy(server.key_path, certs / "private.key")
        if not (pki / "libkb-test-ca.crt").exists():
            raise ServiceError(f"the test CA is not where expected: {sorted(p.name for p in pki.iterdir())}")

    def _env(self) -> dict[str, str]:
        return {**super()._env(), "MINIO_KMS_SECRET_KEY": f"{KMS_KEY_NAME}:{self._kms_key}"}

    def _probe(self) -> None:
        assert self.workdir is not None
        url = f"{self.endpoint.endpoint}/minio/health/ready"
        response = requests.get(url, timeout=2, verify=str(self.workdir / "pki" / "libkb-test-ca.crt"))
        if response.status_code != 200:
            raise ServiceError(f"{url} answered {response.status_code}")
