"""Which topics a restore writes by key into another partition count, and into how many. Pure.

``restore.repartition: auto`` (the default) restores a topic by key when its
target topic exists with another partition count than the backed-up one,
unless ``partition_mapping`` places its partitions; ``true`` restores every
topic so; ``false`` never. ``restore.repartitioning`` (the original tool's
key, by target topic) asks for it per topic, with a strategy and the target's
partition count.
"""

from __future__ import annotations

from libkb.config.models import RestoreOptions
from libkb.errors import ConfigError


def by_key_into(
    topic: str, target_topic: str, backed_up: int, existing: int | None, options: RestoreOptions
) -> tuple[int, str] | None:
    """(partition count, strategy) when ``topic`` is restored by key, else None (one to one).

    ``backed_up``: the topic's partition count in the backup; ``existing``:
    the target topic's, if it exists (None also when it is not known).
    """
    entry = options.repartitioning.get(target_topic)
    if entry is None and options.repartition == "never":
        return None
    mapped = topic in options.partition_mapping
    if entry is None and options.repartition == "auto":
        if existing is None or existing == backed_up or mapped or "*" in options.partition_mapping:
            return None
        return existing, "murmur2"
    why = (
        f"repartitioning.{target_topic}" if entry is not None else "repartition: true"
    ) + f" restores {target_topic!r} by key"
    if mapped or (entry is None and "*" in options.partition_mapping):
        raise ConfigError(
            f"partition_mapping places the partitions of {topic!r} one to one, but {why}; remove one of them",
            key="restore.partition_mapping",
        )
    wanted = entry.target_partitions if entry is not None else None
    if wanted is not None and existing is not None and existing != wanted:
        raise ConfigError(
            f"target topic {target_topic!r} has {existing} partitions, not {wanted}; set target_partitions "
            f"to {existing}, add partitions to the topic, or restore into a new topic",
            key=f"restore.repartitioning.{target_topic}.target_partitions",
        )
    count = wanted or existing or backed_up
    return count, entry.strategy if entry is not None else "murmur2"
