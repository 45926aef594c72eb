"""S3 server-side encryption for real: MinIO over TLS with its built-in KMS (SSE-S3, SSE-KMS, SSE-C).

Each mode stores a small object (one PUT), a large one (a multipart upload)
and a copy, reads them back whole and by range, and the object's own
metadata, read with boto3, says how S3 encrypted it; an SSE-C object cannot
be read without its key. The custom CA bundle (``ca_bundle``) is what lets
libkb talk to the TLS endpoint at all.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from integration.services.minio_tls import KMS_KEY_NAME, MinioTlsEndpoint
from libkb.errors import LibkbError
from libkb.storage import StorageBackend, create_backend_from_config
from libkb.storage.settings import load_storage_config

MiB = 1024 * 1024


def boto(tls: MinioTlsEndpoint) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=tls.s3.endpoint,
        aws_access_key_id=tls.s3.access_key,
        aws_secret_access_key=tls.s3.secret_key,
        region_name="us-east-1",
        verify=tls.ca_bundle,
        config=Config(s3={"addressing_style": "path"}),
    )


@pytest.fixture
def bucket(minio_tls_service: MinioTlsEndpoint) -> Iterator[str]:
    name = f"t-sse-{uuid.uuid4().hex[:12]}"
    client = boto(minio_tls_service)
    client.create_bucket(Bucket=name)
    yield name
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
        for obj in page.get("Contents", []):
            client.delete_object(Bucket=name, Key=obj["Key"])
    client.delete_bucket(Bucket=name)


def backend(tls: MinioTlsEndpoint, bucket: str, **sse: Any) -> StorageBackend:
    storage = {
        "backend": "s3",
        "bucket": bucket,
        "endpoint": tls.s3.endpoint,
        "access_key": tls.s3.access_key,
        "secret_key": tls.s3.secret_key,
        "region": "us-east-1",
        "path_style": True,
        "ca_bundle": tls.ca_bundle,
        "transfer": {"part_size": 5 * MiB, "single_put_threshold": 5 * MiB},
        **sse,
    }
    return create_backend_from_config(load_storage_config(storage))


def exercise(store: StorageBackend) -> bytes:
    """A PUT, a multipart upload and a copy, read back whole and by range."""
    small, big = os.urandom(1000), os.urandom(12 * MiB + 7)
    store.put("a/small", small)
    store.put_stream("a/big", iter([big[i : i + MiB] for i in range(0, len(big), MiB)]))
    store.copy("a/small", "a/copy")
    assert store.get("a/small") == small == store.get("a/copy")
    assert b"".join(store.get_stream("a/big")) == big
    assert store.get_range("a/big", 6 * MiB, 6 * MiB + 10) == big[6 * MiB : 6 * MiB + 10]
    assert store.size("a/big") == len(big)
    return small


@pytest.mark.parametrize(
    ("settings", "stated"),
    [
        ({"server_side_encryption": "AES256"}, "AES256"),
        ({"server_side_encryption": "aws:kms", "sse_kms_key_id": KMS_KEY_NAME}, "aws:kms"),
    ],
    ids=["sse-s3", "sse-kms"],
)
def test_sse_s3_and_sse_kms_objects_are_encrypted_by_the_server(
    minio_tls_service: MinioTlsEndpoint, bucket: str, settings: dict[str, Any], stated: str
) -> None:
    with backend(minio_tls_service, bucket, **settings) as store:
        exercise(store)
    client = boto(minio_tls_service)
    for key in ("a/small", "a/big", "a/copy"):
        head = client.head_object(Bucket=bucket, Key=key)
        assert head["ServerSideEncryption"] == stated, key
        if stated == "aws:kms":
            assert KMS_KEY_NAME in head["SSEKMSKeyId"]


def test_sse_c_objects_need_their_key_to_be_read(minio_tls_service: MinioTlsEndpoint, bucket: str) -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    with backend(minio_tls_service, bucket, server_side_encryption="sse-c", sse_customer_key=key) as store:
        small = exercise(store)
    client = boto(minio_tls_service)
    head = client.head_object(
        Bucket=bucket, Key="a/small", SSECustomerAlgorithm="AES256", SSECustomerKey=base64.b64decode(key)
    )
    assert head["SSECustomerAlgorithm"] == "AES256"
    with backend(minio_tls_service, bucket) as plain, pytest.raises(LibkbError):
        plain.get("a/small")
    other = base64.b64encode(os.urandom(32)).decode()
    wrong_key = {"server_side_encryption": "sse-c", "sse_customer_key": other}
    with backend(minio_tls_service, bucket, **wrong_key) as wrong, pytest.raises(LibkbError):
        wrong.get("a/small")
    with backend(minio_tls_service, bucket, server_side_encryption="sse-c", sse_customer_key=key) as right:
        assert right.get("a/small") == small


def test_a_private_ca_endpoint_fails_without_its_bundle(
    minio_tls_service: MinioTlsEndpoint, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)  # the system's CAs do not know the test CA
    tls = minio_tls_service
    storage = {
        "backend": "s3",
        "bucket": bucket,
        "endpoint": tls.s3.endpoint,
        "access_key": tls.s3.access_key,
        "secret_key": tls.s3.secret_key,
        "region": "us-east-1",
        "path_style": True,
        "resilience": {"max_attempts": 1},
    }
    store = create_backend_from_config(load_storage_config(storage), create=False)
    with store, pytest.raises(LibkbError, match=r"CERTIFICATE_VERIFY_FAILED"):
        store.put("x", b"y")
