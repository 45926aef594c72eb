"""Where a record goes when its topic is restored by key into another partition count.

``murmur2`` (the default): a record with a key (an empty one too) goes to the
partition the Java client's default partitioner picks for its key
(:mod:`libkb.kafka.partitioner`), so producers that go on writing to the
target topic put a key's new records in the same partition as its restored
ones. A record without a key goes to its source partition modulo the target's
partition count. Kafka's own producer spreads such records at will; the rule
here is fixed instead, because a re-run must send every record where the
interrupted run sent it (:mod:`.spread`); it keeps each source partition's
keyless records together and in order, and with at least as many target
partitions as source partitions they stay in the partition they came from.

``automatic`` (the original tool's round robin): every record, keyed or
not, goes to its source offset modulo the partition count: spread evenly and
just as fixed, with no order kept per key.

Both are computed a block of records at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from operator import itemgetter

from libkb.format.segment import Record
from libkb.kafka.partitioner import partitions_for_keys

_OFFSET, _KEY = itemgetter(0), itemgetter(3)

Route = Callable[[list[Record]], list[int]]


def router(strategy: str, partitions: int, source_partition: int) -> Route:
    """The target partition of each record of a block read from ``source_partition``."""
    if strategy == "automatic":
        return lambda block: [offset % partitions for offset in map(_OFFSET, block)]
    keyless = source_partition % partitions

    def by_key(block: list[Record]) -> list[int]:
        keys = list(map(_KEY, block))
        if None not in keys:
            return partitions_for_keys(keys, partitions)
        parts = partitions_for_keys([k or b"" for k in keys], partitions)
        i = -1
        with suppress(ValueError):  # no None after i: done
            while True:  # the keyless records, found by list.index (C) rather than a loop over all
                i = keys.index(None, i + 1)
                parts[i] = keyless
        return parts

    return by_key
