"""libkb's own image (``deploy/Dockerfile``), built on local Debian Python bases.

Why local bases: no registry is reachable on CI machines, so the Dockerfile's
public defaults (``python:3.11-bookworm`` to build, ``python:3.11-slim-bookworm``
to run) are replaced through its build arguments by two images made with
``debootstrap`` from Debian's Python 3.11: ``libkb-test/python-build`` (with
gcc and the Python and zlib headers) and ``libkb-test/python-base``. The build
runs on the host's network so that pip reaches PyPI, and the build stage's
base trusts the CA certificates pip trusts on the host (``PIP_CERT``, else
Debian's bundle), so that it works behind a TLS-inspecting proxy too; none
of it reaches the runtime stage.

The image is tagged ``libkb-test/kafka-backup:<digest>``, the digest hashing
the Dockerfile, the files it copies and both bases: a warm run with unchanged
sources reuses it in well under a second; a change rebuilds it (pip's
dependency layer is reused unless pyproject.toml changed) and the older tags
are removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from .base import ServiceError, cache_root, file_lock, tail_file
from .images import IMAGE_PREFIX, LABEL, _build, _client, _present, base_image

__all__ = [
    "APP_REPOSITORY",
    "BUILDER_PACKAGES",
    "DOCKERFILE",
    "REPO_ROOT",
    "RUNTIME_PACKAGES",
    "ensure_libkb_image",
    "source_digest",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = "deploy/Dockerfile"
APP_REPOSITORY = f"{IMAGE_PREFIX}/kafka-backup"

RUNTIME_PACKAGES = ("python3", "ca-certificates")
"""What the runtime stage needs from its base: Python 3.11 (Debian bookworm's) and CA certificates."""
BUILDER_PACKAGES = (
    "python3",
    "python3-venv",
    "python3-dev",
    "gcc",
    "libc6-dev",
    "zlib1g-dev",
    "ca-certificates",
)
"""The build stage's extras: venv with pip, and a compiler with the headers of Python and zlib."""

_CONTEXT_FILES = ("deploy/Dockerfile", ".dockerignore", "pyproject.toml", "setup.py", "README.rst", "LICENSE")
_CONTEXT_GLOBS = ("CHANGELOG*",)
_SKIPPED_SUFFIXES = (".pyc", ".so")


def _context_files(root: Path) -> list[Path]:
    """The files the build sees (``.dockerignore``'s allow-list) plus the Dockerfile."""
    files = [root / name for name in _CONTEXT_FILES if (root / name).is_file()]
    files += sorted(path for pattern in _CONTEXT_GLOBS for path in root.glob(pattern) if path.is_file())
    for path in sorted((root / "libkb").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in _SKIPPED_SUFFIXES:
            files.append(path)
    return files


def source_digest(root: Path = REPO_ROOT) -> str:
    """A hash of every file that goes into the image (names and contents)."""
    digest = hashlib.sha256()
    for path in _context_files(root):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


_TRUST_DOCKERFILE = (
    "FROM {base}\nCOPY ca-certificates.crt /etc/ssl/certs/host-ca-certificates.crt\n"
    "ENV PIP_CERT=/etc/ssl/certs/host-ca-certificates.crt\n"
)


def _host_ca_bundle() -> Path | None:
    for candidate in (os.environ.get("PIP_CERT"), "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def _builder_image(client: Any) -> str:
    """The build stage's base: Debian's Python toolchain, trusting the host's CA certificates."""
    base = base_image("python-build", BUILDER_PACKAGES)
    bundle = _host_ca_bundle()
    if bundle is None:
        return base
    dockerfile = _TRUST_DOCKERFILE.format(base=base)
    key = hashlib.sha256(dockerfile.encode() + bundle.read_bytes()).hexdigest()[:16]
    tag = f"{IMAGE_PREFIX}/python-builder:{key}"
    if _present(client, tag, key):
        return tag
    log = cache_root() / "logs" / "image-python-builder.build.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(f"building {tag} from {base} with {bundle}\n")
    with tempfile.TemporaryDirectory(prefix="libkb-image-python-builder-", dir=cache_root()) as tmp:
        shutil.copyfile(bundle, Path(tmp) / "ca-certificates.crt")
        (Path(tmp) / "Dockerfile").write_text(dockerfile)
        _build(client, tag, Path(tmp), {LABEL: key}, log)
    return tag


def _remove_older(client: Any, keep: str) -> None:
    """Drop the images earlier sources built (one per source change would pile up)."""
    for image in client.images.list(name=APP_REPOSITORY):
        if keep not in image.tags:
            with contextlib.suppress(Exception):  # still used by a container (another session): kept
                client.images.remove(image.id)


def ensure_libkb_image(root: Path = REPO_ROOT) -> str:
    """The tag of the image ``root``'s ``deploy/Dockerfile`` builds from ``root``, built if missing.

    Raises :class:`ServiceError` naming the build log (with its last lines) on failure.
    """
    client = _client()
    builder = _builder_image(client)
    runtime = base_image("python-base", RUNTIME_PACKAGES)
    key = hashlib.sha256(f"{source_digest(root)}\0{builder}\0{runtime}".encode()).hexdigest()[:16]
    tag = f"{APP_REPOSITORY}:{key}"
    if _present(client, tag, key):
        return tag
    suffix = "" if root == REPO_ROOT else f"-{root.name}"  # another tree (a test's) keeps its own log
    log = cache_root() / "logs" / f"image-kafka-backup{suffix}.build.log"
    with file_lock(cache_root() / ".locks" / "image-kafka-backup.lock"):
        if _present(client, tag, key):
            return tag
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"building {tag} from {root / DOCKERFILE}\n")
        started = time.monotonic()
        try:
            _build(
                client,
                tag,
                root,
                {LABEL: key},
                log,
                dockerfile=DOCKERFILE,
                buildargs={"BUILDER_IMAGE": builder, "BASE_IMAGE": runtime},
                network_mode="host",
            )
        except ServiceError as exc:
            raise ServiceError(f"{exc} (full log: {log})", exc.log_tail or tail_file(log)) from exc
        except Exception as exc:
            raise ServiceError(f"building {tag} failed: {exc} (full log: {log})", tail_file(log)) from exc
        with open(log, "a", encoding="utf-8") as out:
            out.write(f"built {tag} in {time.monotonic() - started:.1f}s\n")
        _remove_older(client, tag)
    return tag
