"""``${NAME}`` in job files (docs/config.rst): substituted, unset is a clear error, secrets stay hidden."""

from __future__ import annotations

from pathlib import Path

import pytest

import libkb
from libkb.config import expand_env, parse_config
from libkb.errors import ConfigError
from libkb.storage import S3Config

SECRET = "s3cr3t-Zq9-never-print-me"
PASSWORD = "kafka-pw-Xy7-never-print-me"

JOB = """\
backup_id: nightly-${KB_TEST_ENV}
source:
  bootstrap_servers: ["${KB_TEST_HOST}:9092", "broker-2:${KB_TEST_PORT:-9093}"]
  topics:
    include: ["orders-*"]
  security:
    security_protocol: SASL_SSL
    sasl_mechanism: PLAIN
    sasl_username: backup
    sasl_password: ${KB_TEST_PASSWORD}
  client_config:
    ssl.keystore.password: ${KB_TEST_PASSWORD}
storage:
  backend: s3
  bucket: backups-${KB_TEST_ENV}
  endpoint: http://minio.local:9000
  access_key: backup
  secret_key: ${KB_TEST_SECRET}
backup:
  rate_limit_bytes_per_sec: ${KB_TEST_RATE}
"""


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Every variable JOB uses set, and the optional one unset (so its default applies)."""
    for name, value in {
        "KB_TEST_ENV": "prod",
        "KB_TEST_HOST": "broker-1",
        "KB_TEST_PASSWORD": PASSWORD,
        "KB_TEST_SECRET": SECRET,
        "KB_TEST_RATE": "1048576",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("KB_TEST_PORT", raising=False)
    return monkeypatch


def write(tmp_path: Path, text: str = JOB) -> Path:
    """The job file on disk, so errors name a real path as users see it."""
    path = tmp_path / "job.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_set_variables_are_substituted_everywhere(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    job = libkb.load_config(write(tmp_path))
    assert job.backup_id == "nightly-prod"  # inside a longer string
    assert job.source is not None
    assert job.source.bootstrap_servers == ("broker-1:9092", "broker-2:9093")  # in a list; a default
    assert job.source.security.sasl_password == PASSWORD
    assert job.source.client_config["ssl.keystore.password"] == PASSWORD
    assert isinstance(job.storage, S3Config)
    assert job.storage.secret_key == SECRET  # nested key storage.secret_key
    assert job.storage.bucket == "backups-prod"
    assert job.backup.rate_limit_bytes_per_sec == 1048576  # a whole value, then validated as an int


def test_a_set_variable_wins_over_its_default(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env.setenv("KB_TEST_PORT", "19093")
    job = libkb.load_config(write(tmp_path))
    assert job.source is not None and job.source.bootstrap_servers[1] == "broker-2:19093"


def test_a_default_also_covers_a_variable_set_but_empty(env: pytest.MonkeyPatch) -> None:
    """As ``${VAR:-default}`` in a shell; without a default, empty stays empty."""
    env.setenv("KB_TEST_EMPTY", "")
    assert expand_env("${KB_TEST_EMPTY:-fallback}") == "fallback"
    assert expand_env("x${KB_TEST_EMPTY}y") == "xy"


@pytest.mark.parametrize(
    ("key", "variable"),
    [("storage.secret_key", "KB_TEST_SECRET"), ("source.bootstrap_servers[0]", "KB_TEST_HOST")],
)
def test_an_unset_variable_is_an_error_naming_it_the_key_and_the_file(
    env: pytest.MonkeyPatch, tmp_path: Path, key: str, variable: str
) -> None:
    env.delenv(variable)
    path = write(tmp_path)
    with pytest.raises(ConfigError) as raised:
        libkb.load_config(path)
    error = raised.value
    assert error.key == key and error.source == str(path)
    message = str(error)
    assert variable in message and key in message and str(path) in message
    assert "is not set" in message


def test_an_unset_variable_in_a_longer_string_names_the_variable(env: pytest.MonkeyPatch) -> None:
    env.delenv("KB_TEST_ENV")
    with pytest.raises(
        ConfigError, match=r"job\.yaml: backup_id: environment variable KB_TEST_ENV is not set"
    ):
        parse_config(
            {"backup_id": "nightly-${KB_TEST_ENV}", "storage": {"backend": "memory"}}, source="job.yaml"
        )


@pytest.mark.parametrize(
    "literal",
    ["$KB_TEST_ENV", "price: $5", "a$b", "$", "$$", "${", "${not closed", "{KB_TEST_ENV}", "${1ABC}"],
)
def test_a_dollar_that_is_not_a_variable_reference_is_left_alone(
    env: pytest.MonkeyPatch, literal: str
) -> None:
    """Only ``${NAME}`` is a reference, so passwords and patterns holding ``$`` pass through."""
    assert expand_env({"storage": {"secret_key": literal}}) == {"storage": {"secret_key": literal}}


def test_a_substituted_value_is_not_expanded_again(env: pytest.MonkeyPatch) -> None:
    """A secret that happens to contain ``${...}`` is taken verbatim (and cannot read other variables)."""
    env.setenv("KB_TEST_TRICKY", "p${KB_TEST_SECRET}w")
    assert expand_env("${KB_TEST_TRICKY}") == "p${KB_TEST_SECRET}w"


def test_non_string_values_and_keys_are_untouched(env: pytest.MonkeyPatch) -> None:
    data = {"${KB_TEST_ENV}": [1, 2.5, True, None, {"n": "${KB_TEST_ENV}"}]}
    assert expand_env(data) == {"${KB_TEST_ENV}": [1, 2.5, True, None, {"n": "prod"}]}


def test_secrets_never_appear_in_repr(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    job = libkb.load_config(write(tmp_path))
    for shown in (repr(job), str(job), repr(job.storage), repr(job.source)):
        assert SECRET not in shown and PASSWORD not in shown


def test_secrets_never_appear_in_error_messages(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Errors elsewhere in a file holding expanded secrets must not echo them."""
    # an unset variable next to a set secret in the same value
    text = JOB.replace("secret_key: ${KB_TEST_SECRET}", "secret_key: ${KB_TEST_SECRET}${KB_TEST_UNSET}")
    env.delenv("KB_TEST_UNSET", raising=False)
    # ... and validation errors after expansion, in and around the secret-bearing keys
    broken = [
        text,
        JOB.replace("  bucket: backups-${KB_TEST_ENV}\n", "  bucket: b\n  bogus: ${KB_TEST_SECRET}\n"),
        JOB.replace("sasl_username: backup", "sasl_username: ''"),
        JOB.replace(
            "rate_limit_bytes_per_sec: ${KB_TEST_RATE}", "rate_limit_bytes_per_sec: ${KB_TEST_SECRET}"
        ),
        JOB + "unknown_top_level: ${KB_TEST_PASSWORD}\n",
    ]
    for i, body in enumerate(broken):
        path = tmp_path / f"job-{i}.yaml"
        path.write_text(body, encoding="utf-8")
        with pytest.raises(ConfigError) as raised:
            libkb.load_config(path)
        shown = f"{raised.value} {raised.value!r} {raised.value.key} {raised.value.source}"
        assert SECRET not in shown and PASSWORD not in shown, shown
