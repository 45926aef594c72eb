"""Fixtures for the deployment artifacts' tests: libkb's image, built locally, and the docker CLI.

These tests need a Docker engine, so they run in CI's docker phase
(``LIBKB_SERVICES=docker``, ``scripts/test``); under another provider they
skip. In that phase, with ``CI=true``, an image that cannot be built fails
them with the end of the build log.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from integration.conftest import IN_CI
from integration.services import ServiceError, select_provider
from integration.services.app_image import ensure_libkb_image


def docker_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``docker ARGS`` as a user types it; output captured."""
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def libkb_image() -> str:
    """The tag of ``deploy/Dockerfile``'s image for the current sources."""
    if select_provider("kafka") != "docker":
        pytest.skip("needs a Docker engine: runs in CI's docker phase (LIBKB_SERVICES=docker)")
    problem = None if shutil.which("docker") else "the docker command is not installed"
    if problem is None:
        try:
            return ensure_libkb_image()
        except ServiceError as exc:
            problem = f"libkb's image could not be built: {exc.describe()}"
    if IN_CI:
        pytest.fail(problem, pytrace=False)
    pytest.skip(problem)


@pytest.fixture
def config_map(tmp_path: Path) -> Path:
    """A directory to mount read-only at /config, readable by the image's uid 10001 (like a ConfigMap)."""
    path = tmp_path / "config"
    path.mkdir()
    path.chmod(0o755)
    return path


def write_job(config_map: Path, name: str, text: str) -> None:
    job = config_map / name
    job.write_text(text)
    job.chmod(0o644)
