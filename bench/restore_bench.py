"""Restore throughput and memory of libkb's engine against a raw produce loop (the ceiling).

One Kafka broker (4.1.1, ``integration.services.KafkaService``) on 127.0.0.1 (and, with
``--storage s3``, a MinIO the backups are copied to, which the libkb jobs read).
For each partition count a source topic is filled once with 1 KiB records
(``backup_bench.make_pool``/``produce_topic``: JSON-like values, a key, a
``traceparent`` header on one record in four) and backed up once per
compression (``--compressions``, default zstd and lz4) with ``BackupEngine``
(default settings otherwise: zstd-3, 128 MiB segments) to a filesystem
directory; each backup is then checked record by record against the generated
sequence. Each measured job runs in a fresh subprocess (peak RSS = its own
``VmHWM``) and writes into a new, empty topic with the same partition count:

- ``ceiling``: a raw confluent-kafka ``produce()`` loop over the very same
  records (key, value, headers, partition, same order per partition),
  regenerated from the same seed into an 8 MiB pool before the clock starts,
  with a timestamp on every record, partition by partition 1000 records at a
  time (as a restore goes block by block), positional arguments (as libkb);
  ``poll()`` only when the local queue is full. The producer is built exactly
  as libkb's restore builds its own (``make_producer(target,
  {**_producer_config(), "on_delivery": ...})``: idempotent, ``acks=all``,
  lz4, same linger, batch and queue settings), so producer tuning moves both
  jobs alike.
- ``libkb``: ``RestoreEngine(parse_config({...})).run()`` with default restore
  settings plus a ``topic_mapping`` to the new topic, from the zstd backup;
  ``libkb lz4`` the same from the lz4 backup (the ceiling is the same: it
  produces the same records).
- ``libkb@REF`` (``--compare REF``): the same with ``libkb/restore/engine.py``
  as of git REF, to measure an engine change in the same run.
- ``libkb @base`` (``--baseline PATH``): the libkb job with all of libkb
  imported from PATH, an older source tree with its C extension built in
  place; the report adds a table of the pairs (current against baseline).

The ceiling does no reading, decompression or decoding: it is what producing
these records costs, so "% of ceiling" is the share the restore loses to
everything else. Jobs alternate (rotating order each round) after a warm-up
round; the tables show medians. MB/s counts key + value bytes (10**6 bytes/s)
over the whole job (producer creation, or ``run()`` start, to the last
acknowledgement; libkb's time includes its planning, topic checks, state
writes and final offset check). After every job the target topic's end
offsets are checked.

Not part of CI. Run (about 4 minutes on 2 cores; ``--data-dir DIR`` keeps
the backups for later runs)::

    .venv/bin/python bench/restore_bench.py --runs 11 --compare 5a28561 --write bench/RESULTS.rst
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from backup_bench import (  # noqa: E402  # the sibling benchmark's helpers
    BASE_SUFFIX,
    Cell,
    ThreadCpu,
    _loadavg,
    _median,
    _vm_hwm_kib,
    check_origin,
    libkb_origin,
    machine_facts,
    make_pool,
    paired_ratios,
    paired_section,
    probe_baseline,
    produce_topic,
    round_order,
    run_child,
    table,
    use_tree,
    write_section,
)

MiB = 1024 * 1024
POOL = 8192  # distinct records, cycled (as backup_bench)
CHUNK = 1000  # records the ceiling produces to one partition before moving to the next
RESULTS_TITLE = "Restore benchmark results"
RUST_SUFFIX = "-rust"  # the Rust-format twin of a backup (--rust)
#: ``+enc`` (``--compressions zstd+enc``): client-side encryption with this local key, a fixed one so
#: that a kept ``--data-dir`` stays readable (a bench key: never use it for anything else).
BENCH_KEK = base64.b64encode(hashlib.sha256(b"libkb restore bench key").digest()).decode()


def encryption_section(compression: str) -> dict[str, Any]:
    """The job file's ``encryption`` section for a ``+enc`` compression, else none."""
    if not compression.endswith("+enc"):
        return {}
    os.environ["LIBKB_BENCH_KEK"] = BENCH_KEK
    return {"encryption": {"key_id": "bench", "key_env": "LIBKB_BENCH_KEK"}}


# -- the measured jobs (run in a child process) ---------------------------------------


def restore_config(spec: dict[str, Any]) -> Any:
    from libkb.config import parse_config

    return parse_config(
        {
            "mode": "restore",
            "backup_id": spec["backup_id"],
            "target": {"bootstrap_servers": spec["bootstrap"], "topics": {"include": [spec["source"]]}},
            "storage": spec.get("storage") or {"backend": "filesystem", "path": spec["data_dir"]},
            "restore": {"topic_mapping": {spec["source"]: spec["target"]}, **spec.get("options", {})},
            **encryption_section(spec.get("compression", "zstd")),
        },
        source="restore_bench",
    )


def ceiling(spec: dict[str, Any]) -> dict[str, Any]:
    """The same records, produced by a plain loop with libkb's restore producer settings."""
    from libkb.kafka.clients import make_producer
    from libkb.restore.engine import RestoreEngine

    config = restore_config(spec)
    settings = RestoreEngine(config)._producer_config()  # connects nothing
    pool = make_pool(POOL, spec["value_bytes"])
    size, partitions, records = len(pool), spec["partitions"], spec["records"]
    topic = spec["target"]
    timestamp = int(time.time() * 1000)
    failures: list[str] = []

    def on_error(err: Any, msg: Any) -> None:  # delivery.report.only.error: failures only
        if err is not None:
            failures.append(err.str())

    before = _cpu_now()
    started = time.perf_counter()
    producer = make_producer(config.target, {**settings, "on_delivery": on_error})
    produce, poll = producer.produce, producer.poll
    nbytes = 0
    # Partition by partition, CHUNK records at a time (about one backup block), as a
    # restore does: producing record by record round the partitions costs ~40 % more
    # CPU in produce() at 8 partitions. Each partition gets its records in order.
    counts = [len(range(p, records, partitions)) for p in range(partitions)]
    for low in range(0, max(counts), CHUNK):
        for p in range(partitions):
            for n in range(p + low * partitions, p + min(low + CHUNK, counts[p]) * partitions, partitions):
                key, value, headers = pool[n % size]
                while True:
                    try:
                        # Positional (on_delivery and callback None: the producer's default):
                        # 1.3 µs a call against 1.75 µs with keywords, as libkb calls it.
                        produce(topic, value, key, p, None, None, timestamp, headers)
                        break
                    except BufferError:
                        poll(0.05)
                nbytes += len(key) + len(value)
    left = producer.flush(config.restore.delivery_timeout_ms / 1000)
    seconds = time.perf_counter() - started
    if left or failures:
        raise RuntimeError(f"ceiling: {left} records unacknowledged, failures {failures[:3]}")
    return {"records": records, "bytes": nbytes, "seconds": seconds, "before": before}


def libkb_job(spec: dict[str, Any]) -> dict[str, Any]:
    from libkb.restore import engine as engine_module

    module: Any = engine_module
    if spec.get("engine_file"):  # --compare: the engine module as of another commit
        import importlib.util

        module_spec = importlib.util.spec_from_file_location("libkb_restore_engine_then", spec["engine_file"])
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_spec.name] = module  # dataclasses look their module up
        module_spec.loader.exec_module(module)
    config = restore_config(spec)
    engine = module.RestoreEngine(config)
    profilers: list[tuple[str, Any]] = []
    if spec.get("profile"):
        # pyinstrument samples the thread that starts it: one profiler per partition thread.
        from pyinstrument import Profiler

        inner = engine._restore_partition

        def profiled(*args: Any, **kwargs: Any) -> None:
            profiler = Profiler(interval=0.001, async_mode="disabled")
            profiler.start()
            try:
                inner(*args, **kwargs)
            finally:
                profiler.stop()
                profilers.append((f"p{args[2].source_partition}", profiler))

        engine._restore_partition = profiled
    before = _cpu_now()
    started = time.perf_counter()
    result = engine.run()
    seconds = time.perf_counter() - started
    for name, profiler in profilers[:2]:
        path = Path(spec["profile"] + f"-{name}.txt")
        path.write_text(profiler.output_text(unicode=False, show_all=False))
    if result.status != "complete" or result.records != spec["records"] or result.bytes != spec["bytes"]:
        raise RuntimeError(f"libkb run {result.status}, {result.records} of {spec['records']} records")
    return {"records": result.records, "bytes": result.bytes, "seconds": seconds, "before": before}


def _cpu_now() -> tuple[float, float]:
    """(process, main thread) CPU seconds so far: the jobs count only what follows."""
    usage = os.times()
    return usage.user + usage.system, time.thread_time()


class RestoreThreadCpu(ThreadCpu):
    def sample(self) -> None:
        known = {tid: name for tid, (name, _) in self.seen.items() if name.startswith(("libkb-", "rdk:"))}
        super().sample()
        for tid, name in known.items():  # a thread sampled as it ended has lost its Python name
            self.seen[tid] = (name, self.seen[tid][1])

    def by_group(self) -> dict[str, float]:
        groups: dict[str, float] = {}
        main = threading.main_thread().native_id
        for tid, (name, cpu) in self.seen.items():
            if tid == main:
                group = "main"
            elif name.startswith("rdk:"):
                group = "librdkafka"
            elif name.startswith("libkb-restore-poll"):
                group = "poll"
            elif name.startswith("libkb-restore"):
                group = "produce"  # the partition threads: decode + produce()
            elif name.startswith("libkb-read"):
                group = "read"
            elif name == "bench-sampler":
                continue
            else:
                group = "other"
            groups[group] = round(groups.get(group, 0.0) + cpu, 2)
        return groups


def child_main(spec: dict[str, Any]) -> None:
    use_tree(spec.get("tree"))
    with RestoreThreadCpu() as threads:
        out = ceiling(spec) if spec["kind"] == "ceiling" else libkb_job(spec)
    if out["bytes"] != spec["bytes"]:
        raise RuntimeError(f"{spec['kind']}: {out['bytes']} bytes, expected {spec['bytes']}")
    usage = os.times()
    process, main = out.pop("before")
    out["cpu"] = usage.user + usage.system - process
    out["threads"] = threads.by_group()
    out["threads"]["main"] = round(out["threads"].get("main", 0.0) - main, 2)
    out["rss_kib"] = _vm_hwm_kib()
    out.update(libkb_origin())
    print("RESULT " + json.dumps(out), flush=True)


# -- data: one backup per partition count ----------------------------------------------


@dataclass(frozen=True)
class Data:
    backup_id: str
    source: str
    partitions: int
    records: int
    bytes: int
    stored: int  # bytes of the backup's segments
    segments: int
    compression: str = "zstd"

    @property
    def label(self) -> str:
        """What the libkb job restoring this backup is called: ``libkb``, or ``libkb lz4``."""
        return "libkb" if self.compression == "zstd" else f"libkb {self.compression}"


def make_backup(
    kafka: Any,
    bootstrap: str,
    data_dir: Path,
    partitions: int,
    size_mib: int,
    value_bytes: int,
    compression: str = "zstd",
) -> tuple[Data, dict[str, float]]:
    """Produce a source topic, back it up, check the backup against the generated records."""
    from integration.services import create_kafka_topic, delete_kafka_topic
    from libkb.backup.engine import BackupEngine
    from libkb.config import parse_config

    source = f"bench-src-{partitions}p-{size_mib}m"
    backup_id = data_name(partitions, size_mib, value_bytes, compression)
    create_kafka_topic(kafka, source, partitions=partitions, config={"retention.ms": "-1"})
    pool = make_pool(POOL, value_bytes)
    t0 = time.monotonic()
    records, nbytes = produce_topic(bootstrap, source, partitions, size_mib * MiB, pool)
    t1 = time.monotonic()
    config = parse_config(
        {
            "backup_id": backup_id,
            "source": {"bootstrap_servers": bootstrap, "topics": {"include": [source]}},
            "storage": {"backend": "filesystem", "path": str(data_dir)},
            "backup": {"compression": compression.removesuffix("+enc")},
            **encryption_section(compression),
        },
        source="restore_bench",
    )
    result = BackupEngine(config).run()
    t2 = time.monotonic()
    if result.status != "complete" or result.records != records:
        raise RuntimeError(f"backup {result.status}: {result.records} of {records} records")
    if compression.endswith("+enc"):
        verify_encrypted(data_dir, backup_id, records, config)
    else:
        verify_backup(data_dir, backup_id, source, partitions, records, pool)
    t3 = time.monotonic()
    delete_kafka_topic(kafka, source)
    data = Data(
        backup_id, source, partitions, records, nbytes, result.stored_bytes, result.segments, compression
    )
    return data, {"produce": t1 - t0, "backup": t2 - t1, "verify": t3 - t2}


def data_name(partitions: int, size_mib: int, value_bytes: int, compression: str) -> str:
    """The backup id (and marker file name) of one backup; zstd's keeps the name of earlier runs."""
    suffix = "" if compression == "zstd" else f"-{compression.replace('+', '-')}"
    return f"bench-{partitions}p-{size_mib}m-{value_bytes}b{suffix}"


def verify_encrypted(data_dir: Path, backup_id: str, records: int, config: Any) -> None:
    """An encrypted backup: every block decrypted, checked and decoded (validate --deep with the key)."""
    from libkb.catalog.validation import validate_backup
    from libkb.keys.keyring import keyring_from_config
    from libkb.storage import FilesystemConfig, create_backend_from_config

    backend = create_backend_from_config(FilesystemConfig(path=str(data_dir)))
    try:
        keyring = keyring_from_config(config.encryption)
        report = validate_backup(backend, backup_id, deep=True, keyring=keyring)
    finally:
        backend.close()
    if not report.ok or report.checked_records != records:
        raise RuntimeError(f"{backup_id}: {report.problems or report.checked_records}")


def verify_backup(
    data_dir: Path, backup_id: str, topic: str, partitions: int, records: int, pool: list[Any]
) -> None:
    """Every stored record is the generated one the ceiling produces (key, value, headers, order)."""
    from libkb.backup.state import load_index
    from libkb.format.segment import SegmentReader
    from libkb.storage import FilesystemConfig, create_backend_from_config

    backend = create_backend_from_config(FilesystemConfig(path=str(data_dir)))
    try:
        seen = 0
        for p in range(partitions):
            index, _ = load_index(backend, backup_id, topic, p, repair=False)
            n = p
            for segment in index.segments:
                for _off, _ts, ts_type, key, value, headers in SegmentReader(
                    backend.get(segment.key)
                ).records():
                    want = pool[n % len(pool)]
                    if (key, value, headers) != want or ts_type != 1:
                        raise RuntimeError(f"{topic}[{p}]: record {seen} differs from the generated one")
                    n += partitions
                    seen += 1
        if seen != records:
            raise RuntimeError(f"backup holds {seen} records, produced {records}")
    finally:
        backend.close()


def write_rust_twin(data_dir: Path, backup_id: str, topic: str, partitions: int) -> str:
    """The same records as the Rust tool would store them (its default settings), beside libkb's backup.

    The writer is checked byte for byte against the tool's own backups
    (``tests/test_rust_format.py``), so no Rust binary is needed.
    """
    from libkb.backup.state import load_index
    from libkb.format.segment import SegmentReader
    from libkb.storage import FilesystemConfig, create_backend_from_config
    from tests.rust_format import RustBackupWriter, RustRecord, as_stored

    twin = backup_id + RUST_SUFFIX
    backend = create_backend_from_config(FilesystemConfig(path=str(data_dir)))
    try:
        if backend.exists(f"{twin}/manifest.json"):
            return twin
        writer = RustBackupWriter(backend, twin, compression="zstd")

        def records(p: int) -> Any:
            index, _ = load_index(backend, backup_id, topic, p, repair=False)
            for segment in index.segments:
                for off, ts, _type, key, value, headers in SegmentReader(backend.get(segment.key)).records():
                    yield as_stored(RustRecord(off, ts, key, value, list(headers or ())))

        for p in range(partitions):
            writer.write_partition(topic, p, records(p), partition_count=partitions)
        writer.write_manifest()
    finally:
        backend.close()
    return twin


# -- the driver -------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    kind: str  # ceiling | libkb | libkb @base | libkb@REF
    data: Data

    @property
    def label(self) -> str:
        """The kind, with the backup's compression when it is not the default (``libkb lz4``)."""
        return self.kind.replace("libkb", self.data.label, 1) if self.kind.startswith("libkb") else self.kind

    @property
    def key(self) -> tuple[int, str]:
        return (self.data.partitions, self.label)


def run_job(job: Job, args: argparse.Namespace, env: dict[str, Any], round_no: int) -> dict[str, Any]:
    from integration.services import create_kafka_topic, delete_kafka_topic
    from integration.services.kafka import kafka_admin

    data = job.data
    kind = "".join(c if c.isalnum() or c in "._-" else "." for c in job.label)  # a legal topic name
    target = f"bench-{kind}-{data.partitions}p-r{round_no}-{uuid.uuid4().hex[:6]}"
    create_kafka_topic(env["kafka"], target, partitions=data.partitions, config={"retention.ms": "-1"})
    spec: dict[str, Any] = {
        "kind": job.kind,
        "bootstrap": env["bootstrap"],
        "data_dir": env["data_dir"],
        "backup_id": data.backup_id + (RUST_SUFFIX if job.kind == "rust" else ""),
        "source": data.source,
        "target": target,
        "partitions": data.partitions,
        "records": data.records,
        "bytes": data.bytes,
        "value_bytes": args.value_bytes,
        "options": env["options"],
        "compression": data.compression if job.kind != "rust" else "zstd",
        "storage": env.get("storage"),
    }
    if job.kind.startswith("libkb@"):
        spec["engine_file"] = env["engine_file"]
    if job.kind.endswith(BASE_SUFFIX):
        spec["tree"] = env["baseline"]
    if args.profile and job.kind == "libkb":
        spec["profile"] = str(Path(args.profile) / f"{kind}-{data.partitions}p-r{round_no}")
    broker_before = _process_cpu(env["broker_pid"])
    try:
        out = run_child(Path(__file__), spec, job.label)
        check_origin(out, spec.get("tree"), job.label)
        out["broker_cpu"] = _process_cpu(env["broker_pid"]) - broker_before
        # The broker holds exactly the records: every partition's end offset.
        from libkb.kafka.admin import KafkaAdmin

        offsets = KafkaAdmin(kafka_admin(env["kafka"])).offsets(
            [(target, p) for p in range(data.partitions)], read_committed=False
        )
        ends = {p: o.high for (_, p), o in offsets.items()}
        expected = {p: len(range(p, data.records, data.partitions)) for p in range(data.partitions)}
        if ends != expected:
            raise RuntimeError(f"{job.label}: {target} ends at {ends}, expected {expected}")
    finally:
        with contextlib.suppress(Exception):
            delete_kafka_topic(env["kafka"], target)
    return out


def _process_cpu(pid: int | None) -> float:
    """CPU seconds (user + system) of a process so far, from /proc; 0 if unknown."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1024, help="MiB of key+value bytes per backup")
    parser.add_argument("--partitions", default="1,8")
    parser.add_argument("--runs", type=int, default=5, help="rounds of interleaved jobs")
    parser.add_argument("--warmup", type=int, default=1, help="unrecorded rounds first (broker JIT)")
    parser.add_argument("--value-bytes", type=int, default=1024)
    parser.add_argument(
        "--compressions", default="zstd,lz4", help="one backup (and libkb job) per compression"
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        help="the backups' directory; kept and reused by later runs if given (default: a temp dir)",
    )
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="extra restore option for both jobs (e.g. produce_batch_bytes=4194304); default: none",
    )
    parser.add_argument(
        "--storage",
        default="fs",
        choices=("fs", "s3"),
        help="where libkb jobs read the backups: the directory, or a MinIO bucket they are copied to",
    )
    parser.add_argument("--only", default=None, help="ceiling, libkb and/or rust (comma-separated)")
    parser.add_argument(
        "--rust",
        action="store_true",
        help="also restore the same records from a Rust-tool-format twin of each backup (job rust)",
    )
    parser.add_argument(
        "--compare",
        default=None,
        metavar="GIT_REF|FILE",
        help="also run libkb with libkb/restore/engine.py as of GIT_REF, or from FILE (job libkb@...)",
    )
    parser.add_argument("--profile", default=None, help="write pyinstrument profiles of libkb jobs here")
    parser.add_argument("--write", default=None, help="add/replace the section in this RST file")
    parser.add_argument(
        "--baseline",
        default=None,
        metavar="PATH",
        help="also run the libkb job with libkb imported from PATH (an older source tree, "
        "C extension built in place), in the same rounds (job libkb @base); the report pairs the two",
    )
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child_main(json.loads(args.child))
        return 0

    from integration.services import KafkaService

    base = probe_baseline(args.baseline) if args.baseline else None

    options = {k: json.loads(v) for k, v in (o.split("=", 1) for o in args.option)}
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    partition_counts = [int(p) for p in args.partitions.split(",")]
    load_before = _loadavg()
    wall = time.monotonic()
    kafka = KafkaService()
    with contextlib.ExitStack() as stack:
        if args.data_dir:
            data_dir = Path(args.data_dir).resolve()
            data_dir.mkdir(parents=True, exist_ok=True)
        else:
            data_dir = Path(tempfile.mkdtemp(prefix="libkb-restore-bench-"))
            stack.callback(shutil.rmtree, data_dir, True)
        kafka.start()
        stack.callback(kafka.stop)
        bootstrap = kafka.endpoint.bootstrap_servers
        env: dict[str, Any] = {
            "kafka": kafka.endpoint,
            "bootstrap": bootstrap,
            "data_dir": str(data_dir),
            "options": options,
            "broker_pid": getattr(getattr(kafka, "_proc", None), "pid", None),  # the broker's JVM
            "baseline": base["path"] if base else None,
        }
        print(f"Kafka at {bootstrap}; backups in {data_dir}", flush=True)
        datas: list[Data] = []
        setup: dict[tuple[int, str], dict[str, float]] = {}
        for partitions in partition_counts:
            for compression in args.compressions.split(","):
                datas.append(backup_for(kafka.endpoint, data_dir, args, partitions, compression, setup))
        if args.storage == "s3":
            env["storage"] = mirror_to_minio(stack, data_dir, [d.backup_id for d in datas])
        units = build_units(datas, job_kinds(args, env))
        runs = run_rounds(units, args, env)
    load = f"load average {load_before} before, {_loadavg()} after"
    minutes = (time.monotonic() - wall) / 60
    text = render(args, datas, runs, setup, load, minutes, options, base)
    print(text)
    if args.write:
        write_section(Path(args.write), text, RESULTS_TITLE)
        print(f"wrote {args.write}")
    return 0


def mirror_to_minio(stack: contextlib.ExitStack, data_dir: Path, backup_ids: list[str]) -> dict[str, Any]:
    """A MinIO holding a copy of each backup (``--storage s3``); returns the jobs' ``storage:`` settings."""
    from integration.services import MinioService, create_s3_bucket
    from libkb.storage import FilesystemConfig, create_backend_from_config
    from libkb.storage.settings import load_storage_config

    minio = MinioService()
    minio.start()
    stack.callback(minio.stop)
    create_s3_bucket(minio.endpoint, "bench")
    storage = {
        "backend": "s3",
        "bucket": "bench",
        "endpoint": minio.endpoint.endpoint,
        "access_key": minio.endpoint.access_key,
        "secret_key": minio.endpoint.secret_key,
        "region": "us-east-1",
        "path_style": True,
    }
    source = create_backend_from_config(FilesystemConfig(path=str(data_dir)))
    target = create_backend_from_config(load_storage_config(storage))
    try:
        for backup_id in backup_ids:
            for key in source.list(f"{backup_id}/"):
                target.put_stream(key, source.get_stream(key, 8 << 20))
    finally:
        source.close()
        target.close()
    print(f"MinIO at {minio.endpoint.endpoint}: backups copied", flush=True)
    return storage


def backup_for(
    kafka: Any,
    data_dir: Path,
    args: argparse.Namespace,
    partitions: int,
    compression: str,
    setup: dict[tuple[int, str], dict[str, float]],
) -> Data:
    """The backup of one partition count and compression: reused from ``data_dir``, or made now."""
    marker = data_dir / f"{data_name(partitions, args.size, args.value_bytes, compression)}.json"
    if marker.exists():
        data = Data(**json.loads(marker.read_text()))
        print(f"reusing backup {data.backup_id} ({data.records} records)", flush=True)
    else:
        data = _make_data(kafka, data_dir, args, partitions, compression, setup)
    if args.rust and compression == "zstd":
        write_rust_twin(data_dir, data.backup_id, data.source, data.partitions)
    return data


def _make_data(
    kafka: Any,
    data_dir: Path,
    args: argparse.Namespace,
    partitions: int,
    compression: str,
    setup: dict[tuple[int, str], dict[str, float]],
) -> Data:
    marker = data_dir / f"{data_name(partitions, args.size, args.value_bytes, compression)}.json"
    data, made = make_backup(
        kafka, kafka.bootstrap_servers, data_dir, partitions, args.size, args.value_bytes, compression
    )
    setup[(partitions, compression)] = made
    marker.write_text(json.dumps(data.__dict__))
    print(
        f"backed up {data.source} ({compression}): {data.records} records, {data.bytes / 1e6:.0f} MB, "
        + ", ".join(f"{k} {v:.0f} s" for k, v in made.items()),
        flush=True,
    )
    return data


def build_units(datas: list[Data], kinds: list[list[str]]) -> list[list[Job]]:
    """The jobs of every backup, in units: one ceiling per partition count (it reads no backup);
    the baseline and ``--compare`` jobs only on zstd backups (an older tree may not read lz4)."""
    units = []
    for data in datas:
        first = next(d for d in datas if d.partitions == data.partitions) is data
        for unit in kinds:
            if unit[0] == "ceiling":
                if first:
                    units.append([Job("ceiling", data)])
            elif data.compression == "zstd":
                units.append([Job(kind, data) for kind in unit])
            elif unit[0] == "libkb":
                units.append([Job("libkb", data)])
    return units


def job_kinds(args: argparse.Namespace, env: dict[str, Any]) -> list[list[str]]:
    """The jobs per backup, in units (see ``backup_bench.round_order``): libkb with its baseline twin."""
    kinds = ["ceiling", "libkb", *(["rust"] if args.rust else [])]
    if args.only:
        kinds = [k for k in kinds if k in {s.strip() for s in args.only.split(",")}]
    units = [[k, k + BASE_SUFFIX] if k == "libkb" and env["baseline"] else [k] for k in kinds]
    if args.compare and Path(args.compare).is_file():
        env["engine_file"] = str(Path(args.compare).resolve())
        units.append([f"libkb@{Path(args.compare).name}"])
    elif args.compare:
        env["engine_file"] = str(Path(env["data_dir"]) / "engine_then.py")
        Path(env["engine_file"]).write_bytes(
            subprocess.run(
                ["git", "show", f"{args.compare}:libkb/restore/engine.py"],
                cwd=ROOT,
                check=True,
                capture_output=True,
            ).stdout
        )
        units.append([f"libkb@{args.compare}"])
    return units


def run_rounds(
    units: list[list[Job]], args: argparse.Namespace, env: dict[str, Any]
) -> dict[tuple[int, str], list[dict[str, Any]]]:
    runs: dict[tuple[int, str], list[dict[str, Any]]] = {}
    # Warm-up rounds (not recorded): a fresh broker's first gigabytes run slower (JIT).
    for round_no in range(-args.warmup, args.runs):
        for job in round_order(units, round_no, 1):
            out = run_job(job, args, env, round_no)
            out["round"] = round_no
            if round_no >= 0:
                runs.setdefault(job.key, []).append(out)
            print(
                f"{f'round {round_no + 1}' if round_no >= 0 else 'warm-up'} {job.data.partitions}p "
                f"{job.label}: {out['bytes'] / out['seconds'] / 1e6:.0f} MB/s, "
                f"{out['records'] / out['seconds'] / 1e3:.0f}k rec/s, "
                f"RSS {out['rss_kib'] / 1024:.0f} MiB, CPU {out['cpu']:.1f} s {out['threads']}, "
                f"broker CPU {out['broker_cpu']:.1f} s, load {out['load']:.2f}",
                flush=True,
            )
    return runs


# -- report -----------------------------------------------------------------------------


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "mbs": _median([r["bytes"] / r["seconds"] / 1e6 for r in runs]),
        "rps": _median([r["records"] / r["seconds"] for r in runs]),
        "rss": max(r["rss_kib"] for r in runs) / 1024,
        "cpu": _median([r["cpu"] for r in runs]),
        "broker": _median([r.get("broker_cpu", 0.0) for r in runs]),
        "threads": {
            g: _median([r["threads"].get(g, 0.0) for r in runs])
            for g in sorted({g for r in runs for g in r["threads"]})
        },
    }


def render(
    args: argparse.Namespace,
    datas: list[Data],
    runs: dict[tuple[int, str], list[dict[str, Any]]],
    setup: dict[tuple[int, str], dict[str, float]],
    load: str,
    minutes: float,
    options: dict[str, Any],
    base: dict[str, Any] | None = None,
) -> str:
    rows = []
    verdicts = []
    for data in datas:
        p = data.partitions
        ceil = runs.get((p, "ceiling"))
        first = next(d for d in datas if d.partitions == p) is data
        compared = {k for q, k in runs if q == p and "@" in k and not k.endswith(BASE_SUFFIX)}
        others = (
            [*(["rust"] if (p, "rust") in runs else []), *sorted(compared)]
            if data.compression == "zstd"
            else []
        )
        for kind in [*(["ceiling"] if first else []), data.label, *others]:
            if (p, kind) not in runs:
                continue
            s = summarize(runs[(p, kind)])
            pct = paired = ""
            if kind != "ceiling" and ceil:
                share = s["mbs"] / summarize(ceil)["mbs"]
                pct = f"{100 * share:.0f} %"
                shares = paired_ratios(runs[(p, kind)], ceil)
                paired = f"{100 * _median(shares):.0f} %" if shares else ""
                verdict = ("met" if share >= 0.85 else "missed") if kind == "libkb" else "for comparison"
                verdicts.append(
                    f"- {p} partition{'s' if p > 1 else ''}, {kind}: {pct} of the ceiling "
                    f"(median of per-round ratios {paired}): {verdict}"
                )
            threads = ", ".join(f"{g} {v:.1f}" for g, v in s["threads"].items() if v >= 0.05)
            rows.append(
                [
                    str(p),
                    kind,
                    f"{s['mbs']:.0f}",
                    f"{s['rps'] / 1e3:.0f}k",
                    pct,
                    paired,
                    f"{s['rss']:.0f}",
                    f"{s['cpu']:.1f}",
                    threads,
                    f"{s['broker']:.1f}",
                ]
            )
    main_table = table(
        [
            "parts",
            "job",
            "MB/s",
            "records/s",
            "of ceiling",
            "paired",
            "peak RSS MiB",
            "CPU s",
            "CPU s by thread",
            "broker CPU s",
        ],
        rows,
    )
    every = []
    for (p, kind), items in sorted(runs.items()):
        speeds = ", ".join(f"{r['bytes'] / r['seconds'] / 1e6:.0f}" for r in items)
        loads = ", ".join(f"{r['load']:.1f}" for r in items)
        every.append(f"- {p} p, {kind}: {speeds} (load {loads})")
    lines = []
    for d in datas:
        made = setup.get((d.partitions, d.compression))
        how = (", ".join(f"{k} {v:.0f} s" for k, v in made.items())) if made else "reused from --data-dir"
        lines.append(
            f"- ``{d.backup_id}``: {d.records} records, {d.bytes / 1e6:.0f} MB key+value, "
            f"{d.segments} segments, {d.stored / 1e6:.0f} MB stored ({d.compression}); {how}"
        )
    data_text = "\n".join(lines)
    facts = "\n".join(
        f"- {f}" for f in [*machine_facts(), restore_state(), load, f"whole run {minutes:.0f} min"]
    )
    command = " ".join(["python", "bench/restore_bench.py", *sys.argv[1:]])
    opts = f" Extra restore options (both jobs): {options}." if options else ""
    every_text = "\n".join(every)
    verdict_text = "\n".join(verdicts)
    paired = restore_pairs(datas, runs, base) if base else ""
    paired += rust_pairs(datas, runs)
    underline = "=" * len(RESULTS_TITLE)
    return f"""{RESULTS_TITLE}
{underline}

Command::

    {command}

Kafka 4.1.1 on 127.0.0.1, same 2 cores as the jobs. Each job is a fresh
process writing into a new topic; medians of {args.runs} rounds, jobs
alternating, after {args.warmup} unrecorded warm-up round(s). MB/s =
key+value bytes (10**6/s) over the whole job; peak RSS is the process's VmHWM,
the highest of the rounds. "of ceiling": median MB/s over the ceiling's
median; "paired": median over rounds of MB/s over the ceiling's in the same
round. CPU s: the process's CPU time (all threads) while timed, then by thread
group (medians): main (the ceiling's loop; libkb's planning and waiting),
produce = libkb's partition threads (decode + ``produce()``), read = segment
reads, poll = libkb's poll thread, librdkafka = its own threads (lz4,
requests). "broker CPU s": the Kafka JVM's CPU time over the job
(median).{opts}

{main_table}

Target (restore >= 85 % of the ceiling):

{verdict_text}

{paired}How the ceiling is built and what was tuned: ``bench/README.rst``.

Data (one backup per partition count, default backup settings):

{data_text}

Every run (MB/s) in the order made; load average (1 min) after each:

{every_text}

Machine (other work was running on it; see the load average):

{facts}
"""


def restore_pairs(
    datas: list[Data], runs: dict[tuple[int, str], list[dict[str, Any]]], base: dict[str, Any]
) -> str:
    """The paired table: the libkb job against its baseline twin, per partition count."""
    cells: list[Cell] = []
    for data in datas:
        cur, old = runs.get((data.partitions, "libkb")), runs.get((data.partitions, "libkb" + BASE_SUFFIX))
        if cur and old:
            what = f"{data.partitions} partition{'s' if data.partitions > 1 else ''}, libkb"
            cells.append(([str(data.partitions)], what, cur, old))
    return paired_section(["parts"], cells, base) if cells else ""


def rust_pairs(datas: list[Data], runs: dict[tuple[int, str], list[dict[str, Any]]]) -> str:
    """Restoring the Rust-format twin against restoring libkb's own backup of the same records."""
    lines = []
    for data in (d for d in datas if d.compression == "zstd"):  # the Rust twin is of the zstd backup
        rust, own = runs.get((data.partitions, "rust")), runs.get((data.partitions, "libkb"))
        if rust and own:
            ratios = paired_ratios(rust, own)
            share = summarize(rust)["mbs"] / summarize(own)["mbs"]
            lines.append(
                f"- {data.partitions} partition{'s' if data.partitions > 1 else ''}: {100 * share:.1f} % "
                f"of libkb's own (medians), per-round ratios {', '.join(f'{100 * r:.0f}' for r in ratios)} "
                f"(median {100 * _median(ratios):.1f} %): {'met' if share >= 0.9 else 'missed'}"
            )
    if not lines:
        return ""
    body = "\n".join(lines)
    return f"""Restore from a Rust-tool backup of the same records (job ``rust``; target >= 90 % of libkb):

{body}

"""


def restore_state() -> str:
    """Whether libkb/restore differs from the commit (machine_facts checks backup and format)."""
    with contextlib.suppress(Exception):
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "libkb/restore"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=True,
        ).stdout.strip()
        return "libkb/restore modified, not committed" if dirty else "libkb/restore as committed"
    return "libkb/restore: ?"


if __name__ == "__main__":
    raise SystemExit(main())
