"""``snapshot-groups --config FILE``: store the consumer groups' offsets on a backup's topics now.

The same object a backup run writes at its end (``{id}/consumer-groups.json``,
what restores translate): every group with a committed offset on a
backed-up topic. Useful while a continuous backup runs (it writes the
object only when it stops) and before a planned switch-over. The object is
written whole, replacing the previous one, like a run's end does.
"""

from __future__ import annotations

import sys
import time
from typing import IO

from libkb.cli.jobfile import load_job
from libkb.errors import ConfigError
from libkb.format.models import groups_key, groups_to_json
from libkb.kafka.admin import KafkaAdmin
from libkb.kafka.clients import make_admin
from libkb.source import open_backup
from libkb.storage import create_backend_from_config


def run_snapshot_groups(config_path: str, out: IO[str] | None = None) -> int:
    config = load_job(config_path)
    if config.mode != "backup" or config.source is None:
        raise ConfigError(
            f"mode is {config.mode!r}; snapshot-groups needs a backup job file (mode: backup): its source "
            "cluster, storage and backup_id",
            key="mode",
            source=config_path,
        )
    with create_backend_from_config(config.storage) as backend:
        topics = sorted(open_backup(backend, config.backup_id).manifest().topics)
        groups = KafkaAdmin(make_admin(config.source)).group_offsets(topics)
        key = groups_key(config.backup_id)
        backend.put(key, groups_to_json(groups, int(time.time() * 1000)))
    stdout = out or sys.stdout
    offsets = sum(len(parts) for g in groups for parts in g.offsets.values())
    print(
        f"consumer-group snapshot of backup {config.backup_id}: {len(groups)} group(s), {offsets} offsets "
        f"on {len(topics)} backed-up topic(s), stored as {key}",
        file=stdout,
    )
    for g in groups:
        shown = ", ".join(
            f"{t}[{p}]={o}" for t, parts in sorted(g.offsets.items()) for p, o in sorted(parts.items())
        )
        print(f"  {g.group}: {shown}", file=stdout)
    return 0
