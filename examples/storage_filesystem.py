"""libkb storage on a local directory.

Usage:
    python examples/storage_filesystem.py [PATH] [--prefix PREFIX]

PATH (default: $LIBKB_STORAGE_PATH, else a temporary directory removed at the
end) is created if missing. Writes are atomic (temp file, fsync, rename) and
no key can escape PATH. YAML equivalent::

    storage:
      backend: filesystem
      path: /var/kafka-backups
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

from storage_tour import tour

from libkb.errors import LibkbError
from libkb.storage import FilesystemConfig, create_backend_from_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("path", nargs="?", default=os.environ.get("LIBKB_STORAGE_PATH"))
    parser.add_argument("--prefix", help="key prefix for every operation")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="libkb-example-") as scratch:
        path = args.path or scratch
        print(f"directory: {path}")
        try:
            config = FilesystemConfig(path=path, prefix=args.prefix)
            with create_backend_from_config(config) as backend:
                tour(backend)
        except LibkbError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
