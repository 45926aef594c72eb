"""Fast tests of the integration harness itself (no real services needed).

Provider selection from the environment, external endpoints, the docker
provider's container configuration (containers are configured, never
started: integration/test_docker_provider.py starts them), the install cache and the process
supervision that must never leave a server behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from integration.services import (
    AzureEndpoint,
    GcsEndpoint,
    KafkaEndpoint,
    S3Endpoint,
    ServiceError,
    ServiceRegistry,
    endpoint_env,
    external_endpoint,
    make_service,
    select_provider,
)
from integration.services import docker as docker_provider
from integration.services.azurite import AZURITE_ACCOUNT, AZURITE_KEY, AzuriteService, azurite_args
from integration.services.base import (
    LocalProcessService,
    _sweep_stale_workdirs,
    cached_install,
    free_ports,
    tail_file,
)
from integration.services.fake_gcs import FakeGcsService, fake_gcs_args
from integration.services.kafka import KAFKA_TEST_PROPERTIES, KafkaService
from integration.services.minio import MinioService, minio_args
from integration.services.providers import ExternalService, prepared_service
from integration.services.seaweedfs import SeaweedfsService, seaweedfs_args

NO_DOCKER = lambda: False  # noqa: E731
DOCKER = lambda: True  # noqa: E731


# ------------------------------------------------------------ provider choice


def test_auto_is_default_and_follows_docker_availability() -> None:
    assert select_provider("kafka", {}, NO_DOCKER) == "local"
    assert select_provider("kafka", {}, DOCKER) == "docker"
    assert select_provider("kafka", {"LIBKB_SERVICES": "auto"}, DOCKER) == "docker"


def test_explicit_choice_does_not_probe_docker() -> None:
    def boom() -> bool:
        raise AssertionError("docker must not be probed")

    for provider in ("local", "docker", "external"):
        assert select_provider("minio", {"LIBKB_SERVICES": provider}, boom) == provider


def test_per_service_override_wins_over_global() -> None:
    env = {"LIBKB_SERVICES": "local", "LIBKB_MINIO_PROVIDER": "external", "LIBKB_GCS_PROVIDER": "Docker "}
    assert select_provider("minio", env, NO_DOCKER) == "external"
    assert select_provider("kafka", env, NO_DOCKER) == "local"
    assert select_provider("fake-gcs", env, NO_DOCKER) == "docker"
    assert select_provider("gcs", {"LIBKB_GCS_PROVIDER": "auto"}, DOCKER) == "docker"


@pytest.mark.parametrize("value", ["podman", "locale", "1"])
def test_unknown_provider_is_an_error(value: str) -> None:
    with pytest.raises(ValueError, match="unknown provider"):
        select_provider("kafka", {"LIBKB_SERVICES": value}, NO_DOCKER)


def test_unknown_service_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown service"):
        select_provider("redis", {}, NO_DOCKER)


# ------------------------------------------------------------ external provider


def test_external_endpoints_from_env() -> None:
    env = {
        "LIBKB_KAFKA_BOOTSTRAP": "k1:9092,k2:9092",
        "LIBKB_MINIO_ENDPOINT": "http://m:9000",
        "LIBKB_MINIO_ACCESS_KEY": "ak",
        "LIBKB_MINIO_SECRET_KEY": "sk",
        "LIBKB_SEAWEEDFS_ENDPOINT": "http://s:8333",
        "LIBKB_SEAWEEDFS_ACCESS_KEY": "ak2",
        "LIBKB_SEAWEEDFS_SECRET_KEY": "sk2",
        "LIBKB_SEAWEEDFS_REGION": "eu-west-1",
        "LIBKB_AZURITE_ENDPOINT": "http://a:10000/devstoreaccount1",
        "LIBKB_GCS_ENDPOINT": "http://g:4443",
    }
    assert external_endpoint("kafka", env) == KafkaEndpoint("k1:9092,k2:9092")
    assert external_endpoint("minio", env) == S3Endpoint("minio", "http://m:9000", "ak", "sk")
    assert external_endpoint("seaweedfs", env) == S3Endpoint(
        "seaweedfs", "http://s:8333", "ak2", "sk2", "eu-west-1"
    )
    assert external_endpoint("azurite", env) == AzureEndpoint(
        "http://a:10000/devstoreaccount1", AZURITE_ACCOUNT, AZURITE_KEY
    )
    assert external_endpoint("gcs", env) == GcsEndpoint("http://g:4443", "test")


def test_external_endpoint_names_every_missing_variable() -> None:
    with pytest.raises(ServiceError) as info:
        external_endpoint("minio", {"LIBKB_MINIO_ENDPOINT": "http://m:9000"})
    assert "LIBKB_MINIO_ACCESS_KEY" in str(info.value)
    assert "LIBKB_MINIO_SECRET_KEY" in str(info.value)


@pytest.mark.parametrize(
    ("name", "endpoint"),
    [
        ("kafka", KafkaEndpoint("127.0.0.1:1234")),
        ("minio", S3Endpoint("minio", "http://127.0.0.1:1", "a", "s=cret", "us-west-2")),
        ("seaweedfs", S3Endpoint("seaweedfs", "http://127.0.0.1:2", "a", "b")),
        ("azurite", AzureEndpoint("http://127.0.0.1:3/acct", "acct", "a2V5")),
        ("gcs", GcsEndpoint("http://127.0.0.1:4", "proj")),
    ],
)
def test_endpoint_env_round_trips_through_external(name: str, endpoint: Any) -> None:
    env = endpoint_env(name, endpoint)
    assert env[f"LIBKB_{name.upper()}_PROVIDER"] == "external"
    assert select_provider(name, env, NO_DOCKER) == "external"
    assert external_endpoint(name, env) == endpoint


def test_secrets_are_not_in_repr() -> None:
    s3 = S3Endpoint("minio", "http://127.0.0.1:9000", "access", "TOPSECRET")
    azure = AzureEndpoint("http://127.0.0.1:10000/acct", "acct", "TOPSECRET")
    assert "TOPSECRET" not in repr(s3) and "access" in repr(s3)
    assert "TOPSECRET" not in repr(azure)


def test_external_service_cannot_be_stopped_or_configured() -> None:
    env = {"LIBKB_SERVICES": "external", "LIBKB_GCS_ENDPOINT": "http://127.0.0.1:1"}
    service = make_service("gcs", env=env)
    assert isinstance(service, ExternalService)
    assert service.endpoint == GcsEndpoint("http://127.0.0.1:1")
    assert not service.supports_restart
    with pytest.raises(ServiceError):
        service.stop()
    with pytest.raises(ServiceError, match="extra_properties"):
        make_service("kafka", env={"LIBKB_KAFKA_BOOTSTRAP": "x:1"}, provider="external", extra_properties={})


def test_registry_does_not_retry_a_failed_service() -> None:
    registry = ServiceRegistry(env={"LIBKB_SERVICES": "external"})
    with pytest.raises(ServiceError) as first:
        registry.start("kafka")
    with pytest.raises(ServiceError) as second:
        registry.start("kafka")
    assert first.value is second.value


# ------------------------------------------------------------- local provider


def test_local_provider_builds_local_services() -> None:
    env = {"LIBKB_SERVICES": "local"}
    expected = {
        "kafka": KafkaService,
        "minio": MinioService,
        "seaweedfs": SeaweedfsService,
        "azurite": AzuriteService,
        "gcs": FakeGcsService,
    }
    for name, cls in expected.items():
        assert type(make_service(name, env=env)) is cls
    kafka = make_service("kafka", env=env, extra_properties={"message.max.bytes": "5"})
    assert isinstance(kafka, KafkaService)
    kafka.ports = {"port": 1, "controller_port": 2}
    props = kafka.server_properties(Path("/data"))
    assert props["message.max.bytes"] == "5"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:1"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:2"


def test_seaweedfs_admin_grpc_port_is_offset_by_10000() -> None:
    ports = SeaweedfsService()._allocate_ports()
    assert len(set(ports.values())) == len(ports)
    assert ports["admin"] + 10000 < 65536
    assert ports["admin"] + 10000 not in ports.values()


# ------------------------------------------------------------ docker provider
# Containers are configured here, never started; integration/test_docker_provider.py
# runs them on a real engine.


class _NoEngineClient:
    """Stands in for testcontainers' client, which connects when a container is configured."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs


@pytest.fixture(autouse=True)
def _no_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    import testcontainers.core.container as tc_container

    monkeypatch.setattr(tc_container, "DockerClient", _NoEngineClient)


def _docker(name: str, image: str = "img:1", **options: Any) -> tuple[Any, dict[str, Any]]:
    """The service and the arguments its container would be created with."""
    service = make_service(name, provider="docker", **options)
    assert isinstance(service, docker_provider.DockerService)
    service.image = image
    container = service.configure()
    return service, {"command": container._command, "env": container.env, **container._kwargs}


def _common(created: dict[str, Any]) -> None:
    assert created["network"] == "host"  # loopback only: no bridge, no published ports
    assert created["labels"] == {"org.libkb.test": docker_provider.owner_label()}


def test_docker_kafka_runs_the_local_broker_configuration() -> None:
    service, created = _docker("kafka", extra_properties={"log.cleaner.backoff.ms": "50"})
    _common(created)
    port, cport = service.ports["port"], service.ports["controller_port"]
    assert created["entrypoint"] == ["/bin/sh", "/opt/kafka/entry.sh"]
    props = dict(line.split("=", 1) for line in created["env"]["LIBKB_SERVER_PROPERTIES"].splitlines())
    local = KafkaService(extra_properties={"log.cleaner.backoff.ms": "50"})
    local.ports = {"port": port, "controller_port": cport}
    assert props == local.server_properties(Path("/data/kraft-logs"))
    assert props["log.cleaner.backoff.ms"] == "50"
    assert created["env"]["LIBKB_CLUSTER_ID"]
    assert service.endpoint == KafkaEndpoint(f"127.0.0.1:{port}")


def test_docker_official_kafka_image_takes_its_variables() -> None:
    _, created = _docker(
        "kafka", image="apache/kafka:4.1.1", extra_properties={"log.cleaner.backoff.ms": "50"}
    )
    env = created["env"]
    assert created["entrypoint"] is None
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == KAFKA_TEST_PROPERTIES["auto.create.topics.enable"]
    assert env["KAFKA_LOG_CLEANER_BACKOFF_MS"] == "50"
    assert env["CLUSTER_ID"]


def test_kafka_env_names_follow_the_image_convention() -> None:
    assert docker_provider.kafka_env_name("log.dirs") == "KAFKA_LOG_DIRS"
    assert docker_provider.kafka_env_name("a_b.c-d") == "KAFKA_A__B_C___D"


def test_docker_minio_container() -> None:
    service, created = _docker("minio")
    _common(created)
    endpoint = service.endpoint
    assert created["entrypoint"] == ["/usr/bin/minio"]
    assert created["command"] == minio_args(service.ports, "/data")
    assert created["env"]["MINIO_ROOT_USER"] == endpoint.access_key
    assert created["env"]["MINIO_ROOT_PASSWORD"] == endpoint.secret_key
    assert endpoint.endpoint == f"http://127.0.0.1:{service.ports['port']}"


def test_docker_seaweedfs_container_checks_signatures() -> None:
    import json

    service, created = _docker("seaweedfs")
    _common(created)
    endpoint = service.endpoint
    assert created["command"] == seaweedfs_args(service.ports, "/data", "/etc/libkb/s3.json")
    assert endpoint.endpoint == f"http://127.0.0.1:{service.ports['s3']}"
    [spec] = service.configure()._transferable_specs
    payload, path = spec[0], spec[1]
    assert path == "/etc/libkb/s3.json"
    assert isinstance(payload, bytes)
    [identity] = json.loads(payload)["identities"]
    assert identity["credentials"] == [{"accessKey": endpoint.access_key, "secretKey": endpoint.secret_key}]


def test_docker_azurite_and_gcs_containers() -> None:
    azurite, created = _docker("azurite")
    _common(created)
    assert created["env"]["AZURITE_ACCOUNTS"] == f"{AZURITE_ACCOUNT}:{AZURITE_KEY}"
    assert created["command"] == azurite_args(azurite.ports["port"], "/data/blob")
    assert "--loose" not in created["command"]
    assert azurite.endpoint == AzureEndpoint(
        f"http://127.0.0.1:{azurite.ports['port']}/{AZURITE_ACCOUNT}", AZURITE_ACCOUNT, AZURITE_KEY
    )
    gcs, created = _docker("gcs")
    port = gcs.ports["port"]
    assert created["command"] == fake_gcs_args(port)
    assert f"http://127.0.0.1:{port}" in created["command"]  # the advertised URL is the client's
    assert gcs.endpoint == GcsEndpoint(f"http://127.0.0.1:{port}")


def test_docker_image_source(monkeypatch: pytest.MonkeyPatch) -> None:
    assert docker_provider.image_source({}) == "local"
    assert docker_provider.image_source({"LIBKB_DOCKER_IMAGES": "Official"}) == "official"
    with pytest.raises(ServiceError, match="LIBKB_DOCKER_IMAGES"):
        docker_provider.image_source({"LIBKB_DOCKER_IMAGES": "pull"})
    monkeypatch.setenv("LIBKB_DOCKER_IMAGES", "official")
    service = make_service("gcs", provider="docker")
    service.install()  # names the published image; nothing is built
    assert isinstance(service, docker_provider.DockerService)
    assert service.image == "fsouza/fake-gcs-server:1.54.0"


def _image_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(name: str) -> str:
        raise ServiceError(f"docker build of libkb-test/{name} failed")

    monkeypatch.setattr(docker_provider, "ensure_image", fail)


def test_auto_falls_back_to_local_when_the_image_cannot_be_made(monkeypatch: pytest.MonkeyPatch) -> None:
    _image_fails(monkeypatch)
    monkeypatch.setattr("integration.services.providers.docker_available", DOCKER)
    with pytest.warns(UserWarning, match="gcs: the docker image is unavailable, using the local provider"):
        service = prepared_service("gcs", env={})
    assert service.provider == "local"
    registry = ServiceRegistry(env={"LIBKB_SERVICES": "auto"})
    with pytest.warns(UserWarning):
        assert registry.handle("gcs").provider == "local"
    assert registry.provider("gcs") == "local"


def test_explicit_docker_reports_the_image_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    _image_fails(monkeypatch)
    with pytest.raises(ServiceError, match="docker build of libkb-test/gcs failed"):
        prepared_service("gcs", env={"LIBKB_SERVICES": "docker"})


# ---------------------------------------------------------------- install cache


def test_cached_install_runs_once_even_when_racing(tmp_path: Path) -> None:
    runs: list[int] = []

    def installer(target: Path, log: Path) -> None:
        runs.append(1)
        time.sleep(0.2)
        (target / "bin").mkdir()
        (target / "bin" / "tool").write_text("ok")

    results: list[Path] = []
    threads = [
        threading.Thread(target=lambda: results.append(cached_install("x", "1", installer, tmp_path)))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(runs) == 1
    assert {str(r) for r in results} == {str(tmp_path / "x-1")}
    assert (tmp_path / "x-1" / "bin" / "tool").read_text() == "ok"
    assert cached_install("x", "1", installer, tmp_path) == tmp_path / "x-1"
    assert len(runs) == 1
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_failed_install_leaves_nothing_and_reports_log(tmp_path: Path) -> None:
    def installer(target: Path, log: Path) -> None:
        with open(log, "a") as handle:
            handle.write("compiler says no\n")
        raise RuntimeError("build failed")

    (tmp_path / "y-2").mkdir()  # a stale, unmarked leftover
    with pytest.raises(ServiceError) as info:
        cached_install("y", "2", installer, tmp_path)
    assert "compiler says no" in info.value.log_tail
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]

    def good(target: Path, log: Path) -> None:
        (target / "ok").write_text("1")

    assert (cached_install("y", "2", good, tmp_path) / "ok").is_file()


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = free_ports(20)
    assert len(set(ports)) == 20
    assert all(1024 <= p < 65536 for p in ports)


def test_tail_file(tmp_path: Path) -> None:
    path = tmp_path / "log"
    path.write_text("".join(f"{i}\n" for i in range(100)))
    assert tail_file(path, 3) == "97\n98\n99"
    assert tail_file(tmp_path / "missing") == ""


# ------------------------------------------------------- process supervision


class _HttpService(LocalProcessService[str]):
    """Python's http.server as a stand-in server: starts in well under a second."""

    name = "http"
    version = "1"
    start_timeout = 15.0
    stop_timeout = 5.0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['port']}"

    def _installed(self) -> Path | None:
        return Path(sys.executable).parent

    def _install_into(self, target: Path, log: Path) -> None:
        raise AssertionError("nothing to install")

    def _command(self) -> list[str]:
        assert self.workdir is not None
        (self.workdir / "www").mkdir(exist_ok=True)
        (self.workdir / "www" / "hello.txt").write_text("hello")
        return [
            sys.executable,
            "-m",
            "http.server",
            str(self.ports["port"]),
            "--bind",
            "127.0.0.1",
            "--directory",
            str(self.workdir / "www"),
        ]

    def _probe(self) -> None:
        import urllib.request

        with urllib.request.urlopen(f"{self.endpoint}/hello.txt", timeout=1) as response:
            assert response.read() == b"hello"


def test_local_service_stop_start_keeps_port_and_close_cleans_up() -> None:
    service = _HttpService()
    endpoint = service.start()
    workdir = service.workdir
    assert workdir is not None and workdir.is_dir()
    service.stop()
    assert not service.running
    assert service.start() == endpoint
    assert "start attempt" in service.log_tail()
    service.close()
    assert not workdir.exists()


def test_local_service_that_dies_reports_its_log() -> None:
    class Crashing(_HttpService):
        def _command(self) -> list[str]:
            return [sys.executable, "-c", "import sys; print('cannot start: bad config'); sys.exit(3)"]

    service = Crashing()
    try:
        with pytest.raises(ServiceError) as info:
            service.start()
        assert "exited with code 3" in str(info.value)
        assert "cannot start: bad config" in info.value.log_tail
    finally:
        service.close()


def test_local_service_retries_on_port_conflict(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    taken = blocker.getsockname()[1]
    picks = iter([[taken]])
    real = LocalProcessService._allocate_ports

    def allocate(self: LocalProcessService[Any]) -> dict[str, int]:
        try:
            return dict(zip(self.port_names, next(picks), strict=True))
        except StopIteration:
            return real(self)

    monkeypatch.setattr(LocalProcessService, "_allocate_ports", allocate)
    service = _HttpService()
    try:
        endpoint = service.start()
        assert service.ports["port"] != taken
        assert endpoint.endswith(str(service.ports["port"]))
    finally:
        service.close()
        blocker.close()


def test_children_die_when_the_harness_is_killed(tmp_path: Path) -> None:
    """``kill -9`` of the process running the harness must take servers with it."""
    script = tmp_path / "harness.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys, time
            sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
            from tests.test_harness_providers import _HttpService
            service = _HttpService()
            service.start()
            print(service._proc.pid, flush=True)
            time.sleep(60)
            """
        )
    )
    harness = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert harness.stdout is not None
        child = int(harness.stdout.readline())
        os.kill(harness.pid, signal.SIGKILL)
        harness.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _alive(child):
            time.sleep(0.1)
        assert not _alive(child), "server outlived the killed harness"
    finally:
        harness.kill()
        _sweep_stale_workdirs()  # the killed harness could not remove its work dir


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return False
    return state != "Z"
