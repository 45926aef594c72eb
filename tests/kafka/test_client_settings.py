"""Config keys become librdkafka properties: Kerberos, TCP settings, and a restore's batches."""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from libkb.config import ConnectionOptions, KafkaSecurity, RestoreOptions, SourceOptions
from libkb.errors import ConfigError
from libkb.kafka import kerberos
from libkb.kafka.clients import base_config, make_admin, make_consumer, make_producer
from libkb.kafka.producer import original_offset_headers, producer_batch_settings


def keytab(*entries: tuple[str, list[str]], version: int = 2, hole: bool = False) -> bytes:
    """An MIT keytab with one entry per (realm, components); a deleted entry first if ``hole``."""
    order = ">" if version == 2 else "<"
    out = bytearray([5, version])
    if hole:
        out += struct.pack(f"{order}i", -6) + b"\0" * 6
    for realm, names in entries:
        body = struct.pack(f"{order}H", len(names) + (1 if version == 1 else 0))
        for text in (realm, *names):
            body += struct.pack(f"{order}H", len(text)) + text.encode()
        body += struct.pack(f"{order}IIB", 1, 1700000000, 3) + struct.pack(f"{order}HH", 18, 2) + b"kk"
        out += struct.pack(f"{order}i", len(body)) + body
    return bytes(out)


def gssapi(**kwargs: str) -> SourceOptions:
    return SourceOptions(
        ("broker.example:9098",), security=KafkaSecurity("SASL_PLAINTEXT", "GSSAPI", **kwargs)
    )


@pytest.mark.parametrize(
    ("data", "principal"),
    [
        (keytab(("EXAMPLE.COM", ["backup", "host.example.com"])), "backup/host.example.com@EXAMPLE.COM"),
        (keytab(("R", ["alice"]), ("R", ["bob"])), "alice@R"),
        (keytab(("R", ["alice"]), hole=True), "alice@R"),
        (keytab(("R", ["svc", "h"]), version=1), "svc/h@R"),
    ],
)
def test_keytab_principal_is_the_first_entrys(tmp_path: Path, data: bytes, principal: str) -> None:
    path = tmp_path / "client.keytab"
    path.write_bytes(data)
    assert kerberos.keytab_principal(str(path)) == principal


def test_an_unreadable_keytab_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"sasl_keytab_path: cannot read the keytab"):
        kerberos.keytab_principal(str(tmp_path / "missing.keytab"))
    (tmp_path / "bad.keytab").write_bytes(b"\x05\x02\x00")
    with pytest.raises(ConfigError, match="is not a keytab with an entry; or set sasl_kerberos_principal"):
        kerberos.keytab_principal(str(tmp_path / "bad.keytab"))


def test_kerberos_keys_become_librdkafka_properties(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KRB5_CONFIG", raising=False)
    tab, krb5 = tmp_path / "c.keytab", tmp_path / "krb5.conf"
    tab.write_bytes(keytab(("EXAMPLE.COM", ["backup"])))
    krb5.write_text("[libdefaults]\n")
    options = gssapi(
        sasl_kerberos_service_name="kafka-dr",
        sasl_keytab_path=str(tab),
        sasl_krb5_config_path=str(krb5),
    )
    config = base_config(options)
    assert config["sasl.mechanism"] == "GSSAPI"
    assert config["sasl.kerberos.service.name"] == "kafka-dr"
    assert config["sasl.kerberos.keytab"] == str(tab)
    assert config["sasl.kerberos.principal"] == "backup@EXAMPLE.COM"  # the keytab's, as the original
    assert "sasl.kerberos.kinit.cmd" not in config  # librdkafka's own kinit line
    assert os.environ["KRB5_CONFIG"] == str(krb5)


def test_an_explicit_principal_and_kinit_command_win(tmp_path: Path) -> None:
    options = gssapi(
        sasl_keytab_path=str(tmp_path / "never-read.keytab"),
        sasl_kerberos_principal="svc/backup@EXAMPLE.COM",
        sasl_kerberos_kinit_cmd="/usr/local/bin/get-ticket",
    )
    config = base_config(options)
    assert config["sasl.kerberos.principal"] == "svc/backup@EXAMPLE.COM"
    assert config["sasl.kerberos.kinit.cmd"] == "/usr/local/bin/get-ticket"
    assert "sasl.kerberos.service.name" not in config  # librdkafka's default: kafka


def test_a_second_different_krb5_conf_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "other.conf"
    other.write_text("")
    monkeypatch.setenv("KRB5_CONFIG", "/etc/krb5.conf")
    with pytest.raises(ConfigError, match=r"KRB5_CONFIG is already /etc/krb5\.conf"):
        base_config(gssapi(sasl_krb5_config_path=str(other)))
    with pytest.raises(ConfigError, match="no such file"):
        base_config(gssapi(sasl_krb5_config_path=str(tmp_path / "absent.conf")))


def test_kerberos_keys_are_only_for_gssapi() -> None:
    security = KafkaSecurity("SASL_SSL", "PLAIN", "u", "p", sasl_keytab_path="/k")
    config = base_config(SourceOptions(("h:1",), security=security))
    assert not any(k.startswith("sasl.kerberos") for k in config)


def test_connection_settings() -> None:
    default = base_config(SourceOptions(("h:1",)))
    assert (default["socket.keepalive.enable"], default["socket.nagle.disable"]) == (True, True)
    off = SourceOptions(("h:1",), connection=ConnectionOptions(tcp_keepalive=False, tcp_nodelay=False))
    config = base_config(off)
    assert (config["socket.keepalive.enable"], config["socket.nagle.disable"]) == (False, False)
    passthrough = SourceOptions(("h:1",), client_config={"socket.nagle.disable": False})
    assert base_config(passthrough)["socket.nagle.disable"] is False  # client_config wins
    assert default["reconnect.backoff.ms"] == 20  # a job's start does not wait 50 ms for a reconnect
    slower = SourceOptions(("h:1",), client_config={"reconnect.backoff.ms": 100})
    assert base_config(slower)["reconnect.backoff.ms"] == 100


@pytest.mark.parametrize(
    "make",
    [make_admin, lambda o: make_consumer(o, {"group.id": "g"}), lambda o: make_producer(o, {})],
    ids=["admin", "consumer", "producer"],
)
def test_a_librdkafka_without_gssapi_says_what_to_install(make: Callable[[SourceOptions], object]) -> None:
    options = gssapi(sasl_kerberos_principal="p@R", sasl_kerberos_kinit_cmd="true")
    with pytest.raises(ConfigError) as info:
        make(options)
    assert info.value.key == "security.sasl_mechanism"
    assert "no Kerberos (GSSAPI) support" in str(info.value)
    assert "--no-binary confluent-kafka" in str(info.value)


def test_producer_batch_settings_count_records_and_bytes() -> None:
    assert producer_batch_settings(RestoreOptions()) == {
        "batch.num.messages": 100_000,
        "batch.size": 1_048_576,
        "request.timeout.ms": 30_000,
        "message.timeout.ms": 300_000,
    }
    options = RestoreOptions(
        produce_batch_size=1000, produce_batch_bytes=4096, produce_timeout_ms=5000, delivery_timeout_ms=9000
    )
    assert producer_batch_settings(options) == {
        "batch.num.messages": 1000,
        "batch.size": 4096,
        "request.timeout.ms": 5000,
        "message.timeout.ms": 9000,
    }


def test_a_producer_accepts_the_batch_settings() -> None:
    producer = make_producer(SourceOptions(("127.0.0.1:1",)), producer_batch_settings(RestoreOptions()))
    producer.flush(0)


def test_original_offset_headers_are_the_original_tools() -> None:
    assert original_offset_headers(-1, 1_700_000_000_000, 3) == [
        ("x-original-offset", b"\xff" * 8),
        ("x-original-timestamp", (1_700_000_000_000).to_bytes(8, "little")),
        ("x-source-partition", b"\x03\x00\x00\x00"),
    ]
