"""A snapshot of consumer groups' committed offsets, as stored next to a backup. Pure: JSON in, JSON out.

A group without committed offsets is kept as an empty entry: rolling back to
the snapshot then means "no offsets", which differs from "not snapshotted".
Each offset keeps its commit metadata and leader epoch, so a rollback puts
back exactly what Kafka held (docs/format.rst, "Offset snapshots").
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from libkb.errors import ConfigError, FormatError
from libkb.format.strict import array, integer, load_object, malformed, mapping, partition_key, string
from libkb.kafka.types import CommittedOffset

FORMAT_NAME = "libkb-offset-snapshot"
FORMAT_VERSION = 1

TP = tuple[str, int]
GroupsOffsets = dict[str, dict[TP, CommittedOffset]]

#: ``snap-``, the creation time in epoch ms (13 digits until the year 2286, so key order is
#: time order) and 32 random bits.
_ID = re.compile(r"snap-[0-9]{13}-[0-9a-f]{8}\Z")
ID_EXAMPLE = "snap-1717000000000-1a2b3c4d"


def new_snapshot_id(created_ms: int) -> str:
    return f"snap-{created_ms:013d}-{secrets.token_hex(4)}"


def check_snapshot_id(snapshot_id: str) -> str:
    """The id, if it has a snapshot id's shape (it becomes part of a storage key)."""
    if not _ID.match(snapshot_id):
        raise ConfigError(
            f"{snapshot_id!r} is not a snapshot id (they look like {ID_EXAMPLE}; "
            "'kafka-backup offset-rollback list' shows them)",
            key="--snapshot-id",
        )
    return snapshot_id


@dataclass(slots=True)
class OffsetSnapshot:
    """The committed offsets of some consumer groups on one cluster, at ``created_ms``."""

    snapshot_id: str
    backup_id: str
    created_ms: int
    groups: GroupsOffsets
    bootstrap_servers: list[str] = field(default_factory=list)
    cluster_id: str | None = None
    description: str | None = None
    restore_id: str | None = None  # the restore whose offsets were about to be applied, if any

    @property
    def offset_count(self) -> int:
        return sum(len(offsets) for offsets in self.groups.values())

    def to_json(self) -> bytes:
        body = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "snapshot_id": self.snapshot_id,
            "backup_id": self.backup_id,
            "created_ms": self.created_ms,
            "cluster_id": self.cluster_id,
            "bootstrap_servers": self.bootstrap_servers,
            "description": self.description,
            "restore_id": self.restore_id,
            "groups": {g: _offsets_to_json(o) for g, o in sorted(self.groups.items())},
        }
        return json.dumps(body, indent=2, sort_keys=True, ensure_ascii=True).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes, *, name: str) -> OffsetSnapshot:
        body = load_object(data, name, "offset snapshot")
        if body.get("format") != FORMAT_NAME:
            raise FormatError(f"{name}: not a libkb offset snapshot")
        version = body.get("format_version")
        if type(version) is not int or version > FORMAT_VERSION:
            raise FormatError(
                f"{name}: offset snapshot format version {version} is newer than this libkb reads "
                f"({FORMAT_VERSION}); upgrade libkb"
            )
        with malformed(name, "offset snapshot"):
            return cls._fields(body, name)

    @classmethod
    def _fields(cls, body: dict[str, Any], name: str) -> OffsetSnapshot:
        groups = mapping(body.get("groups"), name, "groups")
        servers = array(body.get("bootstrap_servers") or [], name, "bootstrap_servers")
        return cls(
            snapshot_id=string(body.get("snapshot_id"), name, "snapshot_id"),
            backup_id=string(body.get("backup_id"), name, "backup_id"),
            created_ms=integer(body.get("created_ms"), name, "created_ms"),
            groups={g: _offsets_from_json(o, name, f"groups.{g}") for g, o in groups.items()},
            bootstrap_servers=[string(s, name, f"bootstrap_servers[{i}]") for i, s in enumerate(servers)],
            cluster_id=_optional_str(body.get("cluster_id"), name, "cluster_id"),
            description=_optional_str(body.get("description"), name, "description"),
            restore_id=_optional_str(body.get("restore_id"), name, "restore_id"),
        )


def _optional_str(value: Any, name: str, path: str) -> str | None:
    return None if value is None else string(value, name, path)


def _offsets_to_json(offsets: dict[TP, CommittedOffset]) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for (topic, partition), committed in sorted(offsets.items()):
        entry: dict[str, Any] = {"offset": committed.offset}
        if committed.metadata is not None:
            entry["metadata"] = committed.metadata
        if committed.leader_epoch is not None:
            entry["leader_epoch"] = committed.leader_epoch
        out.setdefault(topic, {})[str(partition)] = entry
    return out


def _offsets_from_json(body: object, name: str, path: str) -> dict[TP, CommittedOffset]:
    out: dict[TP, CommittedOffset] = {}
    for topic, partitions in mapping(body, name, path).items():
        for partition, entry in mapping(partitions, name, f"{path}.{topic}").items():
            where = f"{path}.{topic}.{partition}"
            number = partition_key(partition, name, where)
            fields = mapping(entry, name, where)
            offset = integer(fields.get("offset"), name, f"{where}.offset")
            if offset < 0:
                raise FormatError(f"{name}: {where}: negative offset {offset}")
            epoch = fields.get("leader_epoch")
            out[(topic, number)] = CommittedOffset(
                offset,
                _optional_str(fields.get("metadata"), name, f"{where}.metadata"),
                None if epoch is None else integer(epoch, name, f"{where}.leader_epoch"),
            )
    return dict(sorted(out.items()))
