r"""libkb storage on AWS S3 or any S3-compatible server (MinIO, Ceph, SeaweedFS, Garage).

Usage:
    python examples/storage_s3.py --bucket BUCKET [--endpoint URL] [--region REGION]
                                  [--path-style] [--prefix PREFIX]

Settings (flags win over environment variables):
    --bucket      $S3_BUCKET; the bucket must exist
    --endpoint    $AWS_ENDPOINT_URL_S3 or $AWS_ENDPOINT_URL; omit for AWS itself.
                  An http:// endpoint allows plain HTTP (allow_http is derived from it).
    --region      else $AWS_REGION / $AWS_DEFAULT_REGION, else us-east-1
    --path-style  bucket in the path, not the host name (MinIO/Ceph behind a DNS name;
                  IP-address and localhost endpoints use it anyway)
Credentials: $AWS_ACCESS_KEY_ID + $AWS_SECRET_ACCESS_KEY (+ $AWS_SESSION_TOKEN); with
the libkb[aws] extra also AWS profiles, SSO, web identity (IRSA) and instance roles.

Against a local MinIO started with its default development credentials:
    AWS_ACCESS_KEY_ID=minioadmin AWS_SECRET_ACCESS_KEY=minioadmin \
        python examples/storage_s3.py --bucket kafka-backups --endpoint http://127.0.0.1:9000
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from storage_tour import tour

from libkb.errors import LibkbError
from libkb.storage import StorageBackendConfig, create_backend_from_config


def main(argv: list[str] | None = None) -> int:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bucket", default=env("S3_BUCKET"))
    parser.add_argument("--endpoint", default=env("AWS_ENDPOINT_URL_S3") or env("AWS_ENDPOINT_URL"))
    parser.add_argument("--region")
    parser.add_argument("--path-style", action="store_true")
    parser.add_argument("--prefix", help="key prefix for every operation")
    args = parser.parse_args(argv)
    if not args.bucket:
        parser.error("give --bucket or set S3_BUCKET")

    # The same keys as a YAML ``storage:`` block; None means "not set".
    storage: dict[str, Any] = {
        "backend": "s3",
        "bucket": args.bucket,
        "endpoint": args.endpoint,
        "region": args.region,
        "path_style": args.path_style,
        "prefix": args.prefix,
        # Small parts so the 12 MiB stream below goes up as a 3-part multipart upload.
        "transfer": {"part_size": 5 * 1024 * 1024, "single_put_threshold": 5 * 1024 * 1024},
    }
    try:
        config = StorageBackendConfig.from_dict(storage)
        print(f"config: {config!r}")  # the repr never shows secrets
        with create_backend_from_config(config) as backend:
            tour(backend, stream_mib=12)
    except LibkbError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
