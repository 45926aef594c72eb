"""libkb's image (``deploy/Dockerfile``) run as a user runs it, against the suite's Kafka and MinIO.

Every container runs as the image's non-root user with a read-only root
filesystem (``--read-only --tmpfs /tmp``), on the host's network, with the
job file mounted read-only from a directory (as Kubernetes mounts a
ConfigMap) and the S3 credentials in environment variables (as from a Secret).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from integration.deploy.conftest import docker_cli, write_job
from integration.kafka_data import consume_all, produce
from integration.services import KafkaEndpoint, S3Bucket, ServiceError
from integration.services.app_image import ensure_libkb_image
from integration.services.kafka import TopicFactory
from integration.test_cli_backup import fetch, free_port, records_metric

pytestmark = pytest.mark.docker

DEADLINE_SECS = 90


def storage_yaml(bucket: S3Bucket, prefix: str) -> str:
    """The storage block: no secret in the file, the endpoint from the environment."""
    return (
        "storage:\n  backend: s3\n  bucket: ${S3_BUCKET}\n  endpoint: ${S3_ENDPOINT}\n"
        f"  region: {bucket.service.region}\n  path_style: true\n  prefix: {prefix}\n"
    )


def run_args(image: str, bucket: S3Bucket, config_map: Path) -> list[str]:
    """``docker run`` options shared by every test: what a Deployment's pod spec says."""
    service = bucket.service
    env = {
        "AWS_ACCESS_KEY_ID": service.access_key,
        "AWS_SECRET_ACCESS_KEY": service.secret_key,
        "S3_BUCKET": bucket.name,
        "S3_ENDPOINT": service.endpoint,
    }
    options = ["--network", "host", "--read-only", "--tmpfs", "/tmp", "-v", f"{config_map}:/config:ro"]
    for name, value in env.items():
        options += ["-e", f"{name}={value}"]
    return [*options, image]


def test_image_runs_as_non_root_with_the_cli_as_entrypoint(libkb_image: str) -> None:
    inspected = docker_cli("image", "inspect", libkb_image)
    assert inspected.returncode == 0, inspected.stderr
    (config,) = (image["Config"] for image in json.loads(inspected.stdout))
    assert config["User"] == "10001:10001" and config["Entrypoint"] == ["kafka-backup"]
    done = docker_cli("run", "--rm", "--read-only", libkb_image, "--version")
    assert done.returncode == 0 and "kafka-backup" in done.stdout, done.stdout + done.stderr
    accelerated = docker_cli(
        "run", "--rm", "--entrypoint", "python", libkb_image, "-c",
        "from libkb.format.packer import ACCELERATED; print(ACCELERATED)",
    )  # fmt: skip
    assert accelerated.stdout.strip() == "True", accelerated.stdout + accelerated.stderr


def test_backup_then_restore_in_containers_is_exact(
    libkb_image: str,
    kafka_service: KafkaEndpoint,
    kafka_topic_factory: TopicFactory,
    minio_bucket: S3Bucket,
    config_map: Path,
) -> None:
    bootstrap = kafka_service.bootstrap_servers
    topic = kafka_topic_factory(partitions=2)
    produce(bootstrap, topic, 400, partitions=2)
    # The records carry 2020 timestamps: the target keeps them forever, as the source does.
    target = kafka_topic_factory(partitions=2, config={"retention.ms": "-1"}, name=f"{topic}-restored")
    storage = storage_yaml(minio_bucket, "image")
    write_job(
        config_map,
        "backup.yaml",
        f"mode: backup\nbackup_id: from-image\nsource:\n  bootstrap_servers: [{bootstrap}]\n"
        f"  topics:\n    include: [{topic}]\n{storage}",
    )
    write_job(
        config_map,
        "restore.yaml",
        f"mode: restore\nbackup_id: from-image\ntarget:\n  bootstrap_servers: [{bootstrap}]\n"
        f"{storage}restore:\n  topic_mapping:\n    {topic}: {target}\n  create_topics: false\n",
    )
    args = run_args(libkb_image, minio_bucket, config_map)
    backup = docker_cli("run", "--rm", *args, "backup", "--config", "/config/backup.yaml")
    assert backup.returncode == 0, backup.stdout + backup.stderr
    assert "backup from-image complete: read 400 records" in backup.stdout, backup.stdout
    restore = docker_cli("run", "--rm", *args, "restore", "--config", "/config/restore.yaml")
    assert restore.returncode == 0, restore.stdout + restore.stderr
    original, restored = consume_all(bootstrap, topic, 2), consume_all(bootstrap, target, 2)
    for partition in (0, 1):
        assert len(restored[partition]) == 200
        # Record by record: offset, timestamp and its type, key, value and headers.
        assert restored[partition] == original[partition]


@pytest.fixture
def container_name(request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"libkb-image-test-{request.node.name[:40]}-{time.time_ns()}"
    yield name
    docker_cli("rm", "--force", name)


def wait_for(what: str, name: str, probe: Callable[[], object]) -> object:
    """Poll ``probe`` until truthy; fail with the container's log if it exits first."""
    deadline = time.monotonic() + DEADLINE_SECS
    while True:
        state = docker_cli("inspect", "--format", "{{.State.Running}}", name).stdout.strip()
        if state != "true":
            log = docker_cli("logs", name)
            raise AssertionError(f"container exited while waiting for {what}:\n{log.stdout}{log.stderr}")
        try:
            result = probe()
        except OSError:
            result = None  # the server is not up yet
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


def test_continuous_backup_serves_probes_and_stops_cleanly_on_docker_stop(
    libkb_image: str,
    kafka_service: KafkaEndpoint,
    kafka_topic_factory: TopicFactory,
    minio_bucket: S3Bucket,
    config_map: Path,
    container_name: str,
) -> None:
    bootstrap = kafka_service.bootstrap_servers
    topic = kafka_topic_factory(partitions=2)
    produce(bootstrap, topic, 300, partitions=2)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    write_job(
        config_map,
        "backup.yaml",
        f"mode: backup\nbackup_id: continuous\nsource:\n  bootstrap_servers: [{bootstrap}]\n"
        f"  topics:\n    include: [{topic}]\n{storage_yaml(minio_bucket, 'image')}"
        "backup:\n  continuous: true\n  segment_max_interval_ms: 1000\n"
        f"metrics:\n  enabled: true\n  port: {port}\n  bind_address: 0.0.0.0\n",
    )
    args = run_args(libkb_image, minio_bucket, config_map)
    started = docker_cli(
        "run", "--detach", "--name", container_name, *args, "backup", "--config", "/config/backup.yaml"
    )
    assert started.returncode == 0, started.stderr
    wait_for("300 records in /metrics", container_name, lambda: records_metric(url, "continuous") >= 300)
    produce(bootstrap, topic, 100, partitions=2, start=300)
    wait_for("400 records in /metrics", container_name, lambda: records_metric(url, "continuous") >= 400)
    assert "# TYPE kafka_backup_storage_write_bytes" in fetch(url + "/metrics")[1].decode()
    wait_for("/ready 200", container_name, lambda: fetch(url + "/ready")[0] == 200)
    status, health = fetch(url + "/health")
    assert status == 200 and json.loads(health)["status"] == "healthy", health

    stopped = docker_cli("stop", "--time", "60", container_name)  # SIGTERM, as Kubernetes sends
    assert stopped.returncode == 0, stopped.stderr
    exit_code = docker_cli("inspect", "--format", "{{.State.ExitCode}}", container_name).stdout.strip()
    log = docker_cli("logs", container_name)
    assert exit_code == "0", log.stdout + log.stderr
    assert "SIGTERM received" in log.stderr
    assert "backup continuous stopped: read 400 records" in log.stdout and "stored 400 records" in log.stdout

    # What it stored is complete: a deep validation, from another container.
    service = minio_bucket.service
    store = (
        f"s3://{minio_bucket.name}/image?endpoint={service.endpoint}&path_style=true&region={service.region}"
    )
    checked = docker_cli(
        "run", "--rm", *args, "validate", "--path", store, "--backup-id", "continuous", "--deep"
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "400 records" in checked.stdout, checked.stdout


def test_a_failed_image_build_names_its_log(libkb_image: str, tmp_path: Path) -> None:
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "Dockerfile").write_text(
        "ARG BUILDER_IMAGE\nARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo 'no wheel here' && exit 3\n"
    )
    with pytest.raises(ServiceError) as info:
        ensure_libkb_image(tmp_path)
    assert "returned a non-zero code: 3" in str(info.value)
    assert f"image-kafka-backup-{tmp_path.name}.build.log" in str(info.value)
    assert "no wheel here" in info.value.log_tail
