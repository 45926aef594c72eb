"""Backup throughput and memory of libkb's engine against two raw-loop ceilings.

One Kafka broker (4.1.1, ``integration.services.KafkaService``) and one MinIO
(``MinioService``), both on 127.0.0.1. For every data size and partition
count a topic is produced once (1 KiB JSON-like values, realistic
compressibility), then each measured job runs in a fresh subprocess, so its
peak RSS is that process's own high-water mark (``VmHWM`` from
``/proc/self/status``; ``ru_maxrss`` would include the parent's pages when the
child is spawned with vfork):

- ``ceiling-a``: a raw confluent-kafka ``consume(10000)`` loop that touches the
  key, value, headers, timestamp and offset of every record until the end
  offsets, with the same librdkafka settings as libkb's consumer;
- ``ceiling-a-fs`` (with the filesystem target; for reference, not a
  target of the issue): the same loop, also appending key and value to a
  buffer that a second thread writes in ~1 MiB blocks to a file in the
  filesystem target's directory, fsynced at the end: what merely storing the
  bytes costs on this machine;
- ``ceiling-b``: the same loop, also appending key and value to a buffer that
  is zstd-compressed (same level as libkb) in ~1 MiB blocks on a second thread;
- ``libkb``: ``BackupEngine(parse_config({...})).run()`` with default settings
  except ``compression`` (none, zstd at the same level, or lz4; choose with
  ``--compressions``), to a filesystem directory (same disk) and to the MinIO
  bucket.

libkb at compression none is compared with ceiling-a, libkb at zstd with
ceiling-b, libkb at lz4 with ceiling-a (no lz4 ceiling is measured: it shows
what lz4 costs over storing the bytes as they are). Jobs are interleaved in a
rotating order each round; the tables show medians. MB/s counts key + value
bytes (10**6 bytes/s) over the whole job (consumer creation to the last byte
stored), the same bytes for every job.

``--baseline PATH`` (an older source tree with its C extension built in
place) also runs every libkb job with libkb imported from PATH, in the same
rounds, as ``libkb ... @base``; the report adds a table of the pairs.

Not part of CI. Run (about 20 minutes on 2 cores)::

    .venv/bin/python bench/backup_bench.py --runs 5 --write bench/RESULTS.rst
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import platform
import queue
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MiB = 1024 * 1024
BUCKET = "bench"
BATCH = 2_000  # as libkb's engine; 10,000 measured the same for these loops
RESULTS_TITLE = "Backup benchmark results"
BASE_SUFFIX = " @base"  # label suffix of a job run on the --baseline tree
T = TypeVar("T")


# -- data ----------------------------------------------------------------------------

_WORDS = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
    "quebec",
    "romeo",
    "sierra",
    "tango",
    "uniform",
    "victor",
    "whiskey",
    "xray",
    "yankee",
    "zulu",
    "order",
    "cart",
    "checkout",
    "payment",
    "refund",
    "shipment",
    "invoice",
    "customer",
    "account",
    "session",
    "login",
    "logout",
    "search",
    "product",
    "catalog",
    "review",
    "rating",
    "discount",
    "coupon",
    "warehouse",
    "inventory",
    "delivery",
    "return",
]
_ACTIONS = ["view", "click", "add_to_cart", "remove", "purchase", "search", "login", "logout"]
_COUNTRIES = ["DE", "FR", "US", "GB", "NL", "SE", "PL", "ES", "IT", "JP", "BR", "IN"]
_AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "okhttp/4.12.0",
]


def make_pool(n: int, value_bytes: int, seed: int = 7) -> list[tuple[bytes, bytes, Any]]:
    """``n`` distinct (key, value, headers) records: JSON events padded to exactly ``value_bytes``.

    Random ids, numbers and words from a small vocabulary give zstd-3 a ratio
    of about 4 on 1 MiB blocks, like typical event JSON. One record in four
    carries a W3C ``traceparent`` header.
    """
    rnd = random.Random(seed)
    pool = []
    for i in range(n):
        user = rnd.randrange(1_000_000)
        doc = {
            "event_id": uuid.UUID(int=rnd.getrandbits(128)).hex,
            "ts": f"2025-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}T"
            f"{rnd.randint(0, 23):02d}:{rnd.randint(0, 59):02d}:{rnd.randint(0, 59):02d}."
            f"{rnd.randint(0, 999):03d}Z",
            "action": rnd.choice(_ACTIONS),
            "user": {
                "id": user,
                "name": f"{rnd.choice(_WORDS).title()} {rnd.choice(_WORDS).title()}",
                "email": f"{rnd.choice(_WORDS)}.{user}@example.com",
                "country": rnd.choice(_COUNTRIES),
            },
            "session": f"{rnd.getrandbits(64):016x}",
            "page": "/" + "/".join(rnd.choice(_WORDS) for _ in range(rnd.randint(1, 4))),
            "user_agent": rnd.choice(_AGENTS),
            "items": [
                {
                    "sku": f"SKU-{rnd.randrange(100000):05d}",
                    "qty": rnd.randint(1, 5),
                    "price": round(rnd.uniform(1, 500), 2),
                }
                for _ in range(rnd.randint(0, 4))
            ],
            "amount": round(rnd.uniform(0, 2000), 2),
            "currency": rnd.choice(["EUR", "USD", "GBP"]),
            "tags": rnd.sample(_WORDS, rnd.randint(1, 6)),
            "note": "",
        }
        text = json.dumps(doc, separators=(",", ":"))
        room = value_bytes - len(text)
        note = " ".join(rnd.choice(_WORDS) for _ in range(room // 4 + 2))[: max(room, 0)]
        doc["note"] = note
        value = json.dumps(doc, separators=(",", ":")).encode()
        if len(value) > value_bytes:  # no room for a note: trim the item list
            doc["items"], doc["note"] = [], ""
            value = json.dumps(doc, separators=(",", ":")).encode()
            value += b" " * (value_bytes - len(value))
        value = value[:value_bytes]
        headers = None
        if i % 4 == 0:
            trace = f"00-{rnd.getrandbits(128):032x}-{rnd.getrandbits(64):016x}-01"
            headers = [("traceparent", trace.encode())]
        pool.append((f"user-{user:07d}".encode(), value, headers))
    return pool


def produce_topic(
    bootstrap: str, topic: str, partitions: int, target_bytes: int, pool: list[Any]
) -> tuple[int, int]:
    """Produce ``pool`` cycled until key + value bytes reach ``target_bytes``; (records, bytes)."""

    def cycled() -> Iterator[Any]:
        n = total = 0
        while total < target_bytes:
            key, value, headers = pool[n % len(pool)]
            yield key, value, headers
            n, total = n + 1, total + len(key) + len(value)

    return produce_records(bootstrap, topic, partitions, cycled())


def produce_records(
    bootstrap: str, topic: str, partitions: int, records: Iterable[Any], compression: str = "none"
) -> tuple[int, int]:
    """Produce ``(key, value, headers)`` records, record n to partition n % partitions; (records, bytes).

    One producer setup for every bench's topics (``compression``: the producer's batch compression).
    """
    from confluent_kafka import Producer

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 50,
            "batch.size": 4 * MiB,
            "batch.num.messages": 100_000,
            "queue.buffering.max.kbytes": 512 * 1024,
            "queue.buffering.max.messages": 1_000_000,
            "compression.type": compression,
            "acks": 1,
            "enable.idempotence": False,
        }
    )
    produce = producer.produce
    n = total = 0
    for key, value, headers in records:
        while True:
            try:
                produce(topic, value, key, n % partitions, headers=headers)
                break
            except BufferError:
                producer.poll(0.05)
        n += 1
        total += len(key) + len(value)
        if n % 20_000 == 0:
            producer.poll(0)
    if producer.flush(120) != 0:
        raise RuntimeError(f"{topic}: records left unsent")
    return n, total


# -- the measured jobs (run in a child process) ---------------------------------------


def _vm_hwm_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return -1


def consumer_config(bootstrap: str) -> dict[str, Any]:
    """The ceilings' librdkafka settings: the ones libkb's backup consumer uses.

    Spelled out here (not read from the engine) so that engine changes do not
    move the ceilings. ``fetch.queue.backoff.ms`` matters most: librdkafka's
    default of 1000 ms caps this loop at ~100 MB/s on loopback.
    """
    return {
        "bootstrap.servers": bootstrap,
        "group.id": f"bench-ceiling-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "isolation.level": "read_committed",
        "auto.offset.reset": "earliest",
        "queued.max.messages.kbytes": 32768,
        "fetch.queue.backoff.ms": 10,
    }


def ceiling(spec: dict[str, Any]) -> dict[str, Any]:
    """The raw loop; ceiling-b also zstd-compresses on a second thread, ceiling-a-fs writes a file."""
    import zstandard
    from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

    compress = spec["kind"] in ("ceiling-b", "ceiling-a-fs")  # key+value go to a second thread
    started = time.perf_counter()
    consumer = Consumer(consumer_config(spec["bootstrap"]))
    topic, partitions = spec["topic"], spec["partitions"]
    ends = []
    assignment = []
    for p in range(partitions):
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        ends.append(high)
        if high > low:
            assignment.append(TopicPartition(topic, p, low))
    consumer.assign(assignment)
    remaining = len(assignment)
    records = nbytes = 0
    eof = KafkaError._PARTITION_EOF

    blocks: queue.Queue[bytearray | None] = queue.Queue(maxsize=8)
    compressed = [0]

    def compressor() -> None:
        cctx = zstandard.ZstdCompressor(level=spec["level"])
        while (block := blocks.get()) is not None:
            compressed[0] += len(cctx.compress(block))

    def writer() -> None:
        with open(Path(spec["path"]) / "ceiling.bin", "wb") as out:
            while (block := blocks.get()) is not None:
                compressed[0] += out.write(block)
            out.flush()
            os.fsync(out.fileno())

    work, name = (writer, "writer") if spec["kind"] == "ceiling-a-fs" else (compressor, "compressor")
    worker = threading.Thread(target=work, name=name) if compress else None
    if worker is not None:
        worker.start()
    buf = bytearray()
    block_bytes = spec["block_bytes"]
    consume: Any = consumer.consume  # typed Any: the stubs make every field Optional
    try:
        if compress:
            while remaining:
                msgs = consume(BATCH, 0.2)
                for msg in msgs:
                    err = msg.error()
                    if err is not None:
                        if err.code() == eof:
                            continue
                        raise KafkaException(err)
                    off = msg.offset()
                    _ts = msg.timestamp()
                    _headers = msg.headers()
                    key = msg.key()
                    value = msg.value()
                    nbytes += len(key) + len(value)
                    records += 1
                    buf += key
                    buf += value
                    if len(buf) >= block_bytes:
                        blocks.put(buf)
                        buf = bytearray()
                    if off + 1 >= ends[msg.partition()]:
                        remaining -= 1
        else:
            while remaining:
                msgs = consume(BATCH, 0.2)
                for msg in msgs:
                    err = msg.error()
                    if err is not None:
                        if err.code() == eof:
                            continue
                        raise KafkaException(err)
                    off = msg.offset()
                    _ts = msg.timestamp()
                    _headers = msg.headers()
                    key = msg.key()
                    value = msg.value()
                    nbytes += len(key) + len(value)
                    records += 1
                    if off + 1 >= ends[msg.partition()]:
                        remaining -= 1
        if buf:
            blocks.put(buf)
    finally:
        if worker is not None:
            blocks.put(None)
            worker.join()
        consumer.close()
    seconds = time.perf_counter() - started
    return {"records": records, "bytes": nbytes, "seconds": seconds, "stored": compressed[0]}


def libkb_job(spec: dict[str, Any]) -> dict[str, Any]:
    from libkb.backup.engine import BackupEngine
    from libkb.config import parse_config

    compression, _, encrypted = spec["compression"].partition("+")
    backup: dict[str, Any] = {"compression": compression}
    if compression == "zstd":  # lz4 has no level
        backup["compression_level"] = spec["level"]
    backup.update(spec.get("options") or {})
    job: dict[str, Any] = {
        "backup_id": spec["backup_id"],
        "source": {"bootstrap_servers": spec["bootstrap"], "topics": {"include": [spec["topic"]]}},
        "storage": spec["storage"],
        "backup": backup,
    }
    if encrypted:  # "zstd+enc": client-side encryption with a local key (docs/encryption.rst)
        os.environ["LIBKB_BENCH_KEK"] = base64.b64encode(os.urandom(32)).decode()
        job["encryption"] = {"key_id": "bench", "key_env": "LIBKB_BENCH_KEK"}
    config = parse_config(job, source="backup_bench")
    profiler = None
    if spec.get("profile"):
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005, async_mode="disabled")
        profiler.start()
    started = time.perf_counter()
    result = BackupEngine(config).run()
    seconds = time.perf_counter() - started
    if profiler is not None:
        profiler.stop()
        Path(spec["profile"]).write_text(profiler.output_text(unicode=False, show_all=False))
    if result.status != "complete" or result.records != spec["records"]:
        raise RuntimeError(f"libkb run {result.status}, {result.records} of {spec['records']} records")
    return {
        "records": result.records,
        "bytes": spec["bytes"],
        "seconds": seconds,
        "stored": result.stored_bytes,
        "segments": result.segments,
    }


class ThreadCpu:
    """CPU seconds per thread, sampled from /proc (threads that ended keep their last sample)."""

    def __init__(self, interval: float = 0.1) -> None:
        self.seen: dict[int, tuple[str, float]] = {}
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)
        self._tick = os.sysconf("SC_CLK_TCK")

    def sample(self) -> None:
        python_names = {t.native_id: t.name for t in threading.enumerate()}
        for tid in os.listdir("/proc/self/task"):
            with contextlib.suppress(OSError):
                base = f"/proc/self/task/{tid}"
                name = python_names.get(int(tid)) or Path(f"{base}/comm").read_text().strip()
                fields = Path(f"{base}/stat").read_text().rsplit(")", 1)[1].split()
                self.seen[int(tid)] = (name, (int(fields[11]) + int(fields[12])) / self._tick)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> ThreadCpu:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def by_group(self) -> dict[str, float]:
        groups: dict[str, float] = {}
        main = threading.main_thread().native_id
        for tid, (name, cpu) in self.seen.items():
            if tid == main:
                group = "main"
            elif name.startswith("rdk:"):
                group = "librdkafka"
            elif name.startswith("libkb-compress") or name == "compressor":
                group = "compress"
            elif name.startswith("libkb-upload"):
                group = "upload"
            elif name == "bench-sampler":
                continue
            else:
                group = "other"
            groups[group] = round(groups.get(group, 0.0) + cpu, 2)
        return groups


def child_main(spec: dict[str, Any]) -> None:
    use_tree(spec.get("tree"))
    if spec["kind"] == "probe":
        print("RESULT " + json.dumps(libkb_origin()), flush=True)
        return
    with ThreadCpu() as threads:
        if spec["kind"] == "libkb":
            out = libkb_job(spec)
        else:
            out = ceiling(spec)
            if out["records"] != spec["records"] or out["bytes"] != spec["bytes"]:
                raise RuntimeError(f"ceiling read {out['records']} records, expected {spec['records']}")
    usage = os.times()
    out["cpu"] = usage.user + usage.system
    out["threads"] = threads.by_group()
    out["rss_kib"] = _vm_hwm_kib()
    if spec["kind"] == "libkb":
        out.update(libkb_origin())
    print("RESULT " + json.dumps(out), flush=True)


# -- a baseline tree (--baseline; also used by restore_bench) ---------------------------


def use_tree(tree: str | None) -> None:
    """Child side: make ``import libkb`` load the tree at ``tree`` (a baseline) instead of this one.

    This tree is on ``sys.path`` (ROOT, above) and installed editable; a path put
    first on ``sys.path`` before anything imports libkb wins over both. The parent
    checks what was imported (``libkb_origin``, ``check_origin``).
    """
    if not tree:
        return
    if "libkb" in sys.modules:
        raise RuntimeError("libkb was imported before the baseline tree was put on sys.path")
    sys.path.insert(0, str(Path(tree).resolve()))


def libkb_origin() -> dict[str, Any]:
    """Which libkb this process imported, and whether its C packer loaded."""
    import libkb
    from libkb.format.packer import ACCELERATED

    return {"libkb_file": libkb.__file__, "accelerated": bool(ACCELERATED)}


def check_origin(out: dict[str, Any], tree: str | None, label: str) -> None:
    """Fail loudly unless the child imported libkb from ``tree`` (this tree if None)."""
    want = Path(tree or ROOT).resolve() / "libkb" / "__init__.py"
    got = Path(out.get("libkb_file") or "?").resolve()
    if got != want:
        raise RuntimeError(f"{label}: the child imported libkb from {got}, expected {want}")


def probe_baseline(tree: str) -> dict[str, Any]:
    """Check a --baseline tree before any data is made; its path, commit and packer for the report."""
    path = Path(tree).resolve()
    if path == ROOT:
        raise SystemExit(f"--baseline {tree} is the current tree")
    if not (path / "libkb" / "__init__.py").is_file():
        raise SystemExit(f"--baseline {tree}: no libkb/__init__.py there")
    script = Path(__file__)
    ours = run_child(script, {"kind": "probe"}, "probe of the current tree")
    check_origin(ours, None, "probe of the current tree")
    base = run_child(script, {"kind": "probe", "tree": str(path)}, "probe of the baseline")
    check_origin(base, str(path), "probe of the baseline")
    if ours["accelerated"] and not base["accelerated"]:
        raise SystemExit(
            f"--baseline {tree}: its C packer does not load (this tree's does); "
            f"build it: cd {path} && python setup.py build_ext --inplace"
        )
    info = {"path": str(path), "commit": tree_commit(path), "accelerated": base["accelerated"]}
    packer = "C packer" if info["accelerated"] else "pure-Python packer"
    print(f"baseline: libkb from {path} (commit {info['commit']}, {packer})", flush=True)
    return info


def tree_commit(path: Path) -> str:
    """The short commit checked out at ``path``, marked if its libkb/ differs from it."""

    def git(*argv: str) -> str:
        cmd = ["git", "-C", str(path), *argv]
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "libkb")
    except (OSError, subprocess.CalledProcessError):
        return "?"
    return commit + (" (libkb/ modified)" if dirty else "")


def round_order(units: list[list[T]], round_no: int, step: int) -> list[T]:
    """One round's jobs: the units rotated by ``step`` a round.

    A unit is one job, or a job and its baseline twin, which run back to back,
    the twin first in odd rounds. Without twins this is the plain rotation.
    """
    shift = (round_no * step) % len(units)
    rotated = units[shift:] + units[:shift]
    return [job for unit in rotated for job in (unit[::-1] if round_no % 2 else unit)]


def _mbs(run: dict[str, Any]) -> float:
    return float(run["bytes"] / run["seconds"] / 1e6)


def paired_ratios(num: list[dict[str, Any]], den: list[dict[str, Any]]) -> list[float]:
    """MB/s of ``num`` over ``den`` within each round (they ran back to back, under similar load)."""
    by_round = {r["round"]: r for r in den}
    return [_mbs(r) / _mbs(by_round[r["round"]]) for r in num if r["round"] in by_round]


# table cells, what they are in words, the current runs, the baseline's runs
Cell = tuple[list[str], str, list[dict[str, Any]], list[dict[str, Any]]]


def paired_section(head: list[str], cells: list[Cell], base: dict[str, Any]) -> str:
    """The report's part for --baseline: per cell current against baseline (MB/s, ratios, peak RSS)."""
    rows, verdicts = [], []
    for names, what, cur, old in cells:
        now, then = _median([_mbs(r) for r in cur]), _median([_mbs(r) for r in old])
        ratios = paired_ratios(cur, old)
        share, paired = now / then, _median(ratios)
        rows.append(
            [
                *names,
                f"{now:.0f}",
                f"{then:.0f}",
                f"{100 * share:.1f} %",
                f"{100 * paired:.1f} %",
                " ".join(f"{100 * r:.0f}" for r in ratios),
                f"{max(r['rss_kib'] for r in cur) / 1024:.0f}",
                f"{max(r['rss_kib'] for r in old) / 1024:.0f}",
            ]
        )
        inside = "within" if abs(share - 1) <= 0.05 else "OUTSIDE"
        verdicts.append(
            f"- {what}: {100 * share:.1f} % of the baseline's median "
            f"(paired {100 * paired:.1f} %): {inside} ±5 %"
        )
    header = [*head, "MB/s", "MB/s base", "ratio", "paired", "per round %", "RSS MiB", "RSS base MiB"]
    packer = "C packer" if base["accelerated"] else "pure-Python packer"
    verdict_text, path, commit = "\n".join(verdicts), base["path"], base["commit"]
    return f"""Against the baseline (``--baseline``): libkb from ``{path}``, commit
{commit}, {packer}. Every libkb job also ran a second time in each round,
labelled "...{BASE_SUFFIX}": the same job code with the baseline's libkb imported,
back to back with the current one (which of the two went first alternates
from round to round). "ratio": median MB/s over the baseline's median;
"paired": median of the per-round ratios (current over baseline in the same
round), each listed under "per round %"; RSS: peak (VmHWM) over the rounds.

{table(header, rows)}

Within ±5 % of the baseline's medians (ratio of medians):

{verdict_text}

"""


# -- the driver -------------------------------------------------------------------------


@dataclass(frozen=True)
class Topic:
    name: str
    partitions: int
    size_mib: int
    records: int
    bytes: int


#: The ceiling each libkb compression is compared with ("vs ceiling").
CEILING_OF = {"none": "ceiling-a", "zstd": "ceiling-b", "lz4": "ceiling-a"}
#: ``+enc``: the same compression with client-side encryption (a local key), against the same ceiling.
CEILING_OF |= {f"{c}+enc": ceiling for c, ceiling in CEILING_OF.items()}


@dataclass(frozen=True)
class Job:
    kind: str  # ceiling-a | ceiling-b | libkb
    topic: Topic
    target: str = ""  # fs | s3 (libkb only)
    compression: str = ""  # none | zstd | lz4 (libkb only)
    tree: str = ""  # libkb imported from this tree (--baseline); "" = the current tree

    @property
    def label(self) -> str:
        if self.kind == "libkb":
            return f"libkb {self.target} {self.compression}" + (BASE_SUFFIX if self.tree else "")
        return self.kind

    @property
    def key(self) -> tuple[int, int, str]:
        return (self.topic.size_mib, self.topic.partitions, self.label)


def run_job(job: Job, args: argparse.Namespace, env: dict[str, Any], round_no: int) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "kind": job.kind,
        "bootstrap": env["bootstrap"],
        "topic": job.topic.name,
        "partitions": job.topic.partitions,
        "records": job.topic.records,
        "bytes": job.topic.bytes,
        "level": args.level,
        "block_bytes": MiB,
    }
    cleanup: Callable[[], None] | None = None
    if job.kind == "ceiling-a-fs":
        spec["path"], cleanup = _fs_dir(args)
    elif job.kind == "libkb":
        spec["compression"] = job.compression
        spec["backup_id"] = f"bench-{uuid.uuid4().hex[:8]}"
        spec["options"] = env["options"]
        if job.tree:
            spec["tree"] = job.tree
        if args.profile:
            name = f"{job.label}-{job.topic.partitions}p-{job.topic.size_mib}m-r{round_no}"
            spec["profile"] = str(Path(args.profile) / (name.replace(" ", "-") + ".txt"))
        spec["storage"], cleanup = libkb_storage(job, args, env)
    try:
        out = run_child(Path(__file__), spec, job.label)
    finally:
        if cleanup is not None:
            cleanup()
    if job.kind == "libkb":
        check_origin(out, job.tree or None, job.label)
    return out


def _fs_dir(args: argparse.Namespace) -> tuple[str, Callable[[], None]]:
    """A fresh directory for the filesystem target, and what removes it."""
    path = tempfile.mkdtemp(prefix="libkb-bench-fs-", dir=args.fs_dir)
    return path, lambda: shutil.rmtree(path, ignore_errors=True)


def libkb_storage(
    job: Job, args: argparse.Namespace, env: dict[str, Any]
) -> tuple[dict[str, Any], Callable[[], None]]:
    """A libkb job's ``storage:`` settings, and what empties the storage after the job."""
    if job.target == "fs":
        path, cleanup = _fs_dir(args)
        return {"backend": "filesystem", "path": path}, cleanup
    s3 = env["s3"]
    storage = {
        "backend": "s3",
        "bucket": BUCKET,
        "endpoint": s3.endpoint,
        "access_key": s3.access_key,
        "secret_key": s3.secret_key,
        "region": "us-east-1",
        "path_style": True,
    }

    def empty_bucket() -> None:
        from integration.services import empty_s3_bucket

        empty_s3_bucket(s3, BUCKET)

    return storage, empty_bucket


def run_child(script: Path, spec: dict[str, Any], label: str) -> dict[str, Any]:
    """Run one job as ``script --child SPEC`` in a fresh process; its RESULT line, plus the load."""
    proc = subprocess.run(
        [sys.executable, str(script.resolve()), "--child", json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=1800,
        cwd=ROOT,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{label} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    out: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    out["load"] = os.getloadavg()[0]
    return out


def build_jobs(args: argparse.Namespace, topics: list[Topic]) -> list[list[Job]]:
    """Units of jobs (see ``round_order``): one job, or a libkb job and its --baseline twin."""
    largest = max(t.size_mib for t in topics)
    units = []
    for topic in topics:
        if topic.size_mib == largest:
            units.append([Job("ceiling-a", topic)])
            units.append([Job("ceiling-b", topic)])
            if "fs" in args.targets.split(","):
                units.append([Job("ceiling-a-fs", topic)])
        for target in args.targets.split(","):
            for compression in args.compressions.split(","):
                job = Job("libkb", topic, target, compression)
                # A baseline tree from before format version 2 has no lz4, nor encryption: no twin.
                twin = args.baseline and compression != "lz4" and "+enc" not in compression
                units.append([job, replace(job, tree=args.baseline)] if twin else [job])
    if args.only:  # a label without " @base" selects the baseline twin too
        wanted = {s.strip() for s in args.only.split(",")}
        kept = [[j for j in u if wanted & {j.label, j.label.removesuffix(BASE_SUFFIX)}] for u in units]
        units = [u for u in kept if u]
    return units


def run_rounds(
    units: list[list[Job]], args: argparse.Namespace, env: dict[str, Any]
) -> dict[tuple[int, int, str], list[dict[str, Any]]]:
    runs: dict[tuple[int, int, str], list[dict[str, Any]]] = {}
    for round_no in range(args.runs):
        for job in round_order(units, round_no, 3):
            out = run_job(job, args, env, round_no)
            out["round"] = round_no
            runs.setdefault(job.key, []).append(out)
            mbs = out["bytes"] / out["seconds"] / 1e6
            print(
                f"round {round_no + 1} {job.topic.name} {job.label}: {mbs:.0f} MB/s, "
                f"{out['records'] / out['seconds'] / 1e3:.0f}k rec/s, "
                f"RSS {out['rss_kib'] / 1024:.0f} MiB, CPU {out['cpu']:.1f} s, load {out['load']:.2f}",
                flush=True,
            )
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="512,1024", help="MiB of key+value bytes per topic")
    parser.add_argument("--partitions", default="1,8")
    parser.add_argument("--targets", default="fs,s3", help="fs and/or s3 (MinIO)")
    parser.add_argument("--runs", type=int, default=5, help="rounds of interleaved jobs")
    parser.add_argument("--level", type=int, default=3, help="zstd level (libkb and ceiling-b)")
    parser.add_argument(
        "--compressions",
        default="none,zstd,lz4",
        help="libkb jobs' compressions: none, zstd and/or lz4, each also with +enc (encrypted: zstd+enc)",
    )
    parser.add_argument("--value-bytes", type=int, default=1024)
    parser.add_argument("--fs-dir", default=None, help="where the filesystem target's dirs go")
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="extra backup option for libkb jobs (e.g. block_bytes=4194304); default: none",
    )
    parser.add_argument("--only", default=None, help="comma-separated job labels to run")
    parser.add_argument("--profile", default=None, help="write pyinstrument text profiles here")
    parser.add_argument("--write", default=None, help="add/replace the section in this RST file")
    parser.add_argument(
        "--baseline",
        default=None,
        metavar="PATH",
        help="also run every libkb job with libkb imported from PATH (an older source tree, "
        "C extension built in place), in the same rounds; the report pairs the two",
    )
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child_main(json.loads(args.child))
        return 0
    if unknown := set(args.compressions.split(",")) - set(CEILING_OF):
        parser.error(f"--compressions: unknown {', '.join(sorted(unknown))}; use none, zstd, lz4 (+enc)")

    from integration.services import KafkaService, MinioService, create_kafka_topic, create_s3_bucket

    base = probe_baseline(args.baseline) if args.baseline else None
    if base is not None:
        args.baseline = base["path"]

    options = {k: json.loads(v) for k, v in (o.split("=", 1) for o in args.option)}
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    partition_counts = [int(p) for p in args.partitions.split(",")]
    load_before = _loadavg()
    wall = time.monotonic()
    kafka = KafkaService()
    minio = MinioService() if "s3" in args.targets else None
    with contextlib.ExitStack() as stack:
        kafka.start()
        stack.callback(kafka.stop)
        env: dict[str, Any] = {"bootstrap": kafka.endpoint.bootstrap_servers, "options": options}
        if minio is not None:
            minio.start()
            stack.callback(minio.stop)
            env["s3"] = minio.endpoint
            create_s3_bucket(minio.endpoint, BUCKET)
        print(f"Kafka at {env['bootstrap']}" + (f", MinIO at {minio.endpoint.endpoint}" if minio else ""))
        pool = make_pool(8192, args.value_bytes)
        topics = []
        produce_secs = {}
        for size in sizes:
            for partitions in partition_counts:
                name = f"bench-{partitions}p-{size}m"
                create_kafka_topic(kafka.endpoint, name, partitions=partitions, config={"retention.ms": "-1"})
                t0 = time.monotonic()
                records, nbytes = produce_topic(env["bootstrap"], name, partitions, size * MiB, pool)
                produce_secs[name] = time.monotonic() - t0
                topics.append(Topic(name, partitions, size, records, nbytes))
                print(
                    f"produced {name}: {records} records, {nbytes / 1e6:.0f} MB in {produce_secs[name]:.1f} s"
                )
        del pool
        runs = run_rounds(build_jobs(args, topics), args, env)
    load = f"load average {load_before} before, {_loadavg()} after"
    minutes = (time.monotonic() - wall) / 60
    text = render(args, topics, runs, produce_secs, load, minutes, options, base)
    print(text)
    if args.write:
        write_section(Path(args.write), text)
        print(f"wrote {args.write}")
    return 0


# -- report -----------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summarize(runs: list[dict[str, Any]]) -> dict[str, float]:
    return {
        "mbs": _median([r["bytes"] / r["seconds"] / 1e6 for r in runs]),
        "rps": _median([r["records"] / r["seconds"] for r in runs]),
        "rss": max(r["rss_kib"] for r in runs) / 1024,
        "cpu": _median([r["cpu"] for r in runs]),
        "main": _median([r.get("threads", {}).get("main", float("nan")) for r in runs]),
        "ratio": _median([r["bytes"] / r["stored"] for r in runs if r.get("stored")] or [float("nan")]),
    }


def check_targets(runs: dict[tuple[int, int, str], list[dict[str, Any]]], largest: int, smallest: int) -> str:
    """One line per target: met or missed, with the numbers."""
    lines = []
    for codec, ceiling in (("none", "ceiling-a"), ("zstd", "ceiling-b")):
        shares = []
        for (size, partitions, label), items in sorted(runs.items()):
            if size != largest or not label.startswith("libkb") or not label.endswith(codec):
                continue
            ref = runs.get((size, partitions, ceiling))
            if ref:
                share = summarize(items)["mbs"] / summarize(ref)["mbs"]
                # One decimal: a share just under the target must not print as "85 %".
                shares.append((share, f"{partitions} p {label.split()[1]} {100 * share:.1f} %"))
        if shares:
            met = [text for share, text in shares if share >= 0.85]
            missed = [text for share, text in shares if share < 0.85]
            verdict = "met" if not missed else ("missed" if not met else "partly met")
            detail = "; ".join(
                part
                for part in (
                    ", ".join(met) and f"met: {', '.join(met)}",
                    ", ".join(missed) and f"missed: {', '.join(missed)}",
                )
                if part
            )
            lines.append(f"- libkb {codec} >= 85 % of {ceiling}: {verdict} ({detail})")
    stored = []
    for (size, partitions, label), items in sorted(runs.items()):
        ref = runs.get((size, partitions, "ceiling-a-fs"))
        if size == largest and label == "libkb fs none" and ref:
            share = summarize(items)["mbs"] / summarize(ref)["mbs"]
            stored.append(f"{partitions} p {100 * share:.0f} %")
    if stored:
        lines.append(
            "- for reference, libkb fs none against ceiling-a-fs (the raw loop that also writes "
            f"the bytes to a file): {', '.join(stored)}"
        )
    libkb = {k: v for k, v in runs.items() if k[2].startswith("libkb")}
    if libkb:
        peak = {k: max(r["rss_kib"] for r in v) / 1024 for k, v in libkb.items()}
        default = {k: v for k, v in peak.items() if k[2].endswith("zstd")}
        if default:
            worst = max(default, key=lambda k: default[k])
            verdict = "met" if default[worst] < 512 else "missed"
            lines.append(
                f"- peak RSS < 512 MiB with default settings (zstd): {verdict}, highest "
                f"{default[worst]:.0f} MiB ({worst[1]} p {worst[2]}, {worst[0]} MiB topic)"
            )
        over = sorted(f"{k[1]} p {k[2]} ({k[0]} MiB topic) {v:.0f} MiB" for k, v in peak.items() if v >= 512)
        if over:
            lines.append(f"- at or over 512 MiB with other settings: {', '.join(over)}")
        if smallest != largest:
            growth = []
            for (size, partitions, label), value in peak.items():
                if size == largest and (smallest, partitions, label) in peak:
                    growth.append((value - peak[(smallest, partitions, label)], f"{partitions} p {label}"))
            if growth:
                most = max(growth)
                lines.append(
                    f"- peak RSS flat in data size: {smallest} -> {largest} MiB topics change it by "
                    f"{min(growth)[0]:+.0f} to {most[0]:+.0f} MiB (largest: {most[1]})"
                )
    return "\n".join(lines)


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join("=" * w for w in widths)

    def fmt(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line, fmt(header), line, *(fmt(r) for r in rows), line])


def render(
    args: argparse.Namespace,
    topics: list[Topic],
    runs: dict[tuple[int, int, str], list[dict[str, Any]]],
    produce_secs: dict[str, float],
    load: str,
    minutes: float,
    options: dict[str, Any],
    base: dict[str, Any] | None = None,
) -> str:
    largest = max(t.size_mib for t in topics)
    smallest = min(t.size_mib for t in topics)
    labels = ["ceiling-a", "ceiling-b", "ceiling-a-fs"] + [
        f"libkb {t} {c}" for t in args.targets.split(",") for c in args.compressions.split(",")
    ]
    rows = []
    for partitions in sorted({t.partitions for t in topics}):
        ceilings = {
            name: summarize(runs[(largest, partitions, name)])
            for name in ("ceiling-a", "ceiling-b")
            if (largest, partitions, name) in runs
        }
        for label in labels:
            key = (largest, partitions, label)
            if key not in runs:
                continue
            s = summarize(runs[key])
            ref = CEILING_OF.get(label.split()[-1], "")
            pct = (
                ""
                if label.startswith("ceiling") or ref not in ceilings
                else (f"{100 * s['mbs'] / ceilings[ref]['mbs']:.0f} % of {ref[-1]}")
            )
            small = runs.get((smallest, partitions, label))
            rss_small = f"{summarize(small)['rss']:.0f}" if small and smallest != largest else "-"
            plain = label.endswith("none") or label in ("ceiling-a", "ceiling-a-fs")
            ratio = "" if plain else f"{s['ratio']:.2f}"
            rows.append(
                [
                    str(partitions),
                    label,
                    f"{s['mbs']:.0f}",
                    f"{s['rps'] / 1e3:.0f}k",
                    pct,
                    rss_small,
                    f"{s['rss']:.0f}",
                    f"{s['cpu']:.1f}",
                    f"{s['main']:.1f}",
                    ratio,
                ]
            )
    main_table = table(
        [
            "parts",
            "job",
            "MB/s",
            "records/s",
            "vs ceiling",
            f"RSS {smallest} MiB",
            f"RSS {largest} MiB",
            "CPU s",
            "main s",
            "ratio",
        ],
        rows,
    )
    current = {k: v for k, v in runs.items() if not k[2].endswith(BASE_SUFFIX)}
    targets = check_targets(current, largest, smallest)
    paired = backup_pairs(runs, base) if base else ""
    every = []
    for (size, partitions, label), items in sorted(runs.items()):
        speeds = ", ".join(f"{r['bytes'] / r['seconds'] / 1e6:.0f}" for r in items)
        loads = ", ".join(f"{r['load']:.1f}" for r in items)
        every.append(f"- {size} MiB, {partitions} p, {label}: {speeds} (load {loads})")
    data = "\n".join(
        f"- ``{t.name}``: {t.records} records, {t.bytes / 1e6:.0f} MB key+value, "
        f"produced in {produce_secs[t.name]:.0f} s"
        for t in topics
    )
    facts = "\n".join(f"- {f}" for f in [*machine_facts(), load, f"whole run {minutes:.0f} min"])
    command = " ".join(["python", "bench/backup_bench.py", *sys.argv[1:]])
    opts = f"; backup options {options}" if options else ""
    every_text = "\n".join(every)
    underline = "=" * len(RESULTS_TITLE)
    return f"""{RESULTS_TITLE}
{underline}

Command::

    {command}

Kafka 4.1.1 and MinIO on 127.0.0.1, same 2 cores as the jobs. Each job is a
fresh process; medians of {args.runs} interleaved rounds on the {largest} MiB
topics. MB/s = key+value bytes (10**6/s) over the whole job; peak RSS is the
process's VmHWM, the highest of the rounds, on the {smallest} and {largest} MiB
topics. libkb runs with default settings except ``compression`` (zstd at level
{args.level}, lz4 at its only level){opts}. "vs ceiling": libkb none and lz4
against ceiling a (raw consume loop), libkb zstd against ceiling b (raw loop +
zstd-{args.level} on a second thread). "CPU s": the job process's CPU time, all
threads; "main s": the consuming (main) thread's share; "ratio": key+value
bytes over stored bytes; medians.

{main_table}

Targets (85 % of the matching ceiling; peak RSS flat in data size and under
512 MiB with default settings, i.e. zstd):

{targets}

{paired}Why, and what was tuned: ``bench/README.rst``.

Data:

{data}

Every run (MB/s) in the order made; load average (1 min) after each:

{every_text}

Machine (other work was running on it; see the load average):

{facts}
"""


def backup_pairs(runs: dict[tuple[int, int, str], list[dict[str, Any]]], base: dict[str, Any]) -> str:
    """The paired table: each libkb job against its baseline twin, every topic size."""
    cells: list[Cell] = []
    for (size, partitions, label), old in sorted(runs.items()):
        cur = runs.get((size, partitions, label.removesuffix(BASE_SUFFIX)))
        if label.endswith(BASE_SUFFIX) and cur:
            name = label.removesuffix(BASE_SUFFIX)
            cells.append(
                ([str(size), str(partitions), name], f"{size} MiB, {partitions} p, {name}", cur, old)
            )
    return paired_section(["MiB", "parts", "job"], cells, base) if cells else ""


def write_section(path: Path, text: str, title: str = RESULTS_TITLE) -> None:
    """Replace the section titled ``title`` in ``path`` (or append it), keeping the other sections."""
    lines = path.read_text().splitlines() if path.exists() else []

    def is_title(i: int) -> bool:
        return (
            i + 1 < len(lines)
            and bool(lines[i].strip())
            and set(lines[i + 1]) == {"="}
            and len(lines[i + 1]) >= len(lines[i])
        )

    titles = [i for i in range(len(lines)) if is_title(i)]
    ours = [i for i in titles if lines[i] == title]
    new = text.rstrip("\n").splitlines()
    if ours:
        start = ours[0]
        later = [i for i in titles if i > start]
        end = later[0] if later else len(lines)
        before = lines[:start]
        after = lines[end:]
        while before and not before[-1].strip():
            before.pop()
        out = before + ([""] * 2 if before else []) + new + ([""] * 2 if after else []) + after
    else:
        while lines and not lines[-1].strip():
            lines.pop()
        out = lines + ([""] * 2 if lines else []) + new
    path.write_text("\n".join(out) + "\n")


def machine_facts() -> list[str]:
    cpu = platform.processor() or "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.0f} GiB"
    import confluent_kafka
    import msgpack
    import zstandard

    commit = "?"
    with contextlib.suppress(Exception):
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "libkb/backup", "libkb/format"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=True,
        ).stdout.strip()
        if dirty:
            commit += " (engine/format modified)"
    from libkb.format.packer import ACCELERATED

    return [
        f"CPU: {cpu}, {os.cpu_count()} logical cores; RAM {mem}",
        f"OS: {platform.platform()}; Python {platform.python_version()}",
        f"confluent-kafka {confluent_kafka.__version__} (librdkafka {confluent_kafka.libversion()[0]}), "
        f"zstandard {zstandard.__version__}, msgpack {'.'.join(map(str, msgpack.version))}",
        f"libkb commit {commit}",
        "message packer: " + ("C extension" if ACCELERATED else "pure Python fallback"),
    ]


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


if __name__ == "__main__":
    raise SystemExit(main())
