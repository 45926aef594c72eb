"""The evidence report: one JSON document per validation run, stored create-only, optionally signed.

The document has the original tool's fields (``schema_version``,
``report_id``, ``tool``, ``backup``, ``restore``, ``validation``,
``integrity``, ``compliance_mappings``, ``triggered_by``), so tools that read
its reports read libkb's. ``integrity.report_sha256`` is the SHA-256 of the
report's canonical JSON (sorted keys, no spaces, UTF-8) with that field
empty; a signature covers the stored bytes. Reports are stored as
``{prefix}{report_id}/{YYYY}/{MM}/{report_id}.json`` (and ``.sig``), as there,
with ``put_if_absent``: evidence is never overwritten.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
from typing import Any

from libkb.errors import LibkbError
from libkb.storage import StorageBackend

SCHEMA_VERSION = "1.0"


class EvidenceError(LibkbError, FileExistsError):
    """An evidence object could not be stored (one with its key exists already)."""


def canonical(report: dict[str, Any]) -> bytes:
    return json.dumps(report, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def report_digest(report: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON with ``integrity.report_sha256`` empty (what the field holds)."""
    blank = copy.deepcopy(report)
    blank.setdefault("integrity", {})["report_sha256"] = ""
    return hashlib.sha256(canonical(blank)).hexdigest()


def seal(report: dict[str, Any], *, compact: bool) -> bytes:
    """Fill ``integrity.report_sha256`` and return the bytes to store (canonical when they get signed)."""
    report["integrity"]["report_sha256"] = report_digest(report)
    if compact:
        return canonical(report)
    return json.dumps(report, indent=2, ensure_ascii=False).encode() + b"\n"


def evidence_key(prefix: str, report_id: str, ext: str, when: dt.datetime) -> str:
    return f"{prefix}{report_id}/{when:%Y}/{when:%m}/{report_id}.{ext}"


def store_new(backend: StorageBackend, key: str, data: bytes) -> str:
    if not backend.put_if_absent(key, data):
        raise EvidenceError(f"{key} exists already: evidence is never overwritten")
    return key


def list_reports(backend: StorageBackend, prefix: str) -> list[str]:
    """The JSON report keys under ``prefix``, newest report id first (libkb's ids start with the time)."""
    keys = [k for k in backend.iter_keys(prefix) if k.endswith(".json")]
    return sorted(keys, key=lambda k: (k[len(prefix) :].split("/", 1)[0], k), reverse=True)


def find_report(backend: StorageBackend, prefix: str, report_id: str, ext: str) -> str | None:
    """The key of a report's ``.json`` (or ``.sig``) object, or None."""
    for key in backend.iter_keys(f"{prefix}{report_id}/"):
        if key.endswith(f"/{report_id}.{ext}"):
            return key
    return None


def compliance_mappings(check_names: list[str], retention_days: int) -> dict[str, Any]:
    """Which checks evidence which controls, in the original tool's structure (SOX ITGC, CMMC, GDPR)."""
    data_checks = [
        n for n in check_names if n in ("MessageCountCheck", "OffsetRangeCheck", "RecordContentCheck")
    ]
    return {
        "sox_itgc": {
            "control": "ITGC: backup and recovery",
            "satisfied_by": data_checks,
            "evidence_retention_required_years": 7,
            "evidence_retention_configured_days": retention_days,
        },
        "cmmc_l2": {
            "control": "RE.3.139",
            "description": "backups are performed and tested regularly",
            "satisfied_by": list(check_names),
        },
        "gdpr_art32": {
            "control": "Article 32(1)(d): regular testing of technical measures",
            "satisfied_by": data_checks,
            "test_frequency": "on-demand",
        },
    }
