"""``status``: a stored backup's lease and last run, and a running job's ops endpoint; ``--watch`` repeats.

Three ways to name what to look at, combinable:

- ``--path`` and ``--backup-id``: the backup as stored (:mod:`libkb.catalog.status`);
- ``--config FILE``: a job file; its ``metrics`` block gives the endpoint, and
  for a backup job its ``storage`` and ``backup_id`` give the stored backup;
- ``--url http://host:port``: an endpoint directly.

Nothing is written: the storage is opened with ``create=False`` and the
endpoint is only read. Exit 0 when everything asked for answered, 1 when
the backup is not there or the endpoint does not answer. ``--watch``
refreshes every ``--interval`` seconds until SIGINT or SIGTERM, then exits 0;
a failure after the first refresh is shown and retried.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import IO, Any

from libkb.catalog import iso_ms
from libkb.catalog.status import BackupStatus, backup_status
from libkb.cli.jobfile import load_job
from libkb.cli.logs import error_line
from libkb.cli.render import dump
from libkb.cli.status_text import backup_lines, live_lines
from libkb.errors import ConfigError, LibkbError
from libkb.ops.status import JobUnreachableError, LiveStatus, live_status
from libkb.storage import StorageBackend, create_backend_from_config, open_backend

log = logging.getLogger("libkb.cli")

_CLEAR = "\x1b[2J\x1b[H"


@dataclass(slots=True)
class StatusView:
    """One refresh: what answered, and what did not (``errors``)."""

    backup: BackupStatus | None = None
    live: LiveStatus | None = None
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checked_ms: int = field(default_factory=lambda: int(time.time() * 1000))

    def to_dict(self) -> dict[str, Any]:
        return {
            "checked": iso_ms(self.checked_ms),
            "backup": self.backup.to_dict() if self.backup else None,
            "job": self.live.to_dict() if self.live else None,
            "errors": self.errors,
            "notes": self.notes,
        }


@dataclass(slots=True)
class StatusSource:
    """Where one refresh looks: a stored backup, an endpoint, or both."""

    backend: StorageBackend | None = None
    backup_id: str | None = None
    location: str | None = None
    url: str | None = None
    metrics_path: str = "/metrics"
    notes: list[str] = field(default_factory=list)

    def gather(self) -> StatusView:
        """One refresh. A missing backup raises (nothing to show); an endpoint that is down is an error."""
        view = StatusView(notes=list(self.notes))
        if self.backend is not None and self.backup_id is not None:
            view.backup = backup_status(self.backend, self.backup_id, self.location)
        if self.url is not None:
            try:
                view.live = live_status(self.url, metrics_path=self.metrics_path, backup_id=self.backup_id)
            except JobUnreachableError as exc:
                view.errors.append(str(exc))
        return view

    def close(self) -> None:
        if self.backend is not None:
            self.backend.close()


def status_source(
    path: str | None, backup_id: str | None, config_path: str | None, url: str | None
) -> StatusSource:
    """What to look at, from the flags; a usage mistake is a :class:`ConfigError` naming the flag."""
    if config_path is None and url is None and (path is None or backup_id is None):
        raise ConfigError(
            "say what to look at: --path and --backup-id (a stored backup), --config (a job file), "
            "or --url (a running job's ops endpoint)",
            key="--path" if path is None else "--backup-id",
        )
    source = StatusSource(url=url.rstrip("/") if url else None)
    if config_path is not None:
        _from_config(source, config_path)
    if path is not None:
        if backup_id is None:
            raise ConfigError("--path needs --backup-id: the backup to look at", key="--backup-id")
        if source.backend is not None:
            source.backend.close()
        source.backend = open_backend(path, create=False)
        source.location = path
    if backup_id is not None:
        source.backup_id = backup_id
    return source


def _from_config(source: StatusSource, config_path: str) -> None:
    config = load_job(config_path)
    if config.mode == "backup":
        source.backend = create_backend_from_config(config.storage, create=False)
        source.backup_id = config.backup_id
        source.location = f"the storage of {config_path}"
    metrics = config.metrics
    if source.url is None and metrics.enabled:
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(
            metrics.bind_address, metrics.bind_address
        )
        source.url = f"http://{f'[{host}]' if ':' in host else host}:{metrics.port}"
        source.metrics_path = metrics.path
    elif source.url is None:
        source.notes.append(f"{config_path} has no metrics enabled: its job serves no endpoint to ask")


def run_status(
    path: str | None,
    backup_id: str | None,
    config_path: str | None,
    url: str | None,
    *,
    fmt: str = "text",
    watch: bool = False,
    interval: float = 2.0,
    db_path: str | None = None,
    out: IO[str] | None = None,
) -> int:
    if db_path is not None:
        log.warning(
            "--db-path %s: not used: libkb keeps no offset database; the status comes from the backup's "
            "lease and manifest",
            db_path,
        )
    stdout = out or sys.stdout
    source = status_source(path, backup_id, config_path, url)
    try:
        if watch:
            return _watch(source, fmt, interval, stdout)
        view = source.gather()
        print(render(view, fmt), file=stdout, flush=True)
        for message in view.errors:
            error_line(message)
        return 1 if view.errors else 0
    finally:
        source.close()


def render(view: StatusView, fmt: str, *, watching: float | None = None) -> str:
    if fmt == "json" and watching is not None:
        return json.dumps(view.to_dict())  # one object per line while watching
    if fmt != "text":
        return dump(view.to_dict(), fmt)
    lines = []
    if view.backup is not None:
        lines += backup_lines(view.backup)
    if view.live is not None:
        lines += live_lines(view.live)
    lines += [f"Note:        {n}" for n in view.notes]
    if watching is not None:  # else the errors go to stderr, once
        lines += [f"Error:       {e}" for e in view.errors]
        lines.append(f"Checked:     {iso_ms(view.checked_ms)}, every {watching:g}s; Ctrl-C to stop")
    return "\n".join(lines)


def _watch(source: StatusSource, fmt: str, interval: float, out: IO[str]) -> int:
    """Refresh until a signal; the first refresh must succeed, later failures are shown and retried."""
    view = source.gather()
    if view.errors:
        print(render(view, fmt), file=out, flush=True)
        for message in view.errors:
            error_line(message)
        return 1
    clear = fmt == "text" and out.isatty()
    with _stop_on_signal() as stop:
        while True:
            text = render(view, fmt, watching=interval)
            if clear:
                text = _CLEAR + text
            elif fmt == "yaml":
                text = "---\n" + text
            elif fmt == "text":
                text += "\n"
            print(text, file=out, flush=True)
            if stop.wait(interval):
                return 0
            try:
                view = source.gather()
            except LibkbError as exc:
                view = StatusView(errors=[str(exc)], notes=list(source.notes))


@contextmanager
def _stop_on_signal() -> Iterator[threading.Event]:
    """An event set by SIGINT or SIGTERM (Ctrl-C ends a watch cleanly); handlers restored after."""
    stop = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    if threading.current_thread() is not threading.main_thread():
        yield stop  # signals reach the main thread only; a caller elsewhere stops it otherwise
        return
    old = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
