"""The librdkafka properties libkb's clients depend on: ``client_config`` may restate them, not change them.

``client_config`` is for tuning, and wins over libkb's own choices (the
restore's compression, linger, batch and queue sizes; the backup's fetch
queue). These properties are different: a backup whose consumer committed
offsets, skipped offsets that retention deleted or never saw a partition's
end, or a restore whose producer could duplicate a retried batch, would still
report success. So a job file whose ``client_config`` changes one is refused
when it loads, before anything runs, and the clients always get libkb's value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from libkb.errors import ConfigError

#: What the backup's consumer needs; its ``isolation.level`` is ``backup.isolation_level``.
BACKUP_CONSUMER: dict[str, Any] = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "enable.partition.eof": True,
    "auto.offset.reset": "error",
}
#: What the consumer that reads a restore's records back needs.
READ_BACK_CONSUMER: dict[str, Any] = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "auto.offset.reset": "error",
    "isolation.level": "read_uncommitted",
}
#: What the restore's producer needs.
RESTORE_PRODUCER: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "delivery.report.only.error": True,
}

PROPERTIES = frozenset(BACKUP_CONSUMER) | frozenset(READ_BACK_CONSUMER) | frozenset(RESTORE_PRODUCER)
PROPERTIES |= {"isolation.level"}
_TABLES = (BACKUP_CONSUMER, READ_BACK_CONSUMER, RESTORE_PRODUCER)
_BOOLEANS = frozenset(k for table in _TABLES for k, v in table.items() if isinstance(v, bool))

_WHY = {
    "enable.auto.commit": "a backup or restore never commits a consumer group's offsets",
    "enable.auto.offset.store": "a backup or restore never commits a consumer group's offsets",
    "enable.partition.eof": "the backup knows a partition is done by its end-of-partition event",
    "auto.offset.reset": "offsets that retention deleted are reported, never skipped",
    "isolation.level": "a backup's is backup.isolation_level; a restore reads its records back uncommitted",
    "enable.idempotence": "a retried batch must not be written twice or out of order",
    "acks": "a record counts as restored once every in-sync replica has it",
    "delivery.report.only.error": "the restore reads only failed deliveries",
}
_BOOLEAN = {"1": "true", "t": "true", "0": "false", "f": "false"}


def split(settings: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``settings`` as (what ``client_config`` may override, what it may not: fixed properties, callbacks)."""
    tuned = {k: v for k, v in settings.items() if k not in PROPERTIES and not callable(v)}
    fixed = {k: v for k, v in settings.items() if k not in tuned}
    return tuned, fixed


def check(
    client_config: Mapping[str, Any], fixed: Mapping[str, Any], section: str, source: str | None = None
) -> None:
    """Refuse a ``client_config`` (``section`` of the file ``source``) giving one of ``fixed`` a new value."""
    for prop, value in client_config.items():
        if prop in fixed and _normal(prop, value) != _normal(prop, fixed[prop]):
            shown = _normal(prop, fixed[prop])
            raise ConfigError(
                f"libkb needs {prop}={shown} here ({_WHY.get(prop, 'libkb depends on it')}); "
                f"remove it from {section}",
                key=f"{section}.{prop}",
                source=source,
            )


def _normal(prop: str, value: Any) -> str:
    """librdkafka's spellings of a value as one string: ``True``, ``"true"``, ``"1"``; ``acks`` -1, all."""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value).strip().lower()
    if prop == "acks" and text == "-1":
        return "all"
    return _BOOLEAN.get(text, text) if prop in _BOOLEANS else text
