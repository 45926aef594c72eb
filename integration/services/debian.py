"""Programs taken from Debian packages, unpacked into the install cache (no root, no system change).

Why not ``apt-get install``: the suite must not change the machine it runs
on, and the cache must hold one directory per pinned package version, like
every other service. ``apt-get download`` fetches the exact ``.deb`` and
``dpkg-deb -x`` unpacks it; the package's Go programs are static, so they
run from there without their dependencies.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .base import ServiceError, cached_install, run_logged

__all__ = ["debian_program", "unpack_deb"]


def unpack_deb(package: str, version: str, target: Path, log: Path) -> None:
    """Fetch Debian's ``package`` at exactly ``version`` and unpack it under ``target/root``."""
    apt_get = shutil.which("apt-get")
    if not apt_get or not shutil.which("dpkg-deb"):
        raise ServiceError(f"apt-get and dpkg-deb are needed to fetch Debian's {package} {version}")
    download = [apt_get, "download", f"{package}={version}"]
    try:
        run_logged(download, log, cwd=target, timeout=600)
    except ServiceError:  # a fresh machine may have no package lists yet
        run_logged([apt_get, "update", "-q"], log, timeout=600)
        run_logged(download, log, cwd=target, timeout=600)
    (deb,) = target.glob(f"{package}_*.deb")
    run_logged(["dpkg-deb", "-x", str(deb), str(target / "root")], log)
    deb.unlink()


def debian_program(package: str, version: str, program: str) -> Path:
    """``/usr/bin/<program>`` of Debian's ``package`` at exactly ``version``, unpacked once into the cache."""
    home = cached_install(
        f"deb-{package}", version.replace("+", "_"), lambda t, log: unpack_deb(package, version, t, log)
    )
    path = home / "root" / "usr" / "bin" / program
    if not path.is_file():
        raise ServiceError(f"{program} is missing from Debian's {package} {version} ({path})")
    return path
