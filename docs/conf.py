"""Sphinx configuration for libkb's documentation (``sphinx-build -W docs build/docs``)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from libkb.version import __version__  # noqa: E402  (after the path is set)

project = "libkb"
author = "The libkb authors"
copyright = "The libkb authors, Apache-2.0"
release = __version__
version = ".".join(__version__.split(".")[:2])

extensions = ["sphinx.ext.autodoc", "sphinx.ext.viewcode"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
#: The type hints name third-party and private types that have no page here.
nitpicky = False
suppress_warnings = ["ref.python"]

exclude_patterns = ["_build"]
html_theme = "alabaster"
html_title = f"libkb {release}"
