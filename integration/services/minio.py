"""MinIO built from its Go module with ``go install`` (cached binary).

Why from source: MinIO no longer publishes community binaries, and only the
Go module proxy is reachable here; the pinned pseudo-version makes the build
reproducible.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Mapping
from pathlib import Path

import requests

from .base import LocalProcessService, ServiceError, run_logged
from .endpoints import S3Endpoint
from .s3 import create_s3_bucket, delete_s3_bucket, empty_s3_bucket, probe_s3, s3_client

__all__ = [
    "MINIO_MODULE",
    "MINIO_VERSION",
    "MinioService",
    "create_s3_bucket",
    "delete_s3_bucket",
    "empty_s3_bucket",
    "minio_args",
    "s3_client",
]

MINIO_MODULE = "github.com/minio/minio"
MINIO_VERSION = "v0.0.0-20260212201848-7aac2a2c5b7c"


def minio_args(ports: Mapping[str, int], workdir: str) -> list[str]:
    """``minio`` arguments for a server in ``workdir`` on loopback ``ports`` (local and docker)."""
    return [
        "server",
        f"{workdir}/data",
        "--address",
        f"127.0.0.1:{ports['port']}",
        "--console-address",
        f"127.0.0.1:{ports['console_port']}",
        "--certs-dir",
        f"{workdir}/certs",
        "--quiet",
    ]


class MinioService(LocalProcessService[S3Endpoint]):
    """One MinIO server on a fresh data dir, random root credentials."""

    name = "minio"
    version = MINIO_VERSION
    port_names = ("port", "console_port")
    start_timeout = 60.0

    def __init__(self) -> None:
        super().__init__()
        self.access_key = f"libkb-{secrets.token_hex(4)}"
        self.secret_key = secrets.token_urlsafe(24)

    @property
    def endpoint(self) -> S3Endpoint:
        return S3Endpoint(
            name="minio",
            endpoint=f"http://127.0.0.1:{self.ports['port']}",
            access_key=self.access_key,
            secret_key=self.secret_key,
        )

    def _install_into(self, target: Path, log: Path) -> None:
        go = shutil.which("go")
        if not go:
            raise ServiceError("go not found: the Go toolchain is needed to build MinIO")
        env = {"GOBIN": str(target / "bin"), "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}
        run_logged(
            [go, "install", "-trimpath", f"{MINIO_MODULE}@{MINIO_VERSION}"],
            log,
            cwd=target,
            env=env,
            timeout=1800,
        )
        if not (target / "bin" / "minio").is_file():
            raise ServiceError("go install finished but bin/minio is missing")

    def _command(self) -> list[str]:
        assert self.home is not None and self.workdir is not None
        return [str(self.home / "bin" / "minio"), *minio_args(self.ports, str(self.workdir))]

    def _env(self) -> dict[str, str]:
        return {
            "MINIO_ROOT_USER": self.access_key,
            "MINIO_ROOT_PASSWORD": self.secret_key,
            "MINIO_UPDATE": "off",
            "MINIO_BROWSER": "off",
            "HOME": str(self.workdir or os.environ.get("HOME", "/tmp")),
        }

    def _probe(self) -> None:
        url = f"{self.endpoint.endpoint}/minio/health/ready"
        response = requests.get(url, timeout=2)
        if response.status_code != 200:
            raise ServiceError(f"{url} answered {response.status_code}")
        probe_s3(self.endpoint)
