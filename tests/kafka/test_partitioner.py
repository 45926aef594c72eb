"""Kafka's murmur2 partitioner, byte for byte as the Java client computes it.

The hashes are Kafka's own test vectors (``UtilsTest.testMurmur2`` in
kafka-clients) and others computed from Kafka's ``Utils.murmur2``; the
partitions were computed with kafka-clients 4.1.1's
``BuiltInPartitioner.partitionForKey``. ``integration/restore/
test_repartition.py`` checks many random keys against the Java client itself.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from libkb.kafka.partitioner import murmur2, partition_for_key, partitions_for_keys

#: kafka-clients UtilsTest.testMurmur2.
KAFKA_UTILS_TEST = [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
]
#: Kafka's Utils.murmur2 of keys of 1 to 5 bytes (every tail length), and of the empty key.
SHORT_KEYS = [
    (b"1", -1993445489),
    (b"12", 126087238),
    (b"123", -267702483),
    (b"1234", -1614185708),
    (b"12345", -1188365604),
    (b"", 275646681),
    (b"key", -1079937367),
]


@pytest.mark.parametrize(("key", "expected"), KAFKA_UTILS_TEST + SHORT_KEYS)
def test_murmur2_is_the_java_clients(key: bytes, expected: int) -> None:
    assert murmur2(key) == expected


@pytest.mark.parametrize(
    ("key", "partitions", "expected"),
    [
        (b"key", 3, 1),  # DefaultPartitionerTest's key, in its 3 partitions
        (b"key", 7, 4),
        (b"key", 12, 1),
        (b"", 7, 2),  # an empty key is hashed, not treated as no key
        (b"", 12, 9),
        (b"21", 7, 3),  # a negative hash: toPositive clears the sign bit, no abs()
        (b"foobar", 12, 6),
        (b"anything", 1, 0),
    ],
)
def test_the_partition_is_the_java_clients(key: bytes, partitions: int, expected: int) -> None:
    assert partition_for_key(key, partitions) == expected


@given(st.lists(st.binary(max_size=40), max_size=50), st.integers(1, 1000))
def test_a_block_of_keys_gets_what_each_key_gets(keys: list[bytes], partitions: int) -> None:
    expected = [(murmur2(k) & 0x7FFFFFFF) % partitions for k in keys]
    assert partitions_for_keys(keys, partitions) == expected
    assert [partition_for_key(k, partitions) for k in keys] == expected
