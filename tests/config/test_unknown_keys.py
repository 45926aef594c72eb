"""A key neither tool knows is an error naming the file, the key path and the closest known key.

The original tool only warned about such keys and carried on with the
default; a typo must not silently do nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from libkb.config import load_config
from libkb.errors import ConfigError
from libkb.suggest import closest, unknown_key_message

BASE = """\
mode: {mode}
backup_id: typo-test
{cluster}:
  bootstrap_servers: ["localhost:9092"]
storage:
  backend: filesystem
  path: /tmp/typo-test
"""


def load(tmp_path: Path, extra: str, *, mode: str = "backup", storage: str | None = None) -> None:
    text = BASE.format(mode=mode, cluster="source" if mode == "backup" else "target") + extra
    if storage is not None:
        text = text.replace("storage:\n  backend: filesystem\n  path: /tmp/typo-test\n", storage)
    path = tmp_path / "job.yaml"
    path.write_text(text, encoding="utf-8")
    load_config(path)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("offset_storge: {}\n", "offset_storge: unknown key; did you mean 'offset_storage'?"),
        ("loging: {level: info}\n", "loging: unknown key; did you mean 'logging'?"),
        (
            "backup:\n  fetch_max_bytez: 123\n",
            "backup.fetch_max_bytez: unknown key; did you mean 'fetch_max_bytes'?",
        ),
        (
            "backup:\n  checkpoint_interval_sec: 5\n",
            "backup.checkpoint_interval_sec: unknown key; did you mean 'checkpoint_interval_secs'?",
        ),
        (
            "backup:\n  poll_intervall_ms: 5\n",
            "backup.poll_intervall_ms: unknown key; did you mean 'poll_interval_ms'?",
        ),
        (
            "metrics:\n  keep_alive_secs: 5\n",
            "metrics.keep_alive_secs: unknown key; did you mean 'keep_alive_seconds'?",
        ),
        ("logging:\n  formats: json\n", "logging.formats: unknown key; did you mean 'format'?"),
        ("offset_storage:\n  db_pth: x.db\n", "offset_storage.db_pth: unknown key; did you mean 'db_path'?"),
    ],
)
def test_a_misspelt_key_names_the_closest_known_key(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, extra)
    assert str(info.value) == f"{tmp_path / 'job.yaml'}: {message}"


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            "  security:\n    security_protocol: SASL_PLAINTEXT\n    sasl_mechanism: GSSAPI\n"
            "    sasl_keytab: /k\n",
            "source.security.sasl_keytab: unknown key; did you mean 'sasl_keytab_path'?",
        ),
        (
            "  connection:\n    tcp_keep_alive: true\n",
            "source.connection.tcp_keep_alive: unknown key; did you mean 'tcp_keepalive'?",
        ),
        (
            "  topics:\n    exlude: ['__*']\n",
            "source.topics.exlude: unknown key; did you mean 'exclude'?",
        ),
    ],
)
def test_a_misspelt_cluster_key_names_its_full_path(tmp_path: Path, section: str, message: str) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(BASE.format(mode="backup", cluster="source").replace("storage:", section + "storage:"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: {message}"


def test_a_misspelt_restore_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, "restore:\n  produce_batch_sise: 100\n", mode="restore")
    assert str(info.value).endswith(
        "job.yaml: restore.produce_batch_sise: unknown key; did you mean 'produce_batch_size'?"
    )
    assert info.value.key == "restore.produce_batch_sise"


def test_a_misspelt_storage_key_of_the_original_tool(tmp_path: Path) -> None:
    storage = (
        "storage:\n  backend: azure\n  account_name: a\n  container_name: c\n  use_workload_identiy: true\n"
    )
    with pytest.raises(ConfigError) as info:
        load(tmp_path, "", storage=storage)
    assert str(info.value) == (
        f"{tmp_path / 'job.yaml'}: storage.use_workload_identiy: unknown key; "
        "did you mean 'use_workload_identity'?"
    )


def test_without_a_close_key_the_allowed_keys_are_listed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, "logging:\n  colour: true\n")
    assert str(info.value) == (
        f"{tmp_path / 'job.yaml'}: logging.colour: unknown key; the keys allowed here are: format, level"
    )


def test_closest_key() -> None:
    keys = ["segment_max_bytes", "segment_max_records", "segment_max_interval_ms"]
    assert closest("segment_max_byte", keys) == "segment_max_bytes"
    assert closest("SEGMENT-MAX-RECORDS", keys) == "segment_max_records"
    assert closest("zzz", keys) is None
    assert unknown_key_message("zzz", ["b", "a"]) == "unknown key; the keys allowed here are: a, b"
