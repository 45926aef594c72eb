"""Streamed put/get throughput of libkb's S3 backend against other S3 clients.

One MinIO server (started here, on 127.0.0.1), objects of 64 and 256 MiB:

- put: upload from an iterator of 1 MiB byte chunks (nothing is materialised);
- get: stream the object back and consume every chunk.

Clients: libkb (``create_backend_from_config(S3Config(...))``), stock Libcloud
(``MinIOStorageDriver.upload_object_via_stream`` / ``download_object_as_stream``),
boto3 (``upload_fileobj`` / ``download_fileobj``, default ``TransferConfig``) and
obstore (``put`` from the iterator / ``get().stream()``). Each number is the
median MB/s (10**6 bytes/s) of ``--runs`` runs after one verified warm-up.

Not part of CI. Run::

    .venv/bin/python bench/storage_bench.py --runs 5 --write bench/RESULTS.rst
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MiB = 1024 * 1024
CHUNK = MiB
BUCKET = "bench"

Put = Callable[[str, bytes], None]
Get = Callable[[str], Iterable[Any]]
Client = tuple[Put, Get]


@dataclass
class Server:
    endpoint: str
    access_key: str
    secret_key: str
    how: str

    @property
    def host_port(self) -> tuple[str, int]:
        host, port = self.endpoint.rsplit("//", 1)[1].split(":")
        return host, int(port)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def minio_server(binary: str | None) -> Iterator[Server]:
    """Reuse integration.services.MinioService if it works here, else run the binary."""
    if binary is None:
        try:
            from integration.services import MinioService

            service = MinioService()
            endpoint = service.start()
        except Exception as exc:  # harness missing or cannot install: fall back
            print(f"integration.services MinIO unavailable ({type(exc).__name__}: {exc})")
        else:
            try:
                yield Server(
                    endpoint.endpoint,
                    endpoint.access_key,
                    endpoint.secret_key,
                    "integration.services.MinioService",
                )
            finally:
                service.close()
            return
        binary = shutil.which("minio") or "/root/.cache/libkb-probe/bin/minio"
    data = tempfile.mkdtemp(prefix="libkb-bench-minio-")
    port, console = _free_port(), _free_port()
    env = dict(
        os.environ,
        MINIO_ROOT_USER="benchadmin",
        MINIO_ROOT_PASSWORD="benchsecret123",
        MINIO_BROWSER="off",
        MINIO_UPDATE="off",
    )
    cmd = [binary, "server", data, "--address", f"127.0.0.1:{port}"]
    cmd += ["--console-address", f"127.0.0.1:{console}", "--quiet"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        import requests

        deadline = time.monotonic() + 60
        while True:
            try:
                ready = f"http://127.0.0.1:{port}/minio/health/ready"
                if requests.get(ready, timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("MinIO did not start")
            time.sleep(0.2)
        yield Server(f"http://127.0.0.1:{port}", "benchadmin", "benchsecret123", binary)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(data, ignore_errors=True)


def chunks_of(data: bytes, size: int = CHUNK) -> Iterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(data), size):
        yield bytes(view[start : start + size])


class IteratorReader(io.RawIOBase):
    """A non-seekable file over a chunk iterator (so boto3 streams, as the others do)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


class CountingSink(io.RawIOBase):
    """Write target that only counts (download_fileobj needs a file)."""

    def __init__(self) -> None:
        self.count = 0
        self.digest: Any = None

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        n = len(data)
        self.count += n
        if self.digest is not None:
            self.digest.update(data)
        return n


# -- clients: each returns (put(key, data), get(key) -> iterator of chunks) -----------------


def client_libkb(server: Server, part_size: int, concurrency: int) -> Client:
    from libkb.storage import S3Config, TransferConfig, create_backend_from_config

    backend = create_backend_from_config(
        S3Config(
            bucket=BUCKET,
            endpoint=server.endpoint,
            access_key=server.access_key,
            secret_key=server.secret_key,
            path_style=True,
            allow_http=True,
            transfer=TransferConfig(
                part_size=part_size, max_concurrency=concurrency, single_put_threshold=part_size
            ),
        )
    )

    def put(key: str, data: bytes) -> None:
        backend.put_stream(key, chunks_of(data))

    def get(key: str) -> Iterator[bytes]:
        return backend.get_stream(key, chunk_size=CHUNK)

    return put, get


def client_libcloud(server: Server, *_: int) -> Client:
    from libcloud.storage.drivers.minio import MinIOStorageDriver

    host, port = server.host_port
    driver = MinIOStorageDriver(server.access_key, server.secret_key, secure=False, host=host, port=port)
    container = driver.get_container(BUCKET)

    def put(key: str, data: bytes) -> None:
        driver.upload_object_via_stream(chunks_of(data), container, key)

    def get(key: str) -> Iterator[bytes]:
        obj = driver.get_object(BUCKET, key)
        return iter(driver.download_object_as_stream(obj, chunk_size=CHUNK))

    return put, get


def client_boto3(server: Server, *_: int) -> Client:
    import boto3
    from botocore.config import Config

    s3 = boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}),
    )

    def put(key: str, data: bytes) -> None:
        s3.upload_fileobj(IteratorReader(chunks_of(data)), BUCKET, key)

    def get(key: str) -> Iterator[bytes]:
        sink = CountingSink()
        s3.download_fileobj(BUCKET, key, sink)
        return iter(_Counted(sink.count))

    return put, get


class _Counted:
    """download_fileobj writes into a sink; report its byte count as one 'chunk' length."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __iter__(self) -> Iterator[Any]:
        yield _Len(self.n)


class _Len:
    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n


def client_obstore(server: Server, *_: int) -> Client:
    import obstore
    from obstore.store import S3Store

    store = S3Store(
        BUCKET,
        endpoint=server.endpoint,
        access_key_id=server.access_key,
        secret_access_key=server.secret_key,
        region="us-east-1",
        virtual_hosted_style_request=False,
        client_options={"allow_http": True, "timeout": "300s"},
    )

    def put(key: str, data: bytes) -> None:
        obstore.put(store, key, chunks_of(data))

    def get(key: str) -> Iterator[bytes]:
        return iter(obstore.get(store, key).stream(min_chunk_size=CHUNK))

    return put, get


CLIENTS: dict[str, Callable[..., Client]] = {
    "libkb": client_libkb,
    "libcloud": client_libcloud,
    "boto3": client_boto3,
    "obstore": client_obstore,
}


def verify(name: str, put: Put, get: Get, data: bytes, key: str) -> None:
    put(key, data)
    if name == "boto3":
        return  # download_fileobj content is checked below through a digest sink
    digest = hashlib.sha256()
    for chunk in get(key):
        digest.update(chunk)
    if digest.hexdigest() != hashlib.sha256(data).hexdigest():
        raise AssertionError(f"{name}: downloaded bytes differ")


def verify_boto3(server: Server, data: bytes, key: str) -> None:
    import boto3
    from botocore.config import Config

    s3 = boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}),
    )
    sink = CountingSink()
    sink.digest = hashlib.sha256()
    s3.download_fileobj(BUCKET, key, sink)
    if sink.digest.hexdigest() != hashlib.sha256(data).hexdigest():
        raise AssertionError("boto3: downloaded bytes differ")


def timed_put(put: Put, key: str, data: bytes) -> float:
    start = time.perf_counter()
    put(key, data)
    return len(data) / (time.perf_counter() - start) / 1e6


def timed_get(get: Get, key: str, size: int) -> float:
    start = time.perf_counter()
    total = 0
    for chunk in get(key):
        total += len(chunk)
    elapsed = time.perf_counter() - start
    if total != size:
        raise AssertionError(f"got {total} bytes, expected {size}")
    return size / elapsed / 1e6


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
    import boto3
    import libcloud
    import obstore
    import requests

    return [
        f"CPU: {cpu}, {os.cpu_count()} logical cores; RAM {mem}",
        f"OS: {platform.platform()}; Python {platform.python_version()}",
        f"libcloud {libcloud.__version__}, requests {requests.__version__}, "
        f"boto3 {boto3.__version__}, obstore {getattr(obstore, '__version__', '?')}",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="64,256", help="object sizes in MiB")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--clients", default=",".join(CLIENTS))
    parser.add_argument("--part-size", type=int, default=16, help="libkb part size, MiB")
    parser.add_argument("--concurrency", type=int, default=4, help="libkb max_concurrency")
    parser.add_argument("--minio-bin", default=None, help="MinIO binary (skip the harness)")
    parser.add_argument("--write", default=None, help="write an RST results table here")
    args = parser.parse_args()

    sizes = [int(s) * MiB for s in args.sizes.split(",")]
    names = [n.strip() for n in args.clients.split(",") if n.strip()]
    results: dict[tuple[str, int, str], float] = {}
    raw_runs: list[str] = []
    load_before = _loadavg()
    with minio_server(args.minio_bin) as server:
        import boto3
        from botocore.config import Config

        admin = boto3.client(
            "s3",
            endpoint_url=server.endpoint,
            aws_access_key_id=server.access_key,
            aws_secret_access_key=server.secret_key,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}),
        )
        admin.create_bucket(Bucket=BUCKET)
        print(f"MinIO at {server.endpoint} ({server.how})")
        clients = {name: CLIENTS[name](server, args.part_size * MiB, args.concurrency) for name in names}
        for size in sizes:
            data = os.urandom(size)
            for name, (put, get) in clients.items():
                verify(name, put, get, data, f"{name}/{size}")
                if name == "boto3":
                    verify_boto3(server, data, f"{name}/{size}")
            runs: dict[tuple[str, str], list[float]] = {}
            # Interleave the clients, rotating their order every round, so that
            # background load and server state hit all of them alike.
            for round_no in range(args.runs):
                order = names[round_no % len(names) :] + names[: round_no % len(names)]
                for name in order:
                    put, get = clients[name]
                    key = f"{name}/{size}"
                    runs.setdefault((name, "put"), []).append(timed_put(put, key, data))
                    runs.setdefault((name, "get"), []).append(timed_get(get, key, size))
            for name in names:
                puts, gets = runs[(name, "put")], runs[(name, "get")]
                results[(name, size, "put")] = statistics.median(puts)
                results[(name, size, "get")] = statistics.median(gets)
                raw_runs.append(
                    f"{size // MiB} MiB {name}: put {', '.join(f'{x:.0f}' for x in puts)};"
                    f" get {', '.join(f'{x:.0f}' for x in gets)}"
                )
                print(raw_runs[-1], flush=True)
    table = render(results, names, sizes)
    print(table)
    load = f"load average {load_before} before, {_loadavg()} after"
    if args.write:
        write_results(Path(args.write), table, args, server.how, raw_runs, load)
    return 0


def render(results: dict[tuple[str, int, str], float], names: list[str], sizes: list[int]) -> str:
    header = ["client"] + [f"{op} {s // MiB} MiB" for s in sizes for op in ("put", "get")]
    rows = [
        [name] + [f"{results[(name, s, op)]:.0f}" for s in sizes for op in ("put", "get")] for name in names
    ]
    best = {(s, op): max(results[(n, s, op)] for n in names) for s in sizes for op in ("put", "get")}
    if "libkb" in names:
        rows.append(
            ["libkb / best"]
            + [
                f"{100 * results[('libkb', s, op)] / best[(s, op)]:.0f} %"
                for s in sizes
                for op in ("put", "get")
            ]
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join("=" * w for w in widths)

    def fmt(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    out = [line, fmt(header), line]
    out += [fmt(r) for r in rows]
    out.append(line)
    return "\n".join(out)


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def write_results(
    path: Path,
    table: str,
    args: argparse.Namespace,
    how: str,
    raw_runs: list[str],
    load: str,
) -> None:
    facts = "\n".join(f"- {f}" for f in [*machine_facts(), load])
    runs = "\n".join(f"- {r}" for r in raw_runs)
    command = " ".join(["python", "bench/storage_bench.py", *sys.argv[1:]])
    text = f"""Storage benchmark results
=========================

Command::

    {command}

MinIO on 127.0.0.1 ({how}), same machine as the clients. Median MB/s
(10**6 bytes/s) of {args.runs} runs; libkb with part_size={args.part_size} MiB,
max_concurrency={args.concurrency}; 1 MiB chunks in and out.

{table}

Every run (MB/s), clients interleaved in rotating order:

{runs}

Machine (other work was running on it; see the load average):

{facts}

See ``bench/README.rst`` for how to read these numbers and what was tuned.
"""
    path.write_text(text)
    print(f"wrote {path}")


if __name__ == "__main__":
    raise SystemExit(main())
