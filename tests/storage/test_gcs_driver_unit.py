"""GCS JSON-API driver without a server: credential chain, endpoints, URL
encoding, response -> exception mapping and the resumable-upload protocol.

fake-gcs-server checks no auth, so 401/403 handling is tested here against
canned responses: ``GcsJsonResponse`` is built from a ``requests.Response``
directly, and driver calls are answered in-process by replacing
``HTTPAdapter.send``.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from libcloud.common.exceptions import BaseHTTPError, RateLimitReachedError
from libcloud.common.types import InvalidCredsError
from libcloud.storage.base import Container, Object
from libcloud.storage.types import ContainerDoesNotExistError, ObjectDoesNotExistError
from requests.structures import CaseInsensitiveDict

from libkb.errors import ConfigError
from libkb.storage.drivers import gcs
from libkb.storage.drivers.common.transport import NoRetry
from libkb.storage.settings import GcsConfig, ResilienceConfig, TransferConfig

EMU = "http://127.0.0.1:4443"
Answer = tuple[int, dict[str, str], bytes]


def canned(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Any:
    resp = requests.Response()
    resp.status_code = status
    resp.headers = CaseInsensitiveDict(headers or {})
    resp._content = body
    resp._content_consumed = True  # type: ignore[attr-defined]  # a real attribute types-requests omits
    resp.raw = io.BytesIO(body)
    resp.reason = "canned"
    resp.encoding = "utf-8"
    resp.request = requests.Request("GET", "http://x/").prepare()
    return resp


class FakeHTTP:
    """Answers every request made through requests in this process."""

    def __init__(self) -> None:
        self.calls: list[tuple[requests.PreparedRequest, dict[str, Any]]] = []
        self.responder: Callable[[requests.PreparedRequest], Answer] = lambda r: (200, {}, b"{}")
        self.lock = threading.Lock()

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> Any:
        with self.lock:
            # A copy: the driver drops the body of the original once sent.
            self.calls.append((request.copy(), kwargs))
        status, headers, body = self.responder(request)
        resp = canned(status, body, headers)
        resp.request = request
        resp.url = request.url or ""
        return resp

    @property
    def requests(self) -> list[requests.PreparedRequest]:
        return [req for req, _ in self.calls]


@pytest.fixture
def http(monkeypatch: pytest.MonkeyPatch) -> FakeHTTP:
    fake = FakeHTTP()
    monkeypatch.setattr(
        requests.adapters.HTTPAdapter,
        "send",
        lambda adapter, request, **kw: fake.send(request, **kw),
    )
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    return fake


def cfg(**kw: Any) -> GcsConfig:
    base: dict[str, Any] = {"bucket": "bkt", "endpoint": EMU}
    base.update(kw)
    return GcsConfig(**base)


def container(driver: Any, name: str = "bkt") -> Container:
    return Container(name=name, extra={}, driver=driver)


def bare(driver: Any, name: str) -> Object:
    return Object(name, None, None, {}, {}, container(driver), driver)


def js(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def gerr(code: int, message: str) -> bytes:
    return js({"error": {"code": code, "message": message, "errors": [{"message": message}]}})


ITEM = {
    "name": "a/b c",
    "size": "5",
    "etag": "CKih16GjycICEAE=",
    "md5Hash": "XUFAKrxLKna5cZ2REBfFkg==",
    "updated": "2026-11-24T02:36:31.341201Z",
    "generation": "17",
}


def future() -> dt.datetime:
    # google-auth compares expiry with a naive UTC datetime.
    return dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(hours=1)


# --------------------------------------------------------------------------- endpoints and URLs


def test_endpoint_default_and_emulator() -> None:
    ep = gcs.resolve_gcs_endpoint(None)
    assert (ep.secure, ep.host, ep.port, ep.base_path) == (True, "storage.googleapis.com", 443, "")
    ep = gcs.resolve_gcs_endpoint("http://127.0.0.1:4443/")
    assert (ep.secure, ep.host, ep.port, ep.base_path) == (False, "127.0.0.1", 4443, "")
    ep = gcs.resolve_gcs_endpoint("https://proxy.example/gcs/storage/v1")
    assert (ep.host, ep.base_path) == ("proxy.example", "/gcs")
    with pytest.raises(ConfigError):
        gcs.resolve_gcs_endpoint("gs://bucket")


def test_object_names_fully_percent_encoded_in_paths(http: FakeHTTP) -> None:
    http.responder = lambda r: (200, {}, js(ITEM))
    drv = gcs.build_gcs_driver(cfg())
    drv.get_object("bkt", "a/b c+&?#%~é")
    assert http.requests[0].url == f"{EMU}/storage/v1/b/bkt/o/a%2Fb%20c%2B%26%3F%23%25~%C3%A9"
    drv.download_object_as_stream(bare(drv, "x/y"))
    assert http.requests[1].url == f"{EMU}/storage/v1/b/bkt/o/x%2Fy?alt=media"


def test_public_endpoint_urls(http: FakeHTTP) -> None:
    http.responder = lambda r: (200, {}, js(ITEM))
    creds = _StaticCreds("t")
    gcs.build_gcs_driver(cfg(endpoint=None), credentials=creds).get_object("bkt", "k")
    assert http.requests[0].url == "https://storage.googleapis.com/storage/v1/b/bkt/o/k"


def test_upload_name_query_exact(http: FakeHTTP) -> None:
    http.responder = lambda r: (200, {}, js(ITEM))
    drv = gcs.build_gcs_driver(cfg())
    drv.ex_put_object(container(drv), "d/ü x+y&z", b"data")
    url = http.requests[0].url or ""
    assert url.startswith(f"{EMU}/upload/storage/v1/b/bkt/o?")
    assert "name=d%2F%C3%BC%20x%2By%26z" in url and "uploadType=media" in url
    assert http.requests[0].body == b"data"


def test_listing_pages_and_metadata(http: FakeHTTP) -> None:
    pages: Iterator[Answer] = iter(
        [
            (200, {}, js({"items": [ITEM], "nextPageToken": "p2"})),
            (200, {}, js({"items": [{**ITEM, "name": "z"}]})),
        ]
    )
    http.responder = lambda r: next(pages)
    drv = gcs.build_gcs_driver(cfg())
    objs = list(drv.iterate_container_objects(container(drv), prefix="a b"))
    assert [o.name for o in objs] == ["a/b c", "z"]
    o = objs[0]
    assert (o.size, o.hash, o.extra["mtime_ms"]) == (5, "CKih16GjycICEAE=", 1795487791341)
    assert o.extra["md5_hash"] == "5d41402abc4b2a76b9719d911017c592"
    assert "prefix=a%20b" in (http.requests[0].url or "")
    assert "pageToken=p2" in (http.requests[1].url or "")


def test_rfc3339_with_nanoseconds() -> None:
    from libkb.storage.drivers.common.timestamps import rfc3339_to_ms

    assert rfc3339_to_ms("2026-11-24T02:36:31.341201999Z") == 1795487791341
    assert rfc3339_to_ms("2026-11-24T02:36:31Z") == 1795487791000
    assert rfc3339_to_ms("2026-11-24T03:36:31.5+01:00") == 1795487791500


# --------------------------------------------------------------------------- credentials


class _StaticCreds:
    """Stands in for google-auth credentials (valid/apply/refresh)."""

    def __init__(self, token: str, valid: bool = True) -> None:
        self.token = token
        self.valid = valid
        self.refreshes = 0

    def refresh(self, request: Any) -> None:
        self.refreshes += 1
        self.token = f"refreshed-{self.refreshes}"
        self.valid = True

    def apply(self, headers: dict[str, str], token: str | None = None) -> None:
        headers["authorization"] = f"Bearer {self.token}"


def test_emulator_without_credentials_sends_no_auth(http: FakeHTTP) -> None:
    http.responder = lambda r: (200, {}, js(ITEM))
    drv = gcs.build_gcs_driver(cfg())
    assert drv.token_source is None
    drv.get_object("bkt", "k")
    assert "Authorization" not in http.requests[0].headers


def test_google_auth_credentials_reach_authorization_header(http: FakeHTTP) -> None:
    from google.oauth2.credentials import Credentials

    http.responder = lambda r: (200, {}, js(ITEM))
    creds = Credentials(token="ya29.static", expiry=future())  # type: ignore[no-untyped-call]  # unannotated in google-auth
    drv = gcs.build_gcs_driver(cfg(), credentials=creds)
    drv.get_object("bkt", "k")
    assert http.requests[0].headers["Authorization"] == "Bearer ya29.static"


def test_expired_credentials_refreshed_once_across_threads(http: FakeHTTP) -> None:
    http.responder = lambda r: (200, {}, js(ITEM))
    creds = _StaticCreds("old", valid=False)
    drv = gcs.build_gcs_driver(cfg(), credentials=creds)
    threads = [threading.Thread(target=lambda: drv.get_object("bkt", "k")) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert creds.refreshes == 1
    assert {r.headers["Authorization"] for r in http.requests} == {"Bearer refreshed-1"}


def _service_account_file(tmp_path: Any) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "p",
        "private_key_id": "kid",
        "private_key": pem,
        "client_email": "sa@p.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    path = tmp_path / "sa.json"
    path.write_text(json.dumps(info))
    return str(path)


def _token_endpoint(req: requests.PreparedRequest) -> Answer | None:
    if (req.url or "").startswith("https://oauth2.googleapis.com/token"):
        return (
            200,
            {"content-type": "application/json"},
            js({"access_token": "sa-token", "expires_in": 3600, "token_type": "Bearer"}),
        )
    return None


def test_service_account_file_chain_to_header(http: FakeHTTP, tmp_path: Any) -> None:
    path = _service_account_file(tmp_path)
    http.responder = lambda r: _token_endpoint(r) or (200, {}, js(ITEM))
    drv = gcs.build_gcs_driver(cfg(service_account_path=path))
    assert drv.token_source is not None
    creds = drv.token_source.credentials
    assert type(creds).__module__ == "google.oauth2.service_account"
    assert tuple(creds.scopes) == gcs.GCS_SCOPES
    drv.get_object("bkt", "k")
    assert http.requests[0].url == "https://oauth2.googleapis.com/token"
    assert http.requests[1].headers["Authorization"] == "Bearer sa-token"
    assert "BEGIN PRIVATE KEY" not in repr(drv) + repr(drv.token_source)


def test_google_application_credentials_env(
    http: FakeHTTP, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", _service_account_file(tmp_path))
    drv = gcs.build_gcs_driver(cfg(endpoint=None))
    assert drv.token_source is not None
    assert type(drv.token_source.credentials).__name__ == "Credentials"


def test_missing_credentials_file_is_config_error(tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match="service_account_path"):
        gcs.build_gcs_driver(cfg(service_account_path=str(tmp_path / "nope.json")))


def test_application_default_credentials_for_real_service(
    http: FakeHTTP, monkeypatch: pytest.MonkeyPatch
) -> None:
    import google.auth

    creds = _StaticCreds("adc")
    seen: dict[str, Any] = {}

    def fake_default(scopes: Any = None, **kw: Any) -> Any:
        seen["scopes"] = scopes
        return creds, "proj"

    monkeypatch.setattr(google.auth, "default", fake_default)
    http.responder = lambda r: (200, {}, js(ITEM))
    gcs.build_gcs_driver(cfg(endpoint=None)).get_object("bkt", "k")
    assert tuple(seen["scopes"]) == gcs.GCS_SCOPES
    assert http.requests[0].headers["Authorization"] == "Bearer adc"


def test_no_adc_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import google.auth
    import google.auth.exceptions

    def fail(**kw: Any) -> Any:
        raise google.auth.exceptions.DefaultCredentialsError("none")  # type: ignore[no-untyped-call]  # unannotated in google-auth

    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setattr(google.auth, "default", fail)
    with pytest.raises(ConfigError) as info:
        gcs.build_gcs_driver(cfg(endpoint=None))
    assert "GOOGLE_APPLICATION_CREDENTIALS" in str(info.value)


def test_no_google_auth_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setitem(sys.modules, "google.auth", None)
    with pytest.raises(ConfigError, match=r"libkb\[gcp\]"):
        gcs.build_gcs_driver(cfg(endpoint=None))


def test_refresh_failure_becomes_invalid_creds(http: FakeHTTP) -> None:
    class RefreshError(Exception):
        pass

    class Broken(_StaticCreds):
        def refresh(self, request: Any) -> None:
            raise RefreshError("invalid_grant: account deleted")

    drv = gcs.build_gcs_driver(cfg(), credentials=Broken("x", valid=False))
    with pytest.raises(InvalidCredsError, match="invalid_grant"):
        drv.get_object("bkt", "k")
    assert http.requests == []


# --------------------------------------------------------------------------- response mapping


def _connection() -> Any:
    return gcs.GcsJsonConnection(gcs.resolve_gcs_endpoint(EMU), None)


@pytest.mark.parametrize("status", [401, 403])
def test_canned_auth_failures_raise_invalid_creds(status: int) -> None:
    body = gerr(status, "Anonymous caller does not have storage.objects.get access")
    with pytest.raises(InvalidCredsError) as info:
        gcs.GcsJsonResponse(canned(status, body), _connection())
    assert info.value.code == status and info.value.http_code == status
    assert "storage.objects.get" in str(info.value)


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408, 400])
def test_canned_other_failures_carry_code(status: int) -> None:
    with pytest.raises(BaseHTTPError) as info:
        gcs.GcsJsonResponse(canned(status, gerr(status, "backend error")), _connection())
    assert info.value.code == status and "backend error" in str(info.value)


def test_canned_429_is_rate_limit() -> None:
    with pytest.raises(RateLimitReachedError) as info:
        gcs.GcsJsonResponse(canned(429, gerr(429, "slow down"), {"Retry-After": "3"}), _connection())
    assert info.value.code == 429 and info.value.retry_after == 3


def test_canned_429_with_an_http_date_retry_after() -> None:
    """The HTTP-date form of Retry-After (RFC 9110) used to raise ValueError inside Libcloud."""
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    with pytest.raises(RateLimitReachedError) as info:
        gcs.GcsJsonResponse(canned(429, gerr(429, "slow down"), {"Retry-After": date}), _connection())
    assert info.value.code == 429 and info.value.retry_after == 0  # in the past: retry now


def test_canned_non_json_error_body() -> None:
    with pytest.raises(BaseHTTPError) as info:
        gcs.GcsJsonResponse(canned(502, b"<html>Bad Gateway</html>"), _connection())
    assert info.value.code == 502


@pytest.mark.parametrize("status", [404, 412, 308])
def test_canned_statuses_left_to_the_driver(status: int) -> None:
    resp = gcs.GcsJsonResponse(canned(status, gerr(status, "x")), _connection())
    assert resp.status == status


def test_404_object_vs_bucket(http: FakeHTTP) -> None:
    drv = gcs.build_gcs_driver(cfg())
    http.responder = lambda r: (404, {}, gerr(404, "No such object: bkt/k"))
    with pytest.raises(ObjectDoesNotExistError):
        drv.get_object("bkt", "k")
    assert len(http.requests) == 1
    http.responder = lambda r: (404, {}, gerr(404, "The specified bucket does not exist."))
    with pytest.raises(ContainerDoesNotExistError):
        drv.get_object("bkt", "k")
    assert len(http.requests) == 2

    # Emulator: bare "Not Found" for both; one more request checks the bucket.
    def emulator(bucket_exists: bool) -> Callable[[requests.PreparedRequest], Answer]:
        def respond(r: requests.PreparedRequest) -> Answer:
            if "/o/" not in (r.url or "") and bucket_exists:
                return 200, {}, js({"name": "bkt"})
            return 404, {}, gerr(404, "Not Found")

        return respond

    http.responder = emulator(True)
    with pytest.raises(ObjectDoesNotExistError):
        drv.get_object("bkt", "k")
    http.responder = emulator(False)
    with pytest.raises(ContainerDoesNotExistError):
        drv.get_object("bkt", "k")
    with pytest.raises(ContainerDoesNotExistError):
        list(drv.iterate_container_objects(container(drv)))


def test_driver_auth_failures(http: FakeHTTP) -> None:
    http.responder = lambda r: (403, {}, gerr(403, "caller does not have storage.objects.get"))
    drv = gcs.build_gcs_driver(cfg(), credentials=_StaticCreds("secret-token-123"))
    for call in (
        lambda: drv.get_object("bkt", "k"),
        lambda: drv.download_object_as_stream(bare(drv, "k")),
        lambda: drv.ex_put_object(container(drv), "k", b"1"),
        lambda: list(drv.iterate_container_objects(container(drv))),
    ):
        with pytest.raises(InvalidCredsError) as info:
            call()
        assert "secret-token-123" not in str(info.value)


def test_streamed_download_status_checked_at_call(http: FakeHTTP) -> None:
    drv = gcs.build_gcs_driver(cfg())
    http.responder = lambda r: (503, {}, gerr(503, "unavailable"))
    with pytest.raises(BaseHTTPError) as info:
        drv.download_object_as_stream(bare(drv, "k"))
    assert info.value.code == 503
    http.responder = lambda r: (416, {}, gerr(416, "range"))
    assert list(drv.download_object_range_as_stream(bare(drv, "k"), 9, 12)) == []
    http.responder = lambda r: (200, {}, b"0123456789")
    assert b"".join(drv.download_object_range_as_stream(bare(drv, "k"), 3, 6)) == b"345"
    assert http.requests[-1].headers["Range"] == "bytes=3-5"


def test_put_if_absent_uses_multipart_precondition(http: FakeHTTP) -> None:
    drv = gcs.build_gcs_driver(cfg())
    http.responder = lambda r: (200, {}, js(ITEM))
    assert drv.ex_put_object_if_absent(container(drv), "a/é", b"payload") is True
    req = http.requests[0]
    assert "uploadType=multipart" in (req.url or "") and "ifGenerationMatch=0" in (req.url or "")
    assert req.headers["Content-Type"].startswith("multipart/related; boundary=")
    body = req.body if isinstance(req.body, bytes) else b""
    assert b'"name": "a/\\u00e9"' in body and b"payload" in body
    http.responder = lambda r: (412, {}, gerr(412, "conditionNotMet"))
    assert drv.ex_put_object_if_absent(container(drv), "a/é", b"payload") is False


def test_copy_loops_on_rewrite_token(http: FakeHTTP) -> None:
    answers: Iterator[Answer] = iter(
        [
            (200, {}, js({"done": False, "rewriteToken": "tok1"})),
            (200, {}, js({"done": True, "resource": ITEM})),
        ]
    )
    http.responder = lambda r: next(answers)
    drv = gcs.build_gcs_driver(cfg())
    drv.ex_copy_object(container(drv), "s/1", "d/2")
    urls = [r.url or "" for r in http.requests]
    assert urls[0] == f"{EMU}/storage/v1/b/bkt/o/s%2F1/rewriteTo/b/bkt/o/d%2F2"
    assert urls[1].endswith("?rewriteToken=tok1")


# --------------------------------------------------------------------------- resumable uploads


class ResumableServer:
    """Enough of the resumable protocol to check the driver's side of it."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.done = False
        self.cancelled = False
        self.fail_next_put = False
        self.short_accept = 0  # accept this many bytes less than sent, once
        self.ranges: list[str] = []

    def __call__(self, r: requests.PreparedRequest) -> Answer:
        url = r.url or ""
        if r.method == "POST" and "uploadType=resumable" in url:
            loc = f"{EMU}/upload/storage/v1/b/bkt/o?uploadType=resumable&upload_id=SECRET123"
            return 200, {"Location": loc}, b""
        if r.method == "DELETE":
            self.cancelled = True
            return 499, {}, b""
        assert "upload_id=SECRET123" in url
        rng = r.headers["Content-Range"]
        self.ranges.append(rng)
        body = r.body if isinstance(r.body, bytes) else b""
        if rng.startswith("bytes */"):
            if rng != "bytes */*" and int(rng.split("/")[1]) == len(self.data) and body == b"":
                self.done = True
                return 200, {}, js({**ITEM, "size": str(len(self.data))})
            return 308, ({"Range": f"bytes=0-{len(self.data) - 1}"} if self.data else {}), b""
        first, rest = rng[len("bytes ") :].split("-")
        last, total = rest.split("/")
        assert int(first) == len(self.data), (rng, len(self.data))
        assert int(last) - int(first) + 1 == len(body)
        if self.fail_next_put:
            self.fail_next_put = False
            self.data += body[: len(body) // 2]  # persisted half, then the connection died
            raise requests.ConnectionError(f"connection reset while sending {url}")
        keep = len(body) - self.short_accept
        self.short_accept = 0
        self.data += body[:keep]
        if total != "*" and len(self.data) == int(total):
            self.done = True
            return 200, {}, js({**ITEM, "size": total})
        return 308, {"Range": f"bytes=0-{len(self.data) - 1}"}, b""


def _chunks(payload: bytes, step: int) -> Iterator[bytes]:
    for i in range(0, len(payload), step):
        yield payload[i : i + step]


QUANTUM = gcs.RESUMABLE_QUANTUM


def _retrying(times: int) -> Callable[[Callable[[], Any]], Any]:
    def call(fn: Callable[[], Any]) -> Any:
        for attempt in range(times):
            try:
                return fn()
            except requests.ConnectionError:
                if attempt == times - 1:
                    raise
        return None

    return call


def test_resumable_upload_chunks_and_ranges(http: FakeHTTP) -> None:
    server = ResumableServer()
    http.responder = server
    transfer = TransferConfig(part_size=QUANTUM + 1, single_put_threshold=QUANTUM)
    drv = gcs.build_gcs_driver(cfg(), credentials=None)
    drv.transfer = transfer
    payload = bytes(range(256)) * (5 * QUANTUM // 256) + b"tail"
    drv.ex_upload_stream(container(drv), "big", _chunks(payload, 100_000))
    assert server.done and bytes(server.data) == payload
    part = 2 * QUANTUM  # rounded up to a multiple of 256 KiB
    assert server.ranges[0] == f"bytes 0-{part - 1}/*"
    assert server.ranges[-1] == f"bytes {2 * part}-{len(payload) - 1}/{len(payload)}"


def test_resumable_chunk_retry_resumes_from_persisted_offset(http: FakeHTTP) -> None:
    server = ResumableServer()
    server.fail_next_put = True
    http.responder = server
    drv = gcs.build_gcs_driver(cfg())
    drv.transfer = TransferConfig(part_size=QUANTUM, single_put_threshold=QUANTUM)
    drv.libkb_call = _retrying(3)
    payload = b"q" * (3 * QUANTUM + 10)
    drv.ex_upload_stream(container(drv), "big", _chunks(payload, QUANTUM))
    assert server.done and bytes(server.data) == payload
    assert "bytes */*" in server.ranges  # asked the service what it had


def test_resumable_short_accept_resends_rest(http: FakeHTTP) -> None:
    server = ResumableServer()
    server.short_accept = QUANTUM // 2
    http.responder = server
    drv = gcs.build_gcs_driver(cfg())
    drv.transfer = TransferConfig(part_size=QUANTUM, single_put_threshold=QUANTUM)
    payload = bytes(range(256)) * (3 * QUANTUM // 256)
    drv.ex_upload_stream(container(drv), "big", _chunks(payload, 4096))
    assert server.done and bytes(server.data) == payload


def test_resumable_failure_cancels_session_and_hides_upload_id(http: FakeHTTP) -> None:
    server = ResumableServer()
    server.fail_next_put = True
    http.responder = server
    drv = gcs.build_gcs_driver(cfg())
    drv.transfer = TransferConfig(part_size=QUANTUM, single_put_threshold=QUANTUM)
    with pytest.raises(requests.ConnectionError) as info:
        drv.ex_upload_stream(container(drv), "big", _chunks(b"z" * (3 * QUANTUM), QUANTUM))
    assert "SECRET123" not in str(info.value) and info.value.__cause__ is None
    assert server.cancelled and not server.done


def test_failing_iterator_cancels_session(http: FakeHTTP) -> None:
    server = ResumableServer()
    http.responder = server
    drv = gcs.build_gcs_driver(cfg())
    drv.transfer = TransferConfig(part_size=QUANTUM, single_put_threshold=QUANTUM)

    def chunks() -> Iterator[bytes]:
        yield b"a" * (3 * QUANTUM)
        raise RuntimeError("caller broke")

    with pytest.raises(RuntimeError, match="caller broke"):
        drv.ex_upload_stream(container(drv), "big", chunks())
    assert server.cancelled and not server.done


def test_small_stream_single_media_upload(http: FakeHTTP) -> None:
    http.responder = lambda r: (200, {}, js(ITEM))
    drv = gcs.build_gcs_driver(cfg())
    drv.ex_upload_stream(container(drv), "s", [b"ab", b"", b"cd"])
    assert len(http.requests) == 1 and http.requests[0].body == b"abcd"
    assert "uploadType=media" in (http.requests[0].url or "")


# --------------------------------------------------------------------------- plumbing


def test_libcloud_retries_stay_off(http: FakeHTTP, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIBCLOUD_RETRY_FAILED_HTTP_REQUESTS", "1")
    http.responder = lambda r: (429, {}, gerr(429, "slow"))
    drv = gcs.build_gcs_driver(cfg())
    assert drv.connection.retryCls is NoRetry
    with pytest.raises(RateLimitReachedError):
        drv.get_object("bkt", "k")
    assert len(http.requests) == 1


def test_timeouts_on_plain_and_streamed_requests(http: FakeHTTP) -> None:
    http.responder = lambda r: (200, {}, js(ITEM))
    drv = gcs.build_gcs_driver(cfg(resilience=ResilienceConfig(timeout_secs=4.5)))
    drv.get_object("bkt", "k")
    b"".join(drv.download_object_as_stream(bare(drv, "k")))
    assert [kw["timeout"] for _, kw in http.calls] == [4.5, 4.5]


def test_each_thread_has_its_own_connection() -> None:
    drv = gcs.build_gcs_driver(cfg())
    mine = drv.connection
    other: list[Any] = []
    t = threading.Thread(target=lambda: other.append(drv.connection))
    t.start()
    t.join()
    assert drv.connection is mine and other[0] is not mine
    drv.ex_close()


def test_sent_body_is_not_kept_by_the_connection(http: FakeHTTP) -> None:
    http.responder = lambda r: (200, {}, js(ITEM))
    drv = gcs.build_gcs_driver(cfg())
    drv.ex_put_object(container(drv), "x", b"p" * 1000)
    assert drv.connection.data is None
    assert drv.connection.connection.response.request.body is None


def test_libcloud_debug_logging_does_not_capture_requests(
    http: FakeHTTP, monkeypatch: pytest.MonkeyPatch
) -> None:
    # LIBCLOUD_DEBUG swaps Connection.conn_class for a logger that prints headers.
    from libcloud.common.base import Connection
    from libcloud.utils.loggingconnection import LoggingConnection

    monkeypatch.setattr(Connection, "conn_class", LoggingConnection)
    drv = gcs.build_gcs_driver(cfg(), credentials=_StaticCreds("tok"))
    assert not isinstance(drv.connection.connection, LoggingConnection)


def test_streams_use_the_same_proxy_settings(http: FakeHTTP, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    http.responder = lambda r: (200, {}, js(ITEM))
    drv = gcs.build_gcs_driver(cfg(endpoint="http://storage.test:4443"))
    drv.get_object("bkt", "k")
    b"".join(drv.download_object_as_stream(bare(drv, "k")))
    proxies = [kw["proxies"].get("http") for _, kw in http.calls]
    assert proxies == ["http://proxy.invalid:3128"] * 2
