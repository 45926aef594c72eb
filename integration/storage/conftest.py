"""Rewrite the asserts of the shipped conformance suite, so its failures show values."""

import pytest

pytest.register_assert_rewrite("libkb.storage.testing")
