"""A restore's durable state: where each target partition started and how far it is verified.

Written before the first record is produced, at checkpoints while the run
goes (:mod:`.checkpoint`) and at its end. A restore writes each target
partition's records in order with an idempotent producer, so the target holds
a prefix of the planned sequence, ``high watermark - target_start`` records,
and a re-run skips exactly that many: nothing is lost or duplicated. One
thing breaks the prefix: a failed delivery followed by records that still
land (librdkafka skips a record that timed out in its queue and sends the
next ones). So each partition also records ``verified_end``, the target offset
up to which it is known to hold the planned records (no delivery of it had
failed when that watermark was read); a re-run reads the target back from
there and compares it with the plan before it trusts more (:mod:`.verify`).
This requires that nothing else writes to the target partitions while a
restore is unfinished.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from libkb.errors import FormatError
from libkb.format.strict import build, integer, load_object, malformed, mapping, string


def restore_prefix(backup_id: str, restore_id: str) -> str:
    return f"{backup_id}/restores/{restore_id}/"


def state_key(backup_id: str, restore_id: str) -> str:
    return restore_prefix(backup_id, restore_id) + "state.json"


def mapping_key(backup_id: str, restore_id: str) -> str:
    return restore_prefix(backup_id, restore_id) + "offset-mapping.json"


def key_of(source_topic: str, source_partition: int) -> str:
    """The key of a one-to-one task's state: its source partition."""
    return f"{source_topic}/{source_partition}"


def spread_key(source_topic: str, target_partition: int) -> str:
    """The key of the state of a target partition that a topic is restored into by key.

    ``*``: from any source partition (a topic name holds no ``/``).
    """
    return f"{source_topic}/*/{target_partition}"


@dataclass(slots=True)
class PartitionState:
    target_topic: str
    target_partition: int
    target_start: int
    records: int = 0  # restored so far (known at the last checkpoint)
    done: bool = False
    #: Target offset up to which the partition holds exactly the planned records; a re-run reads
    #: back and compares what lies beyond. None in states of earlier builds: all of it is trusted.
    verified_end: int | None = None
    #: ``restore.purge_topics``: the records below this target offset (its high watermark before
    #: the restore began it, so none of them is the restore's) are deleted first. None: no purge.
    purge_before: int | None = None
    #: That deletion is done; a re-run repeats an unfinished one (never beyond ``purge_before``).
    purged: bool = False


@dataclass(slots=True)
class RestoreState:
    backup_id: str
    restore_id: str
    created_ms: int
    target_cluster_id: str | None
    status: str = "running"  # running | complete | failed | interrupted
    partitions: dict[str, PartitionState] = field(default_factory=dict)
    #: target topic -> its topic id (KIP-516) when the restore first wrote it: a re-run refuses a
    #: target deleted and re-created since (what was written there is gone). Empty in earlier states.
    target_topic_ids: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def key_of(source_topic: str, source_partition: int) -> str:
        return key_of(source_topic, source_partition)

    def to_json(self) -> bytes:
        body: dict[str, Any] = {"format": "libkb-restore-state", "format_version": 1, **asdict(self)}
        return json.dumps(body, indent=1, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes, *, name: str = "restore state") -> RestoreState:
        body = load_object(data, name, "restore state")
        if body.get("format") != "libkb-restore-state":
            raise FormatError(f"{name}: not a libkb restore state")
        if body.get("format_version") != 1 or type(body.get("format_version")) is not int:
            raise FormatError(
                f"{name}: restore state format version {body.get('format_version')!r}; this libkb reads 1"
            )
        with malformed(name, "restore state"):
            return cls._fields(body, name)

    @classmethod
    def _fields(cls, body: dict[str, Any], name: str) -> RestoreState:
        cluster = body.get("target_cluster_id")
        partitions = mapping(body.get("partitions"), name, "partitions")
        ids = mapping(body.get("target_topic_ids", {}), name, "target_topic_ids")
        return cls(
            string(body.get("backup_id"), name, "backup_id"),
            string(body.get("restore_id"), name, "restore_id"),
            integer(body.get("created_ms"), name, "created_ms"),
            None if cluster is None else string(cluster, name, "target_cluster_id"),
            string(body.get("status", "running"), name, "status"),
            {k: build(PartitionState, v, name, f"partitions.{k}") for k, v in partitions.items()},
            {k: string(v, name, f"target_topic_ids.{k}") for k, v in ids.items()},
        )


def derive_restore_id(
    backup_id: str, target: str, tasks: list[tuple[Any, ...]], spread: list[tuple[Any, ...]] | None = None
) -> str:
    """Same backup, target cluster and plan -> same id, so re-running a config resumes it.

    ``spread``: the topics restored by key (none: the id of a plan without them, as before).
    """
    body: list[Any] = [backup_id, target, sorted(tasks)]
    if spread:
        body.append(sorted(spread))
    digest = hashlib.sha256(json.dumps(body, default=str).encode())
    return f"r-{digest.hexdigest()[:16]}"
