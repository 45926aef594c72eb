"""``python -m libkb.cli``: the same as the ``kafka-backup`` script."""

from libkb.cli.app import main

raise SystemExit(main())
