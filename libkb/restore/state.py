"""A restore's durable state: where each target partition started, so a re-run resumes exactly.

Written before the first record is produced. A restore writes each target
partition's records in order with an idempotent producer, so after a crash
(even ``kill -9``) the target holds a prefix of the planned sequence:
``high watermark - target_start`` records. A re-run skips exactly that many
and continues, so nothing is lost or duplicated. This requires that nothing
else writes to the target partitions while a restore is unfinished.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from libkb.errors import FormatError


def restore_prefix(backup_id: str, restore_id: str) -> str:
    return f"{backup_id}/restores/{restore_id}/"


def state_key(backup_id: str, restore_id: str) -> str:
    return restore_prefix(backup_id, restore_id) + "state.json"


def mapping_key(backup_id: str, restore_id: str) -> str:
    return restore_prefix(backup_id, restore_id) + "offset-mapping.json"


@dataclass(slots=True)
class PartitionState:
    target_topic: str
    target_partition: int
    target_start: int
    records: int = 0  # restored so far (known at the last checkpoint)
    done: bool = False


@dataclass(slots=True)
class RestoreState:
    backup_id: str
    restore_id: str
    created_ms: int
    target_cluster_id: str | None
    status: str = "running"  # running | complete | failed | interrupted
    partitions: dict[str, PartitionState] = field(default_factory=dict)

    @staticmethod
    def key_of(source_topic: str, source_partition: int) -> str:
        return f"{source_topic}/{source_partition}"

    def to_json(self) -> bytes:
        body: dict[str, Any] = {"format": "libkb-restore-state", "format_version": 1, **asdict(self)}
        return json.dumps(body, indent=1, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes, *, name: str = "restore state") -> RestoreState:
        try:
            body = json.loads(data)
            if body.get("format") != "libkb-restore-state":
                raise FormatError(f"{name}: not a libkb restore state")
            return cls(
                body["backup_id"],
                body["restore_id"],
                int(body["created_ms"]),
                body.get("target_cluster_id"),
                body.get("status", "running"),
                {k: PartitionState(**v) for k, v in body["partitions"].items()},
            )
        except (ValueError, KeyError, TypeError) as exc:
            if isinstance(exc, FormatError):
                raise
            raise FormatError(f"{name}: malformed restore state ({exc})") from None


def derive_restore_id(backup_id: str, target: str, tasks: list[tuple[Any, ...]]) -> str:
    """Same backup, target cluster and plan -> same id, so re-running a config resumes it."""
    digest = hashlib.sha256(json.dumps([backup_id, target, sorted(tasks)], default=str).encode())
    return f"r-{digest.hexdigest()[:16]}"
