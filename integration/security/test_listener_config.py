"""``KafkaService`` extra listeners and the secure broker's settings, without starting a broker."""

from __future__ import annotations

from pathlib import Path

import pytest

from integration.security.broker import scram_format_args, secure_broker_properties, secure_kafka_service
from integration.services.kafka import KafkaService


def test_extra_listeners_get_their_own_ports_and_protocols() -> None:
    service = KafkaService({"x": "1"}, extra_listeners={"saslssl": "SASL_SSL", "MTLS": "SSL"})
    service.ports = service._allocate_ports()
    assert set(service.ports) == {"port", "controller_port", "listener_saslssl", "listener_mtls"}
    assert len(set(service.ports.values())) == 4
    props = service.server_properties(Path("/data"))
    ports = service.ports
    assert props["listeners"] == (
        f"PLAINTEXT://127.0.0.1:{ports['port']},CONTROLLER://127.0.0.1:{ports['controller_port']},"
        f"SASLSSL://127.0.0.1:{ports['listener_saslssl']},MTLS://127.0.0.1:{ports['listener_mtls']}"
    )
    assert props["advertised.listeners"] == (
        f"PLAINTEXT://127.0.0.1:{ports['port']},SASLSSL://127.0.0.1:{ports['listener_saslssl']},"
        f"MTLS://127.0.0.1:{ports['listener_mtls']}"
    )
    assert props["listener.security.protocol.map"].endswith(",SASLSSL:SASL_SSL,MTLS:SSL")
    assert props["inter.broker.listener.name"] == "PLAINTEXT"
    assert props["x"] == "1"
    assert service.listener_endpoint("saslssl").bootstrap_servers == f"127.0.0.1:{ports['listener_saslssl']}"
    with pytest.raises(KeyError):
        service.listener_endpoint("nope")


def test_without_extra_listeners_nothing_changes() -> None:
    service = KafkaService()
    assert set(service._allocate_ports()) == {"port", "controller_port"}
    assert service.format_args == []


@pytest.mark.parametrize("name", ["plaintext", "CONTROLLER"])
def test_harness_listener_names_are_reserved(name: str) -> None:
    with pytest.raises(ValueError, match="taken"):
        KafkaService(extra_listeners={name: "SSL"})


def test_secure_broker_settings(tmp_path: Path) -> None:
    service, pki = secure_kafka_service(tmp_path)
    props = secure_broker_properties(pki)
    assert props["listener.name.mtls.ssl.client.auth"] == "required"
    assert "\n" not in props["ssl.keystore.key"]  # one properties line, \n escapes inside
    assert props["ssl.keystore.key"].startswith("-----BEGIN PRIVATE KEY-----\\n")
    assert service.extra_properties == props
    assert scram_format_args() == service.format_args
    assert service.format_args[0] == "--add-scram"
