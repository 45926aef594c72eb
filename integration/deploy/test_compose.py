"""``deploy/compose/docker-compose.yml`` brought up with Debian's docker-compose, as a user does.

The file names public images; here no registry is reachable, so its image
variables point at the locally built ones (``libkb-test/kafka``,
``libkb-test/minio`` and libkb's own image) and a small override gives the
local Kafka image its entry script. Ports are free ones chosen by the test,
through the file's port variables.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from integration.conftest import IN_CI
from integration.services import KafkaEndpoint, S3Endpoint, ServiceError, create_kafka_topic, s3_client
from integration.services.app_image import REPO_ROOT
from integration.services.base import free_ports, wait_until
from integration.services.images import ensure_image
from integration.services.kafka import _cluster_id, kraft_properties, probe_kafka
from integration.test_cli_backup import produce, records_metric

pytestmark = pytest.mark.docker

COMPOSE_FILE = REPO_ROOT / "deploy" / "compose" / "docker-compose.yml"
KAFKA_BACKUP = Path(sys.executable).with_name("kafka-backup")
DEADLINE_SECS = 120


def local_kafka_override(path: Path, port: int, controller_port: int) -> Path:
    """The compose override for ``libkb-test/kafka``: its entry script reads ``server.properties`` whole."""
    props = kraft_properties(port, controller_port, "/data/kraft-logs")
    kafka = {
        "entrypoint": ["/bin/sh", "/opt/kafka/entry.sh"],
        "environment": {
            "LIBKB_SERVER_PROPERTIES": "".join(f"{k}={v}\n" for k, v in props.items()),
            "LIBKB_CLUSTER_ID": _cluster_id(),
        },
    }
    path.write_text(yaml.safe_dump({"services": {"kafka": kafka}}))
    return path


@pytest.fixture
def compose_env(libkb_image: str) -> dict[str, str]:
    """The variables of the compose file: local images, free ports, fresh credentials."""
    problem = (
        None
        if shutil.which("docker-compose")
        else "docker-compose is not installed (apt-get install docker-compose)"
    )
    try:
        images = {"KAFKA_IMAGE": ensure_image("kafka"), "MINIO_IMAGE": ensure_image("minio")}
    except ServiceError as exc:
        problem = f"the local Kafka and MinIO images could not be built: {exc.describe()}"
    if problem:
        if IN_CI:
            pytest.fail(problem, pytrace=False)
        pytest.skip(problem)
    kafka, controller, minio, console, metrics = free_ports(5)
    return {
        **images,
        "KAFKA_BACKUP_IMAGE": libkb_image,
        "KAFKA_PORT": str(kafka),
        "KAFKA_CONTROLLER_PORT": str(controller),
        "MINIO_PORT": str(minio),
        "MINIO_CONSOLE_PORT": str(console),
        "METRICS_PORT": str(metrics),
        "MINIO_ROOT_USER": "compose-test",
        "MINIO_ROOT_PASSWORD": secrets.token_hex(16),
        "S3_BUCKET": "compose-backups",
    }


@pytest.fixture
def compose(compose_env: dict[str, str], tmp_path: Path) -> Iterator[list[str]]:
    """``docker-compose`` with the file, the override and a project of its own; ``down -v`` at the end."""
    override = local_kafka_override(
        tmp_path / "local-images.yml",
        int(compose_env["KAFKA_PORT"]),
        int(compose_env["KAFKA_CONTROLLER_PORT"]),
    )
    project = f"libkb-compose-{os.getpid()}-{time.time_ns() % 10**6}"
    command = ["docker-compose", "-f", str(COMPOSE_FILE), "-f", str(override), "-p", project]
    yield command
    subprocess.run(
        [*command, "down", "-v", "--timeout", "30"],
        env={**os.environ, **compose_env},
        capture_output=True,
        timeout=120,
    )


def run(
    command: list[str], env: dict[str, str], timeout: float = DEADLINE_SECS
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{command} exited {done.returncode}:\n{done.stdout}{done.stderr}"
    return done


def backed_up(url: str, count: int) -> None:
    """Raise until kafka-backup's /metrics counts ``count`` records read."""
    if records_metric(url, "compose") < count:
        raise AssertionError(f"fewer than {count} records backed up yet")


def test_compose_up_backs_up_produced_records_into_minio(
    compose: list[str], compose_env: dict[str, str]
) -> None:
    env = compose_env
    run([*compose, "up", "--detach", "--no-build"], env)
    try:
        kafka = KafkaEndpoint(f"127.0.0.1:{env['KAFKA_PORT']}")
        wait_until(lambda: probe_kafka(kafka), timeout=DEADLINE_SECS, what="the compose file's Kafka")
        topic = create_kafka_topic(kafka, "orders", partitions=2)
        produce(kafka.bootstrap_servers, topic, 500, 2)
        url = f"http://127.0.0.1:{env['METRICS_PORT']}"
        wait_until(lambda: backed_up(url, 500), timeout=DEADLINE_SECS, what="500 records in /metrics")
        run([*compose, "stop", "kafka-backup"], env)  # SIGTERM: the open segments are stored
        container = run([*compose, "ps", "-q", "kafka-backup"], env).stdout.strip()
        exit_code = run(["docker", "inspect", "--format", "{{.State.ExitCode}}", container], env)
        assert exit_code.stdout.strip() == "0"
    except BaseException:
        print(run([*compose, "logs", "--no-color"], env).stdout)  # shown by pytest on failure
        raise

    minio = S3Endpoint(
        "minio", f"http://127.0.0.1:{env['MINIO_PORT']}", env["MINIO_ROOT_USER"], env["MINIO_ROOT_PASSWORD"]
    )
    listed = s3_client(minio).list_objects_v2(Bucket=env["S3_BUCKET"], Prefix="compose/")
    keys = [item["Key"] for item in listed.get("Contents", [])]
    assert any(topic in key for key in keys), keys
    store = f"s3://{env['S3_BUCKET']}/compose?endpoint={minio.endpoint}&path_style=true"
    credentials = {"AWS_ACCESS_KEY_ID": minio.access_key, "AWS_SECRET_ACCESS_KEY": minio.secret_key}
    described = run(
        [str(KAFKA_BACKUP), "describe", "--path", store, "--backup-id", "compose", "--format", "json"],
        credentials,
    )
    body = json.loads(described.stdout)
    assert body["records"] == 500 and list(body["topics"]) == [topic], body
