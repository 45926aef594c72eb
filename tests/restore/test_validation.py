"""``validation run`` on a restore the engines made, Kafka faked: each check passes, then fails for its cause.

The backup and the restore are the engines' own (``tests.fakes.jobs``): a
topic with offset gaps, a partition trimmed by retention, every awkward
record shape, a consumer group. The target is then damaged one way per test
and the check that must see it fails; the others keep their outcome.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from libkb.cli import main
from libkb.config import SourceOptions
from libkb.config.validation import (
    ChecksOptions,
    EvidenceOptions,
    GroupOffsetOptions,
    MessageCountOptions,
    RecordContentOptions,
    ValidationConfig,
)
from libkb.restore.validation import ValidationRun, run_validation
from libkb.restore.validation.evidence import canonical, list_reports, report_digest
from libkb.storage import FilesystemConfig, MemoryConfig, StorageBackend, create_backend_from_config
from tests.fakes import FakeKafka
from tests.fakes.jobs import (
    BACKUP_ID,
    PARTITIONS,
    TOPIC,
    backup_engine,
    restore_config,
    restore_engine,
    source_kafka,
)

TARGET = f"{TOPIC}-restored"
ALL_CHECKS = ChecksOptions(record_content=RecordContentOptions(enabled=True))


@pytest.fixture
def restored() -> Iterator[tuple[FakeKafka, StorageBackend]]:
    """The source cluster, a backup of ``orders``, a complete restore into ``orders-restored``."""
    kafka = source_kafka()
    backend = create_backend_from_config(MemoryConfig())
    assert backup_engine(kafka, backend).run().status == "complete"
    result = restore_engine(kafka, backend, restore_config(reset_consumer_offsets=True)).run()
    assert result.status == "complete" and result.groups_reset == ["billing"]
    yield kafka, backend
    backend.close()


def validate(
    kafka: FakeKafka, backend: StorageBackend, checks: ChecksOptions = ALL_CHECKS, **more: Any
) -> ValidationRun:
    config = ValidationConfig(
        backup_id=BACKUP_ID,
        storage=MemoryConfig(),
        target=SourceOptions(bootstrap_servers=("fake:9092",)),
        checks=checks,
        **more,
    )
    return run_validation(
        config, backend=backend, admin=kafka.admin(), consumer_factory=kafka.consumer_factory
    )


def outcomes(run: ValidationRun) -> dict[str, str]:
    return {r["check_name"]: r["outcome"] for r in run.report["validation"]["results"]}


def result(run: ValidationRun, name: str) -> dict[str, Any]:
    return next(r for r in run.report["validation"]["results"] if r["check_name"] == name)


def test_an_intact_restore_passes_every_check_and_stores_its_evidence(
    restored: tuple[FakeKafka, StorageBackend],
) -> None:
    kafka, backend = restored
    run = validate(kafka, backend, triggered_by="quarterly drill", pitr_timestamp=1_600_000_000_000)
    assert run.overall == "PASSED", run.report["validation"]
    assert outcomes(run) == dict.fromkeys(
        ["MessageCountCheck", "OffsetRangeCheck", "ConsumerGroupOffsetCheck", "RecordContentCheck"], "PASSED"
    )
    report = run.report
    restored_records = sum(len(kafka.cluster.records(TARGET, p)) for p in range(PARTITIONS))
    assert result(run, "MessageCountCheck")["data"]["total_messages_restored"] == restored_records
    assert result(run, "RecordContentCheck")["data"]["records_compared"] == restored_records
    assert result(run, "ConsumerGroupOffsetCheck")["data"]["total_offsets"] == 2
    assert report["restore"]["compared"] == "by the restore's offset mapping"
    assert (
        report["restore"]["target_cluster_id"] == "fake-cluster" and report["restore"]["status"] == "complete"
    )
    assert report["backup"]["id"] == BACKUP_ID and report["backup"]["total_partitions"] == PARTITIONS
    assert (report["triggered_by"], report["backup"]["pitr_timestamp"]) == (
        "quarterly drill",
        1_600_000_000_000,
    )
    assert (
        report["integrity"]["checksums_valid"] is True
        and report["integrity"]["signature_algorithm"] == "none"
    )
    (key,) = run.evidence_keys
    assert key.startswith(f"evidence-reports/{report['report_id']}/") and key.endswith(
        f"/{report['report_id']}.json"
    )
    stored = json.loads(backend.get(key))
    assert stored == report and stored["integrity"]["report_sha256"] == report_digest(stored)
    assert list_reports(backend, "evidence-reports/") == [key]


def test_a_changed_group_offset_fails_the_group_check(restored: tuple[FakeKafka, StorageBackend]) -> None:
    kafka, backend = restored
    kafka.cluster.commit("billing", TARGET, 0, 3)
    run = validate(kafka, backend)
    assert run.overall == "FAILED"
    assert outcomes(run)["ConsumerGroupOffsetCheck"] == "FAILED"
    (issue,) = result(run, "ConsumerGroupOffsetCheck")["data"]["issues"]
    assert (issue["group"], issue["topic"], issue["partition"], issue["committed"]) == (
        "billing",
        TARGET,
        0,
        3,
    )
    assert {k: v for k, v in outcomes(run).items() if k != "ConsumerGroupOffsetCheck"} == dict.fromkeys(
        ["MessageCountCheck", "OffsetRangeCheck", "RecordContentCheck"], "PASSED"
    )
    only = GroupOffsetOptions(verify_all_groups=False, groups=("nobody",))
    assert outcomes(validate(kafka, backend, ChecksOptions(consumer_group_offsets=only))) == {
        "MessageCountCheck": "PASSED",
        "OffsetRangeCheck": "PASSED",
        "ConsumerGroupOffsetCheck": "SKIPPED",
    }


def test_records_deleted_from_the_target_fail_counts_and_ranges(
    restored: tuple[FakeKafka, StorageBackend],
) -> None:
    kafka, backend = restored
    kafka.cluster.delete_records(TARGET, 1, 5)
    run = validate(kafka, backend)
    assert outcomes(run)["MessageCountCheck"] == "FAILED" and outcomes(run)["OffsetRangeCheck"] == "FAILED"
    (gap,) = result(run, "MessageCountCheck")["data"]["discrepancies"]
    assert (gap["partition"], gap["difference"]) == (1, 5)
    (issue,) = result(run, "OffsetRangeCheck")["data"]["issues"]
    assert (issue["issue"], issue["actual_lwm"]) == ("low_watermark_above", 5)
    assert outcomes(run)["RecordContentCheck"] == "PASSED"  # what is left is still exact


def test_a_changed_record_fails_the_content_check(restored: tuple[FakeKafka, StorageBackend]) -> None:
    kafka, backend = restored
    log = kafka.cluster.partition(TARGET, 2)
    log.records[7] = dataclasses.replace(log.records[7], value=b"tampered")
    run = validate(kafka, backend)
    assert outcomes(run)["RecordContentCheck"] == "FAILED"
    (mismatch,) = result(run, "RecordContentCheck")["data"]["mismatches"]
    assert (mismatch["partition"], mismatch["offset"], mismatch["issue"]) == (2, 7, "the value differs")
    assert outcomes(run)["MessageCountCheck"] == "PASSED"
    assert run.report["integrity"]["checksums_valid"] is False


def test_records_appended_after_the_restore_are_not_its_business(
    restored: tuple[FakeKafka, StorageBackend],
) -> None:
    kafka, backend = restored
    kafka.cluster.append(TARGET, 0, b"k", b"written by an application afterwards")
    assert validate(kafka, backend).overall == "PASSED"


def test_a_missing_target_topic_fails_counts_and_ranges(restored: tuple[FakeKafka, StorageBackend]) -> None:
    kafka, backend = restored
    del kafka.cluster.topics[TARGET]
    run = validate(kafka, backend)
    assert outcomes(run)["MessageCountCheck"] == "FAILED" and outcomes(run)["OffsetRangeCheck"] == "FAILED"
    issues = result(run, "OffsetRangeCheck")["data"]["issues"]
    assert {i["issue"] for i in issues} == {"topic_or_partition_not_found"} and len(issues) == PARTITIONS


def test_sampling_checks_a_share_of_the_partitions(restored: tuple[FakeKafka, StorageBackend]) -> None:
    kafka, backend = restored
    sample = ChecksOptions(message_count=MessageCountOptions(mode="sample", sample_percentage=50))
    data = result(validate(kafka, backend, sample), "MessageCountCheck")["data"]
    assert (data["mode"], data["partitions_verified"]) == ("sample", 2)  # ceil(3 * 50 %)
    topics = ChecksOptions(message_count=MessageCountOptions(topics=("other",)))
    assert result(validate(kafka, backend, topics), "MessageCountCheck")["data"]["partitions_verified"] == 0


def test_without_a_restore_the_backup_is_compared_by_name_with_its_own_cluster() -> None:
    """The original tool's use: validate a backup against the cluster it came from."""
    kafka = source_kafka()
    with create_backend_from_config(MemoryConfig()) as backend:
        assert backup_engine(kafka, backend).run().status == "complete"
        run = validate(kafka, backend)
        assert run.report["restore"]["compared"] == "by topic name and offset"
        assert "no stored restore of this backup" in run.report["restore"]["notes"][0]
        # Offsets without records (compaction, markers) do not count as missing records.
        assert outcomes(run) == {
            "MessageCountCheck": "PASSED",
            "OffsetRangeCheck": "PASSED",
            "ConsumerGroupOffsetCheck": "PASSED",
            "RecordContentCheck": "SKIPPED",
        }
        kafka.cluster.commit("billing", TOPIC, 0, 30)  # consumers move on: a fact of a live cluster
        kafka.cluster.delete_records(TOPIC, 0, 20)  # and so does retention
        later = outcomes(validate(kafka, backend))
        assert later["ConsumerGroupOffsetCheck"] == "WARNING" and later["MessageCountCheck"] == "FAILED"


def test_evidence_is_never_overwritten_and_can_be_turned_off(
    restored: tuple[FakeKafka, StorageBackend],
) -> None:
    kafka, backend = restored
    first, second = validate(kafka, backend), validate(kafka, backend)
    assert first.report["report_id"] != second.report["report_id"]
    assert list_reports(backend, "evidence-reports/") == sorted(
        first.evidence_keys + second.evidence_keys, reverse=True
    )
    off = validate(kafka, backend, evidence=EvidenceOptions(formats=()))
    assert off.evidence_keys == [] and off.report["integrity"]["report_sha256"] == report_digest(off.report)
    assert canonical(off.report).startswith(b'{"backup":')


def p256_keys(tmp_path: Path) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private, public = tmp_path / "private.pem", tmp_path / "public.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def test_signed_evidence_is_listed_fetched_and_verified_by_the_commands(
    restored: tuple[FakeKafka, StorageBackend], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kafka, memory = restored
    store = tmp_path / "store"
    with create_backend_from_config(FilesystemConfig(str(store))) as backend:
        for key in memory.list():
            backend.put(key, memory.get(key))
        private, public = p256_keys(tmp_path)
        signed = EvidenceOptions(signing_enabled=True, private_key_path=str(private))
        run = validate(kafka, backend, evidence=signed)
    report_id = run.report["report_id"]
    json_key, sig_key = run.evidence_keys
    assert sig_key == json_key.removesuffix(".json") + ".sig"
    assert run.report["integrity"]["signed_by"].startswith("sha256:")
    assert run.report["integrity"]["signature_algorithm"] == "ECDSA-P256-SHA256"

    assert main(["validation", "evidence-list", "--path", str(store)]) == 0
    out = capsys.readouterr().out
    assert "(1 found)" in out and f"  {report_id}  {json_key}" in out
    report, signature = tmp_path / "report.json", tmp_path / "report.sig"
    assert main(["validation", "evidence-get", "-p", str(store), "-r", report_id, "-o", str(report)]) == 0
    assert (
        main(
            [
                "validation",
                "evidence-get",
                "-p",
                str(store),
                "-r",
                report_id,
                "-f",
                "sig",
                "-o",
                str(signature),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert (
        canonical(json.loads(report.read_bytes())) == report.read_bytes()
    )  # signed reports are stored canonical

    assert (
        main(
            [
                "validation",
                "evidence-verify",
                "-r",
                str(report),
                "-s",
                str(signature),
                "--public-key",
                str(public),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert f"report id:      {report_id}" in out and "ECDSA signature: valid" in out
    assert "integrity.report_sha256: matches" in out and out.endswith("evidence report integrity: verified\n")

    (tmp_path / "other").mkdir()
    _, other_public = p256_keys(tmp_path / "other")
    assert (
        main(
            [
                "validation",
                "evidence-verify",
                "-r",
                str(report),
                "-s",
                str(signature),
                "--public-key",
                str(other_public),
            ]
        )
        == 1
    )
    assert "the ECDSA signature is not valid" in capsys.readouterr().err

    report.write_bytes(
        report.read_bytes().replace(b'"overall_result":"PASSED"', b'"overall_result":"FAILED"')
    )
    assert main(["validation", "evidence-verify", "-r", str(report), "-s", str(signature)]) == 1
    err = capsys.readouterr().err
    assert "the report's SHA-256 is" in err and "integrity.report_sha256 says" in err

    assert (
        main(["validation", "evidence-get", "-p", str(store), "-r", "nope", "-o", str(tmp_path / "x")]) == 1
    )
    assert "no json evidence for report 'nope'" in capsys.readouterr().err
    assert main(["validation", "evidence-list", "-p", str(tmp_path / "elsewhere")]) == 1
    assert "nothing is stored at" in capsys.readouterr().err and not (tmp_path / "elsewhere").exists()
    assert main(["validation", "evidence-list", "-p", str(tmp_path), "--prefix", "nothing-here"]) == 0
    assert capsys.readouterr().out == f"no evidence reports at {tmp_path} under nothing-here/\n"
