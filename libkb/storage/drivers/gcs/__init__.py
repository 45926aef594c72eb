"""Google Cloud Storage over the JSON API.

One module a concern: :mod:`.endpoint`, :mod:`.credentials` (google-auth),
:mod:`.connection`, :mod:`.errors` (responses to exceptions),
:mod:`.resumable` (streamed uploads) and :mod:`.driver` (the Libcloud
driver). :mod:`.resumable` never sees the driver: it is handed a
:class:`~.calls.GcsCalls` (send a request, retry a unit of work). This
package exports what the factory and tests use.
"""

from libkb.storage.drivers.gcs.connection import GcsJsonConnection
from libkb.storage.drivers.gcs.credentials import GCS_SCOPES, GoogleTokenSource, resolve_gcs_credentials
from libkb.storage.drivers.gcs.driver import LibkbGcsDriver, build_gcs_driver
from libkb.storage.drivers.gcs.endpoint import GcsEndpoint, resolve_gcs_endpoint
from libkb.storage.drivers.gcs.errors import GcsJsonResponse, gcs_error
from libkb.storage.drivers.gcs.resumable import RESUMABLE_QUANTUM

__all__ = [
    "GCS_SCOPES",
    "RESUMABLE_QUANTUM",
    "GcsEndpoint",
    "GcsJsonConnection",
    "GcsJsonResponse",
    "GoogleTokenSource",
    "LibkbGcsDriver",
    "build_gcs_driver",
    "gcs_error",
    "resolve_gcs_credentials",
    "resolve_gcs_endpoint",
]
