"""Unit tests of the S3 driver that need no server.

Pure functions (addressing, encoding, SigV4, error mapping, XML parsing,
credential resolution) are tested directly; the multipart orchestration is
tested through an in-process fake at the driver's ``_request`` seam (no HTTP).
Behaviour against real servers is covered by the integration suite.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from libcloud.common.exceptions import BaseHTTPError, RateLimitReachedError
from libcloud.common.types import InvalidCredsError
from libcloud.storage.base import Container, Object
from libcloud.storage.types import ContainerDoesNotExistError, ObjectDoesNotExistError
from requests.structures import CaseInsensitiveDict

from libkb.errors import ConfigError
from libkb.storage.drivers import s3
from libkb.storage.drivers.s3 import (
    Credentials,
    S3Driver,
    S3Endpoint,
    bucket_address,
    build_s3_driver,
    canonical_query,
    complete_multipart_xml,
    copy_source,
    error_from_response,
    etag_unquoted,
    http_date_to_ms,
    iso_to_ms,
    parse_error_body,
    parse_list_v2,
    plan_parts,
    quote_path,
    resolve_credentials,
    resolve_endpoint,
    resolve_region,
    sign_v4,
)
from libkb.storage.drivers.s3 import errors as s3_errors
from libkb.storage.errors import PermissionDeniedError
from libkb.storage.settings import S3Config, TransferConfig

MiB = 1024 * 1024

# -- SigV4: the examples published in the AWS S3 documentation ------------------------
# https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html

AWS_EXAMPLE = Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
AWS_DATE = datetime(2013, 5, 24, tzinfo=UTC)
EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def _signature(headers: Mapping[str, str]) -> str:
    return headers["Authorization"].rsplit("Signature=", 1)[1]


def test_sigv4_get_object_with_range_matches_aws_example() -> None:
    out = sign_v4(
        method="GET",
        host="examplebucket.s3.amazonaws.com",
        path="/test.txt",
        query="",
        headers={"Range": "bytes=0-9"},
        payload_hash=EMPTY,
        credentials=AWS_EXAMPLE,
        region="us-east-1",
        now=AWS_DATE,
    )
    assert "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date," in out["Authorization"]
    assert _signature(out) == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"


def test_sigv4_put_object_matches_aws_example() -> None:
    out = sign_v4(
        method="PUT",
        host="examplebucket.s3.amazonaws.com",
        path="/" + quote_path("test$file.text"),
        query="",
        headers={
            "Date": "Fri, 24 May 2013 00:00:00 GMT",
            "x-amz-storage-class": "REDUCED_REDUNDANCY",
        },
        payload_hash="44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
        credentials=AWS_EXAMPLE,
        region="us-east-1",
        now=AWS_DATE,
    )
    assert _signature(out) == "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"


def test_sigv4_list_objects_matches_aws_example() -> None:
    out = sign_v4(
        method="GET",
        host="examplebucket.s3.amazonaws.com",
        path="/",
        query=canonical_query({"prefix": "J", "max-keys": "2"}),
        headers={},
        payload_hash=EMPTY,
        credentials=AWS_EXAMPLE,
        region="us-east-1",
        now=AWS_DATE,
    )
    assert _signature(out) == "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"


def test_sigv4_get_bucket_lifecycle_matches_aws_example() -> None:
    out = sign_v4(
        method="GET",
        host="examplebucket.s3.amazonaws.com",
        path="/",
        query=canonical_query({"lifecycle": ""}),
        headers={},
        payload_hash=EMPTY,
        credentials=AWS_EXAMPLE,
        region="us-east-1",
        now=AWS_DATE,
    )
    assert _signature(out) == "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"


def test_sigv4_does_not_sign_user_agent_and_adds_token() -> None:
    creds = Credentials("AKID", "secret", "session-token")
    out = sign_v4(
        method="GET",
        host="h:9000",
        path="/b/k",
        query="",
        headers={"User-Agent": "x", "Accept-Encoding": "identity", "If-Match": '"e"'},
        payload_hash=EMPTY,
        credentials=creds,
        region="garage",
        now=AWS_DATE,
    )
    signed = out["Authorization"].split("SignedHeaders=")[1].split(",")[0]
    assert signed == "host;if-match;x-amz-content-sha256;x-amz-date;x-amz-security-token"
    assert out["x-amz-security-token"] == "session-token"
    assert "/20130524/garage/s3/aws4_request" in out["Authorization"]
    assert out["Host"] == "h:9000"


def test_sigv4_agrees_with_botocore_for_awkward_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    import botocore.auth as botocore_auth  # in the test extras
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotoCredentials

    key = "dir/ünï cödé+&?#%~=;:@,'!*()$[]/x"
    params = {"list-type": "2", "prefix": "a b+c/ü", "continuation-token": "x/y+z=="}
    query = canonical_query(params)
    path = "/bucket/" + quote_path(key)
    now = datetime(2024, 2, 3, 4, 5, 6, tzinfo=UTC)
    ours = sign_v4(
        method="GET",
        host="127.0.0.1:9000",
        path=path,
        query=query,
        headers={},
        payload_hash=EMPTY,
        credentials=Credentials("AK", "SK", "TOKEN"),
        region="eu-central-1",
        now=now,
    )
    request = AWSRequest(
        method="GET",
        url=f"http://127.0.0.1:9000{path}?{query}",
        headers={"x-amz-content-sha256": EMPTY},
    )
    monkeypatch.setattr(botocore_auth, "get_current_datetime", lambda: now.replace(tzinfo=None))
    signer = botocore_auth.S3SigV4Auth(BotoCredentials("AK", "SK", "TOKEN"), "s3", "eu-central-1")
    signer.add_auth(request)
    assert ours["Authorization"] == request.headers["Authorization"]


# -- encoding ----------------------------------------------------------------------------


def test_quote_path_encodes_everything_but_unreserved_and_slash() -> None:
    assert quote_path("a b/c+d&e?f#g%h~i") == "a%20b/c%2Bd%26e%3Ff%23g%25h~i"
    assert quote_path("ü/ключ") == "%C3%BC/%D0%BA%D0%BB%D1%8E%D1%87"
    assert quote_path("a/../b") == "a/../b"  # sent as is; no client-side normalisation


def test_canonical_query_sorts_and_encodes() -> None:
    assert canonical_query({"uploads": ""}) == "uploads="
    assert (
        canonical_query({"prefix": "a b+c", "list-type": "2", "encoding-type": "url"})
        == "encoding-type=url&list-type=2&prefix=a%20b%2Bc"
    )


def test_copy_source_is_url_encoded() -> None:
    assert copy_source("bkt", "a b/ü+&") == "/bkt/a%20b/%C3%BC%2B%26"


# -- endpoint, region, addressing -------------------------------------------------------


def test_region_order() -> None:
    assert resolve_region("garage", {"AWS_REGION": "x"}) == "garage"
    assert resolve_region(None, {"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "y"}) == ("eu-west-1")
    assert resolve_region(None, {"AWS_DEFAULT_REGION": "ap-south-1"}) == "ap-south-1"
    assert resolve_region(None, {}) == "us-east-1"


def test_default_aws_endpoint_from_region() -> None:
    assert resolve_endpoint(None, "eu-west-3", allow_http=False).url == ("https://s3.eu-west-3.amazonaws.com")
    assert resolve_endpoint(None, "cn-north-1", allow_http=False).url == (
        "https://s3.cn-north-1.amazonaws.com.cn"
    )


def test_custom_endpoint_parsing() -> None:
    ep = resolve_endpoint("http://127.0.0.1:9000/", "us-east-1", allow_http=True)
    assert (ep.scheme, ep.netloc, ep.base_path) == ("http", "127.0.0.1:9000", "")
    ep = resolve_endpoint("https://S3.Example.com:443/gw/", "x", allow_http=False)
    assert (ep.scheme, ep.netloc, ep.base_path) == ("https", "s3.example.com", "/gw")
    ep = resolve_endpoint("minio.local:9000", "x", allow_http=False)
    assert ep.url == "https://minio.local:9000"
    ep = resolve_endpoint("http://[::1]:9000", "x", allow_http=True)
    assert ep.netloc == "[::1]:9000"


def test_http_endpoint_needs_allow_http() -> None:
    with pytest.raises(ConfigError, match="allow_http"):
        resolve_endpoint("http://minio:9000", "us-east-1", allow_http=False)
    with pytest.raises(ConfigError):
        resolve_endpoint("ftp://minio:9000", "us-east-1", allow_http=True)
    with pytest.raises(ConfigError, match="credentials"):
        resolve_endpoint("https://user:pw@minio:9000", "us-east-1", allow_http=False)


def test_virtual_hosted_addressing() -> None:
    aws = S3Endpoint("https", "s3.eu-west-1.amazonaws.com")
    assert bucket_address(aws, "my-bucket", path_style=False) == (
        "my-bucket.s3.eu-west-1.amazonaws.com",
        "",
    )
    assert bucket_address(aws, "my-bucket", path_style=True) == (
        "s3.eu-west-1.amazonaws.com",
        "/my-bucket",
    )
    custom = S3Endpoint("http", "minio.local:9000", "/base")
    assert bucket_address(custom, "b1", path_style=False) == ("b1.minio.local:9000", "/base")


@pytest.mark.parametrize(
    ("endpoint", "bucket"),
    [
        (S3Endpoint("http", "127.0.0.1:9000"), "bucket"),  # IP: no DNS for bucket.127...
        (S3Endpoint("http", "[::1]:9000"), "bucket"),
        (S3Endpoint("http", "localhost:9000"), "bucket"),
        (S3Endpoint("https", "s3.amazonaws.com"), "dotted.bucket"),  # breaks the TLS wildcard
        (S3Endpoint("https", "s3.amazonaws.com"), "Upper_Case"),
    ],
)
def test_virtual_hosted_falls_back_to_path_style(endpoint: S3Endpoint, bucket: str) -> None:
    netloc, prefix = bucket_address(endpoint, bucket, path_style=False)
    assert netloc == endpoint.netloc
    assert prefix == "/" + bucket


def _driver(*, path_style: bool, endpoint: str) -> S3Driver:
    cfg = S3Config(bucket="bkt", endpoint=endpoint, path_style=path_style, access_key="a", secret_key="s")
    return build_s3_driver(cfg, env={})


def test_connection_signs_the_virtual_host_and_short_path() -> None:
    captured: dict[str, Any] = {}

    class Transport:
        def send(self, method: str, url: str, body: Any, headers: Any, stream: bool) -> None:
            captured.update(method=method, url=url, headers=headers)

    driver = _driver(path_style=False, endpoint="https://s3.eu-west-1.amazonaws.com")
    conn = driver.connection
    conn.connection = Transport()
    conn.s3_request("GET", "bkt", "a b/c", params={"versionId": "1"})
    assert captured["url"] == "https://bkt.s3.eu-west-1.amazonaws.com/a%20b/c?versionId=1"
    assert captured["headers"]["Host"] == "bkt.s3.eu-west-1.amazonaws.com"
    assert "Version=" not in captured["url"]
    assert "user-agent" not in captured["headers"]["Authorization"].lower()
    driver.ex_close()


# -- error mapping -------------------------------------------------------------------------


def _err(code: str, message: str = "msg") -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
        f"<Message>{message}</Message><Key>k</Key><RequestId>1</RequestId></Error>"
    ).encode()


def _map(status: int, body: bytes = b"", **kw: Any) -> Exception:
    kw.setdefault("operation", "get")
    kw.setdefault("key", "k")
    return error_from_response(status, kw.pop("headers", {}), body, driver=None, bucket="b", **kw)


def test_404_no_such_key_and_no_such_bucket() -> None:
    assert isinstance(_map(404, _err("NoSuchKey")), ObjectDoesNotExistError)
    assert isinstance(_map(404, _err("NoSuchBucket")), ContainerDoesNotExistError)
    assert isinstance(_map(404, missing="object", operation="head"), ObjectDoesNotExistError)
    assert isinstance(_map(404, missing="bucket", key=None), ContainerDoesNotExistError)


def test_403_is_invalid_creds_never_not_found() -> None:
    exc = _map(403, _err("AccessDenied", "Access Denied"))
    assert isinstance(exc, InvalidCredsError)
    assert getattr(exc, "code", None) == 403
    assert "AccessDenied" in str(exc)
    head = _map(403, operation="head", missing="object")
    assert isinstance(head, InvalidCredsError) and "s3:ListBucket" in str(head)


@pytest.mark.parametrize("status", [400, 409, 500, 501, 502, 503])
def test_other_statuses_keep_the_code(status: int) -> None:
    exc = _map(status, _err("SlowDown" if status == 503 else "InternalError"))
    assert isinstance(exc, BaseHTTPError) and type(exc) is BaseHTTPError
    assert exc.code == status
    assert not isinstance(exc, ObjectDoesNotExistError)


def test_503_slowdown_and_429_are_recognisable() -> None:
    slow = _map(503, _err("SlowDown", "Please reduce your request rate."))
    assert isinstance(slow, BaseHTTPError) and slow.code == 503 and "SlowDown" in str(slow)
    rate = _map(429, headers={"Retry-After": "3"})
    assert isinstance(rate, RateLimitReachedError)
    assert rate.code == 429 and rate.retry_after == 3.0


@pytest.mark.parametrize(
    ("retry_after", "low", "high"),
    [
        (None, 0.0, 0.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0, 0.0),  # an HTTP-date in the past: retry now
        ("soon", 0.0, 0.0),  # unreadable: dropped
        ("in-ten", 0.0, 0.0),
    ],
)
def test_429_with_any_retry_after_form(retry_after: str | None, low: float, high: float) -> None:
    """Libcloud's RateLimitReachedError does float(Retry-After); an HTTP-date used to raise ValueError."""
    headers = {} if retry_after is None else {"Retry-After": retry_after}
    rate = _map(429, headers=headers)
    assert isinstance(rate, RateLimitReachedError) and rate.code == 429
    assert low <= rate.retry_after <= high


def test_429_with_a_future_http_date_waits_until_then() -> None:
    from email.utils import format_datetime

    when = format_datetime(datetime.fromtimestamp(time.time() + 30, UTC), usegmt=True)
    rate = _map(429, headers={"Retry-After": when})
    assert isinstance(rate, RateLimitReachedError)
    assert 25 <= rate.retry_after <= 31


def test_wrong_region_hint() -> None:
    exc = _map(301, headers={"x-amz-bucket-region": "eu-west-2"})
    assert "eu-west-2" in str(exc)


def test_error_message_never_carries_request_details() -> None:
    body = (
        b"<Error><Code>SignatureDoesNotMatch</Code><Message>no</Message>"
        b"<AWSAccessKeyId>AKID</AWSAccessKeyId><StringToSign>secretish</StringToSign>"
        b"<CanonicalRequest>GET /x</CanonicalRequest></Error>"
    )
    text = str(_map(403, body))
    assert "secretish" not in text and "CanonicalRequest" not in text


def test_embedded_error_in_200() -> None:
    assert s3_errors._embedded_error(b"<CopyObjectResult/>", driver=None, bucket="b", key="k",
                              operation="copy") is None  # fmt: skip
    exc = s3_errors._embedded_error(_err("InternalError"), driver=None, bucket="b", key="k", operation="copy")
    assert isinstance(exc, BaseHTTPError) and exc.code == 500
    slow = s3_errors._embedded_error(_err("SlowDown"), driver=None, bucket="b", key="k", operation="c")
    assert isinstance(slow, BaseHTTPError) and slow.code == 503


def test_parse_error_body_tolerates_junk() -> None:
    assert parse_error_body(b"") == (None, None)
    assert parse_error_body(b"<html>oops") == (None, None)
    assert parse_error_body(_err("X", "y")) == ("X", "y")


# -- parsing -----------------------------------------------------------------------------

_NS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'


def test_list_v2_url_encoded_keys_minio_and_seaweedfs_styles() -> None:
    # MinIO encodes a space as '+', SeaweedFS as '%20'; both encode '+' as '%2B'.
    body = (
        f"<ListBucketResult {_NS}><Name>b</Name><IsTruncated>true</IsTruncated>"
        "<NextContinuationToken>tok/+=</NextContinuationToken>"
        "<Contents><Key>a+b/c%2Bd%26e%3Ff%23g%25h%7Ei</Key>"
        "<LastModified>2024-05-01T12:34:56.789Z</LastModified>"
        "<ETag>&#34;abc&#34;</ETag><Size>17</Size></Contents>"
        "<Contents><Key>a%20b/%C3%BC</Key><LastModified>2024-05-01T12:34:56Z</LastModified>"
        '<ETag>"def-2"</ETag><Size>3</Size></Contents>'
        "<EncodingType>url</EncodingType></ListBucketResult>"
    ).encode()
    page = parse_list_v2(body)
    assert page.truncated and page.next_token == "tok/+="
    assert page.entries == [
        ("a b/c+d&e?f#g%h~i", 17, "abc", 1714566896789),
        ("a b/ü", 3, "def-2", 1714566896000),
    ]


def test_list_v2_raw_keys_are_not_decoded() -> None:
    body = (
        f"<ListBucketResult {_NS}><IsTruncated>false</IsTruncated>"
        "<Contents><Key>a+b%20c</Key><Size>1</Size></Contents></ListBucketResult>"
    ).encode()
    page = parse_list_v2(body)
    assert page.entries[0][0] == "a+b%20c"
    assert not page.truncated


def test_time_and_etag_helpers() -> None:
    assert http_date_to_ms("Fri, 24 May 2013 00:00:00 GMT") == 1369353600000
    assert http_date_to_ms(None) == 0 and http_date_to_ms("garbage") == 0
    assert iso_to_ms("2013-05-24T00:00:00.123Z") == 1369353600123
    assert etag_unquoted('"abc-3"') == "abc-3"
    assert etag_unquoted('W/"x"') == "x"
    assert etag_unquoted(None) is None


def test_complete_xml_and_plan_parts() -> None:
    xml = complete_multipart_xml(['"a"', '"b&"'])
    assert xml == (
        b'<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"a"</ETag></Part>'
        b'<Part><PartNumber>2</PartNumber><ETag>"b&amp;"</ETag></Part>'
        b"</CompleteMultipartUpload>"
    )
    assert plan_parts(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert plan_parts(0, 4) == []


# -- credentials -------------------------------------------------------------------------


def _no_botocore() -> None:
    return None


def test_credentials_order_config_then_env() -> None:
    cfg = S3Config(bucket="b", access_key="CFGKEY", secret_key="cfgsecret")
    env = {"AWS_ACCESS_KEY_ID": "ENVKEY", "AWS_SECRET_ACCESS_KEY": "envsecret"}
    provider = resolve_credentials(cfg, env, _no_botocore)
    assert provider.get().access_key == "CFGKEY" and provider.source == "config"
    provider = resolve_credentials(S3Config(bucket="b"), env | {"AWS_SESSION_TOKEN": "t"})
    creds = provider.get()
    assert (creds.access_key, creds.token, provider.source) == ("ENVKEY", "t", "environment")


def test_half_given_credentials_are_an_error() -> None:
    with pytest.raises(PermissionDeniedError, match="secret_key"):
        resolve_credentials(S3Config(bucket="b", access_key="AK"), {}, _no_botocore)
    with pytest.raises(PermissionDeniedError, match="AWS_SECRET_ACCESS_KEY"):
        resolve_credentials(S3Config(bucket="b"), {"AWS_ACCESS_KEY_ID": "AK"}, _no_botocore)


def test_botocore_chain_is_refreshed_per_request() -> None:
    class Frozen:
        def __init__(self, n: int) -> None:
            self.access_key, self.secret_key, self.token = f"AK{n}", f"SK{n}", f"T{n}"

    class Refreshable:
        method = "assume-role-with-web-identity"
        calls = 0

        def get_frozen_credentials(self) -> Frozen:
            Refreshable.calls += 1
            return Frozen(Refreshable.calls)

    provider = resolve_credentials(S3Config(bucket="b"), {}, Refreshable)
    assert provider.get().access_key == "AK1"
    assert provider.get().token == "T2"
    assert "web-identity" in provider.source


def test_no_credentials_names_what_to_set() -> None:
    with pytest.raises(PermissionDeniedError) as info:
        resolve_credentials(S3Config(bucket="b"), {}, _no_botocore)
    text = str(info.value)
    for name in ("access_key", "secret_key", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert name in text
    assert isinstance(info.value, PermissionError)


def test_secrets_stay_out_of_reprs() -> None:
    secret = "s3cr3t-VALUE-that-must-not-leak"
    token = "t0ken-VALUE-that-must-not-leak"
    driver = build_s3_driver(
        S3Config(
            bucket="b",
            endpoint="http://127.0.0.1:9000",
            allow_http=True,
            access_key="AKIAEXAMPLEKEY",
            secret_key=secret,
            session_token=token,
        ),
        env={},
    )
    texts = [
        repr(driver),
        str(driver),
        repr(driver.connection),
        repr(driver._credentials),
        repr(driver._credentials.get()),
        repr(vars(driver)),
        str(_map(403, _err("AccessDenied"))),
    ]
    for text in texts:
        assert secret not in text and token not in text
    driver.ex_close()


def test_build_rejects_tiny_parts() -> None:
    cfg = S3Config(bucket="b", access_key="a", secret_key="s", transfer=TransferConfig(part_size=MiB))
    with pytest.raises(ConfigError, match="part_size"):
        build_s3_driver(cfg, env={})


# -- orchestration through an in-process fake (no HTTP) -----------------------------------


class _Raw:
    def __init__(self, body: bytes, fail_after: int | None = None) -> None:
        self._body = body
        self._pos = 0
        self._fail_after = fail_after

    def read(self, amount: int, decode_content: bool = False) -> bytes:
        if self._fail_after is not None and self._pos >= self._fail_after:
            raise ConnectionResetError("reset by peer")
        end = self._pos + amount
        if self._fail_after is not None:
            end = min(end, self._fail_after)
        chunk = self._body[self._pos : end]
        self._pos += len(chunk)
        return chunk

    def close(self) -> None:
        pass


def _response(
    method: str,
    status: int,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    raw: _Raw | None = None,
) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.headers = CaseInsensitiveDict(dict(headers or {}))
    response._content = body
    response.raw = raw or _Raw(body)
    request = requests.PreparedRequest()
    request.method = method
    response.request = request
    return response


class FakeS3Driver(S3Driver):
    """S3Driver whose requests go to an in-memory bucket (multipart-aware)."""

    def __init__(self, transfer: TransferConfig, **kw: Any) -> None:
        super().__init__(
            endpoint=S3Endpoint("http", "fake:9000"),
            region="us-east-1",
            credentials=s3.StaticCredentials(Credentials("a", "s"), "test"),
            transfer=transfer,
            **kw,
        )
        self.objects: dict[str, bytes] = {}
        self.uploads: dict[str, dict[int, bytes]] = {}
        self.aborted: list[str] = []
        self.log: list[tuple[str, str]] = []
        self.fail_part: int | None = None
        self.in_flight = 0
        self.max_in_flight = 0
        self.part_delay = 0.0
        self.lock = threading.Lock()
        self.calls = 0
        self.fail_get_after: int | None = None

    def _request(self, method: str, bucket: str, key: str | None = None, **kw: Any) -> Any:
        params = kw.get("params") or {}
        data = kw.get("data")
        headers = kw.get("headers") or {}
        with self.lock:
            self.log.append((method, "&".join(sorted(params))))
        if method == "POST" and "uploads" in params:
            upload_id = f"up{len(self.uploads) + 1}"
            self.uploads[upload_id] = {}
            return _response(method, 200, f"<R><UploadId>{upload_id}</UploadId></R>".encode())
        if method == "PUT" and "partNumber" in params:
            number = int(params["partNumber"])
            with self.lock:
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                time.sleep(self.part_delay)
                if number == self.fail_part:
                    return _response(method, 500, _err("InternalError"))
                parts = self.uploads.get(params["uploadId"])
                if parts is None:
                    return _response(method, 404, _err("NoSuchUpload"))
                parts[number] = bytes(data or b"")
                return _response(method, 200, headers={"ETag": f'"etag{number}"'})
            finally:
                with self.lock:
                    self.in_flight -= 1
        if method == "POST" and "uploadId" in params:
            parts = self.uploads.pop(params["uploadId"])
            self.objects[key or ""] = b"".join(parts[n] for n in sorted(parts))
            return _response(method, 200, b"<CompleteMultipartUploadResult/>")
        if method == "DELETE" and "uploadId" in params:
            self.aborted.append(params["uploadId"])
            self.uploads.pop(params["uploadId"], None)
            return _response(method, 204)
        if method == "PUT":
            self.objects[key or ""] = data or b""
            return _response(method, 200, headers={"ETag": '"x"'})
        if method == "HEAD" and key is None:
            return _response(method, 200)
        if method == "HEAD":
            if key not in self.objects:
                return _response(method, 404)
            return _response(method, 200, headers={"Content-Length": str(len(self.objects[key]))})
        if method == "GET" and key is not None:
            if key not in self.objects:
                return _response(method, 404, _err("NoSuchKey"))
            body = self.objects[key]
            rng = headers.get("Range")
            if rng:
                start = int(rng.split("=")[1].split("-")[0])
                body = body[start:]
                self.calls += 1
                return _response(method, 206, body, {"Content-Length": str(len(body)), "ETag": '"v1"'})
            fail = self.fail_get_after
            return _response(
                method,
                200,
                body,
                {"Content-Length": str(len(body)), "ETag": '"v1"'},
                raw=_Raw(body, fail),
            )
        raise AssertionError(f"unexpected {method} {key} {params}")


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


CONTAINER = Container(name="b", extra={}, driver=None)
SMALL = TransferConfig(part_size=5 * MiB, max_concurrency=3, single_put_threshold=6 * MiB)


def test_small_stream_is_one_put() -> None:
    driver = FakeS3Driver(SMALL)
    data = bytes(range(256)) * 1000
    driver.ex_upload_stream(CONTAINER, "k", _chunks(data, 777))
    assert driver.objects["k"] == data
    assert [m for m, _ in driver.log] == ["PUT"]
    driver.ex_close()


def test_multipart_stream_reassembles_in_order_with_odd_chunks() -> None:
    driver = FakeS3Driver(SMALL)
    driver.part_delay = 0.01
    data = bytes(range(251)) * (23 * MiB // 251 + 7)
    calls: list[int] = []

    def counting_call(fn: Any) -> Any:
        calls.append(1)
        return fn()

    driver.libkb_call = counting_call
    driver.ex_upload_stream(CONTAINER, "k", _chunks(data, 3 * MiB + 17))
    assert driver.objects["k"] == data
    parts = -(-len(data) // (5 * MiB))
    assert len(calls) == parts + 2  # initiate, each part, complete
    assert driver.max_in_flight <= 3
    driver.ex_close()


def test_memory_stays_bounded() -> None:
    driver = FakeS3Driver(SMALL)
    driver.part_delay = 0.05
    produced = 0
    uploaded_parts = 0

    def source() -> Iterator[bytes]:
        nonlocal produced
        for _ in range(60):
            produced += MiB
            # producer may be ahead of finished parts by at most (conc + 1) parts
            done = sum(len(p) for u in driver.uploads.values() for p in u.values())
            assert produced - done <= (3 + 1) * 5 * MiB + 6 * MiB + MiB
            yield b"\0" * MiB

    driver.ex_upload_stream(CONTAINER, "k", source())
    uploaded_parts = sum(1 for m, q in driver.log if m == "PUT" and "partNumber" in q)
    assert uploaded_parts == 12
    assert len(driver.objects["k"]) == 60 * MiB
    driver.ex_close()


def test_iterator_error_aborts_and_nothing_is_visible() -> None:
    driver = FakeS3Driver(SMALL)

    def source() -> Iterator[bytes]:
        yield b"a" * (7 * MiB)
        yield b"b" * (7 * MiB)
        raise RuntimeError("producer failed")

    with pytest.raises(RuntimeError, match="producer failed"):
        driver.ex_upload_stream(CONTAINER, "k", source())
    assert "k" not in driver.objects
    assert driver.aborted == ["up1"]
    driver.ex_close()


def test_part_failure_aborts_and_reraises() -> None:
    driver = FakeS3Driver(SMALL)
    driver.fail_part = 2
    with pytest.raises(BaseHTTPError) as info:
        driver.ex_upload_stream(CONTAINER, "k", _chunks(b"z" * (30 * MiB), MiB))
    assert info.value.code == 500
    assert "k" not in driver.objects
    assert driver.aborted == ["up1"]
    assert ("POST", "uploadId") not in driver.log  # never completed
    driver.ex_close()


def test_get_object_tells_missing_object_from_missing_bucket() -> None:
    driver = FakeS3Driver(SMALL)
    with pytest.raises(ObjectDoesNotExistError):
        driver.get_object("b", "nope")
    assert [m for m, _ in driver.log] == ["HEAD", "HEAD"]
    driver.ex_close()


def test_download_accepts_bare_object_and_resumes_mid_stream() -> None:
    driver = FakeS3Driver(SMALL)
    data = bytes(range(256)) * 4096
    driver.objects["k"] = data
    driver.fail_get_after = 300_000
    bare = Object("k", None, None, {}, {}, CONTAINER, driver)
    stream = driver.download_object_as_stream(bare, chunk_size=64 * 1024)
    assert b"".join(stream) == data
    assert driver.calls == 1  # one ranged GET resumed the stream
    driver.ex_close()


def test_download_of_missing_object_raises_on_call() -> None:
    driver = FakeS3Driver(SMALL)
    bare = Object("nope", None, None, {}, {}, CONTAINER, driver)
    with pytest.raises(ObjectDoesNotExistError):
        driver.download_object_as_stream(bare)
    driver.ex_close()
