"""Key-encryption keys (KEKs): they wrap and unwrap the per-segment data keys of encrypted backups.

Why a package of its own: a KEK is either local bytes or a call to a cloud
KMS (I/O), while the segment format stays pure; the engines ask a
:class:`Keyring` built from the job file's ``encryption`` section.
"""

from libkb.keys.keyring import KeyEncryptionKey, Keyring, keyring_from_config
from libkb.keys.local import LocalKek

__all__ = ["KeyEncryptionKey", "Keyring", "LocalKek", "keyring_from_config"]
