"""Argument parsing and the exit-status contract of ``kafka-backup``.

Exit 0 on success, 1 on error, 2 on a usage error, as the original tool.
An error is one line on stderr; ``-vv`` adds the traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from confluent_kafka import KafkaException

from libkb.cli.logs import LEVELS, PROG, configure, error_line
from libkb.config.fields import parse_duration, parse_time
from libkb.errors import LibkbError
from libkb.version import __version__

log = logging.getLogger("libkb.cli")

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130  # Ctrl-C outside a backup: the shell's convention

Handler = Callable[[argparse.Namespace], int]


def _backup(args: argparse.Namespace) -> int:
    from libkb.cli.backup import run_backup  # the engine pulls in Kafka clients: load on demand

    return run_backup(args.config, liveness_timeout_secs=args.liveness_timeout)


def _list(args: argparse.Namespace) -> int:
    from libkb.cli.inspection import run_list

    return run_list(args.path, args.format, args.backup_id)


def _describe(args: argparse.Namespace) -> int:
    from libkb.cli.inspection import run_describe

    return run_describe(args.path, args.backup_id, args.format)


def _validate(args: argparse.Namespace) -> int:
    from libkb.cli.inspection import run_validate

    return run_validate(args.path, args.backup_id, args.deep, args.format)


def _prune(args: argparse.Namespace) -> int:
    from libkb.cli.prune import run_prune

    return run_prune(args)


def _restore(args: argparse.Namespace) -> int:
    from libkb.cli.restore import run_restore

    return run_restore(args.config, dry_run=args.dry_run, liveness_timeout_secs=args.liveness_timeout)


def _validate_restore(args: argparse.Namespace) -> int:
    from libkb.cli.restore import run_validate_restore

    return run_validate_restore(args.config, args.format)


def _show_offset_mapping(args: argparse.Namespace) -> int:
    from libkb.cli.restore import run_show_offset_mapping

    return run_show_offset_mapping(args.path, args.backup_id, args.restore_id, args.format)


def _offset_reset(args: argparse.Namespace) -> int:
    from libkb.cli.restore import run_offset_reset

    groups = [g.strip() for g in args.groups.split(",") if g.strip()] if args.groups else None
    return run_offset_reset(
        args.action,
        args.path,
        args.backup_id,
        groups,
        args.bootstrap_servers,
        args.restore_id,
        args.format,
        config_path=args.config,
    )


def _global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """-v and --log-level, accepted before or after the command name.

    On the sub-commands the defaults are suppressed, so an option given only
    before the command is not reset by the sub-parser.
    """
    default = (lambda v: v) if top else (lambda v: argparse.SUPPRESS)
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=default(0),
        help="more detail: -v libkb debug messages, -vv everything plus tracebacks",
    )
    parser.add_argument(
        "--log-level",
        type=str.lower,
        choices=LEVELS,
        default=default(None),
        help="libkb's log level (default info)",
    )


_PATH_HELP = (
    "where backups are stored: s3://, s3a://, azure://, az://, gcs://, gs://, file://, memory:// or a path"
)


class _Commands:
    """The sub-commands of a parser: each with the global options and its handler."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self._commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(self, name: str, handler: Handler, help: str) -> argparse.ArgumentParser:
        sub = self._commands.add_parser(name, help=help, description=help)
        _global_options(sub, top=False)
        sub.set_defaults(handler=handler)
        return sub


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Back up Kafka topics to object storage, inspect the backups, and restore them.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s (libkb) {__version__}")
    _global_options(parser, top=True)
    commands = _Commands(parser)
    _backup_command(commands)
    _inspection_commands(commands)
    _restore_commands(commands)
    _offset_commands(commands)
    _prune_command(commands)
    return parser


def _liveness_option(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--liveness-timeout",
        type=float,
        default=300.0,
        metavar="SECS",
        help="/health answers 503 when the run loop makes no progress for this long (default 300)",
    )


def _backup_options(sub: argparse.ArgumentParser) -> None:
    """--path and --backup-id: which stored backup."""
    sub.add_argument("--path", required=True, metavar="URL", help=_PATH_HELP)
    sub.add_argument("--backup-id", required=True, metavar="ID")


def _backup_command(commands: _Commands) -> None:
    backup = commands.add("backup", _backup, "run the backup a job config file describes")
    backup.add_argument("--config", required=True, metavar="FILE", help="the job's YAML config")
    _liveness_option(backup)


def _inspection_commands(commands: _Commands) -> None:
    lst = commands.add("list", _list, "list the backups stored at a location")
    lst.add_argument("--path", required=True, metavar="URL", help=_PATH_HELP)
    lst.add_argument("--backup-id", metavar="ID", help="show only this backup")
    lst.add_argument("--format", choices=("text", "json", "yaml"), default="text")

    describe = commands.add(
        "describe", _describe, "show a backup's topics, partitions, runs and group offsets"
    )
    _backup_options(describe)
    describe.add_argument("--format", choices=("text", "json", "yaml"), default="text")

    validate = commands.add("validate", _validate, "check a backup's structure (and with --deep, every byte)")
    _backup_options(validate)
    validate.add_argument(
        "--deep", action="store_true", help="download every segment and verify checksums and records"
    )
    validate.add_argument("--format", choices=("text", "json"), default="text")


def _prune_command(commands: _Commands) -> None:
    prune = commands.add(
        "prune",
        _prune,
        "delete a backup's oldest segments (or whole old backups) safely; a plan unless --execute",
    )
    prune.add_argument("--path", required=True, metavar="URL", help=_PATH_HELP)
    which = prune.add_mutually_exclusive_group(required=True)
    which.add_argument("--backup-id", metavar="ID", help="prune the oldest segments of this backup")
    which.add_argument(
        "--all-backups", action="store_true", help="delete whole backups whose newest data is old"
    )
    age = prune.add_mutually_exclusive_group()
    age.add_argument("--older-than", type=duration, metavar="DURATION", help="e.g. 30d (units s m h d w)")
    age.add_argument("--before", type=moment, metavar="TIME", help="RFC 3339 time or epoch milliseconds")
    prune.add_argument(
        "--max-total-bytes", type=count, metavar="N", help="keep the newest segments within N bytes"
    )
    prune.add_argument(
        "--keep-segments", type=count, default=0, metavar="N", help="always keep each partition's newest N"
    )
    prune.add_argument(
        "--keep-last", type=count, metavar="N", help="with --all-backups: always keep the newest N backups"
    )
    prune.add_argument("--execute", action="store_true", help="delete (without it: print the plan)")
    prune.add_argument("--force", action="store_true", help=argparse.SUPPRESS)  # refused, with the reason
    prune.add_argument("--format", choices=("text", "json"), default="text")


def duration(text: str) -> str:
    """argparse type: a duration such as ``30d``, checked and kept as typed (the reason quotes it)."""
    try:
        parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def moment(text: str) -> int:
    """argparse type: RFC 3339 / ISO-8601 or epoch ms -> epoch ms."""
    try:
        return parse_time(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def count(text: str) -> int:
    """argparse type: a whole number, zero or more."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    return int(text)


def _restore_commands(commands: _Commands) -> None:
    restore = commands.add("restore", _restore, "run the restore a job config file describes")
    restore.add_argument(
        "--config", required=True, metavar="FILE", help="the job's YAML config (mode: restore)"
    )
    restore.add_argument("--dry-run", action="store_true", help="print the plan; write nothing")
    _liveness_option(restore)

    plan = commands.add("validate-restore", _validate_restore, "print what a restore config would restore")
    plan.add_argument("--config", required=True, metavar="FILE", help="the job's YAML config (mode: restore)")
    plan.add_argument("--format", choices=("text", "json", "yaml"), default="text")


def _offset_commands(commands: _Commands) -> None:
    mapping = commands.add(
        "show-offset-mapping",
        _show_offset_mapping,
        "show how restores translated source offsets to target offsets",
    )
    _backup_options(mapping)
    mapping.add_argument(
        "--restore-id", metavar="ID", help="one restore (default: every restore of the backup)"
    )
    mapping.add_argument("--format", choices=("text", "json", "yaml", "csv"), default="text")

    reset = commands.add(
        "offset-reset",
        _offset_reset,
        "translate consumer-group offsets through a restore and (execute) apply them",
    )
    reset.add_argument("action", choices=("plan", "execute"))
    _backup_options(reset)
    reset.add_argument(
        "--groups", metavar="G1,G2", help="groups to translate (default: every group in the backup)"
    )
    reset.add_argument("--bootstrap-servers", metavar="HOST:PORT,...", help="the target cluster (execute)")
    reset.add_argument(
        "--config",
        metavar="FILE",
        help="a restore job file: its target cluster and security settings (execute)",
    )
    reset.add_argument("--restore-id", metavar="ID", help="which restore's mapping (default: the latest)")
    reset.add_argument("--format", choices=("text", "json", "yaml"), default="text")


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``kafka-backup`` with ``argv`` (default: the process's); returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 2 on usage errors, 0 after --help/--version
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    configure(args.verbose, args.log_level)
    handler: Handler = args.handler
    try:
        code = handler(args)
        sys.stdout.flush()  # inside the try: a closed pipe is reported here, not at exit
        return code
    except KeyboardInterrupt:
        error_line("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (``| head``): not worth an error line.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    except Exception as exc:
        error_line(describe_error(exc))
        if args.verbose >= 2:
            log.error("traceback of the error above", exc_info=exc)
        return EXIT_ERROR


def describe_error(exc: BaseException) -> str:
    """One line saying what went wrong, without Python internals where we know better."""
    if isinstance(exc, LibkbError):
        return str(exc)
    if isinstance(exc, KafkaException) and exc.args:
        err = exc.args[0]
        text = err.str() if hasattr(err, "str") else str(err)
        return f"Kafka: {text}"
    if isinstance(exc, OSError) and exc.strerror:
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror}{where}"
    return f"unexpected {type(exc).__name__}: {exc} (run with -vv for the traceback)"
