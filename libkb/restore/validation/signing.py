"""Detached ECDSA P-256 / SHA-256 signatures of evidence reports, in the original tool's ``.sig`` layout.

The signature covers the exact bytes of the stored JSON report; the ``.sig``
text names the algorithm, the report id, the SHA-256 of those bytes and the
signature (base64 of the raw 64-byte ``r || s``), so a report signed by either
tool verifies with either. Needs the ``cryptography`` package
(``pip install 'libkb[signing]'``), imported only when a key is used.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

from libkb.errors import ConfigError, LibkbError

ALGORITHM = "ECDSA-P256-SHA256"
_BEGIN = "-----BEGIN KAFKA BACKUP EVIDENCE SIGNATURE-----"
_END = "-----END KAFKA BACKUP EVIDENCE SIGNATURE-----"


class SignatureError(LibkbError, ValueError):
    """A signature file or key cannot be used."""


@dataclass(frozen=True, slots=True)
class Signature:
    algorithm: str
    report_id: str
    report_sha256: str
    signature: str  # base64 of r || s

    def to_text(self) -> str:
        return "\n".join(
            [
                _BEGIN,
                f"Algorithm: {self.algorithm}",
                f"Report-ID: {self.report_id}",
                f"Report-SHA256: {self.report_sha256}",
                f"Signature: {self.signature}",
                _END,
                "",
            ]
        )

    @classmethod
    def from_text(cls, text: str, *, name: str = "signature") -> Signature:
        fields: dict[str, str] = {}
        for line in text.splitlines():
            key, sep, value = line.strip().partition(": ")
            if sep:
                fields[key] = value.strip()
        if not fields.get("Signature"):
            raise SignatureError(f"{name}: not a signature file (no 'Signature:' line)")
        return cls(
            fields.get("Algorithm", ""),
            fields.get("Report-ID", ""),
            fields.get("Report-SHA256", ""),
            fields["Signature"],
        )


def sign(data: bytes, private_key_pem: bytes, report_id: str, *, key_name: str = "private key") -> Signature:
    """Sign ``data`` with a PEM P-256 private key (PKCS#8 or SEC1)."""
    ec, hashes, serialization, utils = _crypto()
    try:
        key = serialization.load_pem_private_key(private_key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"cannot load the signing key: {exc}", key=key_name) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ConfigError("the signing key must be an ECDSA P-256 (prime256v1) private key", key=key_name)
    r, s = utils.decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return Signature(ALGORITHM, report_id, hashlib.sha256(data).hexdigest(), base64.b64encode(raw).decode())


def verify(data: bytes, signature: Signature, public_key_pem: bytes) -> bool:
    """Whether ``signature`` is a valid signature of ``data`` by the PEM P-256 public key."""
    ec, hashes, serialization, utils = _crypto()
    try:
        key = serialization.load_pem_public_key(public_key_pem)
    except (ValueError, TypeError) as exc:
        raise SignatureError(f"cannot load the public key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise SignatureError("the public key must be an ECDSA P-256 (prime256v1) key")
    try:
        raw = base64.b64decode(signature.signature, validate=True)
    except ValueError:
        raise SignatureError("the signature is not base64") from None
    if len(raw) != 64:
        raise SignatureError(f"the signature has {len(raw)} bytes, not 64 (r || s of P-256)")
    der = utils.encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    try:
        key.verify(der, data, ec.ECDSA(hashes.SHA256()))
    except Exception as exc:  # cryptography's InvalidSignature
        if type(exc).__name__ == "InvalidSignature":
            return False
        raise
    return True


def public_key_fingerprint(private_key_pem: bytes) -> str:
    """``sha256:`` and the hex SHA-256 of the public key (DER), naming the signer in the report."""
    _, _, serialization, _ = _crypto()
    key: Any = serialization.load_pem_private_key(private_key_pem, password=None)
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(der).hexdigest()


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec, utils
    except ImportError:
        raise ConfigError(
            "signing evidence needs the cryptography package: pip install 'libkb[signing]'",
            key="evidence.signing",
        ) from None
    return ec, hashes, serialization, utils
