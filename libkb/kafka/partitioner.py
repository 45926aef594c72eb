"""The partition the Java client's default partitioner picks for a keyed record.

Java's ``BuiltInPartitioner.partitionForKey`` (and the older
``DefaultPartitioner``): ``toPositive(murmur2(key)) % numPartitions``, where
``murmur2`` is 32-bit MurmurHash2 with seed ``0x9747b28c`` over the key's
bytes and ``toPositive`` clears the sign bit. An empty key is hashed like any
other; only a null key has no hash. The hash is the ``murmurhash2`` package's
(a Rust extension, one call per key), checked against Kafka's own test
vectors and against the Java client itself in the tests.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import repeat

from murmurhash2 import murmurhash2

#: The seed of Kafka's ``Utils.murmur2``.
SEED = 0x9747B28C
_POSITIVE = 0x7FFFFFFF


def murmur2(key: bytes) -> int:
    """Kafka's ``Utils.murmur2(key)``: a signed 32-bit int, as Java returns it."""
    h = murmurhash2(key, SEED)
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for_key(key: bytes, partitions: int) -> int:
    """The partition of ``partitions`` that the Java client picks for ``key``."""
    return (murmurhash2(key, SEED) & _POSITIVE) % partitions


def partitions_for_keys(keys: Iterable[bytes], partitions: int) -> list[int]:
    """:func:`partition_for_key` of every key, in one pass (no call per key in Python)."""
    return [(h & _POSITIVE) % partitions for h in map(murmurhash2, keys, repeat(SEED))]
