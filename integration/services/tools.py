"""Command-line tools the deployment tests run: helm (from its Go module) and promtool (Debian's).

Cached by version in the install cache like the services, and installed by
``python -m integration.services install`` so a broken install fails early.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .base import ServiceError, cached_install, run_logged
from .debian import debian_program

__all__ = ["HELM_MODULE", "HELM_VERSION", "PROMETHEUS_VERSION", "TOOLS", "helm", "promtool"]

HELM_MODULE = "helm.sh/helm/v4/cmd/helm"
HELM_VERSION = "v4.3.2"
#: Debian's ``prometheus`` package, which carries promtool.
PROMETHEUS_VERSION = "2.42.0+ds-5+deb12u1"


def _build_helm(target: Path, log: Path) -> None:
    go = shutil.which("go")
    if not go:
        raise ServiceError("go not found: the Go toolchain is needed to build helm")
    env = {"GOBIN": str(target / "bin"), "GOTOOLCHAIN": "local", "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"}
    command = [go, "install", "-trimpath", f"{HELM_MODULE}@{HELM_VERSION}"]
    run_logged(command, log, cwd=target, env=env, timeout=1800)


def helm() -> Path:
    """The helm binary (built once with ``go install``)."""
    path = cached_install("helm", HELM_VERSION, _build_helm) / "bin" / "helm"
    if not path.is_file():
        raise ServiceError(f"helm is missing from its install ({path})")
    return path


def promtool() -> Path:
    """promtool from Debian's prometheus package (unpacked once)."""
    return debian_program("prometheus", PROMETHEUS_VERSION, "promtool")


#: Name -> installer, for ``python -m integration.services install``.
TOOLS = {"helm": helm, "promtool": promtool}
