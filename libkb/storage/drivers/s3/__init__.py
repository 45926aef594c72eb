"""S3 and S3-compatible object storage (AWS, MinIO, SeaweedFS, Ceph, Garage).

One module a concern: :mod:`.addressing` (endpoints, bucket addressing, URL
encoding), :mod:`.credentials`, :mod:`.signing` (SigV4), :mod:`.connection`
(signed requests, pooled session), :mod:`.parsing` (XML bodies, e-tags,
dates), :mod:`.errors` (responses to exceptions), :mod:`.listing`,
:mod:`.download` (resumable streams), :mod:`.multipart` (parallel upload),
:mod:`.copy` (server-side copy) and :mod:`.driver` (the Libcloud driver).
The helper modules never see the driver: it hands them an
:class:`~.calls.S3Calls` (send a request, retry a unit of work, look up an
object). This package exports what the factory and tests use.
"""

from libkb.storage.drivers.s3.addressing import (
    S3Endpoint,
    bucket_address,
    canonical_query,
    copy_source,
    quote_path,
    resolve_endpoint,
    resolve_region,
)
from libkb.storage.drivers.s3.connection import S3Connection
from libkb.storage.drivers.s3.credentials import Credentials, StaticCredentials, resolve_credentials
from libkb.storage.drivers.s3.driver import S3Driver, build_s3_driver
from libkb.storage.drivers.s3.errors import error_from_response, parse_error_body
from libkb.storage.drivers.s3.listing import parse_list_v2
from libkb.storage.drivers.s3.multipart import complete_multipart_xml, plan_parts
from libkb.storage.drivers.s3.parsing import etag_unquoted, http_date_to_ms, iso_to_ms
from libkb.storage.drivers.s3.signing import sign_v4

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
