"""Facts read from a Kafka cluster, as plain data (the backup format stores them)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class TopicInfo:
    partitions: int
    replication_factor: int
    configs: dict[str, str] = field(default_factory=dict)
    #: The topic's id (KIP-516), in Kafka's base64 form; None when the broker gives none
    #: (before Kafka 2.8) or a backup recorded none (before format version 5).
    topic_id: str | None = None


@dataclass(frozen=True, slots=True)
class GroupOffsets:
    """Committed offsets of one consumer group on the backed-up topics."""

    group: str
    offsets: dict[str, dict[int, int]]  # topic -> partition -> committed offset


@dataclass(frozen=True, slots=True)
class CommittedOffset:
    """A group's committed position on one partition, exactly as Kafka keeps it.

    ``metadata`` is the committer's free-form string (``None`` when empty) and
    ``leader_epoch`` the epoch the committer saw, if it sent one: a rollback
    restores all three.
    """

    offset: int
    metadata: str | None = None
    leader_epoch: int | None = None
