"""Encrypted backups against the real services: Kafka, each cloud backend, and AWS KMS (local-kms).

One round trip per cloud backend (the memory and filesystem ones are in
``tests/encryption``), and the KMS key source end to end: backup under a KMS
key, a wrong or missing key refused before anything is written, and a key
rotation from a local key to a KMS key by ``rewrap``.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest

from integration.kafka_data import consume_all, produce
from integration.restore.test_restore_engine import _storage, content
from integration.services.endpoints import KafkaEndpoint
from integration.services.local_kms import KmsEndpoint
from libkb.backup.engine import BackupEngine
from libkb.backup.rewrap import rewrap_backup
from libkb.catalog import validate_backup
from libkb.config import parse_config
from libkb.config.encryption import KeySource
from libkb.errors import MissingKeyError, WrongKeyError
from libkb.format.encryption import KeyObject, key_object_key
from libkb.format.models import PartitionIndex, index_key
from libkb.keys import Keyring
from libkb.restore.engine import RestoreEngine, RestoreResult
from libkb.storage import StorageBackend, create_backend_from_config
from libkb.storage.settings import load_storage_config

pytestmark = pytest.mark.kafka

RECORDS = 1500


@pytest.fixture
def topic(kafka_topic_factory: Any) -> str:
    return str(kafka_topic_factory(partitions=2, config={"retention.ms": "-1"}))


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """local-kms takes any credentials; botocore needs some."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "libkb-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "libkb-test-secret")


def backup(kafka: KafkaEndpoint, storage: dict[str, Any], topic: str, encryption: dict[str, Any]) -> None:
    config = parse_config(
        {
            "backup_id": "bk",
            "source": {"bootstrap_servers": kafka.bootstrap_servers, "topics": {"include": [topic]}},
            "storage": storage,
            "backup": {"block_bytes": 8192, "segment_max_records": 400},
            "encryption": encryption,
        }
    )
    assert BackupEngine(config).run().status == "complete"


def restore(
    kafka: KafkaEndpoint, storage: dict[str, Any], topic: str, encryption: dict[str, Any]
) -> RestoreResult:
    """A restore of ``topic`` into ``{topic}-restored``, created by it."""
    target = f"{topic}-restored"
    config = parse_config(
        {
            "mode": "restore",
            "backup_id": "bk",
            "target": {"bootstrap_servers": kafka.bootstrap_servers, "topics": {"include": [target]}},
            "storage": storage,
            "restore": {"topic_mapping": {topic: target}, "create_topics": True},
            "encryption": encryption,
        }
    )
    return RestoreEngine(config).run()


def kms_key(kms: KmsEndpoint) -> str:
    import botocore.session

    client = botocore.session.get_session().create_client("kms", region_name=kms.region, endpoint_url=kms.url)
    return str(client.create_key(Description="libkb test")["KeyMetadata"]["Arn"])


def local_section(variable: str, key_id: str = "kek-local") -> dict[str, Any]:
    os.environ.setdefault(variable, base64.b64encode(os.urandom(32)).decode())
    return {"key_id": key_id, "key_env": variable}


def kms_section(kms: KmsEndpoint, key_id: str, **more: Any) -> dict[str, Any]:
    return {"key_id": key_id, "kms": "aws", "region": kms.region, "endpoint_url": kms.url, **more}


def backend_of(storage: dict[str, Any], given: StorageBackend | None) -> StorageBackend:
    return given or create_backend_from_config(load_storage_config(storage))


def assert_exact_and_encrypted(kafka: KafkaEndpoint, store: StorageBackend, source: str, target: str) -> None:
    expected = consume_all(kafka.bootstrap_servers, source, 2)
    got = consume_all(kafka.bootstrap_servers, target, 2)
    assert [content(got[p]) for p in range(2)] == [content(expected[p]) for p in range(2)]
    stored = b"".join(store.get(k) for k in store.list("bk/"))
    values = {r[4] for p in expected for r in expected[p] if r[4] and len(r[4]) > 12}
    assert values and not any(v in stored for v in values)


@pytest.mark.parametrize("kind", ["minio", "azurite", "gcs"])
def test_encrypted_round_trip_on_each_cloud_backend(
    kind: str,
    kafka_service: KafkaEndpoint,
    topic: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    storage, _ = _storage(kind, request, tmp_path)
    store = backend_of(storage, None)
    monkeypatch.setenv("LIBKB_IT_KEK", base64.b64encode(os.urandom(32)).decode())
    keys = local_section("LIBKB_IT_KEK")
    produce(kafka_service.bootstrap_servers, topic, RECORDS, partitions=2)
    backup(kafka_service, storage, topic, keys)
    target = f"{topic}-restored"
    result = restore(kafka_service, storage, topic, keys)
    assert result.status == "complete" and result.records == RECORDS
    assert_exact_and_encrypted(kafka_service, store, topic, target)
    for p in range(2):  # compression: zstd is zstd-stream: compressed across blocks, then encrypted
        index = PartitionIndex.from_json(store.get(index_key("bk", topic, p)))
        assert {(e.codec, e.encryption) for e in index.segments} == {("zstd-stream", "AES-256-GCM")}
    assert validate_backup(store, "bk").ok  # no key needed
    report = validate_backup(
        store, "bk", deep=True, keyring=Keyring([KeySource("kek-local", env="LIBKB_IT_KEK")])
    )
    assert report.ok and report.checked_records == RECORDS, report.problems


def test_aws_kms_key_against_local_kms_and_rotation_from_a_local_key(
    kafka_service: KafkaEndpoint,
    kms_service: KmsEndpoint,
    aws_env: None,
    topic: str,
    minio_bucket: Any,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    storage, _ = _storage("minio", request, tmp_path)
    store = backend_of(storage, None)
    arn, other = kms_key(kms_service), kms_key(kms_service)
    produce(kafka_service.bootstrap_servers, topic, RECORDS, partitions=2)
    backup(kafka_service, storage, topic, kms_section(kms_service, arn))
    index = PartitionIndex.from_json(store.get(index_key("bk", topic, 0)))
    obj = KeyObject.from_json(store.get(key_object_key(index.segments[0].key)), name="k", read_version=6)
    assert (obj.key_id, obj.kek) == (arn, "aws-kms")

    target = f"{topic}-restored"
    with pytest.raises(MissingKeyError, match=arn):
        restore(kafka_service, storage, topic, kms_section(kms_service, other))
    # The wrapped key of the first segment replaced by another's: KMS refuses it, before any write.
    second = KeyObject.from_json(store.get(key_object_key(index.segments[1].key)), name="k", read_version=6)
    store.put(key_object_key(obj.segment), obj.rewrapped(arn, "aws-kms", second.wrapped_key).to_json())
    with pytest.raises(Exception, match=f"{obj.segment}.*cannot unwrap"):
        restore(kafka_service, storage, topic, kms_section(kms_service, arn))
    assert target not in _topics(kafka_service)
    store.put(key_object_key(obj.segment), obj.to_json())

    result = restore(kafka_service, storage, topic, kms_section(kms_service, arn))
    assert result.status == "complete" and result.records == RECORDS
    assert_exact_and_encrypted(kafka_service, store, topic, target)

    # Rotation across kinds: the KMS key's data keys rewrapped under a local key, then back.
    monkeypatch.setenv("LIBKB_IT_KEK2", base64.b64encode(os.urandom(32)).decode())
    local = KeySource("kek-local-2", env="LIBKB_IT_KEK2")
    aws = KeySource(arn, kind="aws", region=kms_service.region, endpoint_url=kms_service.url)
    report = rewrap_backup(store, "bk", Keyring([local, aws]))
    assert report.rewrapped == len(index.segments) + len(
        PartitionIndex.from_json(store.get(index_key("bk", topic, 1))).segments
    )
    assert validate_backup(store, "bk", deep=True, keyring=Keyring([local])).ok
    rewrap_backup(store, "bk", Keyring([aws, local]))
    assert validate_backup(store, "bk", deep=True, keyring=Keyring([aws])).ok
    # A KMS key that did not wrap a data key, given what another KMS key wrapped. (Random bytes, or
    # a local key's wrapping, sometimes made local-kms drop the connection instead of refusing.)
    kms = Keyring(
        [
            KeySource(k, kind="aws", region=kms_service.region, endpoint_url=kms_service.url)
            for k in (arn, other)
        ]
    )
    wrapped_by_other = kms.get(other).wrap(os.urandom(32), "x")
    with pytest.raises(WrongKeyError, match=arn):
        kms.get(arn).unwrap(wrapped_by_other, "x")


def _topics(kafka: KafkaEndpoint) -> set[str]:
    from confluent_kafka.admin import AdminClient

    return set(AdminClient({"bootstrap.servers": kafka.bootstrap_servers}).list_topics(timeout=10).topics)
