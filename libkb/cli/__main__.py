"""``python -m libkb.cli``: the same as the ``kafka-backup`` script."""

from libkb.cli import console_main

console_main()
