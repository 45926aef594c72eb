"""``--keys FILE``: the keyring of commands that take a path, not a job file (``validate``, ``rewrap``).

The file is a job file, or a YAML file holding only an ``encryption:``
section: either way the keys are named as a backup job names them.
"""

from __future__ import annotations

from libkb.config.encryption import EncryptionOptions, EncryptionSchema
from libkb.config.loader import expand_env, load_section, read_config_file
from libkb.errors import ConfigError
from libkb.keys import Keyring, keyring_from_config


def load_keyring(path: str | None) -> Keyring | None:
    """The keyring ``path``'s ``encryption`` section gives; None without a path."""
    if path is None:
        return None
    data = read_config_file(path)
    if not isinstance(data, dict) or "encryption" not in data:
        raise ConfigError(
            "has no encryption section (the keys: key_id with key_env, key_file or kms)", source=path
        )
    section = expand_env(data["encryption"], path="encryption", source=path)
    options: EncryptionOptions = load_section(EncryptionSchema, section, "encryption", path)
    return keyring_from_config(options)
