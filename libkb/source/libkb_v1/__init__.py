"""libkb's own backup format, version 1 (docs/format.rst), read as a segment source."""
