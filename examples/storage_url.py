r"""libkb storage configured by one URL, as ``kafka-backup list --path URL`` takes it.

Usage:
    python examples/storage_url.py [URL]

URL (default: $LIBKB_STORAGE_URL, else memory://) is any of:
    s3://BUCKET[/PREFIX][?region=R&endpoint=URL&path_style=true&allow_http=true]  (also s3a://)
    azure://ACCOUNT[.blob.core.windows.net]/CONTAINER[/PREFIX][?endpoint=URL]     (also az://)
    gcs://BUCKET[/PREFIX][?endpoint=URL&service_account_path=FILE]                (also gs://)
    file:///ABSOLUTE/PATH[?prefix=P]   or a plain path: /var/backups, ./backups
    memory://[PREFIX]
Credentials never go in the URL: they come from the environment as for YAML configs
(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AZURE_STORAGE_KEY, GOOGLE_APPLICATION_CREDENTIALS).

For example, against a local MinIO:
    AWS_ACCESS_KEY_ID=minioadmin AWS_SECRET_ACCESS_KEY=minioadmin python examples/storage_url.py \
        "s3://kafka-backups/prefix?endpoint=http://127.0.0.1:9000&path_style=true"
"""

from __future__ import annotations

import argparse
import os
import sys

from storage_tour import tour

from libkb.errors import LibkbError
from libkb.storage import StorageBackendConfig, create_backend_from_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("url", nargs="?", default=os.environ.get("LIBKB_STORAGE_URL", "memory://"))
    args = parser.parse_args(argv)
    try:
        config = StorageBackendConfig.from_url(args.url)  # or: libkb.storage.open_backend(url)
        print(f"config: {config!r}")
        with create_backend_from_config(config) as backend:
            tour(backend)
    except LibkbError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
