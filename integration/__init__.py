"""Integration tests against real services (Kafka, S3, Azure Blob, GCS emulators).

The harness that installs and runs those services lives in
:mod:`integration.services`; the fixtures are in ``integration/conftest.py``.
"""
