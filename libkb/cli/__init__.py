# PYTHON_ARGCOMPLETE_OK  (argcomplete's marker: kafka-backup completes itself)
"""The ``kafka-backup`` command line: ``main(argv) -> exit status``."""

from libkb.cli.app import build_parser, console_main, main

__all__ = ["build_parser", "console_main", "main"]
