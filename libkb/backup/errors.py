"""The backup engine's own error, defined below every part of the engine that raises it."""

from __future__ import annotations

from libkb.errors import LibkbError


class BackupError(LibkbError):
    """The backup could not be completed; storage is left consistent."""
