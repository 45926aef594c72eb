"""HTTP out of a validation run: custom webhook checks, and Slack and PagerDuty notifications.

Webhook URLs and the PagerDuty key are secrets (a Slack webhook URL is its
own credential): messages name the check or the service, never the URL.
A notification that fails is a warning; it never changes the run's outcome.
"""

from __future__ import annotations

import time
from typing import Any

import requests

from libkb.config.validation import NotificationOptions, WebhookOptions
from libkb.restore.validation.checks import FAILED, PASSED, SKIPPED, WARNING, CheckResult

_OUTCOMES = {"passed": PASSED, "failed": FAILED, "warning": WARNING, "skipped": SKIPPED}
NOTIFY_TIMEOUT_SECS = 30.0


def webhook_check(opts: WebhookOptions, payload: dict[str, Any]) -> CheckResult:
    """POST ``payload``; the answer's ``result``, ``detail`` and ``data`` are the check's (as there)."""
    started = time.monotonic()

    def result(outcome: str, detail: str, data: dict[str, Any]) -> CheckResult:
        return CheckResult(opts.name, outcome, detail, data, int((time.monotonic() - started) * 1000))

    try:
        answer = requests.post(opts.url, json=payload, timeout=opts.timeout_seconds)
    except requests.Timeout:
        outcome = FAILED if opts.fail_on_timeout else WARNING
        return result(outcome, f"webhook timed out after {opts.timeout_seconds:g}s", {"error": "timeout"})
    except requests.RequestException as exc:
        return result(FAILED, f"webhook request failed: {type(exc).__name__}", {"error": type(exc).__name__})
    if answer.status_code != opts.expected_status_code:
        return result(
            FAILED,
            f"expected status {opts.expected_status_code}, got {answer.status_code}",
            {"status_code": answer.status_code},
        )
    try:
        body = answer.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    outcome = _OUTCOMES.get(str(body.get("result", "passed")).lower(), PASSED)
    data = body.get("data")
    return result(
        outcome, str(body.get("detail", "webhook returned success")), data if isinstance(data, dict) else {}
    )


def notify(options: NotificationOptions, report: dict[str, Any], evidence_key: str | None) -> list[str]:
    """Tell Slack and PagerDuty how the run went; what could not be sent, as warnings."""
    warnings = []
    summary = report["validation"]
    passed = summary["overall_result"] != FAILED
    if options.slack_webhook_url:
        text = (
            f"{'✅' if passed else '❌'} Kafka backup validation {summary['overall_result']}: backup "
            f"{report['backup']['id']}, {summary['checks_passed']}/{summary['checks_total']} checks passed"
            + (f", evidence {evidence_key}" if evidence_key else "")
        )
        warnings += _post("Slack", options.slack_webhook_url, {"text": text})
    if options.pagerduty_integration_key:
        event = {
            "routing_key": options.pagerduty_integration_key,
            "event_action": "resolve" if passed else "trigger",
            "dedup_key": f"kafka-backup-validation-{report['backup']['id']}",
            "payload": {
                "summary": f"Kafka backup validation {summary['overall_result']}: {report['report_id']}",
                "severity": "info" if passed else options.pagerduty_severity,
                "source": "kafka-backup",
                "custom_details": {"backup_id": report["backup"]["id"], "evidence": evidence_key},
            },
        }
        warnings += _post("PagerDuty", options.pagerduty_events_url, event)
    return warnings


def _post(service: str, url: str, body: dict[str, Any]) -> list[str]:
    try:
        answer = requests.post(url, json=body, timeout=NOTIFY_TIMEOUT_SECS)
    except requests.RequestException as exc:
        return [f"{service} notification not sent: {type(exc).__name__}"]
    if answer.status_code >= 300:
        return [f"{service} notification not sent: HTTP {answer.status_code}"]
    return []
