"""Running libkb as a service: the HTTP endpoints for Prometheus and Kubernetes probes."""

from libkb.ops.health import CheckRunner, Component, HealthModel, Watchdog
from libkb.ops.server import OpsServer

__all__ = ["CheckRunner", "Component", "HealthModel", "OpsServer", "Watchdog"]
