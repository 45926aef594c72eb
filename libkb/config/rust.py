"""Keys of the original (Rust) tool for mechanisms libkb replaces with a stronger one.

Its job files load unchanged; these keys are accepted (the schemas check
their values) and have no effect, and loading says so once per key, naming
the key, the file and what libkb does instead. Only such keys warn: every
other key of the original tool is acted on, or refused with a reason when it
asks for something libkb does not do (see docs/migrating.rst).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

_FROM_SEGMENTS = "a run resumes from the segments already in storage"
_RESUME = f"not used: libkb keeps no offset database; {_FROM_SEGMENTS}"
_RESTORE_STATE = (
    "not used: libkb keeps a restore's progress in the backup storage ({backup_id}/restores/) "
    "and a re-run resumes it without duplicates"
)
_HEURISTICS = ("header-based", "timestamp-based", "cluster-scan")


def _always(value: Any, section: Mapping[str, Any]) -> bool:
    return True


def _true(value: Any, section: Mapping[str, Any]) -> bool:
    return value is True


def _one_shot(value: Any, section: Mapping[str, Any]) -> bool:
    return value is False and section.get("continuous") is not True


def _weak_acks(value: Any, section: Mapping[str, Any]) -> bool:
    return str(value) in ("1", "0")


def _heuristic(value: Any, section: Mapping[str, Any]) -> bool:
    return value in _HEURISTICS


@dataclass(frozen=True, slots=True)
class Replaced:
    """A key (dotted path inside its section) and what libkb does instead."""

    key: str
    instead: str
    applies: Callable[[Any, Mapping[str, Any]], bool] = _always


_CONNECTION = (
    Replaced(
        "connection.keepalive_time_secs",
        "not used: libkb turns TCP keepalive on (connection.tcp_keepalive) and librdkafka reconnects a "
        "dropped connection by itself; the probe timing is the system's (net.ipv4.tcp_keepalive_time)",
    ),
    Replaced(
        "connection.keepalive_interval_secs",
        "not used: libkb turns TCP keepalive on (connection.tcp_keepalive) and librdkafka reconnects a "
        "dropped connection by itself; the probe timing is the system's (net.ipv4.tcp_keepalive_intvl)",
    ),
    Replaced(
        "connection.connections_per_broker",
        "not used: librdkafka sends several requests at once over its one connection per broker",
    ),
)

#: Section -> the keys of that section libkb replaces ("" is the top level).
REPLACED: dict[str, tuple[Replaced, ...]] = {
    "": (Replaced("offset_storage", _RESUME),),
    "source": _CONNECTION,
    "target": _CONNECTION,
    "backup": (
        Replaced("checkpoint_interval_secs", f"not used: libkb writes no checkpoints; {_FROM_SEGMENTS}"),
        Replaced("sync_interval_secs", f"not used: libkb keeps no offset database to sync; {_FROM_SEGMENTS}"),
        Replaced(
            "include_offset_headers",
            "not used: libkb keeps each record's offset and timestamp in its segments and stores the "
            "records unchanged (restore.include_original_offset_header adds the headers on restore)",
            _true,
        ),
        Replaced(
            "source_cluster_id",
            "not used: libkb records the source cluster's own id in the backup's manifest "
            "(kafka-backup describe shows it) and stores the records unchanged",
        ),
        Replaced(
            "stop_at_current_offsets",
            "a backup that is not continuous stops at the offsets present when it starts (a snapshot) "
            "instead of chasing new records; use continuous: true to follow them",
            _one_shot,
        ),
    ),
    "restore": (
        Replaced("checkpoint_state", _RESTORE_STATE),
        Replaced("checkpoint_interval_secs", _RESTORE_STATE),
        Replaced(
            "consumer_group_strategy",
            "not used: libkb translates consumer-group offsets exactly, from the offsets it recorded "
            "while restoring (applied with reset_consumer_offsets: true; see show-offset-mapping)",
            _heuristic,
        ),
        Replaced(
            "produce_acks",
            "libkb produces with acks=all and an idempotent producer, so a restore and its re-runs "
            "neither lose nor duplicate records",
            _weak_acks,
        ),
    ),
    "metrics": (Replaced("update_interval_ms", "not used: libkb updates its metrics as the run goes"),),
}


def warnings(data: Mapping[str, Any], *, source: str | None = None) -> list[str]:
    """One line for each replaced key the job file sets, in file order of the sections."""
    where = f"{source}: " if source else ""
    lines = []
    for path, value, section, replaced in _present(data):
        if value is not None and replaced.applies(value, section):
            lines.append(f"{where}{path}: {replaced.instead}")
    return lines


def _present(data: Mapping[str, Any]) -> Iterator[tuple[str, Any, Mapping[str, Any], Replaced]]:
    for section_name, replaced_keys_of in REPLACED.items():
        section = data if not section_name else data.get(section_name)
        for replaced in replaced_keys_of:
            *parents, key = replaced.key.split(".")
            holder = section
            for parent in parents:
                holder = holder.get(parent) if isinstance(holder, Mapping) else None
            if isinstance(holder, Mapping) and key in holder:
                path = ".".join(p for p in (section_name, replaced.key) if p)
                yield path, holder[key], holder, replaced
