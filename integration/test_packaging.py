"""The built distributions, as a PyPI user gets them: a wheel installed into a clean venv works.

The wheel and sdist come from ``python -m build`` (``integration/dist.py``,
cached by the sources' digest) and pass ``twine check --strict``; the wheel is
installed into a new venv with no access to this checkout, from a cached
wheelhouse of its dependencies, and run from a directory outside the tree.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from integration.dist import built_dist, project_version, wheelhouse
from integration.services import ServiceError

pytestmark = pytest.mark.packaging

ROUND_TRIP = """
import libkb.format._packer, libkb.format._rustrec  # the C extensions are in the wheel
from libkb.format.packer import ACCELERATED
from libkb.format.segment import SegmentReader, encode_segment
from libkb.storage import MemoryConfig, create_backend_from_config

assert ACCELERATED, "the wheel's C packer is not in use"
records = [(i, 1700000000000 + i, 0, b"k%d" % i, None if i == 3 else b"v" * i, [("h", b"1"), ("h", None)])
           for i in range(50)]
with create_backend_from_config(MemoryConfig(prefix="ci")) as backend:
    backend.put("orders/0/segment", encode_segment("orders", 0, 0, 50, records))
    reader = SegmentReader(backend.get("orders/0/segment"))
    reader.verify()
    assert list(reader.records()) == records, "records differ after the round trip"
    assert backend.list("orders/") == ["orders/0/segment"]
print("round trip ok", len(records))
"""


@pytest.fixture(scope="module")
def dist() -> Path:
    try:
        return built_dist()
    except ServiceError as exc:  # a build failure is a test failure, with its log
        pytest.fail(exc.describe())


@pytest.fixture(scope="module")
def installed(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding only the wheel and its dependencies: its ``bin`` directory."""
    (wheel,) = dist.glob("*.whl")
    try:
        house = wheelhouse(wheel)
    except ServiceError as exc:
        pytest.fail(exc.describe())
    venv = tmp_path_factory.mktemp("clean-venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin/python"), "-m", "pip", "install", "-q", "--no-index", "--find-links", str(house)]
    subprocess.run([*pip, str(wheel)], check=True, timeout=300)
    return venv / "bin"


def _run(args: list[str], cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_sdist_and_wheel_carry_the_license_and_the_c_sources(dist: Path) -> None:
    version = project_version()
    (wheel,) = dist.glob(f"libkb-{version}-*.whl")
    (sdist,) = dist.glob(f"libkb-{version}.tar.gz")
    names = zipfile.ZipFile(wheel).namelist()
    assert f"libkb-{version}.dist-info/licenses/LICENSE" in names
    assert any(n.startswith("libkb/format/_packer.") and n.endswith(".so") for n in names)
    assert any(n.startswith("libkb/format/_rustrec.") and n.endswith(".so") for n in names)
    with tarfile.open(sdist) as tar:
        members = set(tar.getnames())
    for name in ("LICENSE", "CHANGELOG.rst", "setup.py", "libkb/format/_packer.c", "libkb/format/_rustrec.c"):
        assert f"libkb-{version}/{name}" in members
    assert not any(m.endswith(".so") for m in members), "a compiled extension leaked into the sdist"


def test_the_installed_command_reports_the_project_version(installed: Path, tmp_path: Path) -> None:
    out = _run([str(installed / "kafka-backup"), "--version"], tmp_path)
    assert out.strip() == f"kafka-backup (libkb) {project_version()}"


def test_the_installed_wheel_round_trips_records_through_the_memory_backend(
    installed: Path, tmp_path: Path
) -> None:
    # -I: the clean venv's own site-packages only, never this checkout.
    out = _run([str(installed / "python"), "-I", "-c", ROUND_TRIP], tmp_path)
    assert out.strip() == "round trip ok 50"
    where = _run([str(installed / "python"), "-I", "-c", "import libkb; print(libkb.__file__)"], tmp_path)
    assert where.startswith(str(installed.parent))
