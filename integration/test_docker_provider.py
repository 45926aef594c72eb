"""The docker provider on a real engine: failures explain themselves, nothing is left behind.

Run by CI's docker phase (``LIBKB_SERVICES=docker``); under another provider
there is nothing of the docker provider to test, so they skip.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest

from integration.services import ServiceError, make_service, select_provider
from integration.services.docker import DockerService, reap_leftovers
from integration.services.images import LABEL

pytestmark = pytest.mark.docker


@pytest.fixture
def docker_client() -> Iterator[Any]:
    if select_provider("gcs") != "docker":
        pytest.skip("tests the docker provider: run with LIBKB_SERVICES=docker (CI's docker phase)")
    import docker

    client = docker.from_env(timeout=60)
    yield client
    client.close()


def _labelled(client: Any) -> set[str]:
    return {c.id for c in client.containers.list(all=True, filters={"label": LABEL})}


def test_a_container_that_cannot_start_fails_with_its_log(docker_client: Any) -> None:
    service = make_service("kafka", provider="docker", extra_properties={"process.roles": "nonsense"})
    try:
        with pytest.raises(ServiceError) as info:
            service.start()
        assert "container exited with code" in str(info.value)
        assert "process.roles" in info.value.log_tail  # Kafka's own complaint, from the container log
        assert "last lines of the log" in info.value.describe()
    finally:
        service.close()


def test_close_removes_the_container(docker_client: Any) -> None:
    service = make_service("gcs", provider="docker")
    assert isinstance(service, DockerService)
    service.start()
    assert service.container is not None
    container_id = service.container.get_wrapped_container().id
    assert container_id in _labelled(docker_client)
    service.close()
    assert container_id not in _labelled(docker_client)


_HARNESS = textwrap.dedent(
    """
    import sys, time
    from integration.services import make_service
    service = make_service("gcs", provider="docker")
    service.start()
    print(service.container.get_wrapped_container().id, flush=True)
    time.sleep(600)
    """
)


def test_containers_of_a_killed_session_are_reaped_by_the_next(docker_client: Any) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _HARNESS],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    try:
        assert proc.stdout is not None
        container_id = proc.stdout.readline().strip()
        assert container_id, "the harness process did not start its container"
    finally:
        proc.send_signal(signal.SIGKILL)  # no atexit, no cleanup of any kind
        proc.wait(timeout=30)
    assert container_id in _labelled(docker_client)  # left behind ...
    reap_leftovers(docker_client)  # ... until a session starts
    assert container_id not in _labelled(docker_client)


def test_a_failed_image_build_names_its_log(docker_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from integration.services import images

    broken = images.Recipe("gcs", "0-broken", "FROM scratch\nCOPY missing-file /x\n", lambda ctx, log: None)
    monkeypatch.setitem(images.RECIPES, "gcs", broken)
    with pytest.raises(ServiceError) as info:
        images.ensure_image("gcs")
    assert "docker build of libkb-test/gcs:0-broken failed" in str(info.value)
    assert "image-gcs-0-broken.build.log" in str(info.value)  # where the whole log is
    assert "missing-file" in info.value.log_tail
