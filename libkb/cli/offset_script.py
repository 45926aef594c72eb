"""``offset-reset script``: the translated offsets as a shell script of ``kafka-consumer-groups.sh`` commands.

The layout follows the original tool's script (one reset per partition,
grouped by consumer group and topic, ``set -e``), with every name quoted
for the shell, the command to snapshot the groups first, and two variables
for running it elsewhere: ``KAFKA_CONSUMER_GROUPS`` (which
``kafka-consumer-groups.sh``) and ``KAFKA_COMMAND_CONFIG`` (a client
properties file for a secured cluster). Pure: text out.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from itertools import groupby

from libkb.restore.groups import TranslatedOffset

_HEAD = """\
#!/usr/bin/env bash
# Offset Reset Script
# Generated at: {generated} by kafka-backup (libkb) {version}
# Backup ID: {backup_id}
# Restore ID: {restore_id}
#
# WARNING: This script will reset consumer group offsets.
# Review the commands below before executing. Stop the groups' consumers first:
# Kafka resets the offsets of a group only while it has no active members.
# To be able to undo it, snapshot the groups' offsets first:
#   {snapshot_command}
#
# KAFKA_CONSUMER_GROUPS: the kafka-consumer-groups.sh to run (default: the one on PATH)
# KAFKA_COMMAND_CONFIG:  a client properties file for a secured cluster (--command-config)
set -euo pipefail

KAFKA_CONSUMER_GROUPS="${{KAFKA_CONSUMER_GROUPS:-kafka-consumer-groups.sh}}"
BOOTSTRAP_SERVERS={bootstrap}
"""

_RESET = (
    "# Partition {partition}: source {source} offset {source_offset} -> target offset {target_offset}\n"
    '"$KAFKA_CONSUMER_GROUPS" --bootstrap-server "$BOOTSTRAP_SERVERS" '
    '${{KAFKA_COMMAND_CONFIG:+--command-config "$KAFKA_COMMAND_CONFIG"}} \\\n'
    "  --group {group} \\\n"
    "  --topic {topic_partition} \\\n"
    "  --reset-offsets --to-offset {target_offset} --execute\n\n"
)


def reset_script(
    offsets: Sequence[TranslatedOffset],
    *,
    bootstrap_servers: str,
    backup_id: str,
    restore_id: str,
    snapshot_command: str,
    generated: str,
    version: str,
) -> str:
    """The script; ``snapshot_command`` is the ``offset-rollback snapshot`` line shown in its header."""
    parts = [
        _HEAD.format(
            generated=generated,
            version=version,
            backup_id=_comment(backup_id),
            restore_id=_comment(restore_id),
            snapshot_command=_comment(snapshot_command),
            bootstrap=shlex.quote(bootstrap_servers),
        )
    ]
    ordered = sorted(offsets, key=lambda o: (o.group, o.target_topic, o.target_partition))
    for group, in_group in groupby(ordered, key=lambda o: o.group):
        items = list(in_group)
        parts.append(f"\n# Consumer Group: {_comment(group)}\n# Partitions to reset: {len(items)}\n")
        for topic, in_topic in groupby(items, key=lambda o: o.target_topic):
            parts.append(f"\n# Topic: {_comment(topic)}\n")
            parts += [
                _RESET.format(
                    partition=o.target_partition,
                    source=_comment(f"{o.source_topic}[{o.source_partition}]"),
                    source_offset=o.source_offset,
                    target_offset=o.target_offset,
                    group=shlex.quote(group),
                    topic_partition=shlex.quote(f"{topic}:{o.target_partition}"),
                )
                for o in in_topic
            ]
    parts.append('echo "Offset reset complete!"\n')
    return "".join(parts)


def _comment(text: str) -> str:
    """Text safe inside a ``#`` comment: a group id may hold a newline, which would end the comment."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
