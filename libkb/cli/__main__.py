"""``python -m libkb.cli``: the same as the ``kafka-backup`` script."""

from libkb.cli.app import console_main

console_main()
