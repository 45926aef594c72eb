"""S3 and S3-compatible object storage (AWS, MinIO, SeaweedFS, Ceph, Garage).

The driver is split by concern; this package exports what the factory and
tests use, so ``libkb.storage.drivers.s3`` stays the import path.
"""

from libkb.storage.drivers.s3.driver import (
    Credentials,
    S3Connection,
    S3Driver,
    S3Endpoint,
    StaticCredentials,
    bucket_address,
    build_s3_driver,
    canonical_query,
    complete_multipart_xml,
    copy_source,
    error_from_response,
    etag_unquoted,
    http_date_to_ms,
    iso_to_ms,
    parse_error_body,
    parse_list_v2,
    plan_parts,
    quote_path,
    resolve_credentials,
    resolve_endpoint,
    resolve_region,
    sign_v4,
)

__all__ = [
    "Credentials",
    "S3Connection",
    "S3Driver",
    "S3Endpoint",
    "StaticCredentials",
    "bucket_address",
    "build_s3_driver",
    "canonical_query",
    "complete_multipart_xml",
    "copy_source",
    "error_from_response",
    "etag_unquoted",
    "http_date_to_ms",
    "iso_to_ms",
    "parse_error_body",
    "parse_list_v2",
    "plan_parts",
    "quote_path",
    "resolve_credentials",
    "resolve_endpoint",
    "resolve_region",
    "sign_v4",
]
