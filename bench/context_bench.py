"""zstd-stream contexts taken in turn: CPU per GiB when a thread moves to another context every N blocks.

Why: a backup of 8 partitions keeps 8 zstd-stream contexts (an 8 MiB
window and ~0.75 MiB of tables each, ``libkb.format.zstream``). Blocks
arrive from the partitions in turn; compressed in that order, each block
finds its context out of the CPU caches. The store pipeline therefore lets
a compression thread encode up to ``STREAM_RUN`` queued blocks of one
context before it moves on (``libkb.backup.store``). This measures that
choice in-process, on one thread, with no Kafka: each data set
(:mod:`datasets`) is spread over the partitions round robin, packed into
1 MiB blocks as the backup packs them, and compressed by one
``StreamEncoder`` per partition, N blocks of a partition at a time
(``run 1`` is strict turns; ``alone`` is one partition after another, the
1-partition case). CPU time is ``time.thread_time``.

Run::

    .venv/bin/python bench/context_bench.py --mib 256 --partitions 8 --runs 1,4,8
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from datasets import records  # noqa: E402

from libkb.format.segment import BlockEncoder  # noqa: E402
from libkb.format.zstream import StreamEncoder  # noqa: E402

MiB = 1024 * 1024
GiB = 1024 * MiB


def partition_blocks(shape: str, mib: int, partitions: int) -> list[list[bytes]]:
    """Every partition's raw 1 MiB blocks of ``mib`` MiB of the data set."""
    encoders = [BlockEncoder(MiB) for _ in range(partitions)]
    blocks: list[list[bytes]] = [[] for _ in range(partitions)]
    for n, (key, value, headers) in enumerate(records(shape, mib * MiB)):
        p = n % partitions
        if encoders[p].add(n // partitions, 1_700_000_000_000 + n, 1, key, value, headers) >= MiB:
            blocks[p].append(bytes(encoders[p].take().data))
    for p, enc in enumerate(encoders):
        if enc.count:
            blocks[p].append(bytes(enc.take().data))
    return blocks


def compress_in_turns(blocks: list[list[bytes]], run: int | None, level: int) -> tuple[float, int]:
    """CPU seconds and stored bytes, ``run`` blocks of a partition at a time (None: all of it)."""
    encoders = [StreamEncoder(level) for _ in blocks]
    longest = max(map(len, blocks))
    step = longest if run is None else run
    stored, started = 0, time.thread_time()
    if run is None:
        for enc, own in zip(encoders, blocks, strict=True):
            stored += sum(len(enc.encode(b, i)) for i, b in enumerate(own))
    else:
        for first in range(0, longest, step):
            for enc, own in zip(encoders, blocks, strict=True):
                for i in range(first, min(first + step, len(own))):
                    stored += len(enc.encode(own[i], i))
    return time.thread_time() - started, stored


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=256, help="MiB of key + value bytes per data set")
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--shapes", default="distinct,cyclic,cdc")
    parser.add_argument("--runs", default="1,4,8", help="blocks of a context per turn")
    parser.add_argument("--level", type=int, default=3)
    args = parser.parse_args()
    runs: list[int | None] = [None, *map(int, args.runs.split(","))]
    print(f"{args.mib} MiB per data set, {args.partitions} partitions, zstd-stream level {args.level}")
    print(f"{'data set':10s} {'turns':>8s} {'CPU s/GiB':>10s} {'ratio':>7s}")
    for shape in args.shapes.split(","):
        blocks = partition_blocks(shape, args.mib, args.partitions)
        raw = sum(len(b) for own in blocks for b in own)
        for run in runs:
            cpu, stored = compress_in_turns(blocks, run, args.level)
            label = "alone" if run is None else f"run {run}"
            print(f"{shape:10s} {label:>8s} {cpu / (raw / GiB):10.2f} {raw / stored:7.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
