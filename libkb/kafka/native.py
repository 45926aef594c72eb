"""Whether libkb's C paths may use a confluent-kafka client's librdkafka handle.

The backup's intake (:mod:`libkb.backup.intake`) and the restore's block
producer (:mod:`libkb.restore.direct`) read the handle from confluent-kafka's
client object (``libkb/format/_rdkafka.h``). They share these rules: an
environment variable turns each off, only confluent-kafka's own client
classes qualify (not a test double), and only the major version whose
client objects are laid out as the C code expects.
"""

from __future__ import annotations

import logging
import os

import confluent_kafka

log = logging.getLogger("libkb.kafka")

#: The confluent-kafka releases whose client objects start with their librdkafka handle (all of 2.x).
KNOWN_MAJOR = "2."


def native_allowed(client: object, client_type: type, env: str, off: str, what: str) -> bool:
    """``client`` may be used from C: ``env`` is not ``off``, the type and version are known ones.

    ``what``: the C path, for the warning logged when the version is another.
    """
    if os.environ.get(env, "").lower() == off or not isinstance(client, client_type):
        return False
    if not str(getattr(confluent_kafka, "__version__", "")).startswith(KNOWN_MAJOR):
        log.warning("%s is off: it knows confluent-kafka %s only", what, KNOWN_MAJOR)
        return False
    return True
