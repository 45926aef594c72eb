"""Machinery shared by every service: install cache, processes, ports, polling.

Why it exists: the integration suite must run real servers on machines with
no Docker engine, start them fast after the first run, never leave a process
behind (even when pytest is killed with ``kill -9``) and explain failures
with the server's own log.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import fcntl
import importlib.metadata
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, ClassVar, Generic, TypeVar

__all__ = [
    "CACHE_ENV",
    "LocalProcessService",
    "Service",
    "ServiceError",
    "cache_root",
    "cached_install",
    "file_lock",
    "free_ports",
    "run_logged",
    "tail_file",
    "wait_until",
]

E = TypeVar("E")

CACHE_ENV = "LIBKB_CACHE_DIR"
"""Environment variable overriding the install cache (default ``~/.cache/libkb``)."""

TAIL_LINES = 60
_MARKER = ".libkb-installed"
_TMP_PREFIX = "libkb-svc-"
_BIND_ERRORS = re.compile(
    r"address already in use|BindException|EADDRINUSE|bind: address|port is already|is not available",
    re.IGNORECASE,
)


class ServiceError(RuntimeError):
    """A service could not be installed, started or reached.

    ``log_tail`` carries the last lines of the relevant log so that a CI
    failure explains itself without access to the machine.
    """

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail

    def describe(self) -> str:
        """Message plus log tail, ready to print."""
        if not self.log_tail:
            return str(self)
        return f"{self}\n----- last lines of the log -----\n{self.log_tail}"


# --------------------------------------------------------------------------- cache


def cache_root() -> Path:
    """Root of the install cache, outside the repository so it survives clones."""
    configured = os.environ.get(CACHE_ENV)
    root = Path(configured) if configured else Path.home() / ".cache" / "libkb"
    return root.expanduser().resolve()


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Exclusive advisory lock on ``path``; serialises installs across processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def cached_install(
    name: str,
    version: str,
    installer: Callable[[Path, Path], None],
    root: Path | None = None,
) -> Path:
    """Return ``<root>/<name>-<version>``, running ``installer`` once if missing.

    ``installer(target_dir, log_path)`` fills a fresh temporary directory that
    is renamed into place only on success, under a file lock, so concurrent
    callers never see (or run into) a half-finished install.
    """
    root = root or cache_root()
    final = root / f"{name}-{version}"
    if (final / _MARKER).is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)
    log_path = root / "logs" / f"{name}-{version}.install.log"
    with file_lock(root / ".locks" / f"{name}-{version}.lock"):
        if (final / _MARKER).is_file():
            return final
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text(f"installing {name} {version} into {final}\n")
        staging = Path(tempfile.mkdtemp(prefix=f".{name}-{version}.tmp-", dir=root))
        started = time.monotonic()
        try:
            installer(staging, log_path)
            info = {"name": name, "version": version, "seconds": time.monotonic() - started}
            (staging / _MARKER).write_text(json.dumps(info) + "\n")
            if final.exists():  # leftover without marker: never completed
                shutil.rmtree(final)
            os.rename(staging, final)
        except BaseException as exc:
            shutil.rmtree(staging, ignore_errors=True)
            if isinstance(exc, ServiceError):
                raise
            if isinstance(exc, Exception):
                raise ServiceError(f"installing {name} {version} failed: {exc}", tail_file(log_path)) from exc
            raise
    return final


def run_logged(
    cmd: Sequence[str],
    log_path: Path,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 900,
) -> None:
    """Run a helper command, appending its output to ``log_path``.

    Raises :class:`ServiceError` with the log tail when it fails, so install
    and setup errors look the same as start errors.
    """
    with open(log_path, "ab") as log:
        log.write(f"$ {' '.join(cmd)}\n".encode())
        log.flush()
        proc = _spawn(cmd, log, cwd=cwd, env=env)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc, grace=5)
            raise ServiceError(
                f"{cmd[0]} did not finish within {timeout:.0f}s", tail_file(log_path)
            ) from None
        except BaseException:
            _kill_group(proc, grace=5)
            raise
    if code != 0:
        raise ServiceError(f"{' '.join(cmd[:3])} ... exited with {code}", tail_file(log_path))


def tail_file(path: Path, lines: int = TAIL_LINES) -> str:
    """Last ``lines`` lines of a text file ('' if it does not exist)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return "".join(deque(handle, maxlen=lines)).rstrip("\n")
    except FileNotFoundError:
        return ""


# --------------------------------------------------------------------------- ports


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports the kernel reports free right now.

    All sockets stay bound until every port is picked, so the ports differ;
    they can still be taken before the server binds them, which is why
    :class:`LocalProcessService` retries its start on bind conflicts.
    """
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if ``port`` can be bound on ``host`` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


# --------------------------------------------------------------------------- polling


def wait_until(
    probe: Callable[[], object],
    *,
    timeout: float,
    what: str,
    interval: float = 0.2,
    alive: Callable[[], str | None] | None = None,
) -> None:
    """Call ``probe`` until it returns without raising, or fail after ``timeout``.

    ``alive`` returns an error message once the thing being waited for is
    known to be dead (e.g. the server process exited), which stops the wait
    early instead of burning the whole timeout.
    """
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        if alive is not None and (dead := alive()) is not None:
            raise ServiceError(f"{what}: {dead}")
        try:
            probe()
            return
        except Exception as exc:  # any failure just means "not yet"
            last = exc
        if time.monotonic() >= deadline:
            raise ServiceError(f"{what}: not ready after {timeout:.0f}s (last error: {last!r})")
        time.sleep(interval)


# --------------------------------------------------------------------------- processes

_PR_SET_PDEATHSIG = 1
try:
    _prctl: Callable[..., int] | None = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux: rely on atexit only
    _prctl = None


def _child_setup(parent_pid: int) -> Callable[[], None]:
    """Build a ``preexec_fn`` that ties the child's life to this process.

    PR_SET_PDEATHSIG makes the kernel SIGKILL the child when the thread that
    forked it dies, which covers ``kill -9`` of pytest where atexit never
    runs. The ppid re-check closes the race where the parent died before
    prctl was called.
    """

    def setup() -> None:
        if _prctl is not None:
            _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != parent_pid:
                os._exit(1)

    return setup


def _spawn(
    cmd: Sequence[str],
    log: IO[bytes],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``cmd`` in its own process group, output to ``log``, dying with us."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    return subprocess.Popen(
        list(cmd),
        cwd=cwd,
        env=full_env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_child_setup(os.getpid()),
    )


def _exited(pid: int, timeout: float) -> bool:
    """Wait up to ``timeout`` for ``pid`` to exit, without reaping it.

    Leaving the zombie in place keeps its pid, and so its process group id,
    from being reused while we still signal the group.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return True
        except ChildProcessError:  # already reaped
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _kill_group(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left of it."""
    if proc.returncode is not None:
        return  # already reaped: its pid may belong to someone else by now
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    _exited(proc.pid, grace)
    # The leader is at most a zombie here, so the group id is still ours;
    # this also takes down helpers the server forked into its group.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


_live: set[Service[Any]] = set()
_live_lock = threading.Lock()


@atexit.register
def _close_all() -> None:
    """Last-chance cleanup when the interpreter exits normally."""
    with _live_lock:
        services = list(_live)
    for service in services:
        with contextlib.suppress(Exception):
            service.close()


def _sweep_stale_workdirs() -> None:
    """Remove work dirs left by harness processes that died without cleanup."""
    base = Path(tempfile.gettempdir())
    for path in base.glob(f"{_TMP_PREFIX}*"):
        match = re.match(rf"{_TMP_PREFIX}[a-z0-9_]+-(\d+)-", path.name)
        if match and not Path(f"/proc/{match.group(1)}").exists():
            shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------------------- services


class Service(ABC, Generic[E]):
    """A handle on one running service, whatever provides it.

    ``start`` is idempotent; ``stop`` keeps the endpoint and data so that a
    following ``start`` brings the same service back (resilience tests);
    ``close`` stops for good and removes the data.
    """

    name: str
    version: str
    provider: str
    supports_restart: bool = True

    @property
    @abstractmethod
    def endpoint(self) -> E:
        """How clients reach the service; only valid once started."""

    @property
    @abstractmethod
    def running(self) -> bool:
        """True between a successful ``start`` and the next ``stop``."""

    def install(self) -> None:
        """Fetch or build what ``start`` needs; cached, so cheap when repeated."""

    @abstractmethod
    def start(self) -> E:
        """Start (or restart) the service and wait until it answers requests."""

    @abstractmethod
    def stop(self) -> None:
        """Stop the service but keep its endpoint and data for a later ``start``."""

    def close(self) -> None:
        """Stop and release everything (data, temp dirs, containers)."""
        self.stop()

    def log_tail(self, lines: int = TAIL_LINES) -> str:
        """Last lines of the service's log, for failure reports."""
        return ""

    def __enter__(self) -> E:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class LocalProcessService(Service[E]):
    """A service run as a child process of this interpreter.

    Subclasses provide the install step, the ports they need, config files,
    the command line and a readiness probe; this class does the rest:
    work dir, log file, process group, free ports with retry on bind
    conflicts, readiness polling, clean stop and restart at the same ports.
    """

    provider = "local"
    port_names: ClassVar[tuple[str, ...]] = ("port",)
    start_timeout: ClassVar[float] = 60.0
    stop_timeout: ClassVar[float] = 15.0
    start_attempts: ClassVar[int] = 3

    def __init__(self) -> None:
        self.home: Path | None = None
        self.workdir: Path | None = None
        self.ports: dict[str, int] = {}
        self._proc: subprocess.Popen[bytes] | None = None

    # -- hooks for subclasses ------------------------------------------------

    @abstractmethod
    def _install_into(self, target: Path, log: Path) -> None:
        """Populate ``target`` (a fresh dir) with what ``start`` needs."""

    def _installed(self) -> Path | None:
        """A ready install found elsewhere (e.g. the current venv), if any."""
        return None

    def _allocate_ports(self) -> dict[str, int]:
        """Pick a free port for each name in ``port_names``."""
        return dict(zip(self.port_names, free_ports(len(self.port_names)), strict=True))

    def _prepare(self, workdir: Path) -> None:
        """Write config files once ports are known; runs once per set of ports."""

    @abstractmethod
    def _command(self) -> list[str]:
        """Command line starting the server in the foreground."""

    def _env(self) -> dict[str, str]:
        """Extra environment variables for the server process."""
        return {}

    @abstractmethod
    def _probe(self) -> None:
        """Raise unless the server answers a real request."""

    # -- public API -----------------------------------------------------------

    @property
    def log_path(self) -> Path | None:
        """The server's combined stdout/stderr log (kept across restarts)."""
        return self.workdir / "service.log" if self.workdir else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def install(self) -> None:
        if self.home is None:
            self.home = self._installed() or cached_install(self.name, self.version, self._install_into)

    def start(self) -> E:
        if self.running:
            return self.endpoint
        self.install()
        restarting = bool(self.ports)
        if self.workdir is None:
            _sweep_stale_workdirs()
            self.workdir = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{self.name}-{os.getpid()}-"))
        with _live_lock:
            _live.add(self)
        attempts = self.start_attempts * (3 if restarting else 1)
        for attempt in range(1, attempts + 1):
            if not self.ports:
                self.ports = self._allocate_ports()
                self._prepare(self.workdir)
            assert self.log_path is not None
            log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            try:
                self._launch(attempt, log_offset)
                return self.endpoint
            except ServiceError as exc:
                self._terminate()
                conflict = self._bind_conflict(log_offset)
                if not conflict or attempt == attempts:
                    exc.log_tail = exc.log_tail or self.log_tail()
                    raise
                if restarting:  # keep the endpoint: wait for the port instead
                    time.sleep(1.0)
                else:
                    self.ports = {}
        raise AssertionError("unreachable")

    def stop(self) -> None:
        self._terminate()

    def close(self) -> None:
        self._terminate()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
        self.ports = {}
        with _live_lock:
            _live.discard(self)

    def log_tail(self, lines: int = TAIL_LINES) -> str:
        return tail_file(self.log_path, lines) if self.log_path else ""

    # -- internals ------------------------------------------------------------

    def _bind_conflict(self, log_offset: int) -> bool:
        """Whether the log written since ``log_offset`` reports a port in use."""
        assert self.log_path is not None
        try:
            with open(self.log_path, "rb") as log:
                log.seek(log_offset)
                return bool(_BIND_ERRORS.search(log.read().decode("utf-8", "replace")))
        except FileNotFoundError:
            return False

    def _launch(self, attempt: int, log_offset: int) -> None:
        assert self.workdir is not None and self.log_path is not None
        cmd = self._command()
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start attempt {attempt}: {' '.join(cmd)}\n".encode())
            log.flush()
            self._proc = _spawn(cmd, log, cwd=self.workdir, env=self._env())
        proc = self._proc

        def alive() -> str | None:
            code = proc.poll()
            if code is not None:
                return f"process exited with code {code}"
            if self._bind_conflict(log_offset):  # some servers linger after failing to bind
                return "a port it needs is already in use"
            return None

        try:
            wait_until(
                self._probe,
                timeout=self.start_timeout,
                what=f"{self.name} {self.version}",
                alive=alive,
            )
        except ServiceError as exc:
            exc.log_tail = self.log_tail()
            raise

    def _terminate(self) -> None:
        if self._proc is not None:
            _kill_group(self._proc, grace=self.stop_timeout)
            self._proc = None


def distribution_file(dist: str, version: str, suffix: str) -> Path | None:
    """A file of installed distribution ``dist`` at exactly ``version``, if present.

    Lets wheel-shipped servers (SeaweedFS, fake-gcs-server) run straight from
    the test environment when it already has the pinned wheel.
    """
    try:
        found = importlib.metadata.distribution(dist)
    except importlib.metadata.PackageNotFoundError:
        return None
    if found.version != version:
        return None
    for item in found.files or []:
        if str(item).replace("\\", "/").endswith(suffix):
            path = Path(str(found.locate_file(item))).resolve()
            if path.is_file():
                return path
    return None


def pip_install(requirement: str, target: Path, log: Path) -> None:
    """Install one pinned wheel (no dependencies) into ``target`` with pip."""
    run_logged(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--disable-pip-version-check",
            "--no-input",
            "--target",
            str(target),
            requirement,
        ],
        log,
        timeout=900,
    )


def find_file(root: Path, name: str) -> Path:
    """The single file called ``name`` under ``root`` (for pip --target layouts)."""
    matches = sorted(p for p in root.rglob(name) if p.is_file())
    if not matches:
        raise ServiceError(f"{name} not found under {root}")
    return matches[0]
