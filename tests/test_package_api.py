"""The top-level library API, and that storage users do not load the Kafka clients."""

from __future__ import annotations

import subprocess
import sys


def test_top_level_api_is_the_engines() -> None:
    import libkb
    from libkb.backup.engine import BackupEngine
    from libkb.config import load_config
    from libkb.restore.engine import RestoreEngine

    assert (libkb.BackupEngine, libkb.RestoreEngine, libkb.load_config) == (
        BackupEngine,
        RestoreEngine,
        load_config,
    )
    assert set(libkb.__all__) >= {"BackupEngine", "RestoreEngine", "load_config"}


def test_storage_alone_does_not_import_kafka() -> None:
    code = "import sys, libkb.storage; print('confluent_kafka' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_version_is_the_one_the_package_metadata_carries() -> None:
    import tomllib
    from importlib.metadata import version
    from pathlib import Path

    import libkb

    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"] and "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "libkb.version.__version__"}
    assert libkb.__version__ == version("libkb")


def test_importing_libkb_registers_no_global_metrics() -> None:
    code = (
        "import libkb.storage, libkb.metrics, libkb.backup.engine, libkb.restore.engine, libkb.cli.app\n"
        "from prometheus_client import REGISTRY\n"
        "print(sorted(m.name for m in REGISTRY.collect() if m.name.startswith('kafka_')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
