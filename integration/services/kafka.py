"""Apache Kafka (KRaft, single node) from Maven Central jars, plus topic helpers.

Why jars via ``mvn``: no Docker and no Kafka distribution download here, but
Maven Central is reachable, and ``dependency:copy-dependencies`` gives the
exact broker classpath in ~10 s with a warm ``~/.m2``.
"""

from __future__ import annotations

import base64
import logging
import os
import shutil
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from .base import LocalProcessService, ServiceError, cached_install, free_ports, run_logged, wait_until
from .endpoints import KafkaEndpoint

__all__ = [
    "KAFKA_TEST_PROPERTIES",
    "KAFKA_VERSION",
    "BrokerFactory",
    "KafkaService",
    "TopicFactory",
    "create_kafka_topic",
    "delete_kafka_topic",
    "kafka_admin",
    "kafka_tools",
    "kraft_properties",
    "probe_kafka",
    "wait_topic_ready",
]

KAFKA_VERSION = "4.1.1"
LOG4J_VERSION = "2.24.3"
SLF4J_VERSION = "2.0.16"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"

_log = logging.getLogger("libkb.integration.kafka")

KAFKA_TEST_PROPERTIES: dict[str, str] = {
    # Single node: every internal topic must live with one replica.
    "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "1",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "transaction.state.log.num.partitions": "1",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    "default.replication.factor": "1",
    "min.insync.replicas": "1",
    "num.partitions": "1",
    # Tests create their topics explicitly (kafka_topic_factory), so a typo'd
    # topic fails loudly instead of being created behind the test's back.
    "auto.create.topics.enable": "false",
    "delete.topic.enable": "true",
    "group.initial.rebalance.delay.ms": "0",
    # Let compaction and retention tests observe effects within seconds.
    "log.cleaner.backoff.ms": "1000",
    "log.cleaner.threads": "1",
    "log.cleaner.dedupe.buffer.size": "8388608",
    "log.retention.check.interval.ms": "1000",
    "log.segment.delete.delay.ms": "1000",
    "file.delete.delay.ms": "1000",
}
"""Broker settings suited to tests; shared by the local and docker providers."""

_POM = """<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>libkb.integration</groupId>
  <artifactId>kafka-broker-runtime</artifactId>
  <version>{kafka}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{kafka}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId>
      <version>{log4j}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId>
      <version>{log4j}</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId>
      <version>{slf4j}</version>
    </dependency>
  </dependencies>
</project>
"""

_LOG4J2_YAML = """Configuration:
  status: warn
  Appenders:
    Console:
      name: STDOUT
      target: SYSTEM_OUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: org.apache.kafka.clients
        level: WARN
      - name: kafka.request.logger
        level: WARN
      - name: org.apache.kafka.common.utils.AppInfoParser
        level: WARN
"""


_TOOLS_POM = """<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>libkb.integration</groupId>
  <artifactId>kafka-tools-runtime</artifactId>
  <version>{kafka}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId>
      <version>{kafka}</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId><artifactId>slf4j-nop</artifactId>
      <version>{slf4j}</version>
    </dependency>
  </dependencies>
</project>
"""

# What Apache Kafka's bin/kafka-consumer-groups.sh runs (through bin/kafka-run-class.sh):
# the same main class with the same arguments, on the tools' classpath.
_CONSUMER_GROUPS_SH = """#!/bin/sh
home="$(cd "$(dirname "$0")/.." && pwd)"
exec "${{JAVA:-{java}}}" -Xmx256m -cp "$home/libs/*" \\
  org.apache.kafka.tools.consumer.group.ConsumerGroupCommand "$@"
"""


def kafka_tools() -> Path:
    """Kafka's command-line tools for the test broker's version: ``bin/kafka-consumer-groups.sh``.

    The broker install holds the server jars only (no distribution can be
    downloaded here), so the tools come from Maven Central the same way,
    cached, with the launcher script the distribution ships.
    """

    def install(target: Path, log: Path) -> None:
        mvn = shutil.which("mvn")
        if not mvn:
            raise ServiceError("mvn not found: Maven is needed to fetch the Kafka tools jars")
        # kafka-tools brings slf4j-api 1.7: a binding of that line keeps SLF4J's warnings off stderr.
        (target / "pom.xml").write_text(_TOOLS_POM.format(kafka=KAFKA_VERSION, slf4j="1.7.36"))
        run_logged(
            [
                mvn,
                "-q",
                "-B",
                f"{DEPENDENCY_PLUGIN}:copy-dependencies",
                "-DoutputDirectory=libs",
                "-DincludeScope=runtime",
            ],
            log,
            cwd=target,
            timeout=900,
        )
        script = target / "bin" / "kafka-consumer-groups.sh"
        script.parent.mkdir()
        script.write_text(_CONSUMER_GROUPS_SH.format(java=_java()))
        script.chmod(0o755)

    return cached_install("kafka-tools", KAFKA_VERSION, install)


class TopicFactory(Protocol):
    """Type of the ``kafka_topic_factory`` fixture."""

    def __call__(
        self,
        partitions: int = 1,
        config: dict[str, str] | None = None,
        name: str | None = None,
    ) -> str: ...


class BrokerFactory(Protocol):
    """Type of the ``kafka_broker_factory`` fixture."""

    def __call__(self, extra_properties: Mapping[str, str]) -> KafkaEndpoint: ...


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if not found:
        raise ServiceError("java not found (Kafka 4 needs Java 17+ on PATH or JAVA_HOME)")
    return found


def _cluster_id() -> str:
    """A Kafka cluster id (base64url UUID) as ``StorageTool random-uuid`` makes.

    Generated here to save a JVM start; ids starting with '-' are avoided
    for the same reason Kafka avoids them (they look like CLI options).
    """
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def kafka_admin(endpoint: KafkaEndpoint, **config: Any) -> Any:
    """An ``AdminClient`` for ``endpoint`` that logs through :mod:`logging`."""
    from confluent_kafka.admin import AdminClient

    settings: dict[str, Any] = {
        "bootstrap.servers": endpoint.bootstrap_servers,
        "socket.connection.setup.timeout.ms": 5000,
        "logger": _log,
    }
    settings.update(config)
    return AdminClient(settings)


def probe_kafka(endpoint: KafkaEndpoint, timeout: float = 3.0) -> None:
    """Raise unless a broker answers a metadata request."""
    metadata = kafka_admin(endpoint).list_topics(timeout=timeout)
    if not metadata.brokers:
        raise ServiceError("metadata response lists no broker")


def wait_topic_ready(endpoint: KafkaEndpoint, topic: str, timeout: float = 30.0) -> None:
    """Wait until every partition of ``topic`` has a leader (i.e. is usable)."""
    admin = kafka_admin(endpoint)

    def check() -> None:
        meta = admin.list_topics(topic=topic, timeout=5).topics.get(topic)
        if meta is None or meta.error is not None or not meta.partitions:
            raise ServiceError(f"topic {topic} not visible yet: {meta and meta.error}")
        for partition in meta.partitions.values():
            if partition.error is not None or partition.leader < 0:
                raise ServiceError(f"partition {partition.id} of {topic} has no leader yet")

    wait_until(check, timeout=timeout, what=f"topic {topic}")


def create_kafka_topic(
    endpoint: KafkaEndpoint,
    name: str,
    partitions: int = 1,
    config: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> str:
    """Create ``name`` with replication factor 1 and wait until it is usable."""
    from confluent_kafka.cimpl import NewTopic

    topic = NewTopic(name, num_partitions=partitions, replication_factor=1, config=dict(config or {}))
    admin = kafka_admin(endpoint)  # keep a reference: the futures die with it
    futures = admin.create_topics([topic], operation_timeout=timeout)
    futures[name].result(timeout=timeout)
    wait_topic_ready(endpoint, name, timeout=timeout)
    return name


def delete_kafka_topic(endpoint: KafkaEndpoint, name: str, timeout: float = 30.0) -> None:
    """Delete ``name``; raises if the broker refuses."""
    admin = kafka_admin(endpoint)
    futures = admin.delete_topics([name], operation_timeout=timeout)
    futures[name].result(timeout=timeout)


def kraft_properties(port: int, controller_port: int, log_dir: str) -> dict[str, str]:
    """A single-node KRaft broker+controller on loopback ports (local and docker)."""
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": log_dir,
    }
    props.update(KAFKA_TEST_PROPERTIES)
    return props


class KafkaService(LocalProcessService[KafkaEndpoint]):
    """A single-node KRaft broker+controller on two free loopback ports.

    ``extra_properties`` are appended to (and override) the generated
    ``server.properties``, so a test can run a broker with e.g. a different
    ``message.max.bytes`` next to the shared one.

    ``extra_listeners`` (listener name -> security protocol, e.g.
    ``{"SASLSSL": "SASL_SSL"}``) adds client listeners, each on its own free
    port, next to the PLAINTEXT one (which stays the inter-broker listener
    and the one the readiness probe uses); reach them with
    :meth:`listener_endpoint`, configure them with ``listener.name.<name>.*``
    extra properties. ``format_args`` are appended to ``kafka-storage
    format`` (e.g. ``--add-scram SCRAM-SHA-256=[name=u,password=p]``).
    """

    name = "kafka"
    version = KAFKA_VERSION
    port_names = ("port", "controller_port")
    start_timeout = 120.0
    stop_timeout = 20.0

    def __init__(
        self,
        extra_properties: Mapping[str, str] | None = None,
        *,
        extra_listeners: Mapping[str, str] | None = None,
        format_args: Sequence[str] = (),
    ) -> None:
        super().__init__()
        self.extra_properties = dict(extra_properties or {})
        self.extra_listeners = {name.upper(): proto for name, proto in (extra_listeners or {}).items()}
        reserved = {"PLAINTEXT", "CONTROLLER"} & set(self.extra_listeners)
        if reserved:
            raise ValueError(f"listener names {sorted(reserved)} are taken by the harness")
        self.format_args = list(format_args)

    @property
    def endpoint(self) -> KafkaEndpoint:
        return KafkaEndpoint(bootstrap_servers=f"127.0.0.1:{self.ports['port']}")

    def listener_endpoint(self, listener: str) -> KafkaEndpoint:
        """Where the extra listener ``listener`` accepts clients (once started)."""
        name = listener.upper()
        if name not in self.extra_listeners:
            raise KeyError(f"no extra listener {listener!r}; have {sorted(self.extra_listeners)}")
        return KafkaEndpoint(bootstrap_servers=f"127.0.0.1:{self.ports[_listener_port(name)]}")

    def _allocate_ports(self) -> dict[str, int]:
        if not self.extra_listeners:
            return super()._allocate_ports()
        names = [*self.port_names, *(_listener_port(n) for n in self.extra_listeners)]
        return dict(zip(names, free_ports(len(names)), strict=True))

    def _install_into(self, target: Path, log: Path) -> None:
        mvn = shutil.which("mvn")
        if not mvn:
            raise ServiceError("mvn not found: Maven is needed to fetch the Kafka jars")
        (target / "pom.xml").write_text(
            _POM.format(kafka=KAFKA_VERSION, log4j=LOG4J_VERSION, slf4j=SLF4J_VERSION)
        )
        run_logged(
            [
                mvn,
                "-q",
                "-B",
                "-Dstyle.color=never",
                f"{DEPENDENCY_PLUGIN}:copy-dependencies",
                "-DoutputDirectory=libs",
                "-DincludeScope=runtime",
            ],
            log,
            cwd=target,
            timeout=900,
        )
        if not list((target / "libs").glob(f"kafka_2.13-{KAFKA_VERSION}.jar")):
            raise ServiceError("Maven finished but the Kafka jar is missing")

    def server_properties(self, log_dir: Path) -> dict[str, str]:
        """The full broker configuration for the current ports."""
        props = kraft_properties(self.ports["port"], self.ports["controller_port"], str(log_dir))
        for name, protocol in self.extra_listeners.items():
            address = f"{name}://127.0.0.1:{self.ports[_listener_port(name)]}"
            props["listeners"] += f",{address}"
            props["advertised.listeners"] += f",{address}"
            props["listener.security.protocol.map"] += f",{name}:{protocol}"
        props.update(self.extra_properties)
        return props

    def _prepare(self, workdir: Path) -> None:
        assert self.home is not None
        log_dir = workdir / "kraft-logs"
        shutil.rmtree(log_dir, ignore_errors=True)  # new ports: new cluster
        text = "".join(f"{k}={v}\n" for k, v in self.server_properties(log_dir).items())
        (workdir / "server.properties").write_text(text)
        (workdir / "log4j2.yaml").write_text(_LOG4J2_YAML)
        log_path = workdir / "service.log"
        run_logged(
            [
                _java(),
                "-cp",
                str(self.home / "libs" / "*"),
                "kafka.tools.StorageTool",
                "format",
                "-t",
                _cluster_id(),
                "-c",
                str(workdir / "server.properties"),
                *self.format_args,
            ],
            log_path,
            cwd=workdir,
            timeout=120,
        )

    def _command(self) -> list[str]:
        assert self.home is not None and self.workdir is not None
        return [
            _java(),
            "-Xms128m",
            "-Xmx512m",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.workdir / 'log4j2.yaml'}",
            "-cp",
            str(self.home / "libs" / "*"),
            "kafka.Kafka",
            str(self.workdir / "server.properties"),
        ]

    def _probe(self) -> None:
        probe_kafka(self.endpoint)


def _listener_port(listener: str) -> str:
    """The ``ports`` key of an extra listener."""
    return f"listener_{listener.lower()}"
