"""Each documented failure is one line on stderr at default verbosity; ``-v`` shows the libraries' lines.

Run as the operator would (a subprocess): the Azure SDK's credential warnings,
librdkafka's connection errors and Libcloud's retries must not bury libkb's
error line. No service is needed: every case fails before one would answer.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "AWS_", "KAFKA_BACKUP_"))}
    env["HOME"] = str(cwd)  # no az-login or AWS profile of the machine's user
    return subprocess.run(
        [sys.executable, "-m", "libkb.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=cwd,
    )


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


CASES = {
    "bad Kafka address": lambda tmp: [
        "backup",
        "--config",
        write(
            tmp / "backup.yaml",
            "mode: backup\nbackup_id: b\nsource:\n  bootstrap_servers: ['127.0.0.1:1']\n"
            f"  topics:\n    include: [orders]\nstorage:\n  backend: filesystem\n  path: {tmp / 'store'}\n",
        ),
    ],
    "azure URL without credentials": lambda tmp: [
        "list",
        "--path",
        "azure://account.blob.core.windows.net/c",
    ],
    "S3 config without a bucket": lambda tmp: [
        "backup",
        "--config",
        write(
            tmp / "s3.yaml",
            "mode: backup\nbackup_id: b\nsource:\n  bootstrap_servers: ['127.0.0.1:1']\n"
            "  topics:\n    include: [orders]\nstorage:\n  backend: s3\n  region: us-east-1\n",
        ),
    ],
    "S3 endpoint that refuses": lambda tmp: ["list", "--path", "s3://bucket?endpoint=http://127.0.0.1:1"],
    "missing location": lambda tmp: ["list", "--path", str(tmp / "missing")],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_failure_is_one_line_on_stderr(case: str, tmp_path: Path) -> None:
    done = cli(*CASES[case](tmp_path), cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("kafka-backup: error: "), done.stderr
    assert "'':" not in lines[0]  # a listing of a whole bucket or container names it, not an empty key


def test_azure_sdk_lines_come_back_with_v(tmp_path: Path) -> None:
    done = cli("-v", *CASES["azure URL without credentials"](tmp_path), cwd=tmp_path)
    assert done.returncode == 1
    assert "azure.identity" in done.stderr and len(done.stderr.splitlines()) > 1
