"""The kafka-backup process's allocator: large buffers reused, not faulted in anew each time.

The allocator cases run in a child process: the thresholds are the whole
process's and cannot be put back, so the test process keeps glibc's own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from libkb.cli import app
from libkb.cli.alloctune import user_has_malloc_settings


def _glibc() -> bool:
    try:
        return bool(os.confstr("CS_GNU_LIBC_VERSION"))
    except (ValueError, OSError):  # not a name this platform knows
        return False


# The thresholds are glibc's (musl and macOS have no mallopt to set): CI and the
# Docker images are Debian, with glibc, so there these tests always run.
glibc_only = pytest.mark.skipif(not _glibc(), reason="glibc's allocator only")

# 20 rounds of five 7 MiB buffers written through, then freed, as librdkafka's
# fetch responses are (its 32 MiB queue holds about five); the page faults they cost.
ROUNDS, PAGES = 20, 5 * (7 << 20) // 4096
CHILD = f"""
import json, resource, sys
from libkb.cli.alloctune import tune_allocator
tuned = tune_allocator() if sys.argv[1] == "tune" else False
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range({ROUNDS}):
    bufs = [bytearray(7 << 20) for _ in range(5)]
    for buf in bufs:
        buf[::4096] = b"x" * len(buf[::4096])
    del bufs, buf
print(json.dumps([tuned, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before]))
"""


def run_child(mode: str, **env: str) -> tuple[bool, int]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_"))}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode],
        env={**environ, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    tuned, faults = json.loads(out)
    return bool(tuned), int(faults)


@glibc_only
def test_large_buffers_are_reused_once_tuned() -> None:
    tuned, faults = run_child("tune")
    assert tuned
    untuned, faults_untuned = run_child("plain")
    assert not untuned
    # Untuned: glibc gives most of the 35 MiB back after each round and faults it in again;
    # tuned: the first round's pages are reused.
    assert faults_untuned > ROUNDS * PAGES / 2
    assert faults < 3 * PAGES


@glibc_only
def test_the_users_own_thresholds_are_left_alone() -> None:
    tuned, faults = run_child("tune", GLIBC_TUNABLES="glibc.malloc.mmap_threshold=131072")
    assert not tuned
    assert faults > ROUNDS * PAGES * 0.9  # the user's 128 KiB threshold holds: each round maps anew


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, False),
        ({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}, False),  # another setting: ours still apply
        ({"MALLOC_ARENA_MAX": "2"}, False),
        ({"GLIBC_TUNABLES": "glibc.pthread.rseq=0:glibc.malloc.trim_threshold=1"}, True),
        ({"MALLOC_MMAP_THRESHOLD_": "65536"}, True),
        ({"MALLOC_TRIM_THRESHOLD_": "0"}, True),
    ],
)
def test_which_user_settings_count(environ: dict[str, str], expected: bool) -> None:
    assert user_has_malloc_settings(environ) is expected


@pytest.mark.parametrize(("command", "tuned"), [("backup", 1), ("restore", 0), ("validate", 0)])
def test_only_the_backup_command_sets_them(
    command: str, tuned: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def tune() -> bool:
        calls.append(command)
        return True

    monkeypatch.setattr(app, "tune_allocator", tune)
    app.main([command, "--config", str(tmp_path / "missing.yaml")])  # fails on the file: no matter
    assert len(calls) == tuned
