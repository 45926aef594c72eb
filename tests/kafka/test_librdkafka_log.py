"""librdkafka's log lines: silent in an application that configures no logging, retried states at INFO."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from libkb.kafka.clients import librdkafka_log

RETRIED = (
    "GETPID [libkb-restore#producer-6] [thrd:main]: Failed to acquire idempotence PID from broker "
    "127.0.0.1:9092/1: Broker: Coordinator load in progress: retrying"
)


def test_an_application_without_logging_set_up_prints_no_librdkafka_line() -> None:
    """What ``scripts/demo`` (examples/roundtrip.py, no logging configured) printed on a fresh broker."""
    code = (
        "import logging, libkb.kafka.clients\n"
        f"logging.getLogger('librdkafka').warning({RETRIED!r})\n"
        "logging.getLogger('librdkafka').error('connection refused')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_a_retried_state_is_info_and_other_warnings_stay_warnings(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, "librdkafka")
    librdkafka_log.warning(RETRIED)
    librdkafka_log.warning("FAIL [thrd:...]: Connect to ipv4#127.0.0.1:1 failed: Connection refused")
    assert [r.levelname for r in caplog.records] == ["INFO", "WARNING"]
