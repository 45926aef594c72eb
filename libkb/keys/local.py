"""A local KEK: 32 bytes from an environment variable (base64) or a file (raw, or base64).

The key wraps each data key with AES-256-GCM (the ``cryptography``
package), the segment's key as associated data.
"""

from __future__ import annotations

import base64
import binascii
import os

from libkb.errors import EncryptionKeyError, MissingKeyError, WrongKeyError

_LABEL = b"libkb-wrap\x00"
_NONCE = 12


class LocalKek:
    """AES-256-GCM key wrapping with a key the user holds; repr shows the id alone."""

    kind = "local"

    def __init__(self, key_id: str, secret: bytes) -> None:
        if len(secret) != 32:
            raise EncryptionKeyError(f"key {key_id!r}: a local key is 32 bytes, this one is {len(secret)}")
        # Here, not at the top: every run loads this module, only one with keys needs cryptography.
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._key_id = key_id
        self._aead = AESGCM(secret)

    @property
    def key_id(self) -> str:
        return self._key_id

    def __repr__(self) -> str:
        return f"LocalKek(key_id={self._key_id!r})"

    @classmethod
    def from_env(cls, key_id: str, variable: str) -> LocalKek:
        text = os.environ.get(variable)
        if not text:
            raise MissingKeyError(
                f"key {key_id!r}: environment variable {variable} is not set (it must hold the key in base64)"
            )
        return cls(key_id, _decode(key_id, f"environment variable {variable}", text.encode()))

    @classmethod
    def from_file(cls, key_id: str, path: str) -> LocalKek:
        try:
            with open(path, "rb") as handle:
                data = handle.read(4096)
        except FileNotFoundError:
            raise MissingKeyError(f"key {key_id!r}: no key file {path}") from None
        except OSError as exc:
            raise EncryptionKeyError(f"key {key_id!r}: cannot read key file {path}: {exc.strerror}") from None
        if len(data) == 32:
            return cls(key_id, data)
        return cls(key_id, _decode(key_id, f"key file {path}", data))

    def wrap(self, data_key: bytes, context: str) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, data_key, _LABEL + context.encode())

    def unwrap(self, wrapped: bytes, context: str) -> bytes:
        from cryptography.exceptions import InvalidTag  # loaded with the key's AESGCM

        try:
            if len(wrapped) <= _NONCE:
                raise InvalidTag()
            return self._aead.decrypt(wrapped[:_NONCE], wrapped[_NONCE:], _LABEL + context.encode())
        except InvalidTag:
            raise WrongKeyError(
                f"{context}: key {self._key_id!r} cannot unwrap its data key: the key given under that id "
                "is not the one that wrapped it, or the key object was altered"
            ) from None


def _decode(key_id: str, where: str, text: bytes) -> bytes:
    try:
        secret = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise EncryptionKeyError(f"key {key_id!r}: {where} does not hold base64 (of 32 bytes)") from None
    if len(secret) != 32:
        raise EncryptionKeyError(f"key {key_id!r}: {where} holds {len(secret)} bytes, not 32 (AES-256)")
    return secret
