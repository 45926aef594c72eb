"""The benchmarks' data sets: records by shape, deterministic by seed, as many bytes as asked.

Each generator yields ``(key, value, headers)`` until the key + value bytes
reach ``target_bytes``; the same seed gives the same records on every run
and machine (``random.Random``, no clock, no ``os.urandom``). Shapes:

- ``distinct``: JSON-like ~1 KiB events, none repeated (zstd-3 ratio about 4
  on a 1 MiB block);
- ``cyclic``: a pool of 8,192 such events, cycled (the pool the backup and
  restore benches produce): each partition repeats every pool/partitions
  records;
- ``cdc``: change events of a bounded set of keys, each a large (~4 KiB)
  JSON row image in which an update changes a few fields;
- ``random``: incompressible bytes (1 KiB values);
- ``lz4-producer`` / ``zstd-producer``: the distinct events, produced with
  the producer's batch compression on (``PRODUCER_COMPRESSION``); a consumer
  reads the same records as ``distinct``.

``produce(bootstrap, topic, partitions, shape, target_bytes, seed)`` puts a
data set in a topic (record ``n`` to partition ``n % partitions``).
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from backup_bench import make_pool, produce_records

MiB = 1024 * 1024
Record = tuple[bytes, bytes, Any]
SHAPES = ("distinct", "cyclic", "cdc", "random", "lz4-producer", "zstd-producer")
#: The producer's ``compression.type`` per shape (``none`` when not listed).
PRODUCER_COMPRESSION = {"lz4-producer": "lz4", "zstd-producer": "zstd"}
_POOL = 8192


def records(shape: str, target_bytes: int, seed: int = 7) -> Iterator[Record]:
    """The data set ``shape``: records until key + value bytes reach ``target_bytes``."""
    if shape not in SHAPES:
        raise ValueError(f"unknown data set {shape!r}; one of {', '.join(SHAPES)}")
    make = {"cyclic": _cyclic, "cdc": _cdc, "random": _random}.get(shape, _distinct)
    total = 0
    for record in make(seed):
        yield record
        total += len(record[0]) + len(record[1])
        if total >= target_bytes:
            return


def _distinct(seed: int) -> Iterator[Record]:
    chunk = 0
    while True:  # fresh pools from derived seeds: no record repeats
        yield from make_pool(1024, 1024, seed=seed * 1_000_003 + chunk)
        chunk += 1


def _cyclic(seed: int) -> Iterator[Record]:
    pool = make_pool(_POOL, 1024, seed=seed)
    while True:
        yield from pool


def _random(seed: int) -> Iterator[Record]:
    rnd = random.Random(seed)
    n = 0
    while True:
        yield f"blob-{n:09d}".encode(), rnd.randbytes(1024), None
        n += 1


_STATUSES = ("pending", "paid", "packed", "shipped", "delivered", "returned")


def _cdc(seed: int, keys: int = 4096) -> Iterator[Record]:
    """Debezium-like updates: before/after row images of ``keys`` orders, a few fields changed each."""
    rnd = random.Random(seed)
    rows: dict[int, dict[str, Any]] = {}
    lsn = 10_000_000
    while True:
        k = rnd.randrange(keys)
        before = rows.get(k)
        after = dict(before) if before else _new_row(rnd, k)
        after["status"] = rnd.choice(_STATUSES)
        after["version"] = after.get("version", 0) + 1
        after["updated_at"] = 1_735_689_600_000 + lsn
        if rnd.random() < 0.3:
            after["amount_cents"] = rnd.randrange(100, 500_000)
        rows[k] = after
        lsn += rnd.randint(1, 200)
        event = {
            "before": before,
            "after": after,
            "source": {"connector": "postgresql", "db": "shop", "table": "orders", "lsn": lsn},
            "op": "u" if before else "c",
            "ts_ms": after["updated_at"],
        }
        yield (
            json.dumps({"id": k}, separators=(",", ":")).encode(),
            json.dumps(event, separators=(",", ":")).encode(),
            None,
        )


def _new_row(rnd: random.Random, k: int) -> dict[str, Any]:
    lines: list[dict[str, Any]] = [
        {
            "sku": f"SKU-{rnd.randrange(100000):05d}",
            "qty": rnd.randint(1, 5),
            "price_cents": rnd.randrange(99, 50_000),
        }
        for _ in range(rnd.randint(3, 12))
    ]
    return {
        "id": k,
        "customer_id": rnd.randrange(1_000_000),
        "shipping_address": {
            "street": f"{rnd.randint(1, 300)} {rnd.choice(['Main', 'Oak', 'Pine', 'Maple'])} Street",
            "city": rnd.choice(["Berlin", "Paris", "Austin", "Leeds", "Utrecht", "Lyon"]),
            "zip": f"{rnd.randrange(100000):05d}",
        },
        "lines": lines,
        "notes": " ".join(
            rnd.choice(["gift", "fragile", "express", "leave at door", "call first"]) for _ in range(8)
        ),
        "amount_cents": sum(line["qty"] * line["price_cents"] for line in lines),
    }


def produce(
    bootstrap: str, topic: str, partitions: int, shape: str, target_bytes: int, seed: int = 7
) -> tuple[int, int]:
    """Produce the data set into ``topic`` (record n to partition n % partitions); (records, bytes)."""
    compression = PRODUCER_COMPRESSION.get(shape, "none")
    return produce_records(bootstrap, topic, partitions, records(shape, target_bytes, seed), compression)
