"""The Rust kafka-backup's backups (osodevops, up to v0.17.4), read as a segment source.

:mod:`.manifest` parses its ``manifest.json`` (the index: restores never list),
:mod:`.segment` reads its segments (codec in :mod:`libkb.format.rust_segment`),
:mod:`.layout` checks what is stored against the manifest, :mod:`.notes` says
what the format cannot keep, and :mod:`.backup` is the
:class:`~libkb.source.base.BackupSource` that puts them together.
"""
