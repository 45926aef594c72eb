"""Throw-away PKI for TLS tests: a CA, a server and client certificates, as PEM files.

Generated with :mod:`cryptography` in well under a second (EC P-256 keys), so
every test session gets fresh material and nothing secret is checked in.

The server certificate names ``127.0.0.1`` (IP SAN) and ``localhost`` (DNS SAN),
so clients can keep hostname verification on (librdkafka's default,
``ssl.endpoint.identification.algorithm=https``). A second, unrelated CA
signs a "rogue" client certificate, for tests where trust must fail.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["CertificateAuthority", "IssuedCertificate", "TestPki", "make_test_pki", "properties_pem"]

_VALIDITY = dt.timedelta(days=2)
_SKEW = dt.timedelta(minutes=5)  # tolerate a clock a little behind


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "libkb integration tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_pem(key: ec.EllipticCurvePrivateKey, password: str | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode())
        if password is not None
        else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class IssuedCertificate:
    """A leaf certificate and its key; ``key_password`` is set if ``key_path`` is encrypted."""

    cert_path: Path
    key_path: Path
    #: The leaf followed by its issuer (what a server presents).
    chain_path: Path
    key_password: str | None = field(default=None, repr=False)

    @property
    def cert_pem(self) -> str:
        return self.cert_path.read_text()

    @property
    def chain_pem(self) -> str:
        return self.chain_path.read_text()

    @property
    def key_pem(self) -> str:
        return self.key_path.read_text()


class CertificateAuthority:
    """A self-signed CA that issues server and client certificates into ``directory``."""

    def __init__(self, directory: Path, common_name: str) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.common_name = common_name
        self._key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(_name(common_name))
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _SKEW)
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        self.cert_path = directory / f"{_slug(common_name)}.crt"
        self.cert_path.write_bytes(_cert_pem(self.certificate))

    @property
    def cert_pem(self) -> str:
        return self.cert_path.read_text()

    def issue(
        self,
        common_name: str,
        *,
        server: bool = False,
        client: bool = False,
        hosts: tuple[str, ...] = (),
        key_password: str | None = None,
    ) -> IssuedCertificate:
        """A leaf certificate for ``hosts`` (IP addresses or DNS names)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        usages = [ExtendedKeyUsageOID.SERVER_AUTH] if server else []
        usages += [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _SKEW)
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=True,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False
            )
        )
        if usages:
            builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        if hosts:
            names: list[x509.GeneralName] = []
            for host in hosts:
                try:
                    names.append(x509.IPAddress(ipaddress.ip_address(host)))
                except ValueError:
                    names.append(x509.DNSName(host))
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
        slug = _slug(common_name)
        cert_path = self.directory / f"{slug}.crt"
        key_path = self.directory / f"{slug}.key"
        chain_path = self.directory / f"{slug}-chain.crt"
        cert_path.write_bytes(_cert_pem(cert))
        chain_path.write_bytes(_cert_pem(cert) + _cert_pem(self.certificate))
        key_path.write_bytes(_key_pem(key, key_password))
        key_path.chmod(0o600)
        return IssuedCertificate(cert_path, key_path, chain_path, key_password)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


@dataclass(frozen=True)
class TestPki:
    """Everything the TLS tests need, all PEM files under one directory."""

    __test__ = False  # not a pytest test class despite the name

    ca: CertificateAuthority
    server: IssuedCertificate
    #: Client certificate with an unencrypted key.
    client: IssuedCertificate
    #: Client certificate whose key is encrypted (``key_password``).
    client_encrypted: IssuedCertificate
    #: A CA the broker does not trust, and a client certificate it issued.
    rogue_ca: CertificateAuthority
    rogue_client: IssuedCertificate


def make_test_pki(directory: Path, *, key_password: str = "client-key-secret") -> TestPki:
    """A fresh CA with a server certificate for 127.0.0.1/localhost and client certificates."""
    ca = CertificateAuthority(directory, "libkb test CA")
    rogue_ca = CertificateAuthority(directory / "rogue", "libkb rogue CA")
    return TestPki(
        ca=ca,
        server=ca.issue("kafka broker", server=True, client=True, hosts=("127.0.0.1", "localhost")),
        client=ca.issue("libkb client", client=True),
        client_encrypted=ca.issue("libkb client encrypted", client=True, key_password=key_password),
        rogue_ca=rogue_ca,
        rogue_client=rogue_ca.issue("rogue client", client=True),
    )


def properties_pem(pem: str) -> str:
    """A PEM text as one ``server.properties`` value (newlines as ``\\n`` escapes).

    Kafka's inline ``ssl.keystore.key`` / ``ssl.keystore.certificate.chain``
    take PEM text; java.util.Properties turns ``\\n`` back into newlines.
    """
    return pem.strip().replace("\n", "\\n")
