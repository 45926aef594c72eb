"""Storage config: the guide's examples, every URL form, and errors that name the key."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from libkb.errors import ConfigError
from libkb.storage import (
    AzureConfig,
    FilesystemConfig,
    GcsConfig,
    MemoryConfig,
    S3Config,
    StorageBackendConfig,
    StorageConfig,
    create_backend,
)

# The storage blocks of ../shared/storage-guide.md, verbatim (comments included).
GUIDE_EXAMPLES = {
    "quickstart-filesystem": """
storage:
  backend: filesystem
  path: /var/kafka-backups
""",
    "quickstart-s3": """
storage:
  backend: s3
  bucket: kafka-backups
  region: us-east-1
""",
    "quickstart-minio": """
storage:
  backend: s3
  bucket: kafka-backups
  endpoint: http://minio.local:9000
  access_key: minioadmin
  secret_key: minioadmin
  path_style: true
  allow_http: true
""",
    "quickstart-azure": """
storage:
  backend: azure
  account_name: mystorageaccount
  container_name: kafka-backups
""",
    "quickstart-azure-managed-identity": """
storage:
  backend: azure
  account_name: mystorageaccount
  container_name: kafka-backups
  # account_key omitted - uses DefaultAzureCredential
""",
    "quickstart-gcs": """
storage:
  backend: gcs
  bucket: kafka-backups
""",
    "reference-azure": """
storage:
  backend: azure

  # Required
  account_name: mystorageaccount
  container_name: kafka-backups

  # Optional - Account key (uses DefaultAzureCredential if omitted)
  account_key: your-account-key

  # Optional - Key prefix for all operations
  prefix: cluster-prod
""",
    "reference-gcs": """
storage:
  backend: gcs

  # Required
  bucket: kafka-backups

  # Optional - Service account JSON path (uses ADC if omitted)
  service_account_path: /path/to/service-account.json

  # Optional - Key prefix for all operations
  prefix: cluster-prod
""",
    "reference-filesystem": """
storage:
  backend: filesystem

  # Required - Base path for storage
  path: /var/kafka-backups
""",
    "reference-memory": """
storage:
  backend: memory
""",
    "kubernetes-configmap": """
storage:
  backend: s3
  bucket: kafka-backups
  region: us-east-1
  prefix: k8s-cluster
""",
    "aks-no-account-key": """
storage:
  backend: azure
  account_name: mystorageaccount
  container_name: kafka-backups
  # account_key omitted - uses Managed Identity
""",
    "encryption": """
storage:
  backend: s3
  bucket: kafka-backups
  # Enable server-side encryption (configure in bucket policy)
""",
    "multi-tenancy": """
storage:
  backend: s3
  bucket: kafka-backups
  prefix: cluster-prod/team-a
""",
    "restore-test": """
storage:
  backend: s3
  bucket: kafka-backups
""",
    "migration-after": """
storage:
  backend: s3
  bucket: kafka-backups
  region: us-east-1
  # endpoint, access_key, secret_key, prefix are all optional
  # and can be omitted if not needed
""",
}

# The S3 Configuration Reference lists every key at once, including an
# http:// endpoint together with ``allow_http: false``.
GUIDE_S3_REFERENCE = """
storage:
  backend: s3

  # Required
  bucket: kafka-backups

  # Optional - AWS region (default: us-east-1)
  region: us-east-1

  # Optional - Custom endpoint for S3-compatible services
  endpoint: http://minio.local:9000

  # Optional - Credentials (falls back to AWS_ACCESS_KEY_ID)
  access_key: AKIAIOSFODNN7EXAMPLE

  # Optional - Credentials (falls back to AWS_SECRET_ACCESS_KEY)
  secret_key: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY

  # Optional - Key prefix for all operations
  prefix: cluster-prod

  # Optional - Use path-style requests (required for MinIO/Ceph)
  path_style: false

  # Optional - Allow HTTP connections (insecure)
  allow_http: false
"""

GUIDE_LEGACY_BEFORE = """
storage:
  backend: s3
  bucket: kafka-backups
  region: us-east-1
  endpoint: null
  access_key: AKIAIOSFODNN7EXAMPLE
  secret_key: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
  prefix: null
"""


def _storage(text: str) -> dict[str, Any]:
    block: dict[str, Any] = yaml.safe_load(text)["storage"]
    return block


@pytest.mark.parametrize("name", sorted(GUIDE_EXAMPLES))
def test_every_guide_example_parses(name: str) -> None:
    config = StorageBackendConfig.from_dict(_storage(GUIDE_EXAMPLES[name]))
    assert isinstance(config, StorageBackendConfig)
    assert config.backend == _storage(GUIDE_EXAMPLES[name])["backend"]


def test_guide_minio_example_values() -> None:
    config = StorageBackendConfig.from_dict(_storage(GUIDE_EXAMPLES["quickstart-minio"]))
    assert isinstance(config, S3Config)
    assert config.endpoint == "http://minio.local:9000"
    assert (config.access_key, config.secret_key) == ("minioadmin", "minioadmin")
    assert config.path_style is True
    assert config.allow_http is True
    assert "minioadmin" not in repr(config)


def test_guide_s3_reference_block_needs_allow_http_for_its_http_endpoint() -> None:
    with pytest.raises(ConfigError) as info:
        StorageBackendConfig.from_dict(_storage(GUIDE_S3_REFERENCE))
    message = str(info.value)
    assert "allow_http" in message and "endpoint" in message and "http://" in message
    assert "wJalrXUtnFEMI" not in message
    fixed = _storage(GUIDE_S3_REFERENCE) | {"allow_http": True}
    config = StorageBackendConfig.from_dict(fixed)
    assert isinstance(config, S3Config)
    assert config.prefix == "cluster-prod"
    assert config.path_style is False


def test_allow_http_defaults_from_endpoint_scheme() -> None:
    http = StorageBackendConfig.from_dict({"backend": "s3", "bucket": "b", "endpoint": "http://h:9000"})
    https = StorageBackendConfig.from_dict({"backend": "s3", "bucket": "b", "endpoint": "https://h"})
    aws = StorageBackendConfig.from_dict({"backend": "s3", "bucket": "b"})
    assert isinstance(http, S3Config) and http.allow_http is True
    assert isinstance(https, S3Config) and https.allow_http is False
    assert isinstance(aws, S3Config) and aws.allow_http is False


def test_dataclass_derives_allow_http_like_yaml() -> None:
    assert S3Config(bucket="b", endpoint="http://127.0.0.1:9000").allow_http is True
    assert S3Config(bucket="b", endpoint="https://s3.example.com").allow_http is False
    assert S3Config(bucket="b").allow_http is False
    assert S3Config(bucket="b", endpoint="http://h:1", allow_http=False).allow_http is False


def test_filesystem_direct_io_is_on_unless_switched_off() -> None:
    on = StorageBackendConfig.from_dict({"backend": "filesystem", "path": "/x"})
    assert on == FilesystemConfig(path="/x", direct_io=True)
    off = yaml.safe_load("storage:\n  backend: filesystem\n  path: /x\n  direct_io: false\n")["storage"]
    assert StorageBackendConfig.from_dict(off) == FilesystemConfig(path="/x", direct_io=False)


def test_legacy_flat_config_keeps_working() -> None:
    legacy = StorageConfig.from_dict(_storage(GUIDE_LEGACY_BEFORE))
    assert "wJalrXUtnFEMI" not in repr(legacy)
    config = legacy.to_backend_config()
    assert isinstance(config, S3Config)
    assert config.bucket == "kafka-backups"
    assert config.endpoint is None and config.prefix is None
    assert config.access_key == "AKIAIOSFODNN7EXAMPLE"


def test_legacy_create_backend(tmp_path: Any) -> None:
    backend = create_backend(StorageConfig(backend="filesystem", path=str(tmp_path), prefix=None))
    backend.put("k", b"v")
    assert backend.get("k") == b"v"
    memory = create_backend(StorageConfig(backend="memory"))
    memory.put("k", b"v")
    assert memory.list() == ["k"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://my-bucket?region=us-west-2", S3Config(bucket="my-bucket", region="us-west-2")),
        (
            "s3://bucket?region=us-east-1&endpoint=http://host:9000",
            S3Config(bucket="bucket", region="us-east-1", endpoint="http://host:9000", allow_http=True),
        ),
        (
            "s3a://bucket/some/prefix?path_style=true",
            S3Config(bucket="bucket", prefix="some/prefix", path_style=True),
        ),
        (
            "azure://account.blob.core.windows.net/container",
            AzureConfig(account_name="account", container_name="container"),
        ),
        (
            "az://account.blob.core.windows.net/container/pre/fix",
            AzureConfig(account_name="account", container_name="container", prefix="pre/fix"),
        ),
        (
            "azure://devstoreaccount1/c?endpoint=http://127.0.0.1:10000/devstoreaccount1",
            AzureConfig(
                account_name="devstoreaccount1",
                container_name="c",
                endpoint="http://127.0.0.1:10000/devstoreaccount1",
            ),
        ),
        (
            "azure://acct.blob.core.chinacloudapi.cn/c",
            AzureConfig(
                account_name="acct",
                container_name="c",
                endpoint="https://acct.blob.core.chinacloudapi.cn",
            ),
        ),
        ("gcs://my-bucket", GcsConfig(bucket="my-bucket")),
        ("gs://my-bucket/team/a", GcsConfig(bucket="my-bucket", prefix="team/a")),
        (
            "gcs://b?endpoint=http://127.0.0.1:4443",
            GcsConfig(bucket="b", endpoint="http://127.0.0.1:4443"),
        ),
        ("file:///var/kafka-backups", FilesystemConfig(path="/var/kafka-backups")),
        ("file://localhost/var/kb?prefix=p", FilesystemConfig(path="/var/kb", prefix="p")),
        ("file:///var/kb?direct_io=false", FilesystemConfig(path="/var/kb", direct_io=False)),
        ("/var/kafka-backups", FilesystemConfig(path="/var/kafka-backups")),
        ("relative/dir", FilesystemConfig(path="relative/dir")),
        ("memory://", MemoryConfig()),
        ("memory://scratch", MemoryConfig(prefix="scratch")),
    ],
)
def test_every_url_form_parses(url: str, expected: StorageBackendConfig) -> None:
    assert StorageBackendConfig.from_url(url) == expected


@pytest.mark.parametrize(
    ("block", "key", "words"),
    [
        ({"backend": "dropbox"}, "storage.backend", ["s3", "azure", "gcs", "filesystem", "memory"]),
        ({"bucket": "b"}, "storage.backend", ["s3", "memory"]),
        ({"backend": "s3"}, "storage.bucket", ["required: this key is missing; add it"]),
        (
            {"backend": "s3", "bucket": "b", "buckett": "x"},
            "storage.buckett",
            ["unknown key; did you mean 'bucket'?"],
        ),
        (
            {"backend": "s3", "bucket": "b", "path_style": "maybe"},
            "storage.path_style",
            ["must be true or false"],
        ),
        (
            {"backend": "s3", "bucket": "b", "endpoint": "minio:9000"},
            "storage.endpoint",
            ["http://"],
        ),
        (
            {"backend": "s3", "bucket": "b", "transfer": {"part_size": 1024}},
            "storage.transfer.part_size",
            ["greater than or equal"],
        ),
        (
            {"backend": "s3", "bucket": "b", "resilience": {"max_attempts": 0}},
            "storage.resilience.max_attempts",
            ["greater than or equal"],
        ),
        (
            {"backend": "azure", "account_name": "a"},
            "storage.container_name",
            ["required: this key is missing; add it"],
        ),
        ({"backend": "filesystem"}, "storage.path", ["required: this key is missing; add it"]),
        (
            {"backend": "filesystem", "path": "/x", "direct_io": "sometimes"},
            "storage.direct_io",
            ["must be true or false"],
        ),
        ({"backend": "memory", "path": "/x"}, "storage.path", ["unknown key", "prefix"]),
    ],
)
def test_bad_config_names_the_key(block: dict[str, Any], key: str, words: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        StorageBackendConfig.from_dict(block, source="backup.yaml")
    error = info.value
    assert isinstance(error, ValueError)
    assert error.key == key
    assert str(error).startswith(f"backup.yaml: {key}: ")
    for word in words:
        assert word in str(error)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://host/x", ["unsupported URL scheme", "s3://"]),
        ("s3://bucket?regoin=x", ["unknown query parameter 'regoin'", "region"]),
        ("s3://bucket?path_style=perhaps", ["true or false"]),
        ("file:///var/kb?direct_io=maybe", ["true or false", "direct_io"]),
        ("azure://account.blob.core.windows.net", ["CONTAINER"]),
        ("file://remote-host/x", ["file:///"]),
        ("s3://", ["names no bucket"]),
    ],
)
def test_bad_url_says_what_to_do(url: str, words: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        StorageBackendConfig.from_url(url)
    for word in words:
        assert word in str(info.value)


def test_secrets_are_not_in_reprs() -> None:
    s3 = S3Config(bucket="b", access_key="AKIA", secret_key="s3cr3t-value", session_token="tok3n-value")
    azure = AzureConfig(account_name="a", container_name="c", account_key="azure-key-value")
    sas = AzureConfig(account_name="a", container_name="c", sas_token="sv=2026-10-06&sig=s1gn%2Fature")
    for config, secret in (
        (s3, "s3cr3t-value"),
        (s3, "tok3n-value"),
        (azure, "azure-key-value"),
        (sas, "s1gn"),
    ):
        assert secret not in repr(config)
        assert secret not in str(config)


def test_a_sas_token_loads_and_its_secret_forms_are_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    from libkb.storage.secrets import storage_secrets

    monkeypatch.delenv("AZURE_STORAGE_SAS_TOKEN", raising=False)
    token = "?sv=2026-10-06&sp=racwdl&sig=s1gn%2Fature%3D"
    config = StorageBackendConfig.from_dict(
        {"backend": "azure", "account_name": "a", "container_name": "c", "sas_token": token}
    )
    assert isinstance(config, AzureConfig) and config.sas_token == token
    # As written, decoded, and as a request URL carries it (quote_plus).
    assert {token, "s1gn%2Fature%3D", "s1gn/ature="} <= set(storage_secrets(config))
    monkeypatch.setenv("AZURE_STORAGE_SAS_TOKEN", "sv=1&sig=from-the-env")
    assert "from-the-env" in storage_secrets(AzureConfig(account_name="a", container_name="c"))
    with pytest.raises(ConfigError, match=r"storage\.sas_token: must not be empty"):
        StorageBackendConfig.from_dict(
            {"backend": "azure", "account_name": "a", "container_name": "c", "sas_token": ""}
        )


@pytest.mark.parametrize(
    "config",
    [
        FilesystemConfig(path="/var/kafka-backups"),
        FilesystemConfig(path="/var/kafka-backups", prefix="team a"),
        MemoryConfig(prefix="scratch"),
        S3Config(
            bucket="b", prefix="x/y", endpoint="http://127.0.0.1:9000", region="eu-west-1", path_style=True
        ),
        S3Config(bucket="b"),
        GcsConfig(bucket="g", prefix="p", endpoint="http://127.0.0.1:4443"),
        AzureConfig(
            account_name="acct", container_name="c", prefix="p", endpoint="http://127.0.0.1:10000/acct"
        ),
    ],
)
def test_storage_url_names_the_same_storage(config: Any) -> None:
    """An undo command printed for a job file's storage points at that very storage."""
    from libkb.storage.config import storage_url

    assert StorageBackendConfig.from_url(storage_url(config)) == config


def test_storage_url_leaves_secrets_out() -> None:
    from libkb.storage.config import storage_url

    url = storage_url(S3Config(bucket="b", access_key="AKIAEXAMPLE", secret_key="s3cr3t-value"))
    assert "AKIAEXAMPLE" not in url and "s3cr3t" not in url
