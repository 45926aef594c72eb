"""libkb storage on the in-memory backend: nothing to set up.

Usage:
    python examples/storage_memory.py [--prefix PREFIX]

Objects live in this process only (each backend instance has its own store),
which suits tests and dry runs. YAML equivalent::

    storage:
      backend: memory
"""

from __future__ import annotations

import argparse
import sys

from storage_tour import tour

from libkb.errors import LibkbError
from libkb.storage import MemoryConfig, create_backend_from_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--prefix", help="key prefix for every operation")
    args = parser.parse_args(argv)
    try:
        with create_backend_from_config(MemoryConfig(prefix=args.prefix)) as backend:
            tour(backend)
    except LibkbError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
