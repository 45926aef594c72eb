"""The version: written here only (pyproject.toml reads it as a dynamic field).

A literal, not ``importlib.metadata``: that import alone cost every command
about 30 ms of start-up, which is a tenth of a short backup's fixed cost.
"""

from __future__ import annotations

__version__ = "0.1.0"
