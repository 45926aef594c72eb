"""Argument parsing and running a command of ``kafka-backup``.

An error is one line on stderr; ``-vv`` adds the traceback. Exit statuses
are decided in :mod:`libkb.cli.exits` alone.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import logging
import os
import sys
import threading
from collections.abc import Callable, Sequence

from libkb.cli.alloctune import tune_allocator
from libkb.cli.exits import EXIT_ERROR, EXIT_USAGE, describe_error, error_status
from libkb.cli.logs import LEVELS, PROG, configure, error_line
from libkb.cli.offset_args import add_offset_commands
from libkb.cli.startup import end as end_startup
from libkb.cli.startup import loading
from libkb.config.fields import parse_duration, parse_time
from libkb.version import __version__

log = logging.getLogger("libkb.cli")

Handler = Callable[[argparse.Namespace], int]


def _backup(args: argparse.Namespace) -> int:
    with loading():
        from libkb.cli.backup import run_backup  # the engine pulls in Kafka clients: load on demand

    tune_allocator()  # the backup's large buffers kept for reuse (libkb.cli.alloctune)

    return _json_on_failure(
        "backup",
        args.format,
        lambda: run_backup(
            args.config, fmt=args.format, dry_run=args.dry_run, liveness_timeout_secs=args.liveness_timeout
        ),
    )


def _json_on_failure(command: str, fmt: str, run: Callable[[], int]) -> int:
    """``run()``; with ``--format json`` a failure also prints a JSON document (status ``failed``).

    The error line and the exit status stay what they are without it.
    """
    try:
        return run()
    except Exception as exc:
        if fmt == "json":
            from libkb.cli.render import dump
            from libkb.cli.results import failed_document

            print(dump(failed_document(command, describe_error(exc)), "json"), flush=True)
        raise


def _list(args: argparse.Namespace) -> int:
    from libkb.cli.inspection import run_list

    return run_list(args.path, args.format, args.backup_id)


def _describe(args: argparse.Namespace) -> int:
    from libkb.cli.inspection import run_describe

    return run_describe(args.path, args.backup_id, args.format)


def _validate(args: argparse.Namespace) -> int:
    from libkb.cli.inspection import run_validate

    return run_validate(args.path, args.backup_id, args.deep, args.format, keys=args.keys)


def _rewrap(args: argparse.Namespace) -> int:
    from libkb.cli.rewrap import run_rewrap

    return run_rewrap(args.path, args.backup_id, args.keys, args.format)


def _prune(args: argparse.Namespace) -> int:
    from libkb.cli.prune import run_prune

    return run_prune(args)


def _restore(args: argparse.Namespace) -> int:
    with loading():
        from libkb.cli.restore import run_restore

    return _json_on_failure(
        "restore",
        args.format,
        lambda: run_restore(
            args.config, dry_run=args.dry_run, fmt=args.format, liveness_timeout_secs=args.liveness_timeout
        ),
    )


def _validate_restore(args: argparse.Namespace) -> int:
    from libkb.cli.restore import run_validate_restore

    return run_validate_restore(args.config, args.format)


def _show_offset_mapping(args: argparse.Namespace) -> int:
    from libkb.cli.restore import run_show_offset_mapping

    return run_show_offset_mapping(args.path, args.backup_id, args.restore_id, args.format)


def _three_phase_restore(args: argparse.Namespace) -> int:
    from libkb.cli.three_phase import run_three_phase_restore

    return run_three_phase_restore(args.config, fmt=args.format, liveness_timeout_secs=args.liveness_timeout)


def _validation(args: argparse.Namespace) -> int:
    from libkb.cli.validation import (
        run_evidence_get,
        run_evidence_list,
        run_evidence_verify,
        run_validation_command,
    )

    if args.action == "run":
        return run_validation_command(
            args.config, pitr=args.pitr, triggered_by=args.triggered_by, fmt=args.format
        )
    if args.action == "evidence-list":
        return run_evidence_list(args.path, args.limit, args.prefix, args.format)
    if args.action == "evidence-get":
        return run_evidence_get(args.path, args.report_id, args.format, args.output, args.prefix)
    return run_evidence_verify(args.report, args.signature, args.public_key)


def _status(args: argparse.Namespace) -> int:
    from libkb.cli.status import run_status

    if args.config is None and args.url is None and (args.path is None or args.backup_id is None):
        return _usage_error(
            args.command_parser,
            "say what to look at: --path and --backup-id, --config (a job file), or --url (an ops endpoint)",
        )
    if args.interval <= 0:
        return _usage_error(args.command_parser, "--interval must be more than 0 seconds")
    return run_status(
        args.path,
        args.backup_id,
        args.config,
        args.url,
        fmt=args.format,
        watch=args.watch,
        interval=args.interval,
        db_path=args.db_path,
    )


def _usage_error(parser: argparse.ArgumentParser, message: str) -> int:
    """What argparse does for a usage error, returned rather than raised: usage, the message, status 2."""
    parser.print_usage(sys.stderr)
    print(f"{parser.prog}: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """-v, --log-level and --log-format, accepted before or after the command name.

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
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default=default(None),
        help="log lines as text or JSON objects, one per line (default: the job file's logging.format, text)",
    )


_PATH_HELP = (
    "where backups are stored: s3://, s3a://, azure://, az://, gcs://, gs://, file://, memory:// or a path"
)


class _Skipped:
    """Stands for a sub-command :func:`build_parser` leaves out: takes any definition, keeps none."""

    def __getattr__(self, name: str) -> Callable[..., _Skipped]:
        return lambda *args, **kwargs: self


class _Commands:
    """The sub-commands of a parser: each with the global options and its handler.

    ``only``: build that command alone (the others are :class:`_Skipped`); ``built`` says
    whether it was among them.
    """

    def __init__(
        self,
        parser: argparse.ArgumentParser | None,
        dest: str = "command",
        metavar: str = "COMMAND",
        only: str | None = None,
    ) -> None:
        self._commands = (
            None if parser is None else parser.add_subparsers(dest=dest, metavar=metavar, required=True)
        )
        self._only = only
        self.built = False

    def _skips(self, name: str) -> bool:
        if self._commands is None or (self._only is not None and name != self._only):
            return True
        self.built = True
        return False

    def add(self, name: str, handler: Handler, help: str) -> argparse.ArgumentParser:
        if self._skips(name):
            return _Skipped()  # type: ignore[return-value]
        assert self._commands is not None
        sub = self._commands.add_parser(name, help=help, description=help)
        _global_options(sub, top=False)
        sub.set_defaults(handler=handler, command_parser=sub)
        return sub

    def nested(self, name: str, help: str) -> _Commands:
        """A command whose first argument is an action with options of its own (``offset-rollback list``)."""
        if self._skips(name):
            return _Commands(None)
        assert self._commands is not None
        sub = self._commands.add_parser(name, help=help, description=help)
        _global_options(sub, top=False)
        return _Commands(sub, dest="action", metavar="ACTION")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with ``command``, that sub-command alone if there is one by that name.

    Building every sub-command's options takes 10 ms, a run's start-up time;
    :func:`main` builds the one it runs (and everything when the name is not
    a command, so argparse's error lists them).
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Back up Kafka topics to object storage, inspect the backups, and restore them.",
    )
    parser.add_argument("-V", "--version", action="version", version=f"%(prog)s (libkb) {__version__}")
    _global_options(parser, top=True)
    commands = _Commands(parser, only=command)
    _backup_command(commands)
    _inspection_commands(commands)
    _restore_commands(commands)
    _offset_commands(commands)
    _status_command(commands)
    _validation_command(commands)
    _prune_command(commands)
    if command is not None and not commands.built:
        return build_parser()
    return parser


def _command_named(argv: Sequence[str]) -> str | None:
    """The sub-command ``argv`` names (its first word that is not an option or an option's value)."""
    takes_value = {"--log-level", "--log-format"}
    words = iter(argv)
    for word in words:
        if word in takes_value:
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


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
    backup.add_argument(
        "--dry-run",
        action="store_true",
        help="print what the run would back up (topics, offsets, estimated bytes); write nothing",
    )
    backup.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="the result (or plan) on stdout; json: one document, progress and logs on stderr",
    )
    _liveness_option(backup)


_KEYS_HELP = "a job file (or a YAML file of its encryption section alone) naming the encryption keys"


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
    validate.add_argument("--keys", metavar="FILE", help=_KEYS_HELP + " (only --deep reads records)")

    rewrap = commands.add(
        "rewrap", _rewrap, "wrap an encrypted backup's data keys under the current key (segments untouched)"
    )
    _backup_options(rewrap)
    rewrap.add_argument("--keys", required=True, metavar="FILE", help=_KEYS_HELP)
    rewrap.add_argument("--format", choices=("text", "json", "yaml"), default="text")


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
    restore.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="the result (or plan) on stdout; json: one document, progress and logs on stderr",
    )
    _liveness_option(restore)

    three = commands.add(
        "three-phase-restore",
        _three_phase_restore,
        "restore, then reset consumer-group offsets through the offset mapping and read them back",
    )
    three.add_argument(
        "-c", "--config", required=True, metavar="FILE", help="the job's YAML config (mode: restore)"
    )
    three.add_argument(
        "-f", "--format", choices=("text", "json", "yaml"), default="text", help="the final report"
    )
    _liveness_option(three)

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

    add_offset_commands(commands)


def _status_command(commands: _Commands) -> None:
    status = commands.add(
        "status",
        _status,
        "show whether a backup is being written, how its last run ended, and a job's live state",
    )
    status.add_argument("-p", "--path", metavar="URL", help=_PATH_HELP + " (with --backup-id)")
    status.add_argument("-b", "--backup-id", metavar="ID", help="the backup to look at")
    status.add_argument(
        "-c", "--config", metavar="FILE", help="a job file: its metrics endpoint and (backup jobs) its backup"
    )
    status.add_argument("--url", metavar="URL", help="a running job's ops endpoint, http://HOST:PORT")
    status.add_argument("--watch", action="store_true", help="refresh until Ctrl-C")
    status.add_argument(
        "--interval", type=float, default=2.0, metavar="SECS", help="seconds between refreshes (default 2)"
    )
    status.add_argument("-f", "--format", choices=("text", "json", "yaml"), default="text")
    status.add_argument("--db-path", metavar="FILE", help="the original tool's offset database: not used")


def _validation_command(commands: _Commands) -> None:
    validation = commands.add(
        "validation", _validation, "check a restore on its cluster and keep (signed) evidence of the result"
    )
    actions = validation.add_subparsers(dest="action", metavar="ACTION", required=True)

    def action(name: str, help: str) -> argparse.ArgumentParser:
        sub = actions.add_parser(name, help=help, description=help)
        _global_options(sub, top=False)
        sub.set_defaults(command_parser=sub)
        return sub

    run = action("run", "run the checks of a validation file and store the evidence report")
    run.add_argument("-c", "--config", required=True, metavar="FILE", help="the validation file (YAML)")
    run.add_argument(
        "--pitr", type=int, metavar="MS", help="the restore's point in time (epoch ms), for the report"
    )
    run.add_argument("--triggered-by", metavar="TEXT", help="who or what started this run, for the report")
    run.add_argument("-f", "--format", choices=("text", "json", "yaml"), default="text")

    prefix_help = "where evidence is kept in the storage (default evidence-reports/)"
    listing = action("evidence-list", "list the evidence reports at a storage location, newest first")
    listing.add_argument("-p", "--path", required=True, metavar="URL", help=_PATH_HELP)
    listing.add_argument(
        "-l", "--limit", type=int, default=50, metavar="N", help="show at most N (default 50)"
    )
    listing.add_argument("--prefix", default="evidence-reports/", help=prefix_help)
    listing.add_argument("-f", "--format", choices=("text", "json", "yaml"), default="text")

    get = action("evidence-get", "download an evidence report (or its signature)")
    get.add_argument("-p", "--path", required=True, metavar="URL", help=_PATH_HELP)
    get.add_argument("-r", "--report-id", required=True, metavar="ID")
    get.add_argument("-f", "--format", choices=("json", "sig", "pdf"), default="json")
    get.add_argument("-o", "--output", required=True, metavar="FILE")
    get.add_argument("--prefix", default="evidence-reports/", help=prefix_help)

    check = action("evidence-verify", "check a report file against its detached signature")
    check.add_argument("-r", "--report", required=True, metavar="FILE", help="the JSON evidence report")
    check.add_argument("-s", "--signature", required=True, metavar="FILE", help="its .sig file")
    check.add_argument("--public-key", metavar="FILE", help="the signer's PEM public key (P-256)")


def console_main() -> None:
    """The ``kafka-backup`` script: :func:`main`, then exit without the interpreter's teardown.

    Once a command has returned, its output is flushed, its clients closed and
    its threads joined; what Python's teardown does then (freeing every module
    and object, 50-100 ms) changes nothing anyone sees, yet counted in every
    job's time. The exit handlers still run (logging's flush among them), and
    a thread that is not a daemon and still runs gets the usual exit, which
    waits for it.
    """
    code = main()
    atexit._run_exitfuncs()  # what a normal exit runs first
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe or stream: nothing to flush
            stream.flush()
    main_thread = threading.main_thread()
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not main_thread):
        sys.exit(code)
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``kafka-backup`` with ``argv`` (default: the process's); returns the exit status."""
    completing = argv is None and "_ARGCOMPLETE" in os.environ
    words = sys.argv[1:] if argv is None else argv
    parser = build_parser() if completing else build_parser(_command_named(words))
    if completing:
        # Shell completion: answers and exits when the shell's completion hook runs us (imported
        # only then: 9 ms of every start).
        import argcomplete

        argcomplete.autocomplete(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 2 on usage errors, 0 after --help/--version
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    configure(args.verbose, args.log_level, fmt=args.log_format)
    end_startup()
    handler: Handler = args.handler
    try:
        code = handler(args)
        sys.stdout.flush()  # inside the try: a closed pipe is reported here, not at exit
        return code
    except BrokenPipeError:
        # The reader went away (``| head``): not worth an error line.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    except (KeyboardInterrupt, Exception) as exc:
        error_line(describe_error(exc))
        if args.verbose >= 2 and isinstance(exc, Exception):
            log.error("traceback of the error above", exc_info=exc)
        return error_status(exc)
