"""Source-to-target offset translation of a restore. Pure: no I/O.

A restore writes a partition's selected records in order, so the i-th record
lands at ``target_start + i``. The mapping is kept as runs of consecutive
source offsets that map to consecutive target offsets; gaps (compaction,
transaction markers, filtered records) start a new run. A committed source
offset ``c`` translates to the target offset of the first restored record at
or after ``c``, or to the end of the restored partition when there is none.

A topic restored by key into another partition count (:mod:`.spread`) has no
such translation: each target partition holds the records of several source
partitions, one block after another. Its mapping records, per target
partition, the blocks in the order written: which source partition, how
many records, and the first and last source offset among them.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from libkb.errors import FormatError
from libkb.format.strict import array, integer, load_object, malformed, mapping, string
from libkb.restore.state import key_of, spread_key


@dataclass(slots=True)
class PartitionMapping:
    source_topic: str
    source_partition: int
    target_topic: str
    target_partition: int
    target_start: int  # target offset of the first restored record
    #: (source_start, target_start, length) runs, ascending.
    runs: list[tuple[int, int, int]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(r[2] for r in self.runs)

    @property
    def target_end(self) -> int:
        """The target offset after the last restored record."""
        return self.target_start + self.count

    @property
    def key(self) -> str:
        """The key of its state (:mod:`.state`)."""
        return key_of(self.source_topic, self.source_partition)

    def add(self, source_offset: int) -> None:
        """Record that the next restored record came from ``source_offset`` (called in order)."""
        if self.runs:
            s, t, n = self.runs[-1]
            if source_offset == s + n:
                self.runs[-1] = (s, t, n + 1)
                return
        self.runs.append((source_offset, self.target_end, 1))

    def add_all(self, offsets: Iterable[int]) -> None:
        for offset in offsets:
            self.add(offset)

    def translate(self, committed: int) -> int:
        """Target offset where a consumer that committed ``committed`` on the source resumes."""
        starts = [r[0] for r in self.runs]
        i = bisect.bisect_right(starts, committed) - 1
        if i >= 0:
            s, t, n = self.runs[i]
            if committed < s + n:
                return t + (committed - s)
            i += 1  # committed falls in the gap after run i
        else:
            i = 0
        if i < len(self.runs):
            return self.runs[i][1]
        return self.target_end

    def to_dict(self) -> dict[str, Any]:
        return {
            "source_topic": self.source_topic,
            "source_partition": self.source_partition,
            "target_topic": self.target_topic,
            "target_partition": self.target_partition,
            "target_start": self.target_start,
            "runs": [list(r) for r in self.runs],
        }

    @classmethod
    def from_dict(
        cls, body: object, name: str = "offset mapping", path: str = "partition"
    ) -> PartitionMapping:
        fields = mapping(body, name, path)
        return cls(
            string(fields.get("source_topic"), name, f"{path}.source_topic"),
            integer(fields.get("source_partition"), name, f"{path}.source_partition"),
            string(fields.get("target_topic"), name, f"{path}.target_topic"),
            integer(fields.get("target_partition"), name, f"{path}.target_partition"),
            integer(fields.get("target_start"), name, f"{path}.target_start"),
            [
                _ints(run, 3, name, f"{path}.runs[{i}]")  # type: ignore[misc]
                for i, run in enumerate(array(fields.get("runs"), name, f"{path}.runs"))
            ],
        )


@dataclass(slots=True)
class SpreadPartition:
    """A target partition a topic was restored into by key, as blocks of its source partitions' records.

    Block ``i`` holds target offsets from ``target_start`` plus the records
    of the blocks before it; which source offset went to which target offset
    is not kept (that would take an entry per record).
    """

    source_topic: str
    target_topic: str
    target_partition: int
    target_start: int
    #: (source_partition, records, first source offset, last source offset), in the order written.
    blocks: list[tuple[int, int, int, int]] = field(default_factory=list)

    @property
    def key(self) -> str:
        return spread_key(self.source_topic, self.target_partition)

    @property
    def count(self) -> int:
        return sum(b[1] for b in self.blocks)

    @property
    def target_end(self) -> int:
        return self.target_start + self.count

    def to_dict(self) -> dict[str, Any]:
        return {
            "source_topic": self.source_topic,
            "target_topic": self.target_topic,
            "target_partition": self.target_partition,
            "target_start": self.target_start,
            "blocks": [list(b) for b in self.blocks],
        }

    @classmethod
    def from_dict(
        cls, body: object, name: str = "offset mapping", path: str = "repartitioned"
    ) -> SpreadPartition:
        fields = mapping(body, name, path)
        blocks = array(fields.get("blocks"), name, f"{path}.blocks")
        return cls(
            string(fields.get("source_topic"), name, f"{path}.source_topic"),
            string(fields.get("target_topic"), name, f"{path}.target_topic"),
            integer(fields.get("target_partition"), name, f"{path}.target_partition"),
            integer(fields.get("target_start"), name, f"{path}.target_start"),
            [_ints(block, 4, name, f"{path}.blocks[{i}]") for i, block in enumerate(blocks)],  # type: ignore[misc]
        )


def _ints(value: object, count: int, name: str, path: str) -> tuple[int, ...]:
    """An array of exactly ``count`` integers, as a tuple."""
    items = array(value, name, path)
    if len(items) != count:
        raise FormatError(f"{name}: {path}: expected {count} integers, found {len(items)} items")
    return tuple(integer(item, name, f"{path}[{i}]") for i, item in enumerate(items))


@dataclass(slots=True)
class OffsetMapping:
    """Every partition's translation for one restore."""

    backup_id: str
    restore_id: str
    partitions: list[PartitionMapping] = field(default_factory=list)
    #: The target partitions of topics restored by key (no per-offset translation).
    spread: list[SpreadPartition] = field(default_factory=list)

    def find(self, source_topic: str, source_partition: int) -> PartitionMapping | None:
        for p in self.partitions:
            if (p.source_topic, p.source_partition) == (source_topic, source_partition):
                return p
        return None

    def spread_into(self, source_topic: str) -> list[SpreadPartition]:
        """The target partitions ``source_topic`` was restored into by key (none: not so restored)."""
        return [p for p in self.spread if p.source_topic == source_topic]

    def to_json(self) -> bytes:
        body = {
            "format": "libkb-offset-mapping",
            "format_version": 1,
            "backup_id": self.backup_id,
            "restore_id": self.restore_id,
            "partitions": [p.to_dict() for p in self.partitions],
        }
        if self.spread:  # an addition readers of earlier builds pass over: they translate none of it
            body["repartitioned"] = [p.to_dict() for p in self.spread]
        return json.dumps(body, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes, *, name: str = "offset mapping") -> OffsetMapping:
        body = load_object(data, name, "offset mapping")
        if (
            body.get("format") != "libkb-offset-mapping"
            or body.get("format_version") != 1
            or type(body.get("format_version")) is not int
        ):
            raise FormatError(f"{name}: not a libkb offset mapping of a known version")
        with malformed(name, "offset mapping"):
            return cls._fields(body, name)

    @classmethod
    def _fields(cls, body: dict[str, Any], name: str) -> OffsetMapping:
        partitions = array(body.get("partitions"), name, "partitions")
        spread = array(body.get("repartitioned", []), name, "repartitioned")
        return cls(
            string(body.get("backup_id"), name, "backup_id"),
            string(body.get("restore_id"), name, "restore_id"),
            [PartitionMapping.from_dict(p, name, f"partitions[{i}]") for i, p in enumerate(partitions)],
            [SpreadPartition.from_dict(p, name, f"repartitioned[{i}]") for i, p in enumerate(spread)],
        )
