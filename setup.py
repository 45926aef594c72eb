"""Builds the optional C extensions; everything else is in pyproject.toml.

- ``libkb/format/_packer.c`` and ``_intake.c``: the backup's record packer
  (from Message objects, or from librdkafka's messages read in C) and CRC helpers;
  ``_produce.c``: the restore's records produced from C;
- ``libkb/format/_rustrec.c``: the record decoder for the Rust tool's segments.

``optional=True``: without a C compiler the install still succeeds and libkb
uses the pure-Python code (same results, slower; see libkb/format/packer.py and
libkb/format/rust_segment.py).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "libkb.format._packer",
            ["libkb/format/_packer.c", "libkb/format/_intake.c", "libkb/format/_produce.c"],
            depends=[
                "libkb/format/_msgpack.h",
                "libkb/format/_intake.h",
                "libkb/format/_produce.h",
                "libkb/format/_rdkafka.h",
                "libkb/format/_unpack.h",
            ],
            libraries=["z", "dl"],
            optional=True,
            extra_compile_args=["-O2", "-std=c99", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        ),
        Extension(
            "libkb.format._rustrec",
            ["libkb/format/_rustrec.c"],
            optional=True,
            extra_compile_args=["-O2", "-std=c99", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        ),
    ]
)
