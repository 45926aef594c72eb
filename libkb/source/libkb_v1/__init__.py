"""libkb's own backup format (docs/format.rst), read as a segment source.

Named for version 1, the layout it reads; it reads every version since too:
version 2 only added a codec (lz4), which :mod:`libkb.format.segment` decodes.
"""
