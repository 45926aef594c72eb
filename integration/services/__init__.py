"""Real services for the integration suite, run without Docker if need be.

One module per service (:mod:`.kafka`, :mod:`.minio`, :mod:`.seaweedfs`,
:mod:`.azurite`, :mod:`.fake_gcs`) on shared machinery (:mod:`.base`);
:mod:`.providers` picks local processes, containers (:mod:`.docker`) or
external endpoints. ``python -m integration.services up`` runs them by hand.
"""

from .azurite import (
    AzuriteService,
    azure_service_client,
    create_azure_container,
    delete_azure_container,
)
from .base import Service, ServiceError, cache_root
from .endpoints import (
    AzureContainer,
    AzureEndpoint,
    Endpoint,
    GcsBucket,
    GcsEndpoint,
    KafkaEndpoint,
    S3Bucket,
    S3Endpoint,
)
from .fake_gcs import FakeGcsService, create_gcs_bucket, delete_gcs_bucket, empty_gcs_bucket
from .kafka import (
    KafkaService,
    create_kafka_topic,
    delete_kafka_topic,
    kafka_admin,
    wait_topic_ready,
)
from .minio import MinioService
from .providers import (
    SERVICE_NAMES,
    ServiceRegistry,
    endpoint_env,
    external_endpoint,
    make_service,
    select_provider,
)
from .s3 import create_s3_bucket, delete_s3_bucket, empty_s3_bucket, s3_client
from .seaweedfs import SeaweedfsService

__all__ = [
    "SERVICE_NAMES",
    "AzureContainer",
    "AzureEndpoint",
    "AzuriteService",
    "Endpoint",
    "FakeGcsService",
    "GcsBucket",
    "GcsEndpoint",
    "KafkaEndpoint",
    "KafkaService",
    "MinioService",
    "S3Bucket",
    "S3Endpoint",
    "SeaweedfsService",
    "Service",
    "ServiceError",
    "ServiceRegistry",
    "azure_service_client",
    "cache_root",
    "create_azure_container",
    "create_gcs_bucket",
    "create_kafka_topic",
    "create_s3_bucket",
    "delete_azure_container",
    "delete_gcs_bucket",
    "delete_kafka_topic",
    "delete_s3_bucket",
    "empty_gcs_bucket",
    "empty_s3_bucket",
    "endpoint_env",
    "external_endpoint",
    "kafka_admin",
    "make_service",
    "s3_client",
    "select_provider",
    "wait_topic_ready",
]
