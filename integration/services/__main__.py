"""Command line: ``python -m integration.services {up,install,images} [SERVICE ...]``.

``up`` starts the named services (default: all), prints ``export`` lines for
the ``external`` provider on stdout and runs until Ctrl-C or SIGTERM.
``install`` fills the install cache (CI runs it to warm its cache);
``images`` builds the docker provider's local images from it (with
``--libkb``, libkb's own image from ``deploy/Dockerfile`` too).
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from .base import Service, ServiceError, cache_root
from .providers import (
    LOCAL_SERVICES,
    SERVICE_NAMES,
    canonical_name,
    endpoint_env,
    prepared_service,
    select_provider,
)
from .pushgateway import install_pushgateway
from .tools import TOOLS

#: Installed by ``install`` (by default too) but not run by ``up``: the deployment tests' programs.
EXTRAS: dict[str, Callable[[], object]] = {
    "pushgateway": install_pushgateway,
    **TOOLS,
}


def _names(raw: list[str], extras: bool = False) -> list[str]:
    default = [*SERVICE_NAMES, *EXTRAS] if extras else list(SERVICE_NAMES)
    names = [n if extras and n in EXTRAS else canonical_name(n) for n in raw] or default
    return list(dict.fromkeys(names))


def _err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cmd_install(names: list[str]) -> int:
    """Install (or confirm cached) every named local service."""
    failed = 0
    _err(f"install cache: {cache_root()}")
    for name in names:
        started = time.monotonic()
        try:
            if name in EXTRAS:
                where = EXTRAS[name]()
                _err(f"{name}: ready in {time.monotonic() - started:.1f}s ({where})")
                continue
            service = LOCAL_SERVICES[name]()
            service.install()
        except ServiceError as exc:
            failed += 1
            _err(f"{name}: FAILED after {time.monotonic() - started:.1f}s\n{exc.describe()}")
            continue
        home = getattr(service, "home", None)
        _err(f"{name} {service.version}: ready in {time.monotonic() - started:.1f}s ({home})")
    return 1 if failed else 0


def _build_image(name: str, build: Any) -> bool:
    """Run ``build()`` (returns the tag), reporting the time or the failure with its log."""
    started = time.monotonic()
    try:
        tag = build()
    except ServiceError as exc:
        _err(f"{name}: image FAILED after {time.monotonic() - started:.1f}s\n{exc.describe()}")
        return False
    _err(f"{name}: {tag} ready in {time.monotonic() - started:.1f}s")
    return True


def cmd_images(names: list[str], libkb: bool = False) -> int:
    """Build (or confirm cached) the docker provider's local images, and libkb's if asked."""
    from .app_image import ensure_libkb_image
    from .docker import image_source
    from .images import ensure_image

    failed = 0 if not libkb or _build_image("kafka-backup", ensure_libkb_image) else 1

    if image_source() == "official":
        _err("LIBKB_DOCKER_IMAGES=official: no service image to build (the official images are pulled)")
        return failed
    for name in names:
        failed += 0 if _build_image(name, lambda name=name: ensure_image(name)) else 1
    return 1 if failed else 0


class _Stop(Exception):
    pass


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def cmd_up(names: list[str], provider: str | None, env_file: Path | None) -> int:
    """Start services, print their endpoints, wait for a signal, stop them."""
    services: list[Service[Any]] = []
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    lines: list[str] = []
    try:
        for name in names:
            chosen = provider or select_provider(name)
            if chosen == "external":
                _err(f"{name}: provider is 'external', nothing to start (use --provider local)")
                return 2
            service = prepared_service(name, provider=provider) if provider else prepared_service(name)
            services.append(service)
            started = time.monotonic()
            endpoint = service.start()
            _err(f"{name} ({service.provider}) up in {time.monotonic() - started:.1f}s: {endpoint}")
            lines += [f"export {k}={shlex.quote(v)}" for k, v in endpoint_env(name, endpoint).items()]
        print("\n".join(lines), flush=True)
        if env_file:
            env_file.write_text("\n".join(lines) + "\n")
            _err(f"wrote {env_file}")
        _err("services running; press Ctrl-C to stop")
        dead: set[str] = set()
        while True:
            time.sleep(1)
            for service in services:
                if not service.running and service.name not in dead:
                    dead.add(service.name)
                    _err(f"warning: {service.name} stopped unexpectedly\n{service.log_tail()}")
    except _Stop:
        _err("stopping services")
        return 0
    except ServiceError as exc:
        _err(f"failed: {exc.describe()}")
        return 1
    except Exception as exc:  # e.g. no Docker engine for --provider docker
        _err(f"failed: {exc!r}")
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for service in reversed(services):
            try:
                service.close()
            except Exception as exc:
                _err(f"warning: closing {service.name}: {exc}")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(prog="python -m integration.services", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start services and keep them running until Ctrl-C")
    up.add_argument("services", nargs="*", help=f"any of {', '.join(SERVICE_NAMES)} (default all)")
    up.add_argument("--provider", choices=("local", "docker"), help="override provider selection")
    up.add_argument("--env-file", type=Path, help="also write the export lines to this file")
    install = sub.add_parser("install", help="pre-install the local services into the cache")
    install.add_argument("services", nargs="*", help="default all, with pushgateway, helm and promtool")
    images = sub.add_parser("images", help="build the docker provider's local images (cached by version)")
    images.add_argument("services", nargs="*", help="default all")
    images.add_argument("--libkb", action="store_true", help="also libkb's image (deploy/Dockerfile)")
    args = parser.parse_args(argv)
    try:
        names = _names(args.services, extras=args.command == "install")
    except ValueError as exc:
        parser.error(str(exc))
    if args.command == "install":
        return cmd_install(names)
    if args.command == "images":
        return cmd_images(names, args.libkb)
    return cmd_up(names, args.provider, args.env_file)


if __name__ == "__main__":
    sys.exit(main())
