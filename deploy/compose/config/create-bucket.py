"""Create the backup bucket in MinIO once it answers (docker-compose.yml's create-bucket)."""

import os
import sys
import time

import botocore.session
from botocore.exceptions import ClientError, EndpointConnectionError

client = botocore.session.get_session().create_client(
    "s3", endpoint_url=f"http://127.0.0.1:{os.environ['MINIO_PORT']}", region_name="us-east-1"
)
bucket = os.environ["S3_BUCKET"]
for _ in range(60):
    try:
        client.create_bucket(Bucket=bucket)
        print(f"created bucket {bucket}")
        sys.exit(0)
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            print(f"bucket {bucket} exists")
            sys.exit(0)
        print(f"MinIO not ready: {exc}")
    except EndpointConnectionError:
        print("waiting for MinIO")
    time.sleep(1)
sys.exit(f"MinIO did not answer at {client.meta.endpoint_url}")
