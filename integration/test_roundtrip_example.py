"""The main-job example (what ``scripts/demo`` runs) works end to end against real Kafka."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from integration.services.endpoints import KafkaEndpoint

pytestmark = pytest.mark.kafka


def test_roundtrip_example(kafka_service: KafkaEndpoint, tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "examples/roundtrip.py",
            "--bootstrap-servers",
            kafka_service.bootstrap_servers,
            "--records",
            "5000",
            "--dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "backup:  complete, 5000 records" in done.stdout
    assert "restore: complete, 5000 records" in done.stdout
    assert "5000 original records, 5000 restored, identical" in done.stdout
    assert (tmp_path / "demo" / "manifest.json").is_file()
