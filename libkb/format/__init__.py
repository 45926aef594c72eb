"""libkb's backup format: segment codec and index/manifest models. Pure, no I/O."""
