"""Logging for the command line: libkb's own messages at INFO by default, to stderr.

``-v`` shows libkb's debug messages, ``-vv`` everyone's (librdkafka,
Libcloud) plus tracebacks of errors; ``--log-level`` sets libkb's level
exactly. Third-party loggers (``librdkafka``, ``azure.*``, ``urllib3``,
``botocore``, ...) are silent by default: a failure is the one error line
libkb prints, not a dozen lines of a library's retries. ``-v`` (or
``--log-level debug``) shows their warnings, ``-vv`` everything.

A job file's ``logging`` block (the original tool's) is applied once the file
is loaded (:func:`apply_job_logging`): its ``format: json`` writes one JSON
object per line; its ``level`` applies unless ``-v``/``-vv``/``--log-level``
was given, and its ``format`` unless ``--log-format`` was, which win (a flag
is what the operator typed for this run). The job's secrets are masked in
every line, whatever the format; in JSON the final error line is an object too.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import IO

from libkb.config.models import LoggingOptions
from libkb.ops.health import redact

LEVELS = ("debug", "info", "warning", "error", "critical")
_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class _State:
    """What :func:`configure` decided, for :func:`apply_job_logging` to respect."""

    flags_given = False
    format_given = False
    json = False
    backup_id: str | None = None
    secrets: tuple[str, ...] = ()
    handler: logging.Handler | None = None
    said: set[str] = set()  # what first_time() has seen; reset by unconfigure


def configure(
    verbosity: int, level: str | None = None, stream: IO[str] | None = None, fmt: str | None = None
) -> None:
    """Send log records to ``stream`` (stderr), replacing a handler an earlier call installed.

    ``fmt`` is ``--log-format`` (``text`` or ``json``); None leaves it to the job file.
    """
    handler = ConsoleHandler(stream or sys.stderr)
    unconfigure()  # main() may run more than once in one process (tests)
    handler.libkb_cli = True  # type: ignore[attr-defined]
    handler.addFilter(RepeatFilter(("libkb.kafka", "librdkafka")))
    logging.getLogger().addHandler(handler)
    _State.handler = handler
    _State.flags_given = verbosity > 0 or level is not None
    _State.format_given = fmt is not None
    _set_format(fmt or "text")
    _set_levels(verbosity, level)


def _set_format(fmt: str) -> None:
    _State.json = fmt == "json"
    if _State.handler is not None:
        formatter = JsonFormatter() if _State.json else TextFormatter(_FORMAT, "%Y-%m-%dT%H:%M:%S")
        _State.handler.setFormatter(formatter)


def _set_levels(verbosity: int, level: str | None) -> None:
    if level is not None:
        ours = getattr(logging, level.upper())
    else:
        ours = logging.DEBUG if verbosity >= 1 else logging.INFO
    logging.getLogger().setLevel(_third_party_level(verbosity, level))
    logging.getLogger("libkb").setLevel(ours)


def _third_party_level(verbosity: int, level: str | None) -> int:
    """Everyone else's loggers: only their critical lines by default (see the module docstring)."""
    if verbosity >= 2:
        return logging.DEBUG
    if verbosity >= 1 or level == "debug":
        return logging.WARNING
    return logging.CRITICAL


def apply_job_logging(options: LoggingOptions, *, backup_id: str | None, secrets: Iterable[str] = ()) -> None:
    """Apply a job file's ``logging`` block, and name its backup and secrets to the formatters."""
    _State.backup_id = backup_id
    # Longest first, so a secret containing another is masked whole.
    _State.secrets = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))
    if not _State.format_given:
        _set_format(options.format)
    if options.level is not None and not _State.flags_given:
        if options.level == "trace":  # the original tool's finest level: everyone's debug, as -vv
            _set_levels(2, None)
        else:
            _set_levels(0, options.level)


def unconfigure() -> None:
    """Remove the handler :func:`configure` installed, its levels, and the job it was told about."""
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "libkb_cli", False):
            root.removeHandler(old)
            root.setLevel(logging.WARNING)  # the logging module's own defaults
            logging.getLogger("libkb").setLevel(logging.NOTSET)
    _State.handler = None
    _State.backup_id = None
    _State.secrets = ()
    _State.flags_given = False
    _State.format_given = False
    _State.json = False
    _State.said = set()


def first_time(message: str) -> bool:
    """Whether ``message`` is said for the first time since logging was configured (then remembered).

    A command that loads its job file twice (``three-phase-restore``) warns about its keys once.
    """
    if message in _State.said:
        return False
    _State.said.add(message)
    return True


def mask(text: str) -> str:
    """``text`` with every secret of the job replaced by ``***``."""
    return redact(text, _State.secrets)


class TextFormatter(logging.Formatter):
    """The usual ``time level logger: message`` line, secrets masked."""

    def format(self, record: logging.LogRecord) -> str:
        return mask(super().format(record))


#: A log record's own attributes; any other one came from ``extra=`` and is a field of its JSON line.
_RECORD_KEYS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def json_line(level: str, logger: str, message: str, created: float, **fields: object) -> str:
    """One JSON log object: time (UTC), level, logger, message, backup_id (once known), ``fields``."""
    moment = datetime.fromtimestamp(created, UTC)
    entry: dict[str, object] = {
        "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": level,
        "logger": logger,
        "message": mask(message),
    }
    if _State.backup_id is not None:
        entry["backup_id"] = _State.backup_id
    for key, value in fields.items():
        plain = value is None or isinstance(value, bool | int | float)
        entry.setdefault(key, value if plain else mask(str(value)))
    return json.dumps(entry, ensure_ascii=False)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, backup_id, ``extra=`` fields, exception.

    Fields passed with ``extra=`` (topic, partition, ...) become keys a log
    pipeline filters on; string values are masked like the message.
    """

    def format(self, record: logging.LogRecord) -> str:
        fields = {k: v for k, v in vars(record).items() if k not in _RECORD_KEYS and not k.startswith("_")}
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        return json_line(record.levelname, record.name, record.getMessage(), record.created, **fields)


class ConsoleHandler(logging.StreamHandler):  # type: ignore[type-arg]  # generic only in typeshed
    """On a terminal, write through ``tqdm.write`` so log lines do not tear the progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            isatty = getattr(self.stream, "isatty", None)
            if isatty is None or not isatty():
                super().emit(record)
                return
            from tqdm import tqdm  # type: ignore[import-untyped,unused-ignore]

            tqdm.write(self.format(record), file=self.stream)
        except Exception:
            self.handleError(record)


class RepeatFilter(logging.Filter):
    """Let an identical message of the named loggers through once per ``window_secs``.

    While a broker is down librdkafka logs the same connection failure
    several times a second from every client; an operator needs it once, and
    then how often it repeated.
    """

    def __init__(
        self, loggers: tuple[str, ...], window_secs: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.loggers = loggers
        self.window_secs = window_secs
        self._clock = clock
        self._seen: dict[tuple[str, int, str], list[float]] = {}  # key -> [last shown, suppressed]
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self.loggers):
            return True
        key = (record.name, record.levelno, record.getMessage())
        now = self._clock()
        with self._lock:
            seen = self._seen.get(key)
            if seen is not None and now - seen[0] < self.window_secs:
                seen[1] += 1
                return False
            suppressed = int(seen[1]) if seen else 0
            self._seen[key] = [now, 0]
            if len(self._seen) > 1000:
                self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self.window_secs}
        if suppressed:
            record.msg = f"{record.getMessage()} (repeated {suppressed} times)"
            record.args = None
        return True


PROG = "kafka-backup"


def error_line(message: str, stream: IO[str] | None = None) -> None:
    """The one line an operator reads when a command fails (always shown, whatever the log level)."""
    if _State.json:
        line = json_line("ERROR", PROG, message, time.time())
    else:
        line = f"{PROG}: error: {mask(message)}"
    print(line, file=stream or sys.stderr, flush=True)
