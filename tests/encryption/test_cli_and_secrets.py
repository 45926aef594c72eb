"""What a user sees of an encrypted backup: the read-only commands without the key, one-line key
errors naming the key id, config errors; and the key's bytes nowhere (output, logs, reprs, errors,
metrics, stored JSON)."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client import generate_latest

from libkb.backup.envelope import Envelope
from libkb.cli.app import main
from libkb.config import parse_config
from libkb.errors import ConfigError, WrongKeyError
from libkb.format.encryption import DataKey
from libkb.keys import LocalKek
from libkb.storage import FilesystemConfig, create_backend_from_config
from tests.encryption.support import encrypted, env_key, file_key, keyring, new_key
from tests.fakes.jobs import BACKUP_ID, backup_config, backup_engine, source_kafka


@pytest.fixture
def cli_logging() -> Iterator[None]:
    from libkb.cli.logs import unconfigure

    yield None
    unconfigure()


def test_list_describe_and_validate_need_no_key_and_deep_validate_names_the_missing_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], cli_logging: object
) -> None:
    path = str(tmp_path / "store")
    backend = create_backend_from_config(FilesystemConfig(path))
    backup_engine(
        source_kafka(), backend, encrypted(backup_config(), env_key(monkeypatch, "kek-a", new_key()))
    ).run()
    monkeypatch.delenv("LIBKB_TEST_KEK")

    assert main(["list", "--path", path]) == 0
    assert BACKUP_ID in capsys.readouterr().out
    assert main(["describe", "--path", path, "--backup-id", BACKUP_ID]) == 0
    out = capsys.readouterr().out
    assert "Encryption:" in out and "segments encrypted (AES-256-GCM)" in out
    assert main(["describe", "--path", path, "--backup-id", BACKUP_ID, "--format", "json"]) == 0
    described = json.loads(capsys.readouterr().out)
    assert described["encrypted_segments"] == described["segments"] > 0
    assert main(["validate", "--path", path, "--backup-id", BACKUP_ID]) == 0
    capsys.readouterr()

    assert main(["validate", "--path", path, "--backup-id", BACKUP_ID, "--deep"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "encrypted with key 'kek-a'" in err and "encryption.old_keys" in err


def test_a_wrong_key_is_one_line_naming_its_id_and_no_key_byte_is_ever_shown(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    cli_logging: object,
) -> None:
    path = str(tmp_path / "store")
    backend = create_backend_from_config(FilesystemConfig(path))
    secret, wrong = new_key(), new_key()
    key = env_key(monkeypatch, "kek-a", secret)
    config = encrypted(backup_config(), key)
    engine = backup_engine(source_kafka(), backend, config)
    with caplog.at_level(logging.DEBUG):
        engine.run()
    wrong_file = file_key(tmp_path, "kek-a", wrong)
    keys = tmp_path / "keys.yaml"
    keys.write_text(yaml.safe_dump({"encryption": {"key_id": "kek-a", "key_file": wrong_file.file}}))
    code = main(["-vv", "validate", "--path", path, "--backup-id", BACKUP_ID, "--deep", "--keys", str(keys)])
    out, err = capsys.readouterr()
    assert code == 1 and "key 'kek-a' cannot unwrap" in err

    shown = [
        out, err, caplog.text, repr(config), repr(engine.config), str(config),
        generate_latest(engine.metrics.registry).decode(),
        repr(keyring(key)), repr(LocalKek("kek-a", secret)), repr(DataKey(secret)),
        repr(Envelope(backend, BACKUP_ID, keyring(key))),
    ]  # fmt: skip
    stored = b"".join(backend.get(k) for k in backend.list(""))
    for s in (secret, wrong):
        for form in (s.hex(), base64.b64encode(s).decode(), repr(s)):
            assert all(form not in text for text in shown)
            assert form.encode() not in stored
        assert s not in stored

    with pytest.raises(WrongKeyError) as raised:
        LocalKek("kek-a", wrong).unwrap(LocalKek("kek-a", secret).wrap(new_key(), "seg"), "seg")
    assert base64.b64encode(wrong).decode() not in str(raised.value) and "'kek-a'" in str(raised.value)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"key_id": "k"}, "encryption.key_id: give exactly one of key_env"),
        ({"key_id": "k", "key_env": "A", "key_file": "/f"}, "encryption.key_file: give exactly one"),
        ({"key_id": "k", "kms": "vault"}, "encryption.kms: "),
        (
            {"key_id": "k", "key_env": "A", "region": "eu-west-1"},
            "encryption.region: applies to kms: aws only",
        ),
        ({"key_id": "k", "key_env": "A", "old_keys": [{"key_id": "k", "key_file": "/f"}]}, "given twice"),
        ({"key_id": "k", "key_env": "A", "old_key": []}, "encryption.old_key: "),
    ],
)
def test_encryption_config_errors_name_the_key(section: dict[str, object], message: str) -> None:
    data = {"backup_id": "b", "storage": {"backend": "memory"}, "source": {"bootstrap_servers": "k:9092"}}
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        parse_config({**data, "encryption": section}, source="job.yaml")


def test_a_local_key_of_the_wrong_size_or_not_base64_is_refused_naming_where_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHORT", base64.b64encode(b"x" * 16).decode())
    with pytest.raises(Exception, match="'k': environment variable SHORT holds 16 bytes, not 32"):
        LocalKek.from_env("k", "SHORT")
    (tmp_path / "bad").write_text("not base64 at all!")
    with pytest.raises(Exception, match=f"'k': key file {tmp_path / 'bad'} does not hold base64"):
        LocalKek.from_file("k", str(tmp_path / "bad"))
    with pytest.raises(Exception, match="'k': environment variable UNSET is not set"):
        LocalKek.from_env("k", "UNSET")
