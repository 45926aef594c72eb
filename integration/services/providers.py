"""Which provider runs each service, external endpoints, and the registry.

Selection, per service: ``LIBKB_<NAME>_PROVIDER`` if set, else
``LIBKB_SERVICES``, else ``auto``. ``auto`` means ``docker`` when a Docker
engine answers, ``local`` otherwise; and when the docker image cannot be
made, ``auto`` falls back to ``local`` with one warning, so a broken image
never turns into skipped tests. ``external`` reads the endpoint from
environment variables (the same lines ``python -m integration.services up``
prints), so a suite can reuse services started elsewhere.
"""

from __future__ import annotations

import functools
import os
import threading
import warnings
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from .azurite import AZURITE_ACCOUNT, AZURITE_KEY, AzuriteService, probe_azure
from .base import Service, ServiceError, wait_until
from .endpoints import AzureEndpoint, Endpoint, GcsEndpoint, KafkaEndpoint, S3Endpoint
from .fake_gcs import FakeGcsService, probe_gcs
from .kafka import KafkaService, probe_kafka
from .minio import MinioService
from .s3 import probe_s3
from .seaweedfs import SeaweedfsService

__all__ = [
    "PROVIDERS",
    "SERVICE_NAMES",
    "ExternalService",
    "ServiceRegistry",
    "canonical_name",
    "docker_available",
    "endpoint_env",
    "external_endpoint",
    "make_service",
    "prepared_service",
    "select_provider",
]

E = TypeVar("E")

SERVICE_NAMES = ("kafka", "minio", "seaweedfs", "azurite", "gcs")
PROVIDERS = ("local", "docker", "external")
_ALIASES = {"fake-gcs": "gcs", "fake_gcs": "gcs", "fake-gcs-server": "gcs"}

LOCAL_SERVICES: dict[str, Callable[..., Service[Any]]] = {
    "kafka": KafkaService,
    "minio": MinioService,
    "seaweedfs": SeaweedfsService,
    "azurite": AzuriteService,
    "gcs": FakeGcsService,
}


def canonical_name(name: str) -> str:
    """Normalise a user-supplied service name (``fake-gcs`` -> ``gcs``)."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in SERVICE_NAMES:
        raise ValueError(f"unknown service {name!r}; known: {', '.join(SERVICE_NAMES)}")
    return key


@functools.cache
def docker_available() -> bool:
    """True if a Docker engine answers a ping within a few seconds."""
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def _choice(name: str, env: Mapping[str, str]) -> str:
    raw = env.get(f"LIBKB_{name.upper()}_PROVIDER") or env.get("LIBKB_SERVICES") or "auto"
    return raw.strip().lower()


def select_provider(
    service: str,
    env: Mapping[str, str] | None = None,
    docker_check: Callable[[], bool] | None = None,
) -> str:
    """The provider for ``service`` according to the environment."""
    env = os.environ if env is None else env
    name = canonical_name(service)
    choice = _choice(name, env)
    if choice == "auto":
        return "docker" if (docker_check or docker_available)() else "local"
    if choice not in PROVIDERS:
        raise ValueError(f"unknown provider {choice!r} for {name}; use auto or one of {PROVIDERS}")
    return choice


def _require(env: Mapping[str, str], *names: str) -> list[str]:
    missing = [n for n in names if not env.get(n)]
    if missing:
        raise ServiceError(f"external provider needs {', '.join(missing)}")
    return [env[n] for n in names]


def external_endpoint(service: str, env: Mapping[str, str] | None = None) -> Endpoint:
    """Build the endpoint of an externally managed ``service`` from env vars."""
    env = os.environ if env is None else env
    name = canonical_name(service)
    if name == "kafka":
        (bootstrap,) = _require(env, "LIBKB_KAFKA_BOOTSTRAP")
        return KafkaEndpoint(bootstrap)
    if name in ("minio", "seaweedfs"):
        prefix = f"LIBKB_{name.upper()}_"
        url, access, secret = _require(env, f"{prefix}ENDPOINT", f"{prefix}ACCESS_KEY", f"{prefix}SECRET_KEY")
        return S3Endpoint(name, url, access, secret, env.get(f"{prefix}REGION") or "us-east-1")
    if name == "azurite":
        (url,) = _require(env, "LIBKB_AZURITE_ENDPOINT")
        return AzureEndpoint(
            url,
            env.get("LIBKB_AZURITE_ACCOUNT") or AZURITE_ACCOUNT,
            env.get("LIBKB_AZURITE_KEY") or AZURITE_KEY,
        )
    (url,) = _require(env, "LIBKB_GCS_ENDPOINT")
    return GcsEndpoint(url, env.get("LIBKB_GCS_PROJECT") or "test")


def endpoint_env(service: str, endpoint: Endpoint) -> dict[str, str]:
    """Env vars that make the ``external`` provider reuse ``endpoint``."""
    name = canonical_name(service)
    env = {f"LIBKB_{name.upper()}_PROVIDER": "external"}
    if isinstance(endpoint, KafkaEndpoint):
        env["LIBKB_KAFKA_BOOTSTRAP"] = endpoint.bootstrap_servers
    elif isinstance(endpoint, S3Endpoint):
        prefix = f"LIBKB_{name.upper()}_"
        env.update(
            {
                f"{prefix}ENDPOINT": endpoint.endpoint,
                f"{prefix}ACCESS_KEY": endpoint.access_key,
                f"{prefix}SECRET_KEY": endpoint.secret_key,
                f"{prefix}REGION": endpoint.region,
            }
        )
    elif isinstance(endpoint, AzureEndpoint):
        env.update(
            {
                "LIBKB_AZURITE_ENDPOINT": endpoint.endpoint,
                "LIBKB_AZURITE_ACCOUNT": endpoint.account_name,
                "LIBKB_AZURITE_KEY": endpoint.account_key,
            }
        )
    else:
        env.update({"LIBKB_GCS_ENDPOINT": endpoint.endpoint, "LIBKB_GCS_PROJECT": endpoint.project})
    return env


_PROBES: dict[str, Callable[[Any], None]] = {
    "kafka": probe_kafka,
    "minio": probe_s3,
    "seaweedfs": probe_s3,
    "azurite": probe_azure,
    "gcs": probe_gcs,
}


class ExternalService(Service[E], Generic[E]):
    """A service someone else runs; ``start`` only checks that it answers."""

    provider = "external"
    supports_restart = False

    def __init__(self, name: str, endpoint: E, probe: Callable[[E], None]) -> None:
        self.name = name
        self.version = "external"
        self._endpoint = endpoint
        self._probe = probe
        self._checked = False

    @property
    def endpoint(self) -> E:
        return self._endpoint

    @property
    def running(self) -> bool:
        return self._checked

    def start(self) -> E:
        if not self._checked:
            wait_until(
                lambda: self._probe(self._endpoint),
                timeout=30,
                what=f"external {self.name} at {self._endpoint}",
            )
            self._checked = True
        return self._endpoint

    def stop(self) -> None:
        raise ServiceError(f"cannot stop the external {self.name} service")

    def close(self) -> None:
        self._checked = False


def make_service(
    name: str,
    provider: str | None = None,
    env: Mapping[str, str] | None = None,
    **options: Any,
) -> Service[Any]:
    """A (not yet started) handle on service ``name`` from the chosen provider.

    ``options`` go to the service's constructor (e.g. Kafka's
    ``extra_properties``); the external provider accepts none.
    """
    name = canonical_name(name)
    provider = provider or select_provider(name, env)
    if provider == "local":
        return LOCAL_SERVICES[name](**options)
    if provider == "docker":
        from .docker import make_docker_service

        return make_docker_service(name, **options)
    if provider == "external":
        if options:
            raise ServiceError(f"options {sorted(options)} need a local or docker {name}")
        return ExternalService(name, external_endpoint(name, env), _PROBES[name])
    raise ValueError(f"unknown provider {provider!r}")


def prepared_service(
    name: str,
    env: Mapping[str, str] | None = None,
    provider: str | None = None,
    **options: Any,
) -> Service[Any]:
    """:func:`make_service`, then ``install`` (for docker: the image is built).

    When ``auto`` chose docker and the image cannot be made, the local
    provider is used instead, with one warning saying why.
    """
    env = os.environ if env is None else env
    name = canonical_name(name)
    chosen = provider or select_provider(name, env)
    service = make_service(name, chosen, env, **options)
    try:
        service.install()
    except ServiceError as exc:
        if chosen != "docker" or provider is not None or _choice(name, env) != "auto":
            raise
        warnings.warn(
            f"{name}: the docker image is unavailable, using the local provider ({exc})",
            stacklevel=2,
        )
        service = make_service(name, "local", env, **options)
    return service


class ServiceRegistry:
    """Lazily started, shared services for one session (pytest or ``up``).

    A service that failed to start is not retried: every later request gets
    the same error at once, instead of paying the timeout again.
    """

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._env = env
        self._handles: dict[str, Service[Any]] = {}
        self._errors: dict[str, ServiceError] = {}
        self._extra: list[Service[Any]] = []
        self._lock = threading.Lock()

    def handle(self, name: str) -> Service[Any]:
        """The shared handle for ``name`` (created but not started)."""
        name = canonical_name(name)
        with self._lock:
            if name not in self._handles:
                self._handles[name] = prepared_service(name, self._env)
            return self._handles[name]

    def provider(self, name: str) -> str:
        """The provider of ``name``: the one in use, else the one selected."""
        handle = self._handles.get(canonical_name(name))
        return handle.provider if handle is not None else select_provider(name, self._env)

    def start(self, name: str) -> Service[Any]:
        """The shared handle for ``name``, started (raises :class:`ServiceError`)."""
        name = canonical_name(name)
        if name in self._errors:
            raise self._errors[name]
        try:
            service = self.handle(name)
            service.start()
        except ServiceError as exc:
            self._errors[name] = exc
            raise
        except Exception as exc:
            error = ServiceError(f"{name}: {exc}")
            self._errors[name] = error
            raise error from exc
        return service

    def new(self, name: str, **options: Any) -> Service[Any]:
        """An additional, unshared instance (closed with the registry)."""
        service = prepared_service(name, self._env, **options)
        self._extra.append(service)
        return service

    def close_all(self) -> None:
        """Close every service this registry created."""
        for service in [*self._extra, *self._handles.values()]:
            try:
                service.close()
            except Exception as exc:  # keep closing the others
                print(f"warning: closing {service.name} failed: {exc}")
        self._extra.clear()
        self._handles.clear()
