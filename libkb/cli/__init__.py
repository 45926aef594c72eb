# PYTHON_ARGCOMPLETE_OK  (argcomplete's marker: kafka-backup completes itself)
"""The ``kafka-backup`` command line: ``main(argv) -> exit status``.

The package loads :mod:`libkb.cli.app` on first use, so that the script's
:func:`console_main` runs its start-up (:mod:`libkb.cli.startup`) before it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from libkb.cli.app import build_parser, main

__all__ = ["build_parser", "console_main", "main"]


def console_main() -> None:
    """The ``kafka-backup`` script (and ``python -m libkb.cli``)."""
    from libkb.cli.startup import begin

    begin()
    from libkb.cli.app import console_main as run

    run()


def __getattr__(name: str) -> Any:
    if name in ("build_parser", "main"):
        from libkb.cli import app

        return getattr(app, name)
    raise AttributeError(f"module 'libkb.cli' has no attribute {name!r}")
