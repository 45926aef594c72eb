"""Validate what users write about storage (``storage:`` mappings and URLs) into
plain values, with marshmallow.

Key names are the storage guide's YAML keys, so users of the original tool
keep their files. Unknown keys are errors naming the closest known key, and
every error names the key, the allowed values and the file or URL it came from. This module knows no typed
settings: :mod:`libkb.storage.settings` builds those from the values checked
here, so the typed settings can offer ``from_dict``/``from_url`` without the
two modules importing each other.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    post_load,
    pre_load,
    validate,
)
from marshmallow import (
    fields as mf,
)

from libkb.errors import ConfigError
from libkb.suggest import plain_message, unknown_key_message

BACKENDS = ("s3", "azure", "gcs", "filesystem", "memory")
_BACKEND_ALIASES = {"gs": "gcs", "local": "filesystem", "file": "filesystem"}
_MiB = 1024 * 1024


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class ResilienceSchema(_Strict):
    timeout_secs = mf.Float(validate=validate.Range(min=0.1))
    max_attempts = mf.Integer(validate=validate.Range(min=1, max=100))
    backoff_initial_secs = mf.Float(validate=validate.Range(min=0))
    backoff_max_secs = mf.Float(validate=validate.Range(min=0))
    breaker_failure_threshold = mf.Integer(validate=validate.Range(min=1))
    breaker_reset_secs = mf.Float(validate=validate.Range(min=0))


class TransferSchema(_Strict):
    part_size = mf.Integer(validate=validate.Range(min=5 * _MiB, max=5 * 1024 * _MiB))
    max_concurrency = mf.Integer(validate=validate.Range(min=1, max=64))
    single_put_threshold = mf.Integer(validate=validate.Range(min=0, max=5 * 1024 * _MiB))


class _BackendSchema(_Strict):
    backend = mf.String(required=True)
    prefix = mf.String(allow_none=True, load_default=None)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        return _drop_nones(data)


class _CloudSchema(_BackendSchema):
    resilience = mf.Nested(ResilienceSchema, load_default=None)
    transfer = mf.Nested(TransferSchema, load_default=None)


def _drop_nones(data: dict[str, Any]) -> dict[str, Any]:
    """``None`` means "not set": drop it so the typed settings' defaults apply."""
    return {k: v for k, v in data.items() if v is not None and k != "backend"}


#: S3 ``server_side_encryption`` values, as AWS names them: SSE-S3, SSE-KMS, and SSE-C.
SSE_S3 = "AES256"
SSE_KMS = "aws:kms"
SSE_C = "sse-c"
SSE_MODES = (SSE_S3, SSE_KMS, SSE_C)


def _check_sse(data: dict[str, Any]) -> None:
    """Server-side encryption keys that fit together; SSE-C never over plain http://."""
    mode = data.get("server_side_encryption")
    for needs_kms in ("sse_kms_key_id", "sse_bucket_key_enabled"):
        if data.get(needs_kms) is not None and mode != SSE_KMS:
            raise ValidationError(f"applies to server_side_encryption: {SSE_KMS} only", needs_kms)
    key = data.get("sse_customer_key")
    if (key is not None) != (mode == SSE_C):
        raise ValidationError(
            "sse-c needs sse_customer_key (base64 of 32 bytes), and only sse-c takes one",
            "sse_customer_key",
        )
    if key is None:
        return
    try:
        raw = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ValidationError("must be base64 of 32 bytes (an AES-256 key)", "sse_customer_key")
    if data.get("allow_http"):
        raise ValidationError(
            "refused over plain http:// (the key would travel in the clear): use an https:// endpoint",
            "sse_customer_key",
        )


class S3Schema(_CloudSchema):
    bucket = mf.String(required=True, validate=validate.Length(min=1))
    region = mf.String(allow_none=True, load_default=None)
    endpoint = mf.String(allow_none=True, load_default=None)
    access_key = mf.String(allow_none=True, load_default=None)
    secret_key = mf.String(allow_none=True, load_default=None)
    session_token = mf.String(allow_none=True, load_default=None)
    path_style = mf.Boolean(allow_none=True, load_default=None)
    allow_http = mf.Boolean(allow_none=True, load_default=None)
    ca_bundle = mf.String(allow_none=True, load_default=None, validate=validate.Length(min=1))
    server_side_encryption = mf.String(allow_none=True, load_default=None, validate=validate.OneOf(SSE_MODES))
    sse_kms_key_id = mf.String(allow_none=True, load_default=None, validate=validate.Length(min=1))
    sse_bucket_key_enabled = mf.Boolean(allow_none=True, load_default=None)
    sse_customer_key = mf.String(allow_none=True, load_default=None)

    @pre_load
    def aliases(self, data: Any, **_: Any) -> Any:
        """Accept the Rust API's field names too (``access_key_id``, ``secret_access_key``)."""
        if isinstance(data, Mapping):
            data = dict(data)
            for old, new in (("access_key_id", "access_key"), ("secret_access_key", "secret_key")):
                if old in data and new not in data:
                    data[new] = data.pop(old)
        return data

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        endpoint = data.get("endpoint")
        if endpoint is not None:
            scheme = urlsplit(endpoint).scheme
            if scheme not in ("http", "https") or not urlsplit(endpoint).hostname:
                raise ValidationError(
                    "must be a URL such as https://s3.example.com or http://127.0.0.1:9000",
                    "endpoint",
                )
        is_http = bool(endpoint and endpoint.startswith("http://"))
        allow_http = data.get("allow_http")
        if allow_http is None:
            data["allow_http"] = is_http
        elif allow_http is False and is_http:
            raise ValidationError(
                "allow_http is false but endpoint is http://; set allow_http: true "
                "or use an https:// endpoint",
                "allow_http",
            )
        _check_sse(data)
        return _drop_nones(data)


class AzureSchema(_CloudSchema):
    account_name = mf.String(required=True, validate=validate.Length(min=1))
    container_name = mf.String(required=True, validate=validate.Length(min=1))
    account_key = mf.String(allow_none=True, load_default=None)
    endpoint = mf.Url(allow_none=True, load_default=None, require_tld=False, schemes={"http", "https"})
    # Without an account key: a service principal (client_secret with client_id and tenant_id) ...
    client_id = mf.String(allow_none=True, load_default=None)
    tenant_id = mf.String(allow_none=True, load_default=None)
    client_secret = mf.String(allow_none=True, load_default=None)
    # ... or AKS workload identity, or the machine's managed identity (else DefaultAzureCredential).
    use_workload_identity = mf.Boolean(allow_none=True, load_default=None)
    use_managed_identity = mf.Boolean(allow_none=True, load_default=None)
    # A SAS token comes before all of these (checked when the backend is built).
    sas_token = mf.String(allow_none=True, load_default=None, validate=validate.Length(min=1))
    encryption_scope = mf.String(allow_none=True, load_default=None, validate=validate.Length(min=1, max=63))


class GcsSchema(_CloudSchema):
    bucket = mf.String(required=True, validate=validate.Length(min=1))
    service_account_path = mf.String(allow_none=True, load_default=None)
    endpoint = mf.Url(allow_none=True, load_default=None, require_tld=False, schemes={"http", "https"})
    project_id = mf.String(allow_none=True, load_default=None)
    kms_key_name = mf.String(
        allow_none=True,
        load_default=None,
        validate=validate.Regexp(
            r"^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$",
            error="must be projects/P/locations/L/keyRings/R/cryptoKeys/K",
        ),
    )

    @pre_load
    def aliases(self, data: Any, **_: Any) -> Any:
        """Accept the original tool's documented ``credentials_file`` for ``service_account_path``."""
        if isinstance(data, Mapping) and "credentials_file" in data and "service_account_path" not in data:
            data = dict(data)
            data["service_account_path"] = data.pop("credentials_file")
        return data


class FilesystemSchema(_BackendSchema):
    path = mf.String(required=True, validate=validate.Length(min=1))
    direct_io = mf.Boolean(allow_none=True, load_default=None)


class MemorySchema(_BackendSchema):
    """Only ``prefix``."""


SCHEMAS: dict[str, type[Schema]] = {
    "s3": S3Schema,
    "azure": AzureSchema,
    "gcs": GcsSchema,
    "filesystem": FilesystemSchema,
    "memory": MemorySchema,
}


def _flatten(messages: Any, path: str) -> list[tuple[str, str]]:
    """Turn marshmallow's nested message dict into (dotted key, message) pairs."""
    if isinstance(messages, Mapping):
        out: list[tuple[str, str]] = []
        for key, value in messages.items():
            sub = path if key == "_schema" else f"{path}.{key}"
            out.extend(_flatten(value, sub))
        return out
    if isinstance(messages, list):
        return [(path, str(m)) for m in messages]
    return [(path, str(messages))]


def _explain(key: str, message: str, schema: Schema) -> str:
    if message == "Unknown field.":
        return unknown_key_message(key.rsplit(".", 1)[-1], _known_keys(schema))
    return plain_message(message)


def _known_keys(schema: Schema) -> list[str]:
    """The keys a block accepts, with the aliases of the original tool's spellings."""
    keys = list(schema.fields)
    if isinstance(schema, S3Schema):
        keys += ["access_key_id", "secret_access_key"]
    if isinstance(schema, GcsSchema):
        keys.append("credentials_file")
    return keys


def canonical_backend(name: object) -> str:
    """The backend a name means: ``gs`` is ``gcs``, ``local`` and ``file`` are ``filesystem``."""
    text = str(name).lower()
    return _BACKEND_ALIASES.get(text, text)


def backend_keys(backend: str) -> frozenset[str]:
    """The keys a ``storage:`` block of ``backend`` may hold (``memory``'s if it is unknown)."""
    return frozenset(SCHEMAS.get(backend, MemorySchema)().fields)


@dataclass(frozen=True, slots=True)
class CheckedStorage:
    """A ``storage:`` block that passed validation: the canonical backend name and
    the keys that are set (``None`` dropped), ``resilience``/``transfer`` as dicts."""

    backend: str
    values: dict[str, Any]


def validate_storage_mapping(
    mapping: Mapping[str, Any], *, source: str | None = None, path: str = "storage"
) -> CheckedStorage:
    """Check a ``storage:`` mapping against its backend's schema; ConfigError names the key."""
    if not isinstance(mapping, Mapping):
        raise ConfigError(
            f"must be a mapping with a 'backend' key, not {type(mapping).__name__}",
            key=path,
            source=source,
        )
    raw = dict(mapping)
    backend = raw.get("backend")
    if backend is None:
        raise ConfigError(
            f"missing; choose one of: {', '.join(BACKENDS)}", key=f"{path}.backend", source=source
        )
    backend = canonical_backend(backend)
    if backend not in SCHEMAS:
        raise ConfigError(
            f"{mapping.get('backend')!r} is not a storage backend; choose one of: {', '.join(BACKENDS)}",
            key=f"{path}.backend",
            source=source,
        )
    raw["backend"] = backend
    schema = SCHEMAS[backend]()
    try:
        values: dict[str, Any] = schema.load(raw)
    except ValidationError as exc:
        problems = [(key, _explain(key, msg, schema)) for key, msg in _flatten(exc.messages, path)]
        key, first = problems[0]
        more = "; ".join(f"{k}: {m}" for k, m in problems[1:])
        raise ConfigError(first + (f" (also {more})" if more else ""), key=key, source=source) from None
    return CheckedStorage(backend, values)


# -- URLs -----------------------------------------------------------------

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_URL_KEYS = {
    "s3": {"region", "endpoint", "path_style", "allow_http", "prefix"},
    "azure": {"endpoint", "prefix"},
    "gcs": {"endpoint", "service_account_path", "prefix"},
    "filesystem": {"prefix", "direct_io"},
    "memory": {"prefix"},
}


def _query(url: str, backend: str, query: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name not in _URL_KEYS[backend]:
            allowed = ", ".join(sorted(_URL_KEYS[backend]))
            raise ConfigError(
                f"unknown query parameter {name!r}; allowed for {backend}: {allowed}",
                key=name,
                source=safe_url(url),
            )
        if name in ("path_style", "allow_http", "direct_io"):
            low = value.lower()
            if low not in _TRUE | _FALSE:
                raise ConfigError(f"must be true or false, not {value!r}", key=name, source=safe_url(url))
            out[name] = low in _TRUE
        else:
            out[name] = value
    return out


def safe_url(url: str) -> str:
    """The URL without its query string (which may hold endpoints with credentials)."""
    return url.split("?", 1)[0]


def _prefix_from_path(path: str) -> str | None:
    stripped = unquote(path).strip("/")
    return stripped or None


def _bucket_url(url: str, parts: SplitResult) -> dict[str, Any]:
    """``s3://`` and ``gcs://`` URLs: ``BUCKET[/PREFIX]``, the bucket as the host part."""
    backend = "s3" if parts.scheme.lower() in ("s3", "s3a") else "gcs"
    # S3 URLs need a host name; GCS ones any host part (``gs://:1`` names bucket ``:1``).
    if not (parts.hostname if backend == "s3" else parts.netloc):
        raise ConfigError(
            f"the URL names no bucket: use {backend}://BUCKET[/PREFIX]", key="bucket", source=url
        )
    values = {"backend": backend, "bucket": parts.netloc, "prefix": _prefix_from_path(parts.path)}
    values.update(_query(url, backend, parts.query))
    return values


def _azure_url(url: str, parts: SplitResult) -> dict[str, Any]:
    host = parts.netloc
    account = host.split(".", 1)[0]
    segments = [s for s in unquote(parts.path).split("/") if s]
    if not account or not segments:
        raise ConfigError(
            "use azure://ACCOUNT.blob.core.windows.net/CONTAINER[/PREFIX]",
            key="container_name",
            source=safe_url(url),
        )
    values = {
        "backend": "azure",
        "account_name": account,
        "container_name": segments[0],
        "prefix": "/".join(segments[1:]) or None,
    }
    if "." in host and not host.endswith(".blob.core.windows.net"):
        values["endpoint"] = f"https://{host}"  # sovereign clouds
    values.update(_query(url, "azure", parts.query))
    return values


def _file_url(url: str, parts: SplitResult) -> dict[str, Any]:
    if parts.netloc not in ("", "localhost"):
        raise ConfigError(
            f"file URLs name a local path: use file:///ABSOLUTE/PATH, not host {parts.netloc!r}",
            key="path",
            source=url,
        )
    if not parts.path:
        raise ConfigError("the URL names no directory", key="path", source=url)
    values: dict[str, Any] = {"backend": "filesystem", "path": unquote(parts.path)}
    values.update(_query(url, "filesystem", parts.query))
    return values


def _memory_url(url: str, parts: SplitResult) -> dict[str, Any]:
    values = {"backend": "memory", "prefix": _prefix_from_path(parts.netloc + parts.path)}
    values.update(_query(url, "memory", parts.query))
    return values


_URL_SCHEMES: dict[str, Callable[[str, SplitResult], dict[str, Any]]] = {
    "s3": _bucket_url,
    "s3a": _bucket_url,
    "azure": _azure_url,
    "az": _azure_url,
    "gcs": _bucket_url,
    "gs": _bucket_url,
    "file": _file_url,
    "memory": _memory_url,
}


def url_to_mapping(url: str) -> dict[str, Any]:
    """The ``storage:`` mapping a storage URL or plain path means (not yet validated)."""
    if "://" not in url:
        if not url:
            raise ConfigError("an empty storage path or URL", key="path")
        return {"backend": "filesystem", "path": url}
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    parse = _URL_SCHEMES.get(scheme)
    if parse is None:
        raise ConfigError(
            f"unsupported URL scheme {scheme!r}; use s3://, s3a://, azure://, az://, gcs://, gs://, "
            "file://, memory:// or a plain path",
            key="path",
            source=safe_url(url),
        )
    return parse(url, parts)


def storage_url(config: Any) -> str:
    """A ``--path`` URL that names the same storage as a job file's ``storage:`` (credentials left out).

    Printed commands (an undo command, for one) need the location as a URL;
    secrets are never part of one, so the command finds them where the job's
    own run did (environment, identity chain).
    """
    from urllib.parse import quote, urlencode

    backend = getattr(config, "backend", "")
    prefix = quote(config.prefix or "") if hasattr(config, "prefix") else ""
    if backend == "filesystem":
        if config.prefix and config.path.startswith("/"):
            return f"file://{quote(config.path)}?{urlencode({'prefix': config.prefix})}"
        return str(config.path).rstrip("/") + (f"/{config.prefix}" if config.prefix else "")
    if backend == "memory":
        return f"memory://{prefix}"
    query: dict[str, str] = {}
    for name in sorted(_URL_KEYS.get(backend, set()) - {"prefix"}):
        value = getattr(config, name, None)
        if value is not None and value is not False:
            query[name] = str(value).lower() if isinstance(value, bool) else str(value)
    tail = f"/{prefix}" if prefix else ""
    if backend == "s3":
        where = f"s3://{config.bucket}{tail}"
    elif backend == "gcs":
        where = f"gs://{config.bucket}{tail}"
    elif backend == "azure":
        where = f"azure://{config.account_name}.blob.core.windows.net/{config.container_name}{tail}"
    else:
        raise ValueError(f"no URL form for storage backend {backend!r}")
    return where + (f"?{urlencode(query)}" if query else "")
