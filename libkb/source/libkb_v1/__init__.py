"""libkb's own backup format (docs/format.rst), read as a segment source.

Named for version 1, the layout it reads; it reads every version since too:
version 2 only added a codec (lz4), which :mod:`libkb.format.segment` decodes;
version 8 added restart points to index entries, from which it reads a segment
a restore needs only part of (:mod:`.restarts`).
"""
