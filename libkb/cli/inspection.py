"""``list``, ``describe`` and ``validate``: read a storage location and print what is there."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import IO, TypeVar

from libkb.catalog import BackupNotFoundError, describe_backup, list_backups, validate_backup
from libkb.cli.keys import load_keyring
from libkb.cli.logs import error_line
from libkb.cli.readonly import reading
from libkb.cli.render import describe_text, dump, list_text, validate_text
from libkb.storage import StorageBackend

_T = TypeVar("_T")


def with_backend(path: str, fn: Callable[[StorageBackend], _T]) -> _T:
    """``fn(backend)`` on the storage at ``path``, read only; an unknown backup id names the path as typed."""
    with reading(path) as backend:
        try:
            return fn(backend)
        except BackupNotFoundError as exc:
            raise BackupNotFoundError(exc.backup_id, exc.existing, path) from None  # name what they typed


def run_list(path: str, fmt: str, backup_id: str | None = None, out: IO[str] | None = None) -> int:
    summaries = with_backend(path, list_backups)
    if backup_id is not None:
        summaries = [s for s in summaries if s.backup_id == backup_id]
    text = list_text(summaries, path) if fmt == "text" else dump([s.to_dict() for s in summaries], fmt)
    print(text, file=out or sys.stdout)
    return 0


def run_describe(path: str, backup_id: str, fmt: str, out: IO[str] | None = None) -> int:
    description = with_backend(path, lambda b: describe_backup(b, backup_id))
    text = describe_text(description) if fmt == "text" else dump(description.to_dict(), fmt)
    print(text, file=out or sys.stdout)
    return 0


def run_validate(
    path: str, backup_id: str, deep: bool, fmt: str, out: IO[str] | None = None, *, keys: str | None = None
) -> int:
    keyring = load_keyring(keys)
    report = with_backend(path, lambda b: validate_backup(b, backup_id, deep=deep, keyring=keyring))
    text = validate_text(report) if fmt == "text" else dump(report.to_dict(), fmt)
    print(text, file=out or sys.stdout)
    if report.ok:
        return 0
    error_line(f"backup {backup_id!r} is not valid: {len(report.problems)} problem(s), listed above")
    return 1
