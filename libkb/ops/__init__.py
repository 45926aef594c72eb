"""Running libkb as a service: the HTTP endpoints for Prometheus and Kubernetes probes."""

from typing import Any

from libkb.ops.health import CheckRunner, Component, HealthModel, Watchdog
from libkb.ops.server import OpsServer

_STATUS = ("JobUnreachableError", "LiveStatus", "live_status")


def __getattr__(name: str) -> Any:
    # The status client is ``kafka-backup status``'s; every run loads this package at its start.
    if name in _STATUS:
        from libkb.ops import status

        return getattr(status, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CheckRunner",
    "Component",
    "HealthModel",
    "JobUnreachableError",
    "LiveStatus",
    "OpsServer",
    "Watchdog",
    "live_status",
]
