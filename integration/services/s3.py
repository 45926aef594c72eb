"""S3 helpers shared by the MinIO and SeaweedFS services (boto3, path-style).

Why path-style: both servers run on ``127.0.0.1:<port>`` where
virtual-hosted bucket names cannot resolve.
"""

from __future__ import annotations

import contextlib
from typing import Any

from .endpoints import S3Endpoint

__all__ = [
    "create_s3_bucket",
    "delete_s3_bucket",
    "empty_s3_bucket",
    "probe_s3",
    "s3_client",
]


def s3_client(endpoint: S3Endpoint, *, retries: int = 3, timeout: float = 10.0) -> Any:
    """A boto3 S3 client for ``endpoint`` with path-style addressing."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint.endpoint,
        aws_access_key_id=endpoint.access_key,
        aws_secret_access_key=endpoint.secret_key,
        region_name=endpoint.region,
        config=Config(
            s3={"addressing_style": "path"},
            signature_version="s3v4",
            retries={"max_attempts": retries, "mode": "standard"},
            connect_timeout=timeout,
            read_timeout=timeout,
        ),
    )


def probe_s3(endpoint: S3Endpoint) -> None:
    """Raise unless a signed request (ListBuckets) succeeds."""
    s3_client(endpoint, retries=1, timeout=3.0).list_buckets()


def create_s3_bucket(endpoint: S3Endpoint, name: str) -> str:
    """Create bucket ``name`` and return it."""
    s3_client(endpoint).create_bucket(Bucket=name)
    return name


def empty_s3_bucket(endpoint: S3Endpoint, name: str) -> None:
    """Delete every object, object version and pending multipart upload."""
    client = s3_client(endpoint)
    with contextlib.suppress(Exception):  # not every server does versioning
        for page in client.get_paginator("list_object_versions").paginate(Bucket=name):
            for kind in ("Versions", "DeleteMarkers"):
                for item in page.get(kind, []):
                    client.delete_object(Bucket=name, Key=item["Key"], VersionId=item["VersionId"])
    with contextlib.suppress(Exception):
        for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=name):
            for upload in page.get("Uploads", []):
                client.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})


def delete_s3_bucket(endpoint: S3Endpoint, name: str) -> None:
    """Empty then delete bucket ``name``."""
    empty_s3_bucket(endpoint, name)
    s3_client(endpoint).delete_bucket(Bucket=name)
