"""S3 server-side encryption: the exact headers each request carries (MinIO checks the effect for real in
integration/encryption/test_s3_server_side.py; this pins the wiring, e.g. none on UploadPart for SSE-KMS)."""

from __future__ import annotations

import base64
import hashlib

import pytest

from libkb.errors import ConfigError
from libkb.storage.drivers.s3.sse import ServerSideEncryption
from libkb.storage.settings import load_storage_config

KEY = base64.b64encode(bytes(range(32))).decode()
MD5 = base64.b64encode(hashlib.md5(bytes(range(32))).digest()).decode()
COPY = {"x-amz-copy-source": "/b/src"}
Request = tuple[str, str | None, dict[str, str] | None, dict[str, str] | None]
#: (method, key, params, headers) of the requests the driver sends.
PUT: Request = ("PUT", "k", None, None)
CREATE: Request = ("POST", "k", {"uploads": ""}, None)
PART: Request = ("PUT", "k", {"partNumber": "1", "uploadId": "u"}, None)
COMPLETE: Request = ("POST", "k", {"uploadId": "u"}, None)
GET: Request = ("GET", "k", None, None)
HEAD: Request = ("HEAD", "k", None, None)
DELETE: Request = ("DELETE", "k", None, None)
LIST: Request = ("GET", None, {"list-type": "2"}, None)
COPY_PUT: Request = ("PUT", "k", None, COPY)


def test_sse_kms_asks_for_encryption_when_an_object_is_created_and_never_on_its_parts() -> None:
    sse = ServerSideEncryption("aws:kms", "alias/backups", True)
    created = {
        "x-amz-server-side-encryption": "aws:kms",
        "x-amz-server-side-encryption-aws-kms-key-id": "alias/backups",
        "x-amz-server-side-encryption-bucket-key-enabled": "true",
    }
    for request in (PUT, CREATE, COPY_PUT):
        assert sse.headers(*request) == created
    for request in (PART, COMPLETE, GET, HEAD, DELETE, LIST):
        assert sse.headers(*request) == {}
    assert ServerSideEncryption("AES256").headers(*PUT) == {"x-amz-server-side-encryption": "AES256"}


def test_sse_c_sends_its_key_with_every_read_and_write_of_the_object_and_for_a_copy_source() -> None:
    sse = ServerSideEncryption("sse-c", customer_key=KEY)
    customer = {
        "x-amz-server-side-encryption-customer-algorithm": "AES256",
        "x-amz-server-side-encryption-customer-key": KEY,
        "x-amz-server-side-encryption-customer-key-MD5": MD5,
    }
    for request in (PUT, CREATE, PART, GET, HEAD):
        assert sse.headers(*request) == customer
    for request in (COMPLETE, DELETE, LIST):
        assert sse.headers(*request) == {}
    source = {k.replace("x-amz-", "x-amz-copy-source-"): v for k, v in customer.items()}
    assert sse.headers(*COPY_PUT) == customer | source
    assert KEY not in repr(sse)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"server_side_encryption": "aws:kms2"}, "storage.server_side_encryption"),
        ({"sse_kms_key_id": "k"}, "storage.sse_kms_key_id: applies to server_side_encryption: aws:kms only"),
        ({"server_side_encryption": "sse-c"}, "storage.sse_customer_key: sse-c needs sse_customer_key"),
        ({"server_side_encryption": "sse-c", "sse_customer_key": "c2hvcnQ="}, "must be base64 of 32 bytes"),
        (
            {"server_side_encryption": "sse-c", "sse_customer_key": KEY, "endpoint": "http://127.0.0.1:9000"},
            "storage.sse_customer_key: refused over plain http://",
        ),
    ],
)
def test_server_side_encryption_settings_that_do_not_fit_are_refused(
    settings: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        load_storage_config({"backend": "s3", "bucket": "b", **settings})
    config = load_storage_config(
        {"backend": "s3", "bucket": "b", "server_side_encryption": "sse-c", "sse_customer_key": KEY}
    )
    assert KEY not in repr(config)
