"""S3 server-side encryption: the request headers of SSE-S3, SSE-KMS and SSE-C, per operation.

Why one function: every request goes through the driver's ``_request``, and
which headers an operation needs differs. SSE-S3 and SSE-KMS are asked for
when an object is created (PUT, CopyObject, CreateMultipartUpload) and must
not be sent with UploadPart; SSE-C's customer key goes with every request
that writes or reads the object's bytes or metadata (PUT, UploadPart, GET,
HEAD, and the source of a copy), never with Complete/Abort/DELETE or a
listing. The customer key is a secret: the settings keep it out of their repr.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from libkb.storage.config import SSE_C

_C = "x-amz-server-side-encryption-customer-"
_COPY_C = "x-amz-copy-source-server-side-encryption-customer-"


@dataclass(frozen=True, slots=True)
class ServerSideEncryption:
    mode: str
    kms_key_id: str | None = None
    bucket_key_enabled: bool | None = None
    #: SSE-C: the 32-byte key, base64.
    customer_key: str | None = field(default=None, repr=False)

    def headers(
        self, method: str, key: str | None, params: Mapping[str, str] | None, given: Mapping[str, str] | None
    ) -> dict[str, str]:
        """The encryption headers of one request (none for a bucket-level request)."""
        if key is None:
            return {}
        params = params or {}
        part = "partNumber" in params
        create = method == "POST" and "uploads" in params
        if self.mode != SSE_C:
            return self._managed() if (method == "PUT" and not part) or create else {}
        if ("uploadId" in params and not part) or (method not in ("GET", "HEAD", "PUT") and not create):
            return {}
        out = self._customer(_C)
        if given and any(h.lower() == "x-amz-copy-source" for h in given):
            out |= self._customer(_COPY_C)  # the source is encrypted with the same key
        return out

    def _managed(self) -> dict[str, str]:
        out = {"x-amz-server-side-encryption": self.mode}
        if self.kms_key_id:
            out["x-amz-server-side-encryption-aws-kms-key-id"] = self.kms_key_id
        if self.bucket_key_enabled is not None:
            out["x-amz-server-side-encryption-bucket-key-enabled"] = str(self.bucket_key_enabled).lower()
        return out

    def _customer(self, prefix: str) -> dict[str, str]:
        assert self.customer_key is not None
        raw = base64.b64decode(self.customer_key)
        return {
            prefix + "algorithm": "AES256",
            prefix + "key": self.customer_key,
            prefix + "key-MD5": base64.b64encode(hashlib.md5(raw).digest()).decode(),
        }
