"""Smoke tests: each service really works with its vendor client.

They prove the harness (not libkb): a record goes through Kafka, objects go
through every object store, wrong credentials are refused where the real
service would refuse them, and a stopped service comes back at the same
endpoint with its data.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from typing import Any
from urllib.parse import quote

import pytest
import requests

from integration.services import (
    AzureContainer,
    GcsBucket,
    KafkaEndpoint,
    S3Bucket,
    S3Endpoint,
    Service,
    azure_service_client,
    kafka_admin,
    s3_client,
)
from integration.services.kafka import BrokerFactory, TopicFactory

# Also run by CI's docker phase: every service, restarts included, in containers.
pytestmark = pytest.mark.docker

# ----------------------------------------------------------------------- Kafka


def _consume_one(endpoint: KafkaEndpoint, topic: str, timeout: float = 30.0) -> Any:
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": endpoint.bootstrap_servers,
            "group.id": f"smoke-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None:
                continue
            assert message.error() is None, message.error()
            return message
        pytest.fail(f"no record consumed from {topic} within {timeout}s")
    finally:
        consumer.close()


def _produce(endpoint: KafkaEndpoint, topic: str, key: bytes, value: bytes) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": endpoint.bootstrap_servers, "acks": "all"})
    errors: list[Any] = []
    producer.produce(
        topic,
        key=key,
        value=value,
        headers=[("h", b"1")],
        on_delivery=lambda err, msg: errors.append(err) if err else None,
    )
    assert producer.flush(30) == 0
    assert errors == []


def test_kafka_produce_consume(kafka_service: KafkaEndpoint, kafka_topic_factory: TopicFactory) -> None:
    topic = kafka_topic_factory(partitions=3, config={"cleanup.policy": "compact"})
    metadata = kafka_admin(kafka_service).list_topics(topic=topic, timeout=10)
    assert len(metadata.topics[topic].partitions) == 3

    _produce(kafka_service, topic, b"k1", b"hello kafka")
    message = _consume_one(kafka_service, topic)
    assert (message.key(), message.value()) == (b"k1", b"hello kafka")
    assert message.headers() == [("h", b"1")]


def test_kafka_restart_keeps_endpoint_and_data(
    kafka_process: Service[KafkaEndpoint], kafka_topic_factory: TopicFactory
) -> None:
    endpoint = kafka_process.endpoint
    topic = kafka_topic_factory()
    _produce(endpoint, topic, b"k", b"before restart")
    kafka_process.stop()
    assert not kafka_process.running
    assert kafka_process.start() == endpoint
    assert _consume_one(endpoint, topic).value() == b"before restart"


def test_kafka_extra_broker_properties(kafka_broker_factory: BrokerFactory) -> None:
    from confluent_kafka.admin import (  # type: ignore[attr-defined]  # not re-exported in stubs
        ConfigResource,
        ResourceType,
    )

    endpoint = kafka_broker_factory({"message.max.bytes": "2097152"})
    admin = kafka_admin(endpoint)  # keep a reference while its futures are pending
    resource = ConfigResource(ResourceType.BROKER, "1")
    configs = admin.describe_configs([resource])[resource].result(timeout=30)
    assert configs["message.max.bytes"].value == "2097152"


# -------------------------------------------------------------------------- S3


@pytest.fixture(params=["minio", "seaweedfs"])
def s3_bucket(request: pytest.FixtureRequest) -> S3Bucket:
    """Each S3 implementation in turn."""
    bucket = request.getfixturevalue(f"{request.param}_bucket")
    assert isinstance(bucket, S3Bucket)
    return bucket


def test_s3_put_get_list_delete(s3_bucket: S3Bucket) -> None:
    client = s3_client(s3_bucket.service)
    bucket = s3_bucket.name
    client.put_object(Bucket=bucket, Key="dir/a.bin", Body=b"alpha")
    client.put_object(Bucket=bucket, Key="dir/b.bin", Body=b"beta")
    assert client.get_object(Bucket=bucket, Key="dir/a.bin")["Body"].read() == b"alpha"
    listed = client.list_objects_v2(Bucket=bucket, Prefix="dir/")
    assert [o["Key"] for o in listed["Contents"]] == ["dir/a.bin", "dir/b.bin"]
    client.delete_object(Bucket=bucket, Key="dir/a.bin")
    listed = client.list_objects_v2(Bucket=bucket, Prefix="dir/")
    assert [o["Key"] for o in listed["Contents"]] == ["dir/b.bin"]


@pytest.mark.parametrize("service", ["minio_service", "seaweedfs_service"])
def test_s3_wrong_secret_is_refused(service: str, request: pytest.FixtureRequest) -> None:
    from botocore.exceptions import ClientError

    endpoint: S3Endpoint = request.getfixturevalue(service)
    client = s3_client(replace(endpoint, secret_key=endpoint.secret_key + "x"), retries=1)
    with pytest.raises(ClientError) as info:
        client.list_buckets()
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_minio_restart_keeps_endpoint_and_data(
    minio_process: Service[S3Endpoint], minio_bucket: S3Bucket
) -> None:
    from botocore.exceptions import EndpointConnectionError

    endpoint = minio_process.endpoint
    client = s3_client(endpoint, retries=1, timeout=2)
    client.put_object(Bucket=minio_bucket.name, Key="k", Body=b"survives")
    minio_process.stop()
    with pytest.raises(EndpointConnectionError):
        client.get_object(Bucket=minio_bucket.name, Key="k")
    assert minio_process.start() == endpoint
    assert client.get_object(Bucket=minio_bucket.name, Key="k")["Body"].read() == b"survives"


# ----------------------------------------------------------------- Azure Blob


def test_azurite_put_get_list_delete(azurite_container: AzureContainer) -> None:
    container = azure_service_client(azurite_container.service).get_container_client(azurite_container.name)
    container.upload_blob("dir/a.txt", b"alpha")
    container.upload_blob("dir/b.txt", b"beta")
    assert container.download_blob("dir/a.txt").readall() == b"alpha"
    assert [b.name for b in container.list_blobs(name_starts_with="dir/")] == [
        "dir/a.txt",
        "dir/b.txt",
    ]
    container.delete_blob("dir/a.txt")
    assert [b.name for b in container.list_blobs()] == ["dir/b.txt"]


def test_azurite_wrong_key_is_refused(azurite_container: AzureContainer) -> None:
    import base64

    from azure.core.exceptions import HttpResponseError

    wrong = replace(azurite_container.service, account_key=base64.b64encode(b"not the key").decode())
    client = azure_service_client(wrong, retries=0).get_container_client(azurite_container.name)
    with pytest.raises(HttpResponseError) as info:
        client.upload_blob("x", b"x")
    assert info.value.status_code == 403


# ------------------------------------------------------------------------ GCS


def test_gcs_put_get_list_delete_over_json_api(gcs_bucket: GcsBucket) -> None:
    base = gcs_bucket.service.endpoint
    bucket = quote(gcs_bucket.name, safe="")
    for name, data in (("dir/a.txt", b"alpha"), ("dir/b.txt", b"beta")):
        response = requests.post(
            f"{base}/upload/storage/v1/b/{bucket}/o",
            params={"uploadType": "media", "name": name},
            data=data,
            headers={"Content-Type": "application/octet-stream"},
            timeout=10,
        )
        response.raise_for_status()
    obj = quote("dir/a.txt", safe="")
    got = requests.get(f"{base}/storage/v1/b/{bucket}/o/{obj}", params={"alt": "media"}, timeout=10)
    assert got.content == b"alpha"
    listed = requests.get(f"{base}/storage/v1/b/{bucket}/o", params={"prefix": "dir/"}, timeout=10)
    assert [i["name"] for i in listed.json()["items"]] == ["dir/a.txt", "dir/b.txt"]
    requests.delete(f"{base}/storage/v1/b/{bucket}/o/{obj}", timeout=10).raise_for_status()
    listed = requests.get(f"{base}/storage/v1/b/{bucket}/o", timeout=10)
    assert [i["name"] for i in listed.json()["items"]] == ["dir/b.txt"]


def test_gcs_with_google_cloud_storage_client(gcs_bucket: GcsBucket) -> None:
    """The official client works too, including resumable uploads (upload URLs)."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage  # in the test extras

    client = storage.Client(
        project=gcs_bucket.service.project,
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": gcs_bucket.service.endpoint},
    )
    bucket = client.bucket(gcs_bucket.name)
    blob = bucket.blob("big.bin")
    blob.chunk_size = 256 * 1024  # forces a resumable, multi-request upload
    payload = bytes(range(256)) * 2048
    blob.upload_from_string(payload)
    assert bucket.blob("big.bin").download_as_bytes() == payload
    assert [b.name for b in client.list_blobs(gcs_bucket.name)] == ["big.bin"]
    bucket.blob("big.bin").delete()
    assert list(client.list_blobs(gcs_bucket.name)) == []
