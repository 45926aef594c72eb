"""Which stored topic each Kafka topic of a run is backed up into: a topic's identity. Pure: no I/O.

A topic deleted and re-created under its name is another log: its offsets
start again, and its records have nothing to do with the old ones. Kafka
gives each topic an id (KIP-516); the manifest records it, and a run that
finds another id under a backed-up name must not append the new log to the
old one. ``backup.on_topic_recreated`` decides: ``fail`` stops the run,
``new_incarnation`` stores the new log apart, under the stored name
``{topic}@{n}`` (:func:`libkb.format.models.stored_topic`), so the two never
mix. Topics recorded without an id (backups before format version 5, brokers
before Kafka 2.8) are still judged by offsets alone (:mod:`.plan`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from libkb.backup.plan import PlanError
from libkb.format.models import Manifest, TopicInfo, parse_stored_topic, stored_topic

log = logging.getLogger("libkb.backup")


class TopicRecreatedError(PlanError):
    """A backed-up topic now has another topic id: it was deleted and re-created."""


def recreated_message(backup_id: str, topic: str, stored: str, old_id: str, new_id: str) -> str:
    """The one line that names the topic, both ids and the key that lets a run continue."""
    number = parse_stored_topic(stored)[1]
    return (
        f"topic {topic!r} was deleted and re-created: backup {backup_id!r} holds topic id {old_id} "
        f"(incarnation {number}), the cluster has {new_id}; set backup.on_topic_recreated: "
        f"new_incarnation to back up the new log separately as incarnation {number + 1}, "
        "or use a new backup_id"
    )


def choose_incarnations(
    manifest: Manifest, infos: Mapping[str, TopicInfo], *, on_recreated: str
) -> dict[str, str]:
    """Kafka topic -> the stored topic this run writes it to; records ``infos`` in the manifest.

    A topic's latest incarnation continues when its recorded id is the
    cluster's (or either is unknown: then offsets judge, as before ids). Another
    id raises :class:`TopicRecreatedError`, or with ``new_incarnation`` starts
    the next incarnation. The manifest is changed only once every topic passed.
    """
    chosen: dict[str, str] = {}
    updates: dict[str, TopicInfo] = {}
    for topic, info in infos.items():
        names = manifest.incarnations(topic)
        if not names:
            chosen[topic], updates[topic] = topic, info
            continue
        latest = names[-1]
        old_id = manifest.topics[latest].topic_id
        if info.topic_id is None or old_id is None or info.topic_id == old_id:
            if info.topic_id is None:
                info.topic_id = old_id  # a broker that stopped reporting ids does not erase the record
            chosen[topic], updates[latest] = latest, info
            continue
        message = recreated_message(manifest.backup_id, topic, latest, old_id, info.topic_id)
        if on_recreated != "new_incarnation":
            raise TopicRecreatedError(message)
        fresh = stored_topic(topic, parse_stored_topic(latest)[1] + 1)
        log.warning("%s; backing it up as %s (backup.on_topic_recreated: new_incarnation)", message, fresh)
        chosen[topic], updates[fresh] = fresh, info
    manifest.topics.update(updates)
    return chosen


def recreated_since(
    manifest: Manifest, stored: Mapping[str, str], ids: Mapping[str, str | None]
) -> str | None:
    """The message for the first topic whose id changed while a run reads it, or None.

    ``stored``: Kafka topic -> stored topic of the run; ``ids``: the ids the cluster has now.
    """
    for topic, name in sorted(stored.items()):
        old_id, new_id = manifest.topics[name].topic_id, ids.get(topic)
        if old_id is not None and new_id is not None and old_id != new_id:
            return recreated_message(manifest.backup_id, topic, name, old_id, new_id)
    return None
