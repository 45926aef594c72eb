"""The sdist and wheel as ``python -m build`` makes them, cached by the content of the sources.

Why cached: a build in an isolated environment downloads setuptools and
compiles the C extensions (a minute on a busy machine), and a clean-venv
install downloads every dependency. The build tools live in a venv cached by
their pinned versions, the runtime dependencies in a wheelhouse cached by the
dependency list, and the distributions by a digest of every file that goes
into them, so an unchanged tree costs nothing and a changed one only the
compile.
"""

from __future__ import annotations

import ast
import hashlib
import shutil
import sys
import time
import tomllib
from pathlib import Path

from integration.services.base import cached_install, run_logged

ROOT = Path(__file__).resolve().parent.parent
#: What ``pyproject.toml`` asks of the build backend, pinned so the cached build venv has one name.
BUILD_TOOLS = ("setuptools==80.9.0", "wheel==0.48.0", "build==1.6.1", "twine==7.0.0")
#: What the distributions are made of (the sdist also carries tests/, which leave the wheel alone).
_INPUTS = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.rst", "LICENSE", "CHANGELOG.rst", "libkb")


def project_version() -> str:
    """The version, from the one place it is written (``pyproject.toml`` reads it from there too)."""
    tree = ast.parse((ROOT / "libkb" / "version.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__version__" for t in node.targets):
            return str(ast.literal_eval(node.value))
    raise LookupError("libkb/version.py sets no __version__")


def source_digest() -> str:
    """A digest of every file the wheel is built from (compiled extensions and caches left out)."""
    digest = hashlib.sha256()
    for name in _INPUTS:
        path = ROOT / name
        files = sorted(path.rglob("*")) if path.is_dir() else [path]
        for item in files:
            if not item.is_file() or item.suffix in (".so", ".pyc") or "__pycache__" in item.parts:
                continue
            digest.update(str(item.relative_to(ROOT)).encode() + b"\0" + item.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def build_tools() -> Path:
    """A venv with the pinned build tools (cached): its ``bin/python``."""

    def install(target: Path, log: Path) -> None:
        run_logged([sys.executable, "-m", "venv", str(target / "venv")], log)
        run_logged([str(target / "venv/bin/python"), "-m", "pip", "install", "-q", *BUILD_TOOLS], log)

    return cached_install("pybuild", hashlib.sha256(" ".join(BUILD_TOOLS).encode()).hexdigest()[:12], install)


def built_dist() -> Path:
    """A directory with the sdist and the wheel of the current sources, both passed by ``twine check``."""
    python = build_tools() / "venv/bin/python"

    def install(target: Path, log: Path) -> None:
        out = target / "dist"
        # No isolation: the cached venv already has exactly the backend pyproject.toml asks for.
        run_logged([str(python), "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)], log)
        run_logged([str(python), "-m", "twine", "check", "--strict", *map(str, sorted(out.iterdir()))], log)

    built = cached_install("libkb-dist", f"{project_version()}-{source_digest()}", install)
    _forget_old_builds(built)
    return built / "dist"


def _forget_old_builds(keep: Path, max_age_secs: float = 86400.0) -> None:
    """Remove builds of other source trees older than a day: each commit would otherwise add one."""
    now = time.time()
    for old in keep.parent.glob("libkb-dist-*"):
        if old != keep and now - old.stat().st_mtime > max_age_secs:
            shutil.rmtree(old, ignore_errors=True)


def wheelhouse(wheel: Path) -> Path:
    """The wheel's runtime dependencies as wheels (cached by the dependency list), for offline installs."""
    with open(ROOT / "pyproject.toml", "rb") as handle:
        deps = tomllib.load(handle)["project"]["dependencies"]
    key = hashlib.sha256("\n".join(sorted(deps)).encode()).hexdigest()[:12]
    python = build_tools() / "venv/bin/python"

    def install(target: Path, log: Path) -> None:
        run_logged([str(python), "-m", "pip", "download", "-q", "-d", str(target), *deps], log)

    return cached_install("libkb-wheelhouse", key, install)
