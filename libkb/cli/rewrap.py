"""``kafka-backup rewrap --path URL --backup-id ID --keys FILE``: rotate the key of a backup's data keys."""

from __future__ import annotations

import sys
from typing import IO

from libkb.backup.rewrap import rewrap_backup
from libkb.cli.keys import load_keyring
from libkb.cli.render import dump
from libkb.storage import open_backend


def run_rewrap(path: str, backup_id: str, keys: str, fmt: str, out: IO[str] | None = None) -> int:
    keyring = load_keyring(keys)
    assert keyring is not None
    with open_backend(path, create=False) as backend:
        report = rewrap_backup(backend, backup_id, keyring)
    if fmt == "text":
        found = ", ".join(f"{k!r}: {n}" for k, n in sorted(report.found.items())) or "none"
        text = (
            f"backup {backup_id!r}: {report.rewrapped} data key(s) rewrapped under {report.key_id!r}, "
            f"{report.unchanged} already were (key ids found: {found}); no segment was rewritten"
        )
    else:
        text = dump(report.to_dict(), fmt)
    print(text, file=out or sys.stdout)
    return 0
