"""A small threaded HTTP server for Prometheus scrapes and Kubernetes probes.

Routes: the configured metrics path (the registry it is given: a run's
:class:`~libkb.metrics.RunMetrics` registry, with the process collectors),
``/health`` (liveness) and ``/ready`` (readiness), both JSON from a :class:`~libkb.ops.health.HealthModel`.
Standard library only; each request runs on its own daemon thread, so a slow
scraper never blocks a probe.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from libkb.errors import ConfigError
from libkb.ops.health import HealthModel

log = logging.getLogger("libkb.ops")


class OpsServer:
    """Serve metrics and probes on ``host:port`` until :meth:`close` (port 0: any free port)."""

    def __init__(
        self,
        health: HealthModel,
        *,
        host: str = "127.0.0.1",
        port: int = 8080,
        metrics_path: str = "/metrics",
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.health = health
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics_path = metrics_path
        server_class = _IPv6Server if ":" in host else ThreadingHTTPServer
        try:
            self._httpd = server_class((host, port), _handler(self))
        except OSError as exc:
            raise ConfigError(
                f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}",
                key="metrics.port",
            ) from None
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}"

    def start(self) -> OpsServer:
        """Serve on a daemon thread (once: starting a started server does nothing)."""
        if self._thread is not None:
            return self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="libkb-ops-http",
            daemon=True,
        )
        self._thread.start()
        log.info("serving %s, /health and /ready on %s", self.metrics_path, self.url)
        return self

    def close(self) -> None:
        """Stop accepting, wait for the serving loop, release the port."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> OpsServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def respond(self, path: str) -> tuple[int, str, bytes]:
        """(status, content type, body) for a GET of ``path``."""
        route = path.split("?", 1)[0]
        if route == self.metrics_path:
            return 200, CONTENT_TYPE_LATEST, generate_latest(self.registry)
        if route == "/health":
            return _json(*self.health.liveness())
        if route == "/ready":
            return _json(*self.health.readiness())
        return (
            404,
            "text/plain; charset=utf-8",
            b"not found: try " + self.metrics_path.encode() + b", /health, /ready\n",
        )


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def _json(status: int, body: dict[str, Any]) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps(body, sort_keys=True).encode() + b"\n"


def _handler(server: OpsServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "libkb"

        def do_GET(self) -> None:
            self._answer(send_body=True)

        def do_HEAD(self) -> None:
            self._answer(send_body=False)

        def _answer(self, *, send_body: bool) -> None:
            try:
                status, content_type, body = server.respond(self.path)
            except Exception:
                log.exception("error answering %s", self.path)
                status, content_type, body = 500, "text/plain; charset=utf-8", b"internal error\n"
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if send_body:
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s %s", self.address_string(), format % args)

    return Handler
