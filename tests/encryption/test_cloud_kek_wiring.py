"""Azure Key Vault and Google Cloud KMS key sources: the calls libkb makes on their official clients.

Wiring tests only (no emulator exists for either): a recording client in place
of the library's, checking the exact requests (algorithm, key name, the
segment bound as additional authenticated data) and that a refusal becomes a
libkb error naming the key and the segment. Never run against the real services.
"""

from __future__ import annotations

import importlib
import re
from types import SimpleNamespace
from typing import Any

import pytest

from libkb.config.encryption import KeySource
from libkb.errors import EncryptionKeyError, WrongKeyError
from libkb.keys.cloud import AzureKeyVaultKek, GcpKmsKek
from libkb.keys.keyring import build_kek

SEGMENT = "bk/topics/orders/partition=0/segment-00000000000000000000.kbs"
VAULT_KEY = "https://libkb.vault.azure.net/keys/backup-kek/0123456789abcdef"
GCP_KEY = "projects/p/locations/europe-west1/keyRings/libkb/cryptoKeys/backup-kek"


class RecordingVault:
    """A Key Vault ``CryptographyClient`` that 'wraps' by reversing bytes, and records each call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, bytes]] = []

    def wrap_key(self, algorithm: Any, key: bytes) -> Any:
        self.calls.append(("wrap_key", algorithm, key))
        return SimpleNamespace(encrypted_key=key[::-1], key_id=VAULT_KEY)

    def unwrap_key(self, algorithm: Any, encrypted_key: bytes) -> Any:
        self.calls.append(("unwrap_key", algorithm, encrypted_key))
        if encrypted_key.startswith(b"bad"):
            raise RuntimeError("(BadParameter) the ciphertext is invalid")
        return SimpleNamespace(key=encrypted_key[::-1])


class RecordingKms:
    """A Cloud KMS client keeping (plaintext, aad) per ciphertext, as the service does."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []

    def encrypt(self, request: dict[str, Any]) -> Any:
        self.requests.append(("encrypt", request))
        return SimpleNamespace(
            ciphertext=b"ct:" + request["additional_authenticated_data"] + b":" + request["plaintext"]
        )

    def decrypt(self, request: dict[str, Any]) -> Any:
        self.requests.append(("decrypt", request))
        prefix = b"ct:" + request["additional_authenticated_data"] + b":"
        if not request["ciphertext"].startswith(prefix):
            raise ValueError("400 Decryption failed: the ciphertext is invalid")
        return SimpleNamespace(plaintext=request["ciphertext"][len(prefix) :])


def test_azure_key_vault_wraps_with_rsa_oaep_256_and_names_the_key_when_it_refuses() -> None:
    vault = RecordingVault()
    kek = AzureKeyVaultKek(VAULT_KEY, client=vault)
    data_key = bytes(range(32))
    wrapped = kek.wrap(data_key, SEGMENT)
    assert kek.unwrap(wrapped, SEGMENT) == data_key
    assert [(c[0], c[1]) for c in vault.calls] == [
        ("wrap_key", "RSA-OAEP-256"),
        ("unwrap_key", "RSA-OAEP-256"),
    ]
    assert (kek.kind, kek.key_id, repr(kek)) == (
        "azure-keyvault",
        VAULT_KEY,
        f"AzureKeyVaultKek(key_id={VAULT_KEY!r})",
    )
    with pytest.raises(WrongKeyError, match=f"{SEGMENT}: Azure Key Vault key '{VAULT_KEY}' cannot unwrap"):
        kek.unwrap(b"bad" + wrapped, SEGMENT)


def test_gcp_kms_binds_the_segment_as_aad_and_a_moved_wrapped_key_does_not_unwrap() -> None:
    kms = RecordingKms()
    kek = GcpKmsKek(GCP_KEY, client=kms)
    data_key = bytes(range(32))
    wrapped = kek.wrap(data_key, SEGMENT)
    assert kms.requests[0] == (
        "encrypt",
        {"name": GCP_KEY, "plaintext": data_key, "additional_authenticated_data": SEGMENT.encode()},
    )
    assert kek.unwrap(wrapped, SEGMENT) == data_key
    other = SEGMENT.replace("partition=0", "partition=1")
    with pytest.raises(WrongKeyError, match=f"{other}: Cloud KMS key '{GCP_KEY}' cannot unwrap"):
        kek.unwrap(wrapped, other)


@pytest.mark.parametrize(
    ("kind", "package", "module"),
    [("azure", "azure-keys", "azure.keyvault.keys"), ("gcp", "gcp-keys", "google.cloud.kms")],
)
def test_a_cloud_key_without_its_library_says_which_extra_to_install(
    kind: str, package: str, module: str
) -> None:
    try:
        importlib.import_module(module)
    except ImportError:
        pass
    else:
        pytest.skip(f"{module} is installed here")
    with pytest.raises(EncryptionKeyError, match=re.escape(f"pip install 'libkb[{package}]'")):
        build_kek(KeySource(GCP_KEY if kind == "gcp" else VAULT_KEY, kind=kind))
