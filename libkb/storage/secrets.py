"""The secret values of a storage config, in every form they take in a request or a message.

Logs, errors and reports mask these; a SAS token also counts in the form its
signature takes in a request URL, and when it comes from the environment.
"""

from __future__ import annotations

import os

_SECRET_FIELDS = ("secret_key", "session_token", "account_key", "client_secret", "sse_customer_key")


def storage_secrets(config: object) -> list[str]:
    """Every secret ``config`` holds or makes the backend use (never empty strings)."""
    values = [str(v) for v in (getattr(config, name, None) for name in _SECRET_FIELDS) if v]
    if getattr(config, "backend", None) == "azure":
        # Here, not at the top: the Azure package loads its whole driver, which other backends never need.
        from libkb.storage.drivers.azure.sas import SAS_TOKEN_ENV, secret_forms

        for token in (getattr(config, "sas_token", None), os.environ.get(SAS_TOKEN_ENV)):
            if token:
                values += secret_forms(str(token))
    return list(dict.fromkeys(values))
