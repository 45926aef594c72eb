"""The arguments of the consumer-group offset commands, with the original tool's names and flags.

``offset-reset plan|execute|script``, ``offset-reset-bulk``,
``offset-rollback snapshot|list|show|rollback|verify|delete`` and
``snapshot-groups``. Handlers import their module on demand: Kafka clients
load only for the command that needs them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Protocol

Handler = Callable[[argparse.Namespace], int]

_PATH_HELP = (
    "where backups are stored: s3://, s3a://, azure://, az://, gcs://, gs://, file://, memory:// or a path"
)
_FORMATS = ("text", "json", "yaml")


class CommandSet(Protocol):
    """What ``app`` gives: a way to add a command, and a command with sub-commands of its own."""

    def add(self, name: str, handler: Handler, help: str) -> argparse.ArgumentParser: ...

    def nested(self, name: str, help: str) -> CommandSet: ...


def add_offset_commands(commands: CommandSet) -> None:
    _offset_reset(commands)
    _offset_reset_bulk(commands)
    _offset_rollback(commands)
    snap = commands.add(
        "snapshot-groups",
        _snapshot_groups,
        "store the consumer groups' committed offsets on a backup's topics now (as a backup run's end does)",
    )
    snap.add_argument("--config", required=True, metavar="FILE", help="the backup's job file (mode: backup)")


# -- options -------------------------------------------------------------------------------


def _backup(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--path", required=True, metavar="URL", help=_PATH_HELP)
    sub.add_argument("--backup-id", required=True, metavar="ID")


def _groups(sub: argparse.ArgumentParser, default: str) -> None:
    which = sub.add_mutually_exclusive_group()
    which.add_argument("--groups", metavar="G1,G2", help=f"the consumer groups ({default})")
    which.add_argument("--all-groups", action="store_true", help="every group, said explicitly")


def _cluster(sub: argparse.ArgumentParser, role: str) -> None:
    sub.add_argument("--bootstrap-servers", metavar="HOST:PORT,...", help=f"the Kafka cluster {role}")
    sub.add_argument(
        "--config",
        metavar="FILE",
        help="a job file: its cluster (a restore's target, a backup's source) with its security settings",
    )


def _format(sub: argparse.ArgumentParser, choices: tuple[str, ...] = _FORMATS) -> None:
    sub.add_argument("--format", choices=choices, default="text")


def _snapshot_id(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--snapshot-id", required=True, metavar="ID", help="as offset-rollback list shows it")


# -- commands --------------------------------------------------------------------------------


def _offset_reset(commands: CommandSet) -> None:
    reset = commands.add(
        "offset-reset",
        _run_offset_reset,
        "translate consumer-group offsets through a restore: plan, execute, or script them",
    )
    reset.add_argument("action", choices=("plan", "execute", "script"))
    _backup(reset)
    _groups(reset, "execute: required, or --all-groups; plan, script: default every group in the backup")
    _cluster(reset, "whose groups to reset (execute, script)")
    reset.add_argument("--restore-id", metavar="ID", help="which restore's mapping (default: the latest)")
    _format(reset, (*_FORMATS, "csv", "shell-script"))
    reset.add_argument("--output", metavar="FILE", help="script: write the script there (executable)")
    reset.add_argument(
        "--dry-run", action="store_true", help="accepted for the original tool: plan changes nothing"
    )


def _offset_reset_bulk(commands: CommandSet) -> None:
    bulk = commands.add(
        "offset-reset-bulk",
        _run_offset_reset_bulk,
        "apply a restore's translated offsets to many consumer groups in parallel",
    )
    _backup(bulk)
    _groups(bulk, "required, or --all-groups")
    _cluster(bulk, "whose groups to reset")
    bulk.add_argument("--restore-id", metavar="ID", help="which restore's mapping (default: the latest)")
    bulk.add_argument(
        "--max-concurrent", type=int, default=50, metavar="N", help="groups at once (default 50)"
    )
    bulk.add_argument(
        "--max-retries",
        type=int,
        default=3,
        metavar="N",
        help="retries of a partition refused for now (default 3)",
    )
    _format(bulk)


def _offset_rollback(commands: CommandSet) -> None:
    actions = commands.nested(
        "offset-rollback", "snapshot consumer-group offsets next to a backup, and roll back to a snapshot"
    )
    snap = actions.add(
        "snapshot", _rollback_snapshot, "store the groups' committed offsets as a new snapshot"
    )
    _backup(snap)
    _groups(snap, "or --all-groups for every group on the cluster")
    _cluster(snap, "whose groups to snapshot")
    snap.add_argument("--description", metavar="TEXT", help="why the snapshot was taken")
    _format(snap)
    listing = actions.add("list", _rollback_list, "list the backup's offset snapshots, newest first")
    _backup(listing)
    _format(listing)
    show = actions.add("show", _rollback_show, "show one snapshot's offsets")
    _backup(show)
    _snapshot_id(show)
    _format(show)
    back = actions.add("rollback", _rollback_rollback, "set the groups' offsets back to exactly a snapshot's")
    _backup(back)
    _snapshot_id(back)
    _cluster(back, "the snapshot was taken on")
    back.add_argument(
        "--verify",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="compare the offsets with the snapshot afterwards (default: yes)",
    )
    _format(back)
    check = actions.add("verify", _rollback_verify, "compare the groups' offsets now with a snapshot")
    _backup(check)
    _snapshot_id(check)
    _cluster(check, "the snapshot was taken on")
    _format(check)
    delete = actions.add("delete", _rollback_delete, "delete one snapshot")
    _backup(delete)
    _snapshot_id(delete)


# -- handlers (modules loaded on demand) ---------------------------------------------------------


def _run_offset_reset(args: argparse.Namespace) -> int:
    from libkb.cli.offset_reset import run_offset_reset

    return run_offset_reset(
        args.action,
        args.path,
        args.backup_id,
        args.groups,
        args.all_groups,
        args.bootstrap_servers,
        args.restore_id,
        args.format,
        config_path=args.config,
        output=args.output,
    )


def _run_offset_reset_bulk(args: argparse.Namespace) -> int:
    from libkb.cli.offset_reset import run_offset_reset_bulk

    return run_offset_reset_bulk(
        args.path,
        args.backup_id,
        args.groups,
        args.all_groups,
        args.bootstrap_servers,
        args.restore_id,
        args.format,
        max_concurrent=args.max_concurrent,
        max_retries=args.max_retries,
        config_path=args.config,
    )


def _rollback_snapshot(args: argparse.Namespace) -> int:
    from libkb.cli.offset_rollback import run_snapshot

    cluster = (args.bootstrap_servers, args.config)
    return run_snapshot(
        args.path, args.backup_id, args.groups, args.all_groups, cluster, args.description, args.format
    )


def _rollback_list(args: argparse.Namespace) -> int:
    from libkb.cli.offset_rollback import run_list

    return run_list(args.path, args.backup_id, args.format)


def _rollback_show(args: argparse.Namespace) -> int:
    from libkb.cli.offset_rollback import run_show

    return run_show(args.path, args.backup_id, args.snapshot_id, args.format)


def _rollback_rollback(args: argparse.Namespace) -> int:
    from libkb.cli.offset_rollback import run_rollback

    cluster = (args.bootstrap_servers, args.config)
    return run_rollback(args.path, args.backup_id, args.snapshot_id, cluster, args.verify, args.format)


def _rollback_verify(args: argparse.Namespace) -> int:
    from libkb.cli.offset_rollback import run_verify

    cluster = (args.bootstrap_servers, args.config)
    return run_verify(args.path, args.backup_id, args.snapshot_id, cluster, args.format)


def _rollback_delete(args: argparse.Namespace) -> int:
    from libkb.cli.offset_rollback import run_delete

    return run_delete(args.path, args.backup_id, args.snapshot_id)


def _snapshot_groups(args: argparse.Namespace) -> int:
    from libkb.cli.snapshot_groups import run_snapshot_groups

    return run_snapshot_groups(args.config)
