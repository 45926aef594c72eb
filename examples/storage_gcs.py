"""libkb storage on Google Cloud Storage (or fake-gcs-server).

Usage:
    python examples/storage_gcs.py --bucket BUCKET [--endpoint URL] [--prefix PREFIX]

Settings (flags win over environment variables):
    --bucket     $GCS_BUCKET; the bucket must exist
    --endpoint   $STORAGE_EMULATOR_HOST: the JSON API base URL, e.g. http://127.0.0.1:4443
                 for fake-gcs-server; omit for Google (https://storage.googleapis.com)
Credentials: $GOOGLE_APPLICATION_CREDENTIALS (a service-account or other google-auth JSON
file); without it, application default credentials (gcloud, GCE/GKE metadata). Both need
the libkb[gcp] extra. An emulator endpoint without a credentials file is used
anonymously.

Against fake-gcs-server:
    python examples/storage_gcs.py --bucket kafka-backups --endpoint http://127.0.0.1:4443
"""

from __future__ import annotations

import argparse
import os
import sys

from storage_tour import tour

from libkb.errors import LibkbError
from libkb.storage import GcsConfig, TransferConfig, create_backend_from_config

MiB = 1024 * 1024


def main(argv: list[str] | None = None) -> int:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bucket", default=env("GCS_BUCKET"))
    parser.add_argument("--endpoint", default=env("STORAGE_EMULATOR_HOST"))
    parser.add_argument("--prefix", help="key prefix for every operation")
    args = parser.parse_args(argv)
    if not args.bucket:
        parser.error("give --bucket or set GCS_BUCKET")

    config = GcsConfig(
        bucket=args.bucket,
        endpoint=args.endpoint,
        prefix=args.prefix,
        # service_account_path=None: GOOGLE_APPLICATION_CREDENTIALS, else ADC.
        # Small chunks so the 12 MiB stream below is a 3-chunk resumable upload.
        transfer=TransferConfig(part_size=5 * MiB, single_put_threshold=5 * MiB),
    )
    try:
        with create_backend_from_config(config) as backend:
            tour(backend, stream_mib=12)
    except LibkbError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
