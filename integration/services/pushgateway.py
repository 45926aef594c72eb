"""Prometheus Pushgateway from Debian's package (its Go module is not served here)."""

from __future__ import annotations

from pathlib import Path

import requests

from .base import LocalProcessService, ServiceError
from .debian import unpack_deb

__all__ = ["PUSHGATEWAY_PACKAGE", "PUSHGATEWAY_VERSION", "PushgatewayService", "install_pushgateway"]

PUSHGATEWAY_PACKAGE = "prometheus-pushgateway"
PUSHGATEWAY_VERSION = "1.5.1-2+b5"


class PushgatewayService(LocalProcessService[str]):
    """One Pushgateway on 127.0.0.1, in memory (no persistence file); its endpoint is its base URL."""

    name = "pushgateway"
    version = PUSHGATEWAY_VERSION.replace("+", "_")
    start_timeout = 30.0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['port']}"

    def _install_into(self, target: Path, log: Path) -> None:
        unpack_deb(PUSHGATEWAY_PACKAGE, PUSHGATEWAY_VERSION, target, log)

    def _command(self) -> list[str]:
        assert self.home is not None
        return [
            str(self.home / "root/usr/bin/prometheus-pushgateway"),
            f"--web.listen-address=127.0.0.1:{self.ports['port']}",
        ]

    def _probe(self) -> None:
        response = requests.get(f"{self.endpoint}/-/ready", timeout=2)
        if response.status_code != 200:
            raise ServiceError(f"{self.endpoint}/-/ready answered {response.status_code}")


def install_pushgateway() -> Path:
    """Unpack the Pushgateway into the cache (once); its install directory."""
    service = PushgatewayService()
    service.install()
    assert service.home is not None
    return service.home
