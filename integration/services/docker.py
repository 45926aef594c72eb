"""The ``docker`` provider: the same services as testcontainers containers.

Why host networking: CI machines allow loopback traffic only, and Kafka and
fake-gcs-server advertise their address, so every container shares the
host's network and binds 127.0.0.1 on free ports chosen up front, exactly
like the local provider (same arguments, from the same helpers). A
``stop``/``start`` keeps the container, so the endpoint and data survive.

Why no Ryuk: its image cannot be pulled where no registry is reachable.
Instead every container carries the label ``org.libkb.test=<host>:<pid>``;
``close`` removes it, an ``atexit`` hook covers normal exits, and leftovers
of a killed session (``kill -9``) are removed when the next one starts.

Images come from :mod:`.images` (built locally from the local provider's
artifacts) unless ``LIBKB_DOCKER_IMAGES=official`` selects the projects'
published images, for machines that can pull them.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .azurite import AZURITE_ACCOUNT, AZURITE_KEY, AZURITE_VERSION, azurite_args, probe_azure
from .base import TAIL_LINES, Service, ServiceError, _live, _live_lock, free_ports, wait_until
from .endpoints import AzureEndpoint, GcsEndpoint, KafkaEndpoint, S3Endpoint
from .fake_gcs import FAKE_GCS_VERSION, fake_gcs_args, probe_gcs
from .images import LABEL, RECIPES, ensure_image
from .kafka import KAFKA_VERSION, _cluster_id, kraft_properties, probe_kafka
from .minio import minio_args
from .s3 import probe_s3
from .seaweedfs import SEAWEEDFS_VERSION, seaweedfs_args, seaweedfs_ports, seaweedfs_s3_config

if TYPE_CHECKING:
    from testcontainers.core.container import DockerContainer

__all__ = [
    "IMAGES_ENV",
    "OFFICIAL_IMAGES",
    "ContainerSpec",
    "DockerService",
    "image_source",
    "kafka_env_name",
    "make_docker_service",
    "owner_label",
    "reap_leftovers",
]

E = TypeVar("E")

IMAGES_ENV = "LIBKB_DOCKER_IMAGES"
"""``local`` (default: build ``libkb-test/*`` images) or ``official`` (pull the projects' images)."""

OFFICIAL_IMAGES: dict[str, str] = {
    "kafka": f"apache/kafka:{KAFKA_VERSION}",
    "minio": "minio/minio:RELEASE.2025-09-07T16-13-09Z",
    "seaweedfs": f"chrislusf/seaweedfs:{SEAWEEDFS_VERSION}",
    "azurite": f"mcr.microsoft.com/azure-storage/azurite:{AZURITE_VERSION}",
    "gcs": f"fsouza/fake-gcs-server:{FAKE_GCS_VERSION}",
}
"""The published images (MinIO publishes none for the pinned source build: its last release)."""


def image_source(env: Mapping[str, str] | None = None) -> str:
    """``local`` or ``official``, from ``LIBKB_DOCKER_IMAGES``."""
    env = os.environ if env is None else env
    value = (env.get(IMAGES_ENV) or "local").strip().lower()
    if value not in ("local", "official"):
        raise ServiceError(f"{IMAGES_ENV}={value!r}: use local or official")
    return value


def kafka_env_name(prop: str) -> str:
    """Env var for broker property ``prop`` as the apache/kafka image maps it."""
    return "KAFKA_" + prop.replace("_", "__").replace("-", "___").replace(".", "_").upper()


def owner_label() -> str:
    """``<host>:<pid>`` of this process, the value of every container's label."""
    return f"{socket.gethostname()}:{os.getpid()}"


def reap_leftovers(client: Any) -> list[str]:
    """Remove containers labelled by a harness process of this host that no longer exists."""
    removed = []
    host = socket.gethostname()
    for container in client.containers.list(all=True, filters={"label": LABEL}):
        owner_host, _, pid = (container.labels.get(LABEL) or "").rpartition(":")
        if owner_host == host and pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            with contextlib.suppress(Exception):
                container.remove(force=True)
                removed.append(container.name)
    return removed


_reaped = False
_reap_lock = threading.Lock()


def _reap_once() -> None:
    global _reaped
    with _reap_lock:
        if _reaped:
            return
        import docker

        client = docker.from_env(timeout=30)
        try:
            reap_leftovers(client)
        finally:
            client.close()
        _reaped = True


@dataclass
class ContainerSpec:
    """What to run: image, entry point and arguments, environment, files copied in."""

    image: str
    entrypoint: list[str] | None
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)


class DockerService(Service[E], Generic[E]):
    """A service in a host-network container.

    ``spec(image, ports)`` says how to run it; ``to_endpoint(ports)`` maps
    it to the fixture endpoint; ``probe`` is the local provider's readiness
    check. ``install`` builds (or, for official images, names) the image.
    """

    provider = "docker"

    def __init__(
        self,
        name: str,
        version: str,
        ports: dict[str, int],
        spec: Callable[[str, dict[str, int]], ContainerSpec],
        to_endpoint: Callable[[dict[str, int]], E],
        probe: Callable[[E], None],
        start_timeout: float = 120.0,
    ) -> None:
        self.name = name
        self.version = version
        self.ports = ports
        self.image: str | None = None
        self.container: DockerContainer | None = None
        self._spec = spec
        self._to_endpoint = to_endpoint
        self._probe = probe
        self._start_timeout = start_timeout
        self._running = False

    @property
    def endpoint(self) -> E:
        return self._to_endpoint(self.ports)

    @property
    def running(self) -> bool:
        return self._running

    def install(self) -> None:
        if self.image is None:
            official = image_source() == "official"
            self.image = OFFICIAL_IMAGES[self.name] if official else ensure_image(self.name)

    def configure(self) -> DockerContainer:
        """The (not yet started) container for the current image and ports."""
        from testcontainers.core.config import testcontainers_config
        from testcontainers.core.container import DockerContainer

        testcontainers_config.ryuk_disabled = True  # unpullable here; we reap ourselves
        assert self.image is not None
        spec = self._spec(self.image, self.ports)
        container = DockerContainer(spec.image, env=spec.env)
        container._command = spec.command  # a list: no shell splitting of the arguments
        container.with_kwargs(
            network="host",
            entrypoint=spec.entrypoint,
            labels={LABEL: owner_label()},
            stop_signal="SIGTERM",
        )
        for path, content in spec.files.items():
            container.with_copy_into_container(content, path)
        return container

    def start(self) -> E:
        if self._running:
            return self.endpoint
        self.install()
        try:
            if self.container is None:
                _reap_once()
                self.container = self.configure()
                with _live_lock:
                    _live.add(self)
                self.container.start()
            else:
                self.container.get_wrapped_container().start()
            endpoint = self.endpoint
            wait_until(
                lambda: self._probe(endpoint),
                timeout=self._start_timeout,
                what=f"{self.name} container ({self.image})",
                alive=self._exited,
            )
        except ServiceError as exc:
            exc.log_tail = self.log_tail()
            raise
        except Exception as exc:
            raise ServiceError(
                f"{self.name} container ({self.image}) failed: {exc}", self.log_tail()
            ) from exc
        self._running = True
        return self.endpoint

    def _exited(self) -> str | None:
        """A message once the container has stopped (stops the readiness wait early)."""
        assert self.container is not None
        wrapped = self.container.get_wrapped_container()
        with contextlib.suppress(Exception):
            wrapped.reload()
            if wrapped.status in ("exited", "dead"):
                return f"container exited with code {wrapped.attrs['State'].get('ExitCode')}"
        return None

    def stop(self) -> None:
        if self._running and self.container is not None:
            self.container.get_wrapped_container().stop(timeout=15)
        self._running = False

    def close(self) -> None:
        if self.container is not None:
            with contextlib.suppress(Exception):
                self.container.stop()  # removes it, with its file system
            self.container = None
        self._running = False
        with _live_lock:
            _live.discard(self)

    def log_tail(self, lines: int = TAIL_LINES) -> str:
        if self.container is None or self.container._container is None:
            return ""
        try:
            out, err = self.container.get_logs()
        except Exception as exc:
            return f"(container logs unavailable: {exc})"
        text = (out + err).decode("utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


# --------------------------------------------------------------------- containers


def kafka_spec(image: str, ports: dict[str, int], extra: Mapping[str, str]) -> ContainerSpec:
    """The broker the local provider runs; official images take it as ``KAFKA_*`` variables."""
    if image == OFFICIAL_IMAGES["kafka"]:
        props = {**kraft_properties(ports["port"], ports["controller_port"], "/var/lib/kafka/data"), **extra}
        env = {kafka_env_name(k): v for k, v in props.items()}
        return ContainerSpec(image, None, [], {"CLUSTER_ID": _cluster_id(), **env})
    props = {**kraft_properties(ports["port"], ports["controller_port"], "/data/kraft-logs"), **extra}
    text = "".join(f"{k}={v}\n" for k, v in props.items())
    env = {"LIBKB_SERVER_PROPERTIES": text, "LIBKB_CLUSTER_ID": _cluster_id()}
    return ContainerSpec(image, ["/bin/sh", "/opt/kafka/entry.sh"], [], env)


def minio_spec(image: str, ports: dict[str, int], access: str, secret: str) -> ContainerSpec:
    env = {
        "MINIO_ROOT_USER": access,
        "MINIO_ROOT_PASSWORD": secret,
        "MINIO_UPDATE": "off",
        "MINIO_BROWSER": "off",
        "HOME": "/data",
    }
    return ContainerSpec(image, ["/usr/bin/minio"], minio_args(ports, "/data"), env)


def seaweedfs_spec(image: str, ports: dict[str, int], access: str, secret: str) -> ContainerSpec:
    """``weed mini`` with an identities file copied in, so signatures are checked."""
    config = json.dumps(seaweedfs_s3_config(access, secret)).encode()
    args = seaweedfs_args(ports, "/data", "/etc/libkb/s3.json")
    return ContainerSpec(image, ["/usr/bin/weed"], args, files={"/etc/libkb/s3.json": config})


def azurite_spec(image: str, ports: dict[str, int]) -> ContainerSpec:
    env = {"AZURITE_ACCOUNTS": f"{AZURITE_ACCOUNT}:{AZURITE_KEY}"}
    return ContainerSpec(image, ["azurite-blob"], azurite_args(ports["port"], "/data/blob"), env)


def gcs_spec(image: str, ports: dict[str, int]) -> ContainerSpec:
    return ContainerSpec(image, ["/bin/fake-gcs-server"], fake_gcs_args(ports["port"]))


def _s3_service(name: str, ports: dict[str, int], build: Callable[..., ContainerSpec]) -> DockerService[Any]:
    access = f"libkb-{os.urandom(4).hex()}"
    secret = os.urandom(18).hex()
    port = "s3" if name == "seaweedfs" else "port"
    return DockerService[S3Endpoint](
        name,
        RECIPES[name].version,
        ports,
        lambda image, p: build(image, p, access, secret),
        lambda p: S3Endpoint(name, f"http://127.0.0.1:{p[port]}", access, secret),
        probe_s3,
    )


def make_docker_service(name: str, **options: Any) -> Service[Any]:
    """The docker-provided service ``name`` (ports chosen, nothing started)."""
    if name == "kafka":
        extra = dict(options.get("extra_properties") or {})
        return DockerService[KafkaEndpoint](
            "kafka",
            KAFKA_VERSION,
            dict(zip(("port", "controller_port"), free_ports(2), strict=True)),
            lambda image, p: kafka_spec(image, p, extra),
            lambda p: KafkaEndpoint(f"127.0.0.1:{p['port']}"),
            probe_kafka,
        )
    if options:
        raise ServiceError(f"options {sorted(options)} are not supported by the docker {name}")
    if name == "minio":
        return _s3_service(name, dict(zip(("port", "console_port"), free_ports(2), strict=True)), minio_spec)
    if name == "seaweedfs":
        return _s3_service(name, seaweedfs_ports(), seaweedfs_spec)
    if name == "azurite":
        return DockerService[AzureEndpoint](
            "azurite",
            AZURITE_VERSION,
            {"port": free_ports(1)[0]},
            azurite_spec,
            lambda p: AzureEndpoint(
                f"http://127.0.0.1:{p['port']}/{AZURITE_ACCOUNT}", AZURITE_ACCOUNT, AZURITE_KEY
            ),
            probe_azure,
        )
    if name == "gcs":
        return DockerService[GcsEndpoint](
            "gcs",
            FAKE_GCS_VERSION,
            {"port": free_ports(1)[0]},
            gcs_spec,
            lambda p: GcsEndpoint(f"http://127.0.0.1:{p['port']}"),
            probe_gcs,
        )
    raise ValueError(f"unknown service {name!r}")
