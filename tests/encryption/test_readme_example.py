"""README's encryption example is a config that works as written (the old key's file need not exist
until a segment it wrapped is read)."""

from __future__ import annotations

import base64
import dataclasses
import os
import re
from pathlib import Path

import pytest
import yaml

from libkb.config import parse_config
from libkb.config.encryption import EncryptionOptions
from libkb.storage import MemoryConfig, create_backend_from_config
from tests.fakes import FakeKafka
from tests.fakes.jobs import backup_config, backup_engine, restore_config, restore_engine, source_kafka

README = (Path(__file__).resolve().parents[2] / "README.rst").read_text(encoding="utf-8")


def readme_encryption() -> dict[str, object]:
    section = README[README.index("Encryption at rest\n------------------") :]
    block = re.search(r"\.\. code-block:: yaml\n\n((?:   .*\n|\n)+)", section)
    assert block is not None
    text = "\n".join(line[3:] for line in block.group(1).splitlines())
    data = yaml.safe_load(text)
    assert isinstance(data, dict) and list(data) == ["encryption"]
    return data


def test_the_readme_encryption_section_backs_up_and_restores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIBKB_KEK", base64.b64encode(os.urandom(32)).decode())
    base = {"backup_id": "bk", "storage": {"backend": "memory"}, "source": {"bootstrap_servers": "k:9092"}}
    options = parse_config({**base, **readme_encryption()}).encryption
    assert isinstance(options, EncryptionOptions) and options.old_keys[0].key_id == "kek-2026-06"
    backend = create_backend_from_config(MemoryConfig())
    backup_engine(source_kafka(), backend, dataclasses.replace(backup_config(), encryption=options)).run()
    restored = restore_engine(
        FakeKafka(), backend, dataclasses.replace(restore_config(), encryption=options)
    ).run()
    assert restored.status == "complete" and restored.records > 0
