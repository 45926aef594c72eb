"""``validation run|evidence-list|evidence-get|evidence-verify``: check a restore and keep the evidence.

``run`` exits 1 when a check failed (as the original tool); the evidence
commands exit 1 when the report is not there or does not verify.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

from libkb.cli.logs import apply_job_logging, error_line
from libkb.cli.readonly import reading
from libkb.cli.render import dump
from libkb.config.models import LoggingOptions
from libkb.config.validation import load_validation_config
from libkb.errors import ConfigError, LibkbError
from libkb.restore.validation import ValidationRun, run_validation
from libkb.restore.validation.evidence import find_report, list_reports, report_digest
from libkb.restore.validation.signing import Signature, verify

log = logging.getLogger("libkb.cli")


class EvidenceNotFoundError(LibkbError, FileNotFoundError):
    """No evidence report (or nothing at all) is stored where the command looked."""

    def __str__(self) -> str:
        return str(self.args[0])


def run_validation_command(
    config_path: str,
    *,
    pitr: int | None = None,
    triggered_by: str | None = None,
    fmt: str = "text",
    out: IO[str] | None = None,
) -> int:
    config = load_validation_config(config_path)
    apply_job_logging(LoggingOptions(), backup_id=config.backup_id, secrets=config.secrets())
    if pitr is not None:
        config = replace(config, pitr_timestamp=pitr)
    if triggered_by is not None:
        config = replace(config, triggered_by=triggered_by)
    run = run_validation(config)
    stdout = out or sys.stdout
    print(run_text(run) if fmt == "text" else dump(run.report, fmt), file=stdout, flush=True)
    for warning in run.warnings:
        log.warning("%s", warning)
    if run.overall == "FAILED":
        summary = run.report["validation"]
        error_line(
            f"validation FAILED: {summary['checks_failed']} of {summary['checks_total']} checks failed"
        )
        return 1
    return 0


def run_text(run: ValidationRun) -> str:
    r = run.report
    s, restore = r["validation"], r["restore"]
    which = f"restore {restore['restore_id']}, " if restore["restore_id"] else ""
    cluster = restore["target_cluster_id"] or ",".join(restore["target_bootstrap_servers"])
    lines = [
        f"validation {r['report_id']} of backup {r['backup']['id']} ({which}compared {restore['compared']}) "
        f"on cluster {cluster}: {s['overall_result']}",
        f"checks: {s['checks_total']} run, {s['checks_passed']} passed, {s['checks_failed']} failed, "
        f"{s['checks_skipped']} skipped, {s['checks_warned']} warnings ({s['total_duration_ms']} ms)",
    ]
    lines += [f"  [{c['outcome']}] {c['check_name']}: {c['detail']}" for c in s["results"]]
    lines += [f"note: {n}" for n in restore["notes"]]
    for key in run.evidence_keys:
        lines.append(f"{'signature' if key.endswith('.sig') else 'evidence'}: {key}")
    if not run.evidence_keys:
        lines.append("evidence: none stored (evidence.formats is empty)")
    return "\n".join(lines)


def run_evidence_list(path: str, limit: int, prefix: str, fmt: str, out: IO[str] | None = None) -> int:
    with reading(path) as backend:
        keys = list_reports(backend, _prefix(prefix))
    stdout = out or sys.stdout
    shown = keys[:limit] if limit > 0 else keys
    if fmt != "text":
        print(dump([{"report_id": Path(k).stem, "key": k} for k in shown], fmt), file=stdout)
    elif not keys:
        print(f"no evidence reports at {path} under {_prefix(prefix)}", file=stdout)
    else:
        more = f", newest {len(shown)} shown" if len(shown) < len(keys) else ""
        print(f"evidence reports at {path} ({len(keys)} found{more}):", file=stdout)
        for key in shown:
            print(f"  {Path(key).stem}  {key}", file=stdout)
    return 0


def run_evidence_get(
    path: str, report_id: str, fmt: str, output: str, prefix: str, out: IO[str] | None = None
) -> int:
    if fmt == "pdf":
        raise ConfigError(
            "libkb writes evidence as JSON (and a .sig when signed), not PDF: use --format json",
            key="--format",
        )
    ext = "sig" if fmt == "sig" else "json"
    with reading(path) as backend:
        key = find_report(backend, _prefix(prefix), report_id, ext)
        if key is None:
            raise EvidenceNotFoundError(
                f"no {ext} evidence for report {report_id!r} at {path} under {_prefix(prefix)}"
            )
        data = backend.get(key)
    _write_atomically(Path(output), data)
    print(f"evidence report {report_id} ({key}) saved to {output}", file=out or sys.stdout)
    return 0


def run_evidence_verify(
    report_path: str, signature_path: str, public_key: str | None, out: IO[str] | None = None
) -> int:
    stdout = out or sys.stdout
    data = _read(report_path, "--report")
    signature = Signature.from_text(
        _read(signature_path, "--signature").decode(errors="replace"), name=signature_path
    )
    print(f"report id:      {signature.report_id}", file=stdout)
    print(f"algorithm:      {signature.algorithm}", file=stdout)
    print(f"report SHA-256: {signature.report_sha256}", file=stdout)
    problems = []
    actual = hashlib.sha256(data).hexdigest()
    if actual != signature.report_sha256:
        problems.append(f"the report's SHA-256 is {actual}, the signature is for {signature.report_sha256}")
    else:
        print("SHA-256 of the report file: matches the signature", file=stdout)
    inner = _inner_digest(data)
    if inner is not None:
        if inner[0] != inner[1]:
            problems.append(
                f"integrity.report_sha256 says {inner[0]}, the report's content hashes to {inner[1]}"
            )
        else:
            print("integrity.report_sha256: matches the report's content", file=stdout)
    if public_key is None:
        print("ECDSA signature: not checked (give --public-key)", file=stdout)
    elif verify(data, signature, _read(public_key, "--public-key")):
        print("ECDSA signature: valid", file=stdout)
    else:
        problems.append("the ECDSA signature is not valid for this report and public key")
    for problem in problems:
        error_line(f"verification FAILED: {problem}")
    if not problems:
        print("evidence report integrity: verified", file=stdout)
    return 1 if problems else 0


def _inner_digest(data: bytes) -> tuple[str, str] | None:
    """(integrity.report_sha256, the digest recomputed from the content), if the report is libkb-readable."""
    try:
        report: Any = json.loads(data)
        claimed = report["integrity"]["report_sha256"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(claimed, str) or not claimed:
        return None
    return claimed, report_digest(report)


def _prefix(prefix: str) -> str:
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


def _read(path: str, flag: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}", key=flag) from None


def _write_atomically(target: Path, data: bytes) -> None:
    """A reader never sees half a report: write beside it, then rename."""
    fd, partial = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(partial, target)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
