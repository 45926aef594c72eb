"""The exit-status contract of ``kafka-backup``, in one place: what each outcome and error exits with.

Exit 0 on success, 1 on error, 2 on a usage error (as the original tool),
130 after Ctrl-C outside a backup (the shell's convention). A command
returns :data:`EXIT_OK` or :data:`EXIT_ERROR` for what it found (a failed
validation is a result, not an exception); an exception escaping a command
is mapped here alone, by :func:`error_status`, and worded by
:func:`describe_error`. Every error libkb raises is a
:class:`~libkb.errors.LibkbError` (the library turns Kafka's and the storage
services' exceptions into those at its boundaries), so its message is shown
as it is.
"""

from __future__ import annotations

from libkb.errors import LibkbError

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130
#: A second SIGINT/SIGTERM during a backup: leave at once (storage stays consistent).
EXIT_FORCED = EXIT_ERROR


def error_status(exc: BaseException) -> int:
    """The exit status for an exception that escaped a command."""
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    return EXIT_ERROR


def describe_error(exc: BaseException) -> str:
    """One line saying what went wrong, without Python internals where we know better."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if isinstance(exc, LibkbError):
        return str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror}{where}"
    return f"unexpected {type(exc).__name__}: {exc} (run with -vv for the traceback)"
