"""Builds the optional C packer (libkb/format/_packer.c); everything else is in pyproject.toml.

``optional=True``: without a C compiler the install still succeeds and libkb
uses the pure-Python packer (same bytes, slower; see libkb/format/packer.py).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "libkb.format._packer",
            ["libkb/format/_packer.c"],
            libraries=["z"],
            optional=True,
            extra_compile_args=["-O2", "-std=c99", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        )
    ]
)
