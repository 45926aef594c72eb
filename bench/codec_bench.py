"""Compression options that see past one block, measured in-process: ratio and CPU seconds per GiB.

No Kafka, no storage, one thread: each data set (:mod:`datasets`) is split
into partitions round robin as a topic would be, one partition's records are
packed into 1 MiB msgpack blocks as the backup engine packs them, and each
option compresses them as a 128 MiB segment would be, then decompresses
them. CPU time is ``time.process_time`` (less sensitive to a loaded machine
than wall time). Options:

- ``block``: one zstd frame per block (format versions 1-6);
- ``stream/N``: one zstd context across the blocks, flushed at each block
  boundary (``FLUSH_BLOCK``), a new frame every N blocks (restart points);
  ``+w24`` a 16 MiB window, ``+ldm`` long-distance matching with a 128 MiB
  window;
- ``dict``: a 112 KiB dictionary trained on the segment's first 8 blocks,
  then one frame per block with it;
- ``big8``: 8 MiB blocks, one frame each;
- ``libkb``: what libkb writes, zstd-stream (``libkb.format.zstream``:
  ``stream/128+w23`` with incompressible blocks stored raw).

Run::

    .venv/bin/python bench/codec_bench.py --mib 64 --partitions 1,8
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zstandard

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from datasets import SHAPES, records  # noqa: E402

from libkb.format.segment import BlockEncoder  # noqa: E402

MiB = 1024 * 1024
GiB = 1024 * MiB
Blocks = list[bytes]
Compress = Callable[[Blocks], list[bytes]]


def blocks_of(shape: str, mib: int, partitions: int, block_bytes: int = MiB) -> Blocks:
    """Partition 0's raw blocks of ``mib`` MiB of the data set spread over ``partitions``."""
    enc = BlockEncoder(block_bytes)
    out: Blocks = []
    for n, (key, value, headers) in enumerate(records(shape, mib * MiB * partitions)):
        if n % partitions:
            continue
        if enc.add(n // partitions, 1_700_000_000_000 + n, 1, key, value, headers) >= block_bytes:
            out.append(bytes(enc.take().data))
    if enc.count:
        out.append(bytes(enc.take().data))
    return out


def per_block(level: int) -> tuple[Compress, Callable[[list[bytes]], int]]:
    def compress(blocks: Blocks) -> list[bytes]:
        c = zstandard.ZstdCompressor(level=level)
        return [c.compress(b) for b in blocks]

    def decompress(payloads: list[bytes]) -> int:
        d = zstandard.ZstdDecompressor()
        return sum(len(d.decompress(p)) for p in payloads)

    return compress, decompress


def streamed(
    level: int, restart: int, window_log: int = 0, ldm: bool = False
) -> tuple[Compress, Callable[[list[bytes]], int]]:
    params = (
        zstandard.ZstdCompressionParameters.from_level(level, window_log=window_log, enable_ldm=ldm)
        if (window_log or ldm)
        else None
    )

    def compress(blocks: Blocks) -> list[bytes]:
        c = (
            zstandard.ZstdCompressor(compression_params=params)
            if params
            else zstandard.ZstdCompressor(level=level)
        )
        out = []
        for i, b in enumerate(blocks):
            if i % restart == 0:
                obj = c.compressobj()
            out.append(obj.compress(b) + obj.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK))
        return out

    def decompress(payloads: list[bytes]) -> int:
        d = zstandard.ZstdDecompressor(max_window_size=1 << 31)
        n = 0
        for i, p in enumerate(payloads):
            if i % restart == 0:
                obj = d.decompressobj()
            n += len(obj.decompress(p))
        return n

    return compress, decompress


def dictionary(level: int, sample_blocks: int = 8) -> tuple[Compress, Callable[[list[bytes]], int]]:
    state: dict[str, zstandard.ZstdCompressionDict] = {}

    def compress(blocks: Blocks) -> list[bytes]:
        samples: list[Any] = [b[i : i + 4096] for b in blocks[:sample_blocks] for i in range(0, len(b), 4096)]
        d = zstandard.train_dictionary(112 * 1024, samples, level=level)
        state["d"] = d
        c = zstandard.ZstdCompressor(level=level, dict_data=d)
        return [d.as_bytes()] + [c.compress(b) for b in blocks]

    def decompress(payloads: list[bytes]) -> int:
        d = zstandard.ZstdDecompressor(dict_data=zstandard.ZstdCompressionDict(payloads[0]))
        return sum(len(d.decompress(p)) for p in payloads[1:])

    return compress, decompress


def libkb_stream(level: int, restart: int = 128) -> tuple[Compress, Callable[[list[bytes]], int]]:
    """What libkb writes (zstd-stream, format 7): window log 23, raw blocks where a sample does not shrink."""
    from libkb.format.zstream import StreamDecoder, StreamEncoder

    sizes: list[int] = []

    def compress(blocks: Blocks) -> list[bytes]:
        encoder = StreamEncoder(level, restart)
        sizes[:] = map(len, blocks)
        return [encoder.encode(b, i) for i, b in enumerate(blocks)]

    def decompress(payloads: list[bytes]) -> int:
        decoder = StreamDecoder()
        return sum(len(decoder.decode(p, i, sizes[i])) for i, p in enumerate(payloads))

    return compress, decompress


def measure(
    name: str, codec: tuple[Compress, Callable[[list[bytes]], int]], blocks: Blocks
) -> dict[str, float]:
    raw = sum(map(len, blocks))
    t0 = time.process_time()
    stored = codec[0](blocks)
    t1 = time.process_time()
    got = codec[1](stored)
    t2 = time.process_time()
    assert got == raw, (name, got, raw)
    size = sum(map(len, stored))
    return {
        "ratio": raw / size,
        "comp": (t1 - t0) * GiB / raw,
        "decomp": (t2 - t1) * GiB / raw,
        "stored": size,
    }


def options(level: int) -> dict[str, tuple[Compress, Callable[[list[bytes]], int]]]:
    return {
        "block": per_block(level),
        "stream/8": streamed(level, 8),
        "stream/32": streamed(level, 32),
        "stream/8+w24": streamed(level, 8, 24),
        "stream/32+w24": streamed(level, 32, 24),
        "stream/32+ldm": streamed(level, 32, 27, True),
        "dict": dictionary(level),
    }


def parse_option(name: str, level: int) -> tuple[Compress, Callable[[list[bytes]], int]]:
    """``stream/R+wW`` (``+ldm``): restart every R blocks, window 2**W bytes."""
    restart, *extras = name.removeprefix("stream/").split("+")
    window = next((int(e[1:]) for e in extras if e.startswith("w")), 0)
    if name == "libkb":
        return libkb_stream(level)
    return streamed(level, int(restart), window, "ldm" in extras)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=64, help="MiB of partition 0's records per data set")
    parser.add_argument("--partitions", default="1,8")
    parser.add_argument("--shapes", default="distinct,cyclic,cdc,random")
    parser.add_argument("--level", type=int, default=3)
    parser.add_argument("--only", default=None, help="comma-separated option names")
    args = parser.parse_args()
    chosen = options(args.level)
    if args.only:
        chosen = {
            name: chosen.get(name) or parse_option(name, args.level)
            for name in args.only.split(",")
            if name != "big8"
        }
    print(f"{'data':10} {'p':>2} {'option':14} {'ratio':>7} {'comp s/GiB':>10} {'dec s/GiB':>9}")
    for shape in args.shapes.split(","):
        assert shape in SHAPES, shape
        for partitions in map(int, args.partitions.split(",")):
            blocks = blocks_of(shape, args.mib, partitions)
            big = [b"".join(blocks[i : i + 8]) for i in range(0, len(blocks), 8)]
            runs = {name: measure(name, codec, blocks) for name, codec in chosen.items()}
            if not args.only or "big8" in args.only:
                runs["big8"] = measure("big8", per_block(args.level), big)
            for name, r in runs.items():
                cells = f"{r['ratio']:7.2f} {r['comp']:10.2f} {r['decomp']:9.2f}"
                print(f"{shape:10} {partitions:>2} {name:14} {cells}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
