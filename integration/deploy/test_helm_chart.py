"""The Helm chart ``deploy/helm/kafka-backup``, rendered by a real helm and checked three ways.

No Kubernetes cluster is reachable here; what stands in for one: ``helm lint``
and ``helm template`` (helm built from its Go module, cached), every rendered
core object validated against the Kubernetes OpenAPI schemas
(kubernetes-validate, offline, strict: unknown fields are errors), the
Prometheus Operator objects checked against the files they wrap, and the
rendered job file loaded by libkb's own config loader.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from integration.services import ServiceError
from integration.services.tools import helm
from libkb.config import JobConfig, load_config

CHART = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "kafka-backup"
#: The oldest Kubernetes the chart supports (CronJob timeZone is GA in 1.27) and the newest schemas.
KUBERNETES_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
CORE_API_VERSIONS = {"v1", "apps/v1", "batch/v1"}

VALUE_SETS: dict[str, dict[str, Any]] = {
    "default": {},
    "snapshot-irsa-pushgateway": {
        "mode": "snapshot",
        "backupId": "orders-nightly",
        "snapshot": {"schedule": "30 1 * * *", "timeZone": "Europe/Paris", "activeDeadlineSeconds": 7200},
        "job": {
            "source": {"bootstrap_servers": ["kafka-0.kafka:9092"], "topics": {"include": ["orders-*"]}},
            "storage": {"backend": "s3", "bucket": "backups", "region": "eu-west-1", "prefix": "prod"},
            "backup": {"compression": "zstd", "compression_level": 6},
        },
        "workloadIdentity": {"aws": {"roleArn": "arn:aws:iam::123456789012:role/kafka-backup"}},
        "metrics": {
            "port": 9090,
            "pushgatewayUrl": "http://pushgateway.monitoring:9091",
            "keepAliveSeconds": 60,
        },
        "prometheusRule": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
    },
    "restore-azure-workload-identity": {
        "mode": "restore",
        "backupId": "orders-nightly",
        "job": {
            "target": {"bootstrap_servers": ["dr-kafka:9092"]},
            "storage": {
                "backend": "azure",
                "container_name": "backups",
                "account_name": "acct",
                "use_workload_identity": True,
            },
            "restore": {"topic_mapping": {"orders": "orders-restored"}},
        },
        "workloadIdentity": {"azure": {"clientId": "00000000-0000-0000-0000-000000000001"}},
        "logging": {"format": "text", "level": "debug"},
    },
    "continuous-gke-secret-monitoring": {
        "backupId": "events",
        "job": {
            "source": {
                "bootstrap_servers": ["kafka:9093"],
                "topics": {"include": ["events"]},
                "security": {
                    "security_protocol": "SASL_SSL",
                    "sasl_mechanism": "SCRAM-SHA-512",
                    "sasl_username": "backup",
                    "sasl_password": "${KAFKA_PASSWORD}",
                },
            },
            "storage": {"backend": "gcs", "bucket": "backups"},
        },
        "credentials": {"existingSecret": "kafka-backup-credentials"},
        "workloadIdentity": {"gcp": {"serviceAccount": "backup@project.iam.gserviceaccount.com"}},
        "serviceMonitor": {"enabled": True, "interval": "15s"},
        "prometheusRule": {"enabled": True},
        "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
    },
}


@pytest.fixture(scope="module")
def helm_bin() -> Path:
    try:
        return helm()
    except ServiceError as exc:  # no Go toolchain or no module proxy: a failure, with the build log
        pytest.fail(exc.describe(), pytrace=False)


def _values_file(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(VALUE_SETS[name]))
    return path


def render(helm_bin: Path, values: Path) -> list[dict[str, Any]]:
    lint = subprocess.run([helm_bin, "lint", "--strict", CHART, "-f", values], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    done = subprocess.run(
        [helm_bin, "template", "rel", CHART, "-f", values], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def by_kind(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    kinds = [doc["kind"] for doc in docs]
    assert len(kinds) == len(set(kinds)), kinds
    return {doc["kind"]: doc for doc in docs}


def job_file(docs: list[dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> JobConfig:
    """The ConfigMap's job.yaml, loaded as ``kafka-backup --config`` would load it in the pod."""
    path = tmp_path / "job.yaml"
    path.write_text(by_kind(docs)["ConfigMap"]["data"]["job.yaml"])
    monkeypatch.setenv("KAFKA_PASSWORD", "from-the-secret")  # the Secret's variable, as envFrom sets it
    return load_config(str(path))


def pod_spec(docs: list[dict[str, Any]]) -> dict[str, Any]:
    kinds = by_kind(docs)
    if "Deployment" in kinds:
        return kinds["Deployment"]["spec"]["template"]["spec"]  # type: ignore[no-any-return]
    if "CronJob" in kinds:
        return kinds["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]  # type: ignore[no-any-return]
    return kinds["Job"]["spec"]["template"]["spec"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_every_rendered_core_object_is_valid_kubernetes(helm_bin: Path, tmp_path: Path, name: str) -> None:
    docs = render(helm_bin, _values_file(tmp_path, name))
    core = [doc for doc in docs if doc["apiVersion"] in CORE_API_VERSIONS]
    assert len(core) >= 3
    for doc in core:
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)
    pod = pod_spec(docs)
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["args"][1:] == ["--config", "/etc/kafka-backup/job.yaml"]


def test_continuous_is_one_replica_deployment_with_probes_a_service_and_json_logs(
    helm_bin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = render(helm_bin, _values_file(tmp_path, "default"))
    kinds = by_kind(docs)
    assert set(kinds) == {"ServiceAccount", "ConfigMap", "Service", "Deployment"}
    deployment = kinds["Deployment"]["spec"]
    assert deployment["replicas"] == 1 and deployment["strategy"] == {"type": "Recreate"}
    (container,) = pod_spec(docs)["containers"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert container["args"][0] == "backup"
    assert kinds["Service"]["spec"]["ports"][0]["targetPort"] == "http"
    config = job_file(docs, tmp_path, monkeypatch)
    assert (config.mode, config.backup_id) == ("backup", "rel-kafka-backup")
    assert config.backup.continuous is True and config.logging.format == "json"
    assert (config.metrics.enabled, config.metrics.bind_address, config.metrics.port) == (
        True,
        "0.0.0.0",
        8080,
    )


def test_snapshot_is_a_forbid_cronjob_pushing_metrics_with_irsa(
    helm_bin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = render(helm_bin, _values_file(tmp_path, "snapshot-irsa-pushgateway"))
    kinds = by_kind(docs)
    assert set(kinds) == {"ServiceAccount", "ConfigMap", "CronJob", "PrometheusRule"}
    cron = kinds["CronJob"]["spec"]
    assert (cron["concurrencyPolicy"], cron["schedule"], cron["timeZone"]) == (
        "Forbid",
        "30 1 * * *",
        "Europe/Paris",
    )
    assert cron["jobTemplate"]["spec"]["backoffLimit"] == 2 and cron["successfulJobsHistoryLimit"] == 3
    assert pod_spec(docs)["restartPolicy"] == "Never"
    annotations = kinds["ServiceAccount"]["metadata"]["annotations"]
    assert annotations == {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/kafka-backup"}
    config = job_file(docs, tmp_path, monkeypatch)
    assert (config.backup_id, config.backup.continuous, config.backup.compression_level) == (
        "orders-nightly",
        False,
        6,
    )
    assert config.metrics.pushgateway_url == "http://pushgateway.monitoring:9091"
    assert (config.metrics.port, config.metrics.keep_alive_seconds) == (9090, 60)
    rules = yaml.safe_load((CHART / "files" / "prometheus-rules.yaml").read_text())
    assert kinds["PrometheusRule"]["spec"] == rules
    assert kinds["PrometheusRule"]["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_restore_is_a_job_with_azure_workload_identity(
    helm_bin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = render(helm_bin, _values_file(tmp_path, "restore-azure-workload-identity"))
    kinds = by_kind(docs)
    assert set(kinds) == {"ServiceAccount", "ConfigMap", "Job"}
    assert kinds["Job"]["spec"]["template"]["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    sa = kinds["ServiceAccount"]["metadata"]["annotations"]
    assert sa == {"azure.workload.identity/client-id": "00000000-0000-0000-0000-000000000001"}
    (container,) = pod_spec(docs)["containers"]
    assert container["args"][0] == "restore" and "readinessProbe" not in container
    config = job_file(docs, tmp_path, monkeypatch)
    assert config.mode == "restore" and config.target is not None
    assert list(config.target.bootstrap_servers) == ["dr-kafka:9092"]
    assert (config.logging.format, config.logging.level) == ("text", "debug")


def test_continuous_with_gke_identity_a_secret_and_a_service_monitor(
    helm_bin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = render(helm_bin, _values_file(tmp_path, "continuous-gke-secret-monitoring"))
    kinds = by_kind(docs)
    assert {"ServiceMonitor", "PrometheusRule", "Deployment", "Service"} <= set(kinds)
    monitor = kinds["ServiceMonitor"]["spec"]
    assert monitor["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "15s"}]
    assert monitor["selector"]["matchLabels"] == kinds["Service"]["spec"]["selector"]
    (container,) = pod_spec(docs)["containers"]
    assert container["envFrom"] == [{"secretRef": {"name": "kafka-backup-credentials"}}]
    sa = kinds["ServiceAccount"]["metadata"]["annotations"]
    assert sa == {"iam.gke.io/gcp-service-account": "backup@project.iam.gserviceaccount.com"}
    config = job_file(docs, tmp_path, monkeypatch)
    assert config.source is not None and config.source.security.sasl_password == "from-the-secret"
    assert "from-the-secret" in config.secrets()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"mode": "hourly"}, "/mode"),
        ({"job": {"mode": "restore", "storage": {"backend": "memory"}}}, "/job"),
        ({"metrics": {"port": 0}}, "/metrics/port"),
        ({"replicas": 2}, "replicas"),
    ],
)
def test_the_values_schema_refuses_bad_values(
    helm_bin: Path, tmp_path: Path, values: dict[str, Any], message: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(values))
    done = subprocess.run([helm_bin, "template", "rel", CHART, "-f", path], capture_output=True, text=True)
    assert done.returncode != 0 and message in done.stderr, done.stderr


def test_the_readme_values_example_renders_and_loads(
    helm_bin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = (CHART.parents[2] / "README.rst").read_text()
    block = readme.split("   # orders-values.yaml", 1)[1].split("\n", 1)[1].split("\n\n", 1)[0]
    values = tmp_path / "orders-values.yaml"
    values.write_text("\n".join(line.removeprefix("   ") for line in block.splitlines()))
    docs = render(helm_bin, values)
    for doc in docs:
        if doc["apiVersion"] in CORE_API_VERSIONS:
            kubernetes_validate.validate(doc, KUBERNETES_VERSIONS[-1], strict=True)
    config = job_file(docs, tmp_path, monkeypatch)
    assert (config.backup_id, config.backup.continuous) == ("orders", False)
    assert config.metrics.pushgateway_url == "http://pushgateway.monitoring:9091"
    assert {"CronJob", "PrometheusRule"} <= set(by_kind(docs))
