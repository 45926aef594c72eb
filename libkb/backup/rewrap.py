"""``kafka-backup rewrap``: wrap every data key of a backup under the current key; record bytes untouched.

Why it exists: key rotation. After a new key becomes ``encryption.key_id``
(the old one moves to ``encryption.old_keys``), new segments use it, and
rewrap moves the old segments over, so the old key can be retired. Only key
objects change (a few hundred bytes each); segments are never rewritten.

It takes the backup's lease, as every writer of a backup does, so it never
races a backup run or a prune. Crash safety: each key object is replaced by
one atomic write (a whole-object PUT, or rename on a filesystem), so a
``kill -9`` at any instant leaves every key object wrapped either under the
old key or under the new one, and the keyring (current plus old keys) reads
both; running rewrap again finishes the job.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from libkb.backup.envelope import Envelope
from libkb.backup.ownership import LeaseOwnership
from libkb.errors import WrongKeyError
from libkb.format.encryption import KEY_OBJECT_SUFFIX, segment_of_key_object
from libkb.format.models import manifest_key
from libkb.keys import Keyring
from libkb.storage import NotFoundError, StorageBackend

log = logging.getLogger("libkb.rewrap")

LEASE_TTL_SECS = 60.0
_WORKERS = 8


@dataclass(slots=True)
class RewrapReport:
    backup_id: str
    key_id: str  # the key every data key is wrapped under now
    rewrapped: int = 0
    #: Already wrapped under ``key_id``: nothing to do.
    unchanged: int = 0
    #: Key ids found before, with how many data keys each wrapped.
    found: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {
            "backup_id": self.backup_id,
            "key_id": self.key_id,
            "rewrapped": self.rewrapped,
            "unchanged": self.unchanged,
            "found": dict(sorted(self.found.items())),
        }


def rewrap_backup(
    backend: StorageBackend, backup_id: str, keyring: Keyring, *, lease_ttl_secs: float = LEASE_TTL_SECS
) -> RewrapReport:
    """Rewrap every data key of ``backup_id`` under ``keyring``'s current key, holding the lease."""
    current = keyring.current()  # a missing current key fails before anything is taken
    if not backend.exists(manifest_key(backup_id)):
        raise NotFoundError("no such backup (no manifest)", backend=backend.name, key=manifest_key(backup_id))
    run_id = f"rewrap-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:8]}"
    ownership = LeaseOwnership(backend, backup_id, run_id, lease_ttl_secs)
    ownership.acquire()
    try:
        envelope = Envelope(backend, backup_id, keyring)
        names = [k for k in backend.iter_keys(f"{backup_id}/topics/") if k.endswith(KEY_OBJECT_SUFFIX)]
        report = RewrapReport(backup_id, current.key_id)
        found: Counter[str] = Counter()

        def one(name: str) -> bool:
            segment = segment_of_key_object(name)
            assert segment is not None
            obj = envelope.key_object(segment)
            found[obj.key_id] += 1
            if obj.key_id == current.key_id:
                return False
            data_key = envelope.data_key(segment, obj)  # the old key, from the keyring
            wrapped = current.wrap(data_key.secret, segment)
            if current.unwrap(wrapped, segment) != data_key.secret:  # never store what cannot be read
                raise WrongKeyError(
                    f"{name}: key {current.key_id!r} did not give back the data key it wrapped"
                )
            new = obj.rewrapped(current.key_id, current.kind, wrapped)
            ownership.check_backup(f"{name} is not rewrapped")
            backend.put(name, new.to_json())  # one atomic write: the old wrapping or the new
            return True

        with ThreadPoolExecutor(_WORKERS, "libkb-rewrap") as pool:
            for changed in pool.map(one, names):
                report.rewrapped += changed
                report.unchanged += not changed
        report.found = dict(found)
        log.info("rewrapped %d data key(s) of %s under %r", report.rewrapped, backup_id, current.key_id)
        return report
    finally:
        ownership.release()
