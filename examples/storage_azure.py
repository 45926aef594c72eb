r"""libkb storage on Azure Blob Storage (or the Azurite emulator).

Usage:
    python examples/storage_azure.py --account ACCOUNT --container CONTAINER
                                     [--endpoint URL] [--prefix PREFIX]

Settings (flags win over environment variables):
    --account     $AZURE_STORAGE_ACCOUNT
    --container   $AZURE_STORAGE_CONTAINER; the container must exist
    --endpoint    $AZURE_STORAGE_ENDPOINT: the blob service URL. Omit for public Azure
                  (https://ACCOUNT.blob.core.windows.net); Azurite is
                  http://127.0.0.1:10000/devstoreaccount1 (the account is the path);
                  sovereign clouds e.g. https://ACCOUNT.blob.core.usgovcloudapi.net
Credentials: $AZURE_STORAGE_KEY (account key); without it, the libkb[azure] extra's
DefaultAzureCredential (service principal env vars, workload/managed identity, Azure CLI).

Against Azurite (its well-known development account and key):
    AZURE_STORAGE_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==' \
    python examples/storage_azure.py --account devstoreaccount1 --container kafka-backups \
        --endpoint http://127.0.0.1:10000/devstoreaccount1
"""  # noqa: E501 - the emulator key

from __future__ import annotations

import argparse
import os
import sys

from storage_tour import tour

from libkb.errors import LibkbError
from libkb.storage import AzureConfig, TransferConfig, create_backend_from_config

MiB = 1024 * 1024


def main(argv: list[str] | None = None) -> int:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--account", default=env("AZURE_STORAGE_ACCOUNT"))
    parser.add_argument("--container", default=env("AZURE_STORAGE_CONTAINER"))
    parser.add_argument("--endpoint", default=env("AZURE_STORAGE_ENDPOINT"))
    parser.add_argument("--prefix", help="key prefix for every operation")
    args = parser.parse_args(argv)
    if not args.account or not args.container:
        parser.error("give --account and --container (or AZURE_STORAGE_ACCOUNT/_CONTAINER)")

    config = AzureConfig(
        account_name=args.account,
        container_name=args.container,
        endpoint=args.endpoint,
        prefix=args.prefix,
        # account_key=None: read from AZURE_STORAGE_KEY, else Azure AD credentials.
        # Small blocks so the 12 MiB stream below is uploaded as 3 blocks.
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
