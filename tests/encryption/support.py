"""Keys and configs the encryption tests share."""

from __future__ import annotations

import base64
import dataclasses
import os
from pathlib import Path

import pytest

from libkb.config import JobConfig
from libkb.config.encryption import EncryptionOptions, KeySource
from libkb.keys import Keyring

KEY_ENV = "LIBKB_TEST_KEK"


def new_key() -> bytes:
    return os.urandom(32)


def env_key(
    monkeypatch: pytest.MonkeyPatch, key_id: str, secret: bytes, variable: str = KEY_ENV
) -> KeySource:
    """A local key in an environment variable (base64), as the job file's ``key_env`` names it."""
    monkeypatch.setenv(variable, base64.b64encode(secret).decode())
    return KeySource(key_id, env=variable)


def file_key(tmp_path: Path, key_id: str, secret: bytes, *, encoded: bool = True) -> KeySource:
    """A local key in a file: its base64 (a Kubernetes Secret's data), or the 32 bytes."""
    path = tmp_path / f"{key_id}.key"
    path.write_bytes(base64.b64encode(secret) + b"\n" if encoded else secret)
    return KeySource(key_id, file=str(path))


def encrypted(config: JobConfig, key: KeySource, *old: KeySource) -> JobConfig:
    return dataclasses.replace(config, encryption=EncryptionOptions(key, tuple(old)))


def keyring(key: KeySource, *old: KeySource) -> Keyring:
    return Keyring((key, *old))
