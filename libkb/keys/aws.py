"""AWS KMS as the key-encryption key, through botocore (the ``aws`` extra).

Each data key is sent to KMS ``Encrypt`` with the segment's key as its
encryption context, so a wrapped key only unwraps for its own segment; KMS
never gives its key out. Credentials come from botocore's own chain
(environment, profile, instance/pod role).
"""

from __future__ import annotations

from typing import Any

from libkb.errors import EncryptionKeyError, MissingKeyError, WrongKeyError

_CONTEXT = "libkb:segment"
#: KMS error codes meaning "this key did not wrap that": the wrong key, or altered bytes.
_WRONG = {"InvalidCiphertextException", "IncorrectKeyException"}
_MISSING = {"NotFoundException", "DisabledException", "KMSInvalidStateException", "AccessDeniedException"}


class AwsKmsKek:
    """A KMS key by id, alias or ARN; ``client``: a botocore KMS client (None: built from region/endpoint)."""

    kind = "aws-kms"

    def __init__(
        self, key_id: str, *, region: str | None = None, endpoint_url: str | None = None, client: Any = None
    ) -> None:
        self._key_id = key_id
        self._client = client if client is not None else _client(key_id, region, endpoint_url)

    @property
    def key_id(self) -> str:
        return self._key_id

    def __repr__(self) -> str:
        return f"AwsKmsKek(key_id={self._key_id!r})"

    def wrap(self, data_key: bytes, context: str) -> bytes:
        answer = self._call(
            context, "Encrypt", KeyId=self._key_id, Plaintext=data_key, EncryptionContext={_CONTEXT: context}
        )
        return bytes(answer["CiphertextBlob"])

    def unwrap(self, wrapped: bytes, context: str) -> bytes:
        answer = self._call(
            context,
            "Decrypt",
            KeyId=self._key_id,
            CiphertextBlob=wrapped,
            EncryptionContext={_CONTEXT: context},
        )
        return bytes(answer["Plaintext"])

    def _call(self, context: str, operation: str, **params: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        method = getattr(self._client, "encrypt" if operation == "Encrypt" else "decrypt")
        try:
            return method(**params)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "?")
            if code in _WRONG:
                raise WrongKeyError(
                    f"{context}: AWS KMS key {self._key_id!r} cannot unwrap its data key ({code}): another "
                    "key wrapped it, or the key object was altered"
                ) from None
            error = MissingKeyError if code in _MISSING else EncryptionKeyError
            raise error(f"{context}: AWS KMS key {self._key_id!r}: {operation} refused ({code})") from None
        except BotoCoreError as exc:
            raise EncryptionKeyError(
                f"{context}: AWS KMS key {self._key_id!r}: {operation} failed: {type(exc).__name__}"
            ) from None


def _client(key_id: str, region: str | None, endpoint_url: str | None) -> Any:
    try:
        import botocore.session
    except ImportError:
        raise EncryptionKeyError(
            f"key {key_id!r}: kms: aws needs botocore: pip install 'libkb[aws]'"
        ) from None
    session = botocore.session.get_session()
    region = region or session.get_config_variable("region") or _region_of(key_id)
    if not region:
        raise EncryptionKeyError(f"key {key_id!r}: no AWS region: set encryption.region or AWS_REGION")
    return session.create_client("kms", region_name=region, endpoint_url=endpoint_url)


def _region_of(key_id: str) -> str | None:
    """The region in a key ARN (``arn:aws:kms:REGION:...``), if it is one."""
    parts = key_id.split(":")
    return parts[3] if len(parts) > 3 and parts[0] == "arn" else None
