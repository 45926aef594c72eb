"""The ``docker`` provider: the same services as testcontainers containers.

Why fixed host ports: Kafka advertises its listener and fake-gcs-server its
upload URL, so the host port must be known before the container starts; and
a ``stop``/``start`` cycle must keep the endpoint. Each container port is
therefore bound to a free host port chosen up front.

Images are pinned to the same releases as the local provider where such an
image exists (MinIO publishes no image for the pinned source build; the
last published release is used instead).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import urlparse

from .azurite import AZURITE_ACCOUNT, AZURITE_KEY, AZURITE_VERSION, probe_azure
from .base import TAIL_LINES, Service, ServiceError, free_ports, wait_until
from .endpoints import AzureEndpoint, GcsEndpoint, KafkaEndpoint, S3Endpoint
from .fake_gcs import FAKE_GCS_VERSION, probe_gcs
from .kafka import KAFKA_TEST_PROPERTIES, KAFKA_VERSION, _cluster_id, probe_kafka
from .s3 import probe_s3
from .seaweedfs import SEAWEEDFS_VERSION, seaweedfs_s3_config

if TYPE_CHECKING:
    from testcontainers.core.container import DockerContainer

__all__ = [
    "IMAGES",
    "DockerService",
    "docker_host",
    "kafka_env_name",
    "make_docker_service",
]

E = TypeVar("E")

IMAGES: dict[str, str] = {
    "kafka": f"apache/kafka:{KAFKA_VERSION}",
    "minio": "minio/minio:RELEASE.2025-09-07T16-13-09Z",
    "seaweedfs": f"chrislusf/seaweedfs:{SEAWEEDFS_VERSION}",
    "azurite": f"mcr.microsoft.com/azure-storage/azurite:{AZURITE_VERSION}",
    "gcs": f"fsouza/fake-gcs-server:{FAKE_GCS_VERSION}",
}


def docker_host(env: Mapping[str, str] | None = None) -> str:
    """Host name at which published container ports are reachable.

    ``TC_HOST`` (testcontainers' override) wins; a ``tcp://`` ``DOCKER_HOST``
    gives its host; otherwise the engine is local.
    """
    env = os.environ if env is None else env
    if env.get("TC_HOST"):
        return env["TC_HOST"]
    parsed = urlparse(env.get("DOCKER_HOST", ""))
    if parsed.scheme in ("tcp", "http", "https") and parsed.hostname:
        return parsed.hostname
    return "127.0.0.1"


def kafka_env_name(prop: str) -> str:
    """Env var for broker property ``prop`` as the apache/kafka image maps it."""
    return "KAFKA_" + prop.replace("_", "__").replace("-", "___").replace(".", "_").upper()


class DockerService(Service[E], Generic[E]):
    """A service running in a container configured by ``build``.

    ``build(host_ports)`` returns the configured (not started) container;
    ``to_endpoint(host, host_ports)`` maps it to the fixture endpoint; and
    ``probe`` is the same readiness check the local provider uses.
    """

    provider = "docker"

    def __init__(
        self,
        name: str,
        version: str,
        port_names: tuple[str, ...],
        build: Callable[[dict[str, int], str], DockerContainer],
        to_endpoint: Callable[[str, dict[str, int]], E],
        probe: Callable[[E], None],
        start_timeout: float = 120.0,
    ) -> None:
        self.name = name
        self.version = version
        self.host = docker_host()
        self.ports = dict(zip(port_names, free_ports(len(port_names)), strict=True))
        self.container = build(self.ports, self.host)
        self._to_endpoint = to_endpoint
        self._probe = probe
        self._start_timeout = start_timeout
        self._started = False
        self._running = False

    @property
    def endpoint(self) -> E:
        return self._to_endpoint(self.host, self.ports)

    @property
    def running(self) -> bool:
        return self._running

    def start(self) -> E:
        if self._running:
            return self.endpoint
        try:
            if self._started:
                self.container.get_wrapped_container().start()
            else:
                self.container.start()
                self._started = True
            endpoint = self.endpoint
            wait_until(
                lambda: self._probe(endpoint),
                timeout=self._start_timeout,
                what=f"{self.name} container {self.container.image}",
            )
        except ServiceError as exc:
            exc.log_tail = self.log_tail()
            raise
        except Exception as exc:
            raise ServiceError(f"{self.name} container failed: {exc}", self.log_tail()) from exc
        self._running = True
        return self.endpoint

    def stop(self) -> None:
        if self._running:
            self.container.get_wrapped_container().stop(timeout=15)
            self._running = False

    def close(self) -> None:
        if self._started:
            with contextlib.suppress(Exception):
                self.container.stop()
        self._started = self._running = False

    def log_tail(self, lines: int = TAIL_LINES) -> str:
        if not self._started:
            return ""
        try:
            out, err = self.container.get_logs()
        except Exception as exc:
            return f"(container logs unavailable: {exc})"
        text = (out + err).decode("utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


# --------------------------------------------------------------------- containers


def _container(image: str) -> DockerContainer:
    from testcontainers.core.container import DockerContainer

    return DockerContainer(image)


def kafka_container(
    ports: dict[str, int], host: str, extra_properties: Mapping[str, str] | None = None
) -> DockerContainer:
    """apache/kafka in KRaft mode; the client listener uses the same port inside and out."""
    port = ports["port"]
    props = {
        "node.id": "1",
        "process.roles": "broker,controller",
        "listeners": f"PLAINTEXT://0.0.0.0:{port},BROKER://0.0.0.0:9092,CONTROLLER://0.0.0.0:9093",
        "advertised.listeners": f"PLAINTEXT://{host}:{port},BROKER://localhost:9092",
        "listener.security.protocol.map": ("PLAINTEXT:PLAINTEXT,BROKER:PLAINTEXT,CONTROLLER:PLAINTEXT"),
        "inter.broker.listener.name": "BROKER",
        "controller.listener.names": "CONTROLLER",
        "controller.quorum.voters": "1@localhost:9093",
        **KAFKA_TEST_PROPERTIES,
        **(extra_properties or {}),
    }
    container = _container(IMAGES["kafka"]).with_bind_ports(port, port)
    container.with_env("CLUSTER_ID", _cluster_id())
    for key, value in props.items():
        container.with_env(kafka_env_name(key), value)
    return container


def minio_container(ports: dict[str, int], host: str, access: str, secret: str) -> DockerContainer:
    """MinIO server with the given root credentials."""
    return (
        _container(IMAGES["minio"])
        .with_bind_ports(9000, ports["port"])
        .with_env("MINIO_ROOT_USER", access)
        .with_env("MINIO_ROOT_PASSWORD", secret)
        .with_env("MINIO_UPDATE", "off")
        .with_env("MINIO_BROWSER", "off")
        .with_command("server /data --address :9000")
    )


def seaweedfs_container(ports: dict[str, int], host: str, access: str, secret: str) -> DockerContainer:
    """``weed mini`` with an identities file copied in, so signatures are checked."""
    config = json.dumps(seaweedfs_s3_config(access, secret)).encode()
    container = (
        _container(IMAGES["seaweedfs"])
        .with_bind_ports(8333, ports["port"])
        .with_command(
            "mini -dir=/data -ip.bind=0.0.0.0 -s3.port=8333 -s3.config=/etc/libkb/s3.json"
            " -s3.autoCreateBucket=false -s3.allowDeleteBucketNotEmpty=false"
            " -s3.port.iceberg=0 -s3.port.lance=0 -webdav=false -master.telemetry=false"
        )
    )
    container.with_copy_into_container(config, "/etc/libkb/s3.json")
    return container


def azurite_container(ports: dict[str, int], host: str) -> DockerContainer:
    """Azurite's blob service with the well-known development account."""
    from testcontainers.community.azurite import AzuriteContainer

    container = AzuriteContainer(IMAGES["azurite"], account_name=AZURITE_ACCOUNT, account_key=AZURITE_KEY)
    container.ports.clear()  # blob only: no queue/table ports to publish
    container.with_bind_ports(10000, ports["port"])
    container.with_command(
        "azurite-blob --blobHost 0.0.0.0 --blobPort 10000 --location /data"
        " --skipApiVersionCheck --disableTelemetry"
    )
    return container


def gcs_container(ports: dict[str, int], host: str) -> DockerContainer:
    """fake-gcs-server whose advertised URL uses the fixed host port."""
    port = ports["port"]
    return (
        _container(IMAGES["gcs"])
        .with_bind_ports(port, port)
        .with_command(
            f"-scheme http -backend memory -host 0.0.0.0 -port {port}"
            f" -external-url http://{host}:{port} -public-host {host}:{port}"
        )
    )


def make_docker_service(name: str, **options: Any) -> Service[Any]:
    """The docker-provided service ``name`` (container configured, not started)."""
    if name == "kafka":
        extra = options.get("extra_properties")
        return DockerService[KafkaEndpoint](
            "kafka",
            KAFKA_VERSION,
            ("port",),
            lambda ports, host: kafka_container(ports, host, extra),
            lambda host, ports: KafkaEndpoint(f"{host}:{ports['port']}"),
            probe_kafka,
        )
    if name in ("minio", "seaweedfs"):
        access = f"libkb-{os.urandom(4).hex()}"
        secret = os.urandom(18).hex()
        build = minio_container if name == "minio" else seaweedfs_container
        return DockerService[S3Endpoint](
            name,
            IMAGES[name].rsplit(":", 1)[1],
            ("port",),
            lambda ports, host: build(ports, host, access, secret),
            lambda host, ports: S3Endpoint(name, f"http://{host}:{ports['port']}", access, secret),
            probe_s3,
        )
    if name == "azurite":
        return DockerService[AzureEndpoint](
            "azurite",
            AZURITE_VERSION,
            ("port",),
            azurite_container,
            lambda host, ports: AzureEndpoint(
                f"http://{host}:{ports['port']}/{AZURITE_ACCOUNT}", AZURITE_ACCOUNT, AZURITE_KEY
            ),
            probe_azure,
        )
    if name == "gcs":
        return DockerService[GcsEndpoint](
            "gcs",
            FAKE_GCS_VERSION,
            ("port",),
            gcs_container,
            lambda host, ports: GcsEndpoint(f"http://{host}:{ports['port']}"),
            probe_gcs,
        )
    raise ValueError(f"unknown service {name!r}")
