"""Azure Key Vault and Google Cloud KMS as key-encryption keys, through their official libraries.

Optional extras (``libkb[azure-keys]``, ``libkb[gcp-keys]``). Azure Key Vault
wraps with RSA-OAEP-256, which binds no context; the data key's own block
authentication still ties every block to its segment. Cloud KMS binds the
segment's key as additional authenticated data.
"""

from __future__ import annotations

from typing import Any

from libkb.errors import EncryptionKeyError, WrongKeyError


class AzureKeyVaultKek:
    """A Key Vault key by its URL (``https://VAULT.vault.azure.net/keys/NAME[/VERSION]``)."""

    kind = "azure-keyvault"
    algorithm = "RSA-OAEP-256"

    def __init__(self, key_id: str, *, client: Any = None) -> None:
        self._key_id = key_id
        self._client = client if client is not None else _azure_client(key_id)

    @property
    def key_id(self) -> str:
        return self._key_id

    def __repr__(self) -> str:
        return f"AzureKeyVaultKek(key_id={self._key_id!r})"

    def wrap(self, data_key: bytes, context: str) -> bytes:
        try:
            return bytes(self._client.wrap_key(self.algorithm, data_key).encrypted_key)
        except Exception as exc:
            raise EncryptionKeyError(
                f"{context}: Azure Key Vault key {self._key_id!r}: wrap failed: {type(exc).__name__}"
            ) from None

    def unwrap(self, wrapped: bytes, context: str) -> bytes:
        try:
            return bytes(self._client.unwrap_key(self.algorithm, wrapped).key)
        except Exception as exc:
            raise WrongKeyError(
                f"{context}: Azure Key Vault key {self._key_id!r} cannot unwrap its data key "
                f"({type(exc).__name__})"
            ) from None


class GcpKmsKek:
    """A Cloud KMS key by name (``projects/P/locations/L/keyRings/R/cryptoKeys/K``)."""

    kind = "gcp-kms"

    def __init__(self, key_id: str, *, client: Any = None) -> None:
        self._key_id = key_id
        self._client = client if client is not None else _gcp_client(key_id)

    @property
    def key_id(self) -> str:
        return self._key_id

    def __repr__(self) -> str:
        return f"GcpKmsKek(key_id={self._key_id!r})"

    def wrap(self, data_key: bytes, context: str) -> bytes:
        request = {
            "name": self._key_id,
            "plaintext": data_key,
            "additional_authenticated_data": context.encode(),
        }
        try:
            return bytes(self._client.encrypt(request=request).ciphertext)
        except Exception as exc:
            raise EncryptionKeyError(
                f"{context}: Cloud KMS key {self._key_id!r}: encrypt failed: {type(exc).__name__}"
            ) from None

    def unwrap(self, wrapped: bytes, context: str) -> bytes:
        request = {
            "name": self._key_id,
            "ciphertext": wrapped,
            "additional_authenticated_data": context.encode(),
        }
        try:
            return bytes(self._client.decrypt(request=request).plaintext)
        except Exception as exc:
            raise WrongKeyError(
                f"{context}: Cloud KMS key {self._key_id!r} cannot unwrap its data key ({type(exc).__name__})"
            ) from None


def _azure_client(key_id: str) -> Any:
    try:
        from azure.identity import DefaultAzureCredential
        from azure.keyvault.keys.crypto import CryptographyClient
    except ImportError:
        raise EncryptionKeyError(
            f"key {key_id!r}: kms: azure needs azure-keyvault-keys and azure-identity: "
            "pip install 'libkb[azure-keys]'"
        ) from None
    return CryptographyClient(key_id, credential=DefaultAzureCredential())


def _gcp_client(key_id: str) -> Any:
    try:
        from google.cloud import kms
    except ImportError:
        raise EncryptionKeyError(
            f"key {key_id!r}: kms: gcp needs google-cloud-kms: pip install 'libkb[gcp-keys]'"
        ) from None
    return kms.KeyManagementServiceClient()
