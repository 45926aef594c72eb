"""A validation run's HTTP: webhook checks, Slack and PagerDuty notifications, against a real local server.

Also the detached signature format and its edge cases.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from libkb.config.validation import NotificationOptions, WebhookOptions
from libkb.errors import ConfigError
from libkb.restore.validation.signing import Signature, SignatureError, sign, verify
from libkb.restore.validation.webhooks import notify, webhook_check


@dataclass
class Sink:
    """What the server received, and what it answers next: (status, body, delay)."""

    url: str
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    answer: tuple[int, Any, float] = (200, {}, 0.0)


@pytest.fixture
def sink() -> Iterator[Sink]:
    state = Sink("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.received.append((self.path, body))
            status, answer, delay = state.answer
            time.sleep(delay)
            data = json.dumps(answer).encode() if not isinstance(answer, bytes) else answer
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


PAYLOAD = {
    "event": "kafka_backup_validation",
    "backup_id": "b1",
    "restored_cluster": {"bootstrap_servers": ["k:9092"]},
}


def test_a_webhook_decides_its_own_outcome(sink: Sink) -> None:
    hook = WebhookOptions("app-check", f"{sink.url}/validate?token=t0k3n")
    sink.answer = (200, {"result": "warning", "detail": "2 consumers lag", "data": {"lag": 2}}, 0.0)
    result = webhook_check(hook, PAYLOAD)
    assert (result.check_name, result.outcome, result.detail, result.data) == (
        "app-check",
        "WARNING",
        "2 consumers lag",
        {"lag": 2},
    )
    assert sink.received == [("/validate?token=t0k3n", PAYLOAD)]
    sink.answer = (200, b"not json", 0.0)
    assert webhook_check(hook, PAYLOAD).outcome == "PASSED"  # a 2xx without a body: passed, as there
    sink.answer = (500, {}, 0.0)
    failed = webhook_check(hook, PAYLOAD)
    assert (failed.outcome, failed.detail) == ("FAILED", "expected status 200, got 500")


def test_a_webhook_timeout_fails_unless_told_otherwise(sink: Sink) -> None:
    sink.answer = (200, {}, 1.0)
    strict = webhook_check(WebhookOptions("slow", sink.url, timeout_seconds=0.2), PAYLOAD)
    lenient = webhook_check(
        WebhookOptions("slow", sink.url, timeout_seconds=0.2, fail_on_timeout=False), PAYLOAD
    )
    assert (strict.outcome, lenient.outcome) == ("FAILED", "WARNING")
    assert strict.detail == "webhook timed out after 0.2s"


def test_an_unreachable_webhook_fails_without_naming_its_url() -> None:
    result = webhook_check(
        WebhookOptions("gone", "http://127.0.0.1:1/x?token=t0k3n", timeout_seconds=2), PAYLOAD
    )
    assert result.outcome == "FAILED" and "t0k3n" not in result.detail and "127.0.0.1" not in result.detail


REPORT = {
    "report_id": "validation-20260101T000000Z-abcd",
    "backup": {"id": "b1"},
    "validation": {"overall_result": "FAILED", "checks_passed": 2, "checks_total": 3},
}


def test_slack_and_pagerduty_are_told_of_a_failure_and_of_a_recovery(sink: Sink) -> None:
    options = NotificationOptions(
        slack_webhook_url=f"{sink.url}/slack",
        pagerduty_integration_key="pd-key",
        pagerduty_severity="error",
        pagerduty_events_url=f"{sink.url}/enqueue",
    )
    assert notify(options, REPORT, "evidence-reports/x.json") == []
    (slack_path, slack), (pd_path, event) = sink.received
    assert slack_path == "/slack" and "validation FAILED: backup b1, 2/3 checks passed" in slack["text"]
    assert pd_path == "/enqueue" and event["routing_key"] == "pd-key" and event["event_action"] == "trigger"
    assert event["dedup_key"] == "kafka-backup-validation-b1" and event["payload"]["severity"] == "error"
    passed = {**REPORT, "validation": {**REPORT["validation"], "overall_result": "PASSED"}}  # type: ignore[dict-item]
    notify(options, passed, None)
    assert sink.received[-1][1]["event_action"] == "resolve"


def test_a_notification_that_fails_is_a_warning_naming_the_service(sink: Sink) -> None:
    sink.answer = (403, {}, 0.0)
    options = NotificationOptions(slack_webhook_url=f"{sink.url}/secret-path")
    assert notify(options, REPORT, None) == ["Slack notification not sent: HTTP 403"]


def _key(curve: Any = None) -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(curve or ec.SECP256R1())
    pem: bytes = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem


def _public(private: bytes) -> bytes:
    from cryptography.hazmat.primitives import serialization

    key: Any = serialization.load_pem_private_key(private, password=None)
    pem: bytes = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem


def test_a_signature_verifies_and_survives_its_text_form() -> None:
    private = _key()
    data = b'{"report":"data"}'
    signature = sign(data, private, "r-1")
    assert (signature.algorithm, signature.report_id) == ("ECDSA-P256-SHA256", "r-1")
    text = signature.to_text()
    assert text.startswith("-----BEGIN KAFKA BACKUP EVIDENCE SIGNATURE-----\nAlgorithm: ECDSA-P256-SHA256\n")
    again = Signature.from_text(text)
    assert again == signature
    assert verify(data, again, _public(private))
    assert not verify(b'{"report":"tampered"}', again, _public(private))
    assert not verify(data, again, _public(_key()))


def test_unusable_keys_and_signature_files_are_named() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    with pytest.raises(ConfigError, match="must be an ECDSA P-256"):
        sign(b"x", _key(ec.SECP384R1()), "r")
    with pytest.raises(ConfigError, match="cannot load the signing key"):
        sign(b"x", b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n", "r")
    with pytest.raises(SignatureError, match="not a signature file"):
        Signature.from_text("Algorithm: x\n", name="r.sig")
    with pytest.raises(SignatureError, match="has 3 bytes, not 64"):
        verify(b"x", Signature("ECDSA-P256-SHA256", "r", "", "AAAA"), _public(_key()))
