"""Azure driver without a server: credential chain, endpoints, request shape and
response -> exception mapping.

Requests are answered in-process by replacing ``HTTPAdapter.send`` (every
thread's session goes through it), so each test sees the exact prepared
request the driver would have sent. Behaviour against Azurite is covered by
the conformance suite in ``integration/``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import pytest
import requests
from libcloud.common.exceptions import BaseHTTPError, RateLimitReachedError
from libcloud.common.types import InvalidCredsError
from libcloud.storage.base import Container, Object
from libcloud.storage.drivers.azure_blobs import AuthType
from libcloud.storage.types import ContainerDoesNotExistError, ObjectDoesNotExistError
from requests.structures import CaseInsensitiveDict

from libkb.errors import ConfigError
from libkb.storage.drivers import azure as az
from libkb.storage.drivers.azure import credentials as az_credentials
from libkb.storage.drivers.common.transport import NoRetry
from libkb.storage.settings import AzureConfig, ResilienceConfig, TransferConfig

KEY = base64.b64encode(b"k" * 64).decode()
ACCOUNT = "acct"
AZURITE = "http://127.0.0.1:10000/devstoreaccount1"

Responder = Callable[[requests.PreparedRequest], tuple[int, dict[str, str], bytes]]


class FakeHTTP:
    """Answers every request made through requests in this process."""

    def __init__(self) -> None:
        self.calls: list[tuple[requests.PreparedRequest, dict[str, Any]]] = []
        self.responder: Responder = lambda req: (200, {}, b"")
        self.lock = threading.Lock()

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> Any:
        with self.lock:
            # A copy: the driver drops the body of the original once sent.
            self.calls.append((request.copy(), kwargs))
        status, headers, body = self.responder(request)
        resp = requests.Response()
        resp.status_code = status
        resp.headers = CaseInsensitiveDict(headers)
        resp._content = body
        resp._content_consumed = True  # type: ignore[attr-defined]  # a real attribute types-requests omits
        resp.raw = io.BytesIO(body)
        resp.request = request
        resp.url = request.url or ""
        resp.reason = "canned"
        resp.encoding = "utf-8"
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
    monkeypatch.delenv("AZURE_STORAGE_KEY", raising=False)
    monkeypatch.delenv("AZURE_STORAGE_SAS_TOKEN", raising=False)
    return fake


def cfg(**kw: Any) -> AzureConfig:
    base: dict[str, Any] = {"account_name": ACCOUNT, "container_name": "cont", "account_key": KEY}
    base.update(kw)
    return AzureConfig(**base)


def container(driver: Any, name: str = "cont") -> Container:
    return Container(name=name, extra={}, driver=driver)


def bare(driver: Any, name: str) -> Object:
    return Object(name, None, None, {}, {}, container(driver), driver)


HEAD_OK = {
    "content-length": "5",
    "etag": '"0x8D1"',
    "last-modified": "Tue, 24 Nov 2026 02:36:31 GMT",
    "x-ms-blob-type": "BlockBlob",
}


class FakeToken:
    def __init__(self, token: str, expires_on: float) -> None:
        self.token = token
        self.expires_on = expires_on


class FakeCredential:
    """What azure-identity credentials look like to the driver."""

    def __init__(self, lifetime: float = 3600) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.lifetime = lifetime

    def get_token(self, *scopes: str, **kwargs: Any) -> FakeToken:
        self.calls.append(scopes)
        return FakeToken(f"tok-{len(self.calls)}", time.time() + self.lifetime)


# --------------------------------------------------------------------------- endpoints


def test_endpoint_default_is_public_azure() -> None:
    ep = az.resolve_azure_endpoint(ACCOUNT, None)
    assert (ep.secure, ep.host, ep.port, ep.account_prefix) == (
        True,
        "acct.blob.core.windows.net",
        443,
        None,
    )
    assert ep.url == "https://acct.blob.core.windows.net"


def test_endpoint_azurite_has_account_in_path() -> None:
    ep = az.resolve_azure_endpoint("devstoreaccount1", AZURITE + "/")
    assert (ep.secure, ep.host, ep.port, ep.account_prefix) == (
        False,
        "127.0.0.1",
        10000,
        "devstoreaccount1",
    )


def test_endpoint_sovereign_cloud_host_used_as_given() -> None:
    ep = az.resolve_azure_endpoint(ACCOUNT, "https://acct.blob.core.chinacloudapi.cn")
    assert (ep.host, ep.port, ep.account_prefix) == ("acct.blob.core.chinacloudapi.cn", 443, None)


@pytest.mark.parametrize("bad", ["ftp://x/y", "not a url", "https://acct.blob.core.windows.net/?sv=1"])
def test_endpoint_rejects_bad_urls(bad: str) -> None:
    with pytest.raises(ConfigError):
        az.resolve_azure_endpoint(ACCOUNT, bad)


def test_request_urls_public_and_azurite(http: FakeHTTP) -> None:
    http.responder = lambda req: (200, HEAD_OK, b"")
    name = "a b/ü+&?#%~.bin"
    az.build_azure_driver(cfg()).get_object("cont", name)
    az.build_azure_driver(cfg(account_name="devstoreaccount1", endpoint=AZURITE)).get_object("cont", name)
    quoted = "a%20b/%C3%BC%2B%26%3F%23%25~.bin"
    assert http.requests[0].url == f"https://acct.blob.core.windows.net/cont/{quoted}"
    assert http.requests[1].url == f"http://127.0.0.1:10000/devstoreaccount1/cont/{quoted}"


def test_list_prefix_spaces_sent_as_pct20(http: FakeHTTP) -> None:
    body = b"<?xml version='1.0'?><EnumerationResults><Blobs/><NextMarker/></EnumerationResults>"
    http.responder = lambda req: (200, {}, body)
    drv = az.build_azure_driver(cfg())
    assert list(drv.iterate_container_objects(container(drv), prefix="a b+c")) == []
    url = http.requests[0].url or ""
    assert "prefix=a%20b%2Bc" in url and "+" not in url.split("?", 1)[1]


# --------------------------------------------------------------------------- credentials


def _expected_shared_key(req: requests.PreparedRequest, path: str, length: str = "") -> str:
    h = req.headers
    xms = sorted((k.lower(), v) for k, v in h.items() if k.lower().startswith("x-ms-"))
    # verb, encoding, language, length, md5, type, date, if-modified-since,
    # if-match, if-none-match, if-unmodified-since, range
    lines = [req.method or "", "", "", length, h.get("Content-MD5", "")]
    lines += [h.get("Content-Type", ""), "", "", "", h.get("If-None-Match", ""), "", ""]
    lines += [f"{k}:{v}" for k, v in xms]
    lines.append(f"/{ACCOUNT}{path}")
    mac = hmac.new(base64.b64decode(KEY), "\n".join(lines).encode(), hashlib.sha256).digest()
    return f"SharedKey {ACCOUNT}:{base64.b64encode(mac).decode()}"


def test_shared_key_from_config_signs_requests(http: FakeHTTP) -> None:
    http.responder = lambda req: (200, HEAD_OK, b"")
    az.build_azure_driver(cfg()).get_object("cont", "x")
    req = http.requests[0]
    assert req.headers["x-ms-version"] == az.AZURE_API_VERSION
    assert req.headers["Authorization"] == _expected_shared_key(req, "/cont/x")


def test_shared_key_zero_length_put_signs_empty_content_length(http: FakeHTTP) -> None:
    http.responder = lambda req: (201, {}, b"")
    drv = az.build_azure_driver(cfg())
    drv.ex_put_object(container(drv), "empty", b"")
    req = http.requests[0]
    assert req.headers["Content-Length"] == "0"
    assert req.headers["Authorization"] == _expected_shared_key(req, "/cont/empty", length="")


def test_shared_key_from_env_when_config_has_none(http: FakeHTTP, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_STORAGE_KEY", KEY)
    http.responder = lambda req: (200, HEAD_OK, b"")
    drv = az.build_azure_driver(cfg(account_key=None))
    assert drv.token_source is None
    drv.get_object("cont", "x")
    assert http.requests[0].headers["Authorization"].startswith(f"SharedKey {ACCOUNT}:")


def test_invalid_account_key_is_a_config_error_without_the_key() -> None:
    with pytest.raises(ConfigError) as info:
        az.build_azure_driver(cfg(account_key="not base64 at all!"))
    assert "not base64" not in str(info.value) or "valid base64" in str(info.value)
    assert "at all!" not in str(info.value)


def test_token_credential_gives_bearer_header(http: FakeHTTP) -> None:
    http.responder = lambda req: (200, HEAD_OK, b"")
    cred = FakeCredential()
    drv = az.build_azure_driver(cfg(account_key=None), credential=cred)
    drv.get_object("cont", "x")
    drv.get_object("cont", "y")
    headers = [r.headers for r in http.requests]
    assert all(h["Authorization"] == "Bearer tok-1" for h in headers)
    assert all(h["x-ms-version"] >= "2017-11-09" for h in headers)
    assert cred.calls == [("https://storage.azure.com/.default",)]  # cached


def test_default_credential_chain_used_without_key(http: FakeHTTP, monkeypatch: pytest.MonkeyPatch) -> None:
    cred = FakeCredential()
    monkeypatch.setattr(az_credentials, "_default_azure_credential", lambda: cred)
    http.responder = lambda req: (200, HEAD_OK, b"")
    drv = az.build_azure_driver(cfg(account_key=None))
    drv.get_object("cont", "x")
    assert http.requests[0].headers["Authorization"] == "Bearer tok-1"
    assert isinstance(drv.connection, az.LibkbAzureBearerConnection)


def test_libcloud_azure_ad_constant_is_misspelled_and_bypassed(http: FakeHTTP) -> None:
    # Libcloud's driver tests auth_type == "azureAd" but exports "azureAD".
    assert AuthType.AZURE_AD == "azureAD"
    drv = az.build_azure_driver(cfg(account_key=None), credential=FakeCredential())
    assert type(drv.connection) is az.LibkbAzureBearerConnection


def test_token_refreshed_before_expiry() -> None:
    now = [1000.0]

    class Cred:
        def __init__(self) -> None:
            self.n = 0

        def get_token(self, *scopes: str, **kw: Any) -> FakeToken:
            self.n += 1
            return FakeToken(f"t{self.n}", now[0] + 3600)

    source = az.AzureTokenSource(Cred(), clock=lambda: now[0])
    assert source.authorization() == "Bearer t1"
    now[0] += 3600 - az.TOKEN_REFRESH_MARGIN_SECS - 1
    assert source.authorization() == "Bearer t1"
    now[0] += 2
    assert source.authorization() == "Bearer t2"


def test_token_refresh_is_single_flight_across_threads() -> None:
    class SlowCred(FakeCredential):
        def get_token(self, *scopes: str, **kwargs: Any) -> FakeToken:
            time.sleep(0.05)
            return super().get_token(*scopes)

    cred = SlowCred()
    source = az.AzureTokenSource(cred)
    out: list[str] = []
    threads = [threading.Thread(target=lambda: out.append(source.authorization())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out == ["Bearer tok-1"] * 8 and len(cred.calls) == 1


def test_credential_failures_become_libcloud_or_requests_errors() -> None:
    class ClientAuthenticationError(Exception):
        pass

    class ServiceRequestError(Exception):
        pass

    class Failing:
        def __init__(self, exc: Exception) -> None:
            self.exc = exc

        def get_token(self, *scopes: str, **kw: Any) -> Any:
            raise self.exc

    with pytest.raises(InvalidCredsError) as info:
        az.AzureTokenSource(Failing(ClientAuthenticationError("AADSTS7000215"))).authorization()
    assert "AZURE_STORAGE_KEY" in str(info.value) and "AADSTS7000215" in str(info.value)
    with pytest.raises(requests.ConnectionError):
        az.AzureTokenSource(Failing(ServiceRequestError("no route"))).authorization()


def test_no_key_and_no_azure_identity_names_the_fixes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZURE_STORAGE_KEY", raising=False)
    monkeypatch.setitem(sys.modules, "azure.identity", None)
    with pytest.raises(ConfigError) as info:
        az.build_azure_driver(cfg(account_key=None))
    text = str(info.value)
    assert "account_key" in text and "AZURE_STORAGE_KEY" in text and "libkb[azure]" in text


def test_default_credential_is_azure_identity_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    import azure.identity as identity  # in the test extras

    monkeypatch.setenv("AZURE_TENANT_ID", "t")
    monkeypatch.setenv("AZURE_CLIENT_ID", "c")
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "s3cr3t-value")
    cred = az_credentials._default_azure_credential()
    assert isinstance(cred, identity.DefaultAzureCredential)
    drv = az.build_azure_driver(cfg(account_key=None))
    assert drv.token_source is not None and drv.token_source.owns_credential
    assert "s3cr3t-value" not in repr(drv) + repr(drv.token_source)
    drv.ex_close()


# --------------------------------------------------------------------------- error mapping


def _err_xml(code: str, message: str = "msg") -> bytes:
    return (
        f"<?xml version='1.0' encoding='utf-8'?><Error><Code>{code}</Code>"
        f"<Message>{message}\nRequestId:1</Message></Error>"
    ).encode()


@pytest.mark.parametrize("status", [401, 403])
def test_auth_failures_raise_invalid_creds(http: FakeHTTP, status: int) -> None:
    http.responder = lambda req: (status, {}, _err_xml("AuthenticationFailed", "Server failed"))
    drv = az.build_azure_driver(cfg())
    for call in (
        lambda: drv.ex_put_object(container(drv), "x", b"1"),
        lambda: list(drv.iterate_container_objects(container(drv))),
        lambda: drv.download_object_as_stream(bare(drv, "x")),
    ):
        with pytest.raises(InvalidCredsError) as info:
            call()
        assert info.value.code == status
        assert KEY not in str(info.value) and "RequestId" not in str(info.value)


def test_head_auth_failure_is_not_object_missing(http: FakeHTTP) -> None:
    http.responder = lambda req: (403, {"x-ms-error-code": "AuthorizationFailure"}, b"")
    drv = az.build_azure_driver(cfg())
    with pytest.raises(InvalidCredsError):
        drv.get_object("cont", "x")


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_transient_statuses_carry_code(http: FakeHTTP, status: int) -> None:
    http.responder = lambda req: (status, {"x-ms-error-code": "ServerBusy"}, b"")
    drv = az.build_azure_driver(cfg())
    with pytest.raises(BaseHTTPError) as info:
        drv.get_object("cont", "x")
    assert info.value.code == status
    if status == 429:
        assert isinstance(info.value, RateLimitReachedError)
    with pytest.raises(BaseHTTPError) as info2:
        drv.download_object_as_stream(bare(drv, "x"))
    assert info2.value.code == status


def test_404_tells_container_from_blob(http: FakeHTTP) -> None:
    drv = az.build_azure_driver(cfg())
    http.responder = lambda req: (404, {"x-ms-error-code": "BlobNotFound"}, b"")
    with pytest.raises(ObjectDoesNotExistError):
        drv.get_object("cont", "x")
    http.responder = lambda req: (404, {"x-ms-error-code": "ContainerNotFound"}, b"")
    with pytest.raises(ContainerDoesNotExistError):
        drv.get_object("cont", "x")
    with pytest.raises(ContainerDoesNotExistError):
        drv.ex_put_object(container(drv), "x", b"1")
    with pytest.raises(ContainerDoesNotExistError):
        list(drv.iterate_container_objects(container(drv)))
    assert len(http.requests) == 4  # one request per call


def test_download_errors_raise_at_call_not_iteration(http: FakeHTTP) -> None:
    http.responder = lambda req: (404, {}, _err_xml("BlobNotFound"))
    drv = az.build_azure_driver(cfg())
    with pytest.raises(ObjectDoesNotExistError):
        drv.download_object_as_stream(bare(drv, "x"))
    with pytest.raises(ObjectDoesNotExistError):
        drv.download_object_range_as_stream(bare(drv, "x"), 0, 3)


def test_put_if_absent_statuses(http: FakeHTTP) -> None:
    drv = az.build_azure_driver(cfg())
    http.responder = lambda req: (201, {}, b"")
    assert drv.ex_put_object_if_absent(container(drv), "x", b"1") is True
    assert http.requests[-1].headers["If-None-Match"] == "*"
    http.responder = lambda req: (409, {}, _err_xml("BlobAlreadyExists"))
    assert drv.ex_put_object_if_absent(container(drv), "x", b"1") is False
    http.responder = lambda req: (409, {}, _err_xml("LeaseIdMissing"))
    with pytest.raises(BaseHTTPError):
        drv.ex_put_object_if_absent(container(drv), "x", b"1")


def test_ranges_416_empty_and_ignored_range(http: FakeHTTP) -> None:
    drv = az.build_azure_driver(cfg())
    http.responder = lambda req: (416, {}, _err_xml("InvalidRange"))
    assert list(drv.download_object_range_as_stream(bare(drv, "x"), 10, 20)) == []
    http.responder = lambda req: (200, {}, b"0123456789")  # server ignored the range
    assert b"".join(drv.download_object_range_as_stream(bare(drv, "x"), 2, 5)) == b"234"
    http.responder = lambda req: (206, {}, b"234")
    assert b"".join(drv.download_object_range_as_stream(bare(drv, "x"), 2, 5)) == b"234"
    assert http.requests[-1].headers["x-ms-range"] == "bytes=2-4"
    n = len(http.requests)
    assert list(drv.download_object_range_as_stream(bare(drv, "x"), 5, 5)) == []
    assert len(http.requests) == n


def test_object_metadata(http: FakeHTTP) -> None:
    http.responder = lambda req: (200, HEAD_OK, b"")
    obj = az.build_azure_driver(cfg()).get_object("cont", "x")
    assert obj.size == 5 and obj.hash == "0x8D1"
    assert obj.extra["mtime_ms"] == 1795487791000


def test_copy_waits_while_pending(http: FakeHTTP) -> None:
    answers = iter(
        [
            (202, {"x-ms-copy-status": "pending", "x-ms-copy-id": "c1"}, b""),
            (200, {**HEAD_OK, "x-ms-copy-status": "pending"}, b""),
            (200, {**HEAD_OK, "x-ms-copy-status": "success"}, b""),
        ]
    )
    http.responder = lambda req: next(answers)
    drv = az.build_azure_driver(cfg(account_name="devstoreaccount1", endpoint=AZURITE))
    drv.ex_copy_object(container(drv), "src a", "dst")
    put = http.requests[0]
    assert put.method == "PUT"
    assert put.headers["x-ms-copy-source"] == f"{AZURITE}/cont/src%20a"
    assert [r.method for r in http.requests] == ["PUT", "HEAD", "HEAD"]


def _copy_refused(
    container_found: bool,
) -> Callable[[requests.PreparedRequest], tuple[int, dict[str, str], bytes]]:
    """Copy refused for its source; the container's HEAD answers as ``container_found`` says."""

    def respond(req: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        if req.method == "HEAD" and "restype=container" in (req.url or ""):
            return (200, {}, b"") if container_found else (404, {}, b"")
        return 404, {}, _err_xml("CannotVerifyCopySource")

    return respond


def test_copy_missing_source(http: FakeHTTP) -> None:
    http.responder = _copy_refused(container_found=True)
    drv = az.build_azure_driver(cfg())
    with pytest.raises(ObjectDoesNotExistError):
        drv.ex_copy_object(container(drv), "nope", "dst")


def test_copy_into_a_missing_container_names_the_container(http: FakeHTTP) -> None:
    """With a SAS the service refuses the copy's source first; one HEAD tells the container is missing."""
    http.responder = _copy_refused(container_found=False)
    drv = az.build_azure_driver(cfg())
    with pytest.raises(ContainerDoesNotExistError):
        drv.ex_copy_object(container(drv), "nope", "dst")


# --------------------------------------------------------------------------- plumbing


def test_libcloud_retries_stay_off(http: FakeHTTP, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIBCLOUD_RETRY_FAILED_HTTP_REQUESTS", "1")
    http.responder = lambda req: (429, {}, b"")
    drv = az.build_azure_driver(cfg())
    assert drv.connection.retryCls is NoRetry
    with pytest.raises(RateLimitReachedError):
        drv.get_object("cont", "x")
    assert len(http.requests) == 1


def test_timeouts_on_plain_and_streamed_requests(http: FakeHTTP) -> None:
    http.responder = lambda req: (200, HEAD_OK, b"abc")
    drv = az.build_azure_driver(cfg(resilience=ResilienceConfig(timeout_secs=7.5)))
    drv.get_object("cont", "x")
    b"".join(drv.download_object_as_stream(bare(drv, "x")))
    assert [kw["timeout"] for _, kw in http.calls] == [7.5, 7.5]
    assert http.calls[1][1]["stream"] is True


def test_each_thread_has_its_own_connection() -> None:
    drv = az.build_azure_driver(cfg())
    mine = drv.connection
    assert drv.connection is mine
    other: list[Any] = []
    t = threading.Thread(target=lambda: other.append(drv.connection))
    t.start()
    t.join()
    assert other[0] is not mine and other[0].connection.session is not mine.connection.session


def test_secrets_absent_from_reprs_and_errors(http: FakeHTTP) -> None:
    c = cfg()
    drv = az.build_azure_driver(c)
    text = repr(c) + repr(drv) + repr(drv.connection) + repr(drv.connection.connection)
    assert KEY not in text
    http.responder = lambda req: (403, {}, _err_xml("AuthenticationFailed"))
    with pytest.raises(InvalidCredsError) as info:
        list(drv.iterate_container_objects(container(drv)))
    assert KEY not in str(info.value) and KEY not in repr(info.value)
    bearer = az.build_azure_driver(cfg(account_key=None), credential=FakeCredential())
    http.responder = lambda req: (500, {}, _err_xml("InternalError"))
    with pytest.raises(BaseHTTPError) as info2:
        bearer.get_object("cont", "x")
    assert "tok-1" not in str(info2.value) and "tok-1" not in repr(bearer)


# --------------------------------------------------------------------------- SAS tokens

SIG = "q9zDq40FLuzjFBn69goHXgJjblt7CCcQqkRieub3+IQ="
#: As Azure hands it out: URL-encoded values, a far expiry, container permissions read and list.
SAS = f"sv=2026-10-06&se=2099-01-01T00%3A00%3A00Z&sr=c&sp=rl&sig={quote(SIG, safe='')}"


def _sas_params(req: requests.PreparedRequest) -> list[tuple[str, str]]:
    query = parse_qsl(urlsplit(req.url or "").query)
    return [(k, v) for k, v in query if k in ("sv", "se", "sr", "sp", "sig")]


@pytest.mark.parametrize("token", [SAS, "?" + SAS, f"  {SAS}\n"])
def test_a_sas_token_authorises_by_query_not_signature(http: FakeHTTP, token: str) -> None:
    http.responder = lambda req: (200, HEAD_OK, b"")
    drv = az.build_azure_driver(cfg(sas_token=token))
    assert isinstance(drv.connection, az.LibkbAzureSasConnection)
    drv.get_object("cont", "x")
    drv.download_object_range_as_stream(bare(drv, "x"), 0, 3)  # raw (streamed) requests too
    for req in http.requests:
        assert "Authorization" not in req.headers
        assert req.headers["x-ms-version"] == az.AZURE_API_VERSION and req.headers["x-ms-date"]
        assert dict(_sas_params(req)) == {
            "sv": "2026-10-06",
            "se": "2099-01-01T00:00:00Z",
            "sr": "c",
            "sp": "rl",
            "sig": SIG,
        }


def test_a_sas_token_keeps_the_requests_own_parameters(http: FakeHTTP) -> None:
    body = b"<?xml version='1.0'?><EnumerationResults><Blobs/><NextMarker/></EnumerationResults>"
    http.responder = lambda req: (200, {}, body)
    drv = az.build_azure_driver(cfg(sas_token=SAS))
    list(drv.iterate_container_objects(container(drv), prefix="a b"))
    query = dict(parse_qsl(urlsplit(http.requests[0].url or "").query))
    assert (query["restype"], query["comp"], query["prefix"]) == ("container", "list", "a b")
    assert query["sig"] == SIG


def test_the_copy_source_is_authorised_by_the_sas_token_too(http: FakeHTTP) -> None:
    http.responder = lambda req: (202, {"x-ms-copy-status": "success"}, b"")
    drv = az.build_azure_driver(cfg(account_name="devstoreaccount1", endpoint=AZURITE, sas_token=SAS))
    drv.ex_copy_object(container(drv), "src a", "dst")
    source = http.requests[0].headers["x-ms-copy-source"]
    assert source.startswith(f"{AZURITE}/cont/src%20a?")
    assert dict(parse_qsl(urlsplit(source).query))["sig"] == SIG


def test_the_sas_token_comes_first_then_the_config_then_the_environment(
    http: FakeHTTP, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert az.build_azure_driver(cfg(sas_token=SAS)).sas_token is not None  # before account_key
    monkeypatch.setenv("AZURE_STORAGE_SAS_TOKEN", SAS)
    assert az.build_azure_driver(cfg()).sas_token is None  # the config's account key first
    from_env = az.build_azure_driver(cfg(account_key=None))
    assert from_env.sas_token is not None and from_env.sas_token.origin == "AZURE_STORAGE_SAS_TOKEN"
    monkeypatch.setenv("AZURE_STORAGE_KEY", KEY)
    assert az.build_azure_driver(cfg(account_key=None)).sas_token is not None  # as the original tool
    bearer = az.build_azure_driver(cfg(account_key=None), credential=FakeCredential())
    assert bearer.sas_token is None and bearer.token_source is not None  # a credential given wins


@pytest.mark.parametrize(
    ("token", "words"),
    [
        ("sv=2026-10-06&sp=rl", "has no sig parameter"),
        ("sig=abc", "has no sv parameter"),
        ("just-some-text", "is not a SAS token"),
        (f"https://acct.blob.core.windows.net/cont?{SAS}", "not a URL"),
    ],
)
def test_a_malformed_sas_token_is_named_and_not_shown(token: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        az.build_azure_driver(cfg(sas_token=token))
    assert info.value.key == "storage.sas_token" and words in str(info.value)
    assert "sp=racwdl" in str(info.value)  # what one looks like
    assert token not in str(info.value) and "abc" not in str(info.value)


def test_an_expired_sas_token_is_refused_before_any_request(
    http: FakeHTTP, monkeypatch: pytest.MonkeyPatch
) -> None:
    expired = SAS.replace("2099-01-01", "2020-01-01")
    with pytest.raises(ConfigError) as info:
        az.build_azure_driver(cfg(sas_token=expired))
    assert str(info.value) == (
        "storage.sas_token: the SAS token for container 'cont' expired at 2020-01-01T00:00:00Z; "
        "give a new one with permissions racwdl (read, add, create, write, delete, list)"
    )
    monkeypatch.setenv("AZURE_STORAGE_SAS_TOKEN", expired)
    with pytest.raises(ConfigError, match=r"^AZURE_STORAGE_SAS_TOKEN: the SAS token for container"):
        az.build_azure_driver(cfg(account_key=None))
    assert not http.requests


def test_a_refused_sas_token_says_what_it_grants_and_what_libkb_needs(http: FakeHTTP) -> None:
    from libkb.storage import LibcloudBackend, PermissionDeniedError

    http.responder = lambda req: (403, {}, _err_xml("AuthorizationPermissionMismatch", "Not allowed"))
    backend = LibcloudBackend(az.build_azure_driver(cfg(sas_token=SAS)), "cont")
    with pytest.raises(PermissionDeniedError) as info:
        backend.put("k", b"x")
    text = str(info.value)
    assert text == (
        "[azure] 'k': access denied (InvalidCredsError: HTTP 403: AuthorizationPermissionMismatch: "
        "Not allowed) (the SAS token (storage.sas_token) for container 'cont' grants rl (read, list): "
        "libkb needs racwdl (read, add, create, write, delete, list; an account SAS also needs "
        "resource types container and object, srt=co); give a token that allows them and is valid now)"
    )
    assert "\n" not in text


def test_a_refused_listing_of_the_whole_container_names_the_container(http: FakeHTTP) -> None:
    """``list --path azure://account/cont`` lists from the container's root: no key to name."""
    from libkb.storage import LibcloudBackend, PermissionDeniedError

    http.responder = lambda req: (403, {}, _err_xml("AuthorizationFailure", "Not allowed"))
    backend = LibcloudBackend(az.build_azure_driver(cfg(account_key=KEY)), "cont")
    with pytest.raises(PermissionDeniedError) as info:
        list(backend.list(""))
    assert str(info.value).startswith("[azure container 'cont'] access denied (")
    assert "'':" not in str(info.value)


def test_a_sas_token_that_expired_during_the_run_is_named_expired(http: FakeHTTP) -> None:
    from libkb.storage import LibcloudBackend, PermissionDeniedError

    # Built while valid (the builder refuses an expired one), refused once expired.
    expired = az.parse_sas_token(SAS.replace("2099-01-01", "2020-01-01"))
    backend = LibcloudBackend(az.LibkbAzureBlobsDriver(ACCOUNT, sas_token=expired), "cont")
    http.responder = lambda req: (403, {"x-ms-error-code": "AuthenticationFailed"}, b"")
    with pytest.raises(PermissionDeniedError) as info:
        backend.get("k")
    assert str(info.value).endswith(
        "(the SAS token (storage.sas_token) for container 'cont' expired at 2020-01-01T00:00:00Z; "
        "give a new one with permissions racwdl (read, add, create, write, delete, list))"
    )


def test_the_sas_token_is_in_no_repr_message_or_error(http: FakeHTTP) -> None:
    from libkb.storage import LibcloudBackend, StorageError
    from libkb.storage.secrets import storage_secrets

    config = cfg(account_key=None, sas_token=SAS)
    drv = az.build_azure_driver(config)
    text = repr(config) + repr(drv) + repr(drv.connection) + repr(drv.sas_token)
    assert "sig" not in text and SIG[:10] not in text and "auth=sas" in repr(drv)
    secrets = storage_secrets(config)
    backend = LibcloudBackend(drv, "cont", secrets=secrets, resilience=ResilienceConfig(max_attempts=1))

    def refuse(req: requests.PreparedRequest) -> Any:
        raise requests.ConnectionError(f"cannot connect to {req.url}")

    http.responder = refuse
    with pytest.raises(StorageError) as info:
        backend.get("k")
    url = http.requests[0].url or ""
    assert "sig=" in url
    sent_sig = url.split("sig=")[1].split("&")[0]
    assert sent_sig in secrets and SIG in secrets  # masked in logs, as sent and as decoded
    for form in (SIG, sent_sig, quote(SIG, safe="")):
        assert form not in str(info.value)


# --------------------------------------------------------------------------- streamed uploads


def _block_server(http: FakeHTTP, delay: float = 0.0) -> dict[str, Any]:
    state: dict[str, Any] = {"blocks": {}, "active": 0, "peak": 0, "list": None}
    lock = threading.Lock()

    def respond(req: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        url = req.url or ""
        if "comp=blocklist" in url:
            state["list"] = req.body
            return 201, {}, b""
        if "comp=block" in url:
            with lock:
                state["active"] += 1
                state["peak"] = max(state["peak"], state["active"])
            time.sleep(delay)
            block_id = url.split("blockid=")[1].split("&")[0]
            body = req.body if isinstance(req.body, bytes) else b""
            expected_md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
            assert req.headers["Content-MD5"] == expected_md5
            with lock:
                state["blocks"][block_id] = body
                state["active"] -= 1
            return 201, {}, b""
        state["single"] = req.body
        return 201, {}, b""

    http.responder = respond
    return state


def test_small_stream_is_one_put(http: FakeHTTP) -> None:
    state = _block_server(http)
    drv = az.build_azure_driver(cfg(transfer=TransferConfig(part_size=1024, single_put_threshold=1024)))
    drv.ex_upload_stream(container(drv), "s", [b"a" * 1000, b"b" * 24])
    assert len(http.requests) == 1 and state["single"] == b"a" * 1000 + b"b" * 24
    assert http.requests[0].headers["x-ms-blob-type"] == "BlockBlob"


def test_big_stream_uploads_blocks_in_parallel_then_commits(http: FakeHTTP) -> None:
    state = _block_server(http, delay=0.02)
    transfer = TransferConfig(part_size=1000, max_concurrency=3, single_put_threshold=1500)
    drv = az.build_azure_driver(cfg(transfer=transfer))
    units: list[int] = []
    original = drv.libkb_call

    def counted(fn: Callable[[], Any]) -> Any:
        units.append(1)
        return original(fn)

    drv.libkb_call = counted
    payload = bytes(range(256)) * 40  # 10240 bytes -> 11 blocks
    drv.ex_upload_stream(container(drv), "big", (payload[i : i + 333] for i in range(0, 10240, 333)))
    listed = state["list"].decode()
    ids = [x.split("</Latest>")[0] for x in listed.split("<Latest>")[1:]]
    assert len(ids) == 11 and len({len(i) for i in ids}) == 1
    by_id = {unquote(k): v for k, v in state["blocks"].items()}
    got = b"".join(by_id[i] for i in ids)
    assert got == payload
    assert 1 < state["peak"] <= 3
    assert len(units) == 12  # one per block + the commit
    drv.ex_close()


def test_failing_iterator_commits_nothing(http: FakeHTTP) -> None:
    state = _block_server(http)
    transfer = TransferConfig(part_size=1000, max_concurrency=2, single_put_threshold=1000)

    def chunks() -> Any:
        yield b"x" * 2500
        raise RuntimeError("caller broke")

    drv = az.build_azure_driver(cfg(transfer=transfer))
    with pytest.raises(RuntimeError, match="caller broke"):
        drv.ex_upload_stream(container(drv), "big", chunks())
    assert state["list"] is None
    assert all("comp=blocklist" not in (r.url or "") for r in http.requests)


def test_failing_block_aborts_upload(http: FakeHTTP) -> None:
    def respond(req: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        return 500, {"x-ms-error-code": "InternalError"}, b""

    http.responder = respond
    transfer = TransferConfig(part_size=1000, max_concurrency=2, single_put_threshold=1000)
    drv = az.build_azure_driver(cfg(transfer=transfer))
    pulled: list[int] = []

    def chunks() -> Any:
        for i in range(100):
            pulled.append(i)
            yield b"y" * 1000

    with pytest.raises(BaseHTTPError):
        drv.ex_upload_stream(container(drv), "big", chunks())
    assert len(pulled) < 100  # stopped reading the caller's stream
    assert all("comp=blocklist" not in (r.url or "") for r in http.requests)


def test_object_from_listing(http: FakeHTTP) -> None:
    body = (
        b"<?xml version='1.0'?><EnumerationResults><Blobs><Blob><Name>a \xc3\xbc+&amp;</Name>"
        b"<Properties><Last-Modified>Tue, 24 Nov 2026 02:36:31 GMT</Last-Modified>"
        b"<Etag>0x8D2</Etag><Content-Length>7</Content-Length><BlobType>BlockBlob</BlobType>"
        b"</Properties></Blob></Blobs><NextMarker>m2</NextMarker></EnumerationResults>"
    )
    last = b"<?xml version='1.0'?><EnumerationResults><Blobs/><NextMarker/></EnumerationResults>"
    answers: Iterator[tuple[int, dict[str, str], bytes]] = iter([(200, {}, body), (200, {}, last)])
    http.responder = lambda req: next(answers)
    drv = az.build_azure_driver(cfg())
    objs = list(drv.iterate_container_objects(container(drv), prefix="a"))
    assert [(o.name, o.size, o.hash, o.extra["mtime_ms"]) for o in objs] == [
        ("a ü+&", 7, "0x8D2", 1795487791000)
    ]
    assert "marker=m2" in (http.requests[1].url or "")


def test_builder_uses_config_values() -> None:
    c = cfg(
        resilience=ResilienceConfig(timeout_secs=3),
        transfer=TransferConfig(part_size=5, max_concurrency=9),
    )
    drv = az.build_azure_driver(c)
    assert drv.timeout == 3 and drv.transfer.max_concurrency == 9
    assert drv.connection.timeout == 3
    assert drv.libkb_name == "azure"


def test_sent_body_is_not_kept_by_the_connection(http: FakeHTTP) -> None:
    # One connection per upload thread: a kept body would pin a part per thread.
    http.responder = lambda req: (201, {}, b"")
    drv = az.build_azure_driver(cfg())
    drv.ex_put_object(container(drv), "x", b"p" * 1000)
    assert drv.connection.data is None
    assert drv.connection.connection.response.request.body is None
