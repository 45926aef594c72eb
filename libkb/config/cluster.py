"""The ``source`` and ``target`` sections: a Kafka cluster, its security and its topics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import ValidationError, fields, post_load, pre_load, validate

from libkb.config.fields import Pattern, ServerList, Strict
from libkb.config.models import (
    ConnectionOptions,
    KafkaSecurity,
    SourceOptions,
    TopicSelection,
)

_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "GSSAPI", "OAUTHBEARER")
#: The original tool spells its SCRAM mechanisms without the second dash.
_MECHANISM_SPELLINGS = {"SCRAM-SHA256": "SCRAM-SHA-256", "SCRAM-SHA512": "SCRAM-SHA-512"}


def _optional_string() -> fields.String:
    return fields.String(allow_none=True, load_default=None)


class SecuritySchema(Strict):
    security_protocol = fields.String(load_default="PLAINTEXT", validate=validate.OneOf(_PROTOCOLS))
    sasl_mechanism = fields.String(allow_none=True, load_default=None, validate=validate.OneOf(_MECHANISMS))
    sasl_username = _optional_string()
    sasl_password = _optional_string()
    ssl_ca_location = _optional_string()
    ssl_certificate_location = _optional_string()
    ssl_key_location = _optional_string()
    ssl_key_password = _optional_string()
    ssl_endpoint_identification_algorithm = fields.String(
        allow_none=True, load_default=None, validate=validate.OneOf(["https", "none"])
    )
    sasl_kerberos_service_name = _optional_string()
    sasl_keytab_path = _optional_string()
    sasl_krb5_config_path = _optional_string()
    sasl_kerberos_principal = _optional_string()
    sasl_kerberos_kinit_cmd = _optional_string()

    @pre_load
    def upper(self, data: Any, **_: Any) -> Any:
        if isinstance(data, Mapping):
            data = dict(data)
            for key in ("security_protocol", "sasl_mechanism"):
                if isinstance(data.get(key), str):
                    data[key] = data[key].upper()
            if data.get("sasl_mechanism") in _MECHANISM_SPELLINGS:
                data["sasl_mechanism"] = _MECHANISM_SPELLINGS[data["sasl_mechanism"]]
        return data

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> KafkaSecurity:
        sasl = data["security_protocol"].startswith("SASL")
        if sasl and not data.get("sasl_mechanism"):
            raise ValidationError("required when security_protocol is SASL_*", "sasl_mechanism")
        if data.get("sasl_mechanism") in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512") and sasl:
            for key in ("sasl_username", "sasl_password"):
                if not data.get(key):
                    raise ValidationError(f"required for SASL {data['sasl_mechanism']}", key)
        return KafkaSecurity(**data)


class TopicsSchema(Strict):
    include = fields.List(Pattern(), load_default=["*"])
    # ``exclude`` is also a marshmallow Schema attribute; keep the field apart from it.
    exclude_ = fields.List(Pattern(), load_default=[], data_key="exclude")

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> TopicSelection:
        # An empty include list selects every topic, as in the original tool.
        include = tuple(data["include"]) or ("*",)
        return TopicSelection(include=include, exclude=tuple(data["exclude_"]))


class ConnectionSchema(Strict):
    """TCP settings. The keepalive timing and connection count are accepted and replaced."""

    tcp_keepalive = fields.Boolean()
    tcp_nodelay = fields.Boolean()
    keepalive_time_secs = fields.Integer(validate=validate.Range(min=1))
    keepalive_interval_secs = fields.Integer(validate=validate.Range(min=1))
    connections_per_broker = fields.Integer(validate=validate.Range(min=1))

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> ConnectionOptions:
        for replaced in ("keepalive_time_secs", "keepalive_interval_secs", "connections_per_broker"):
            data.pop(replaced, None)  # warned about by libkb.config.rust
        return ConnectionOptions(**data)


class SourceSchema(Strict):
    bootstrap_servers = ServerList(required=True)
    topics = fields.Nested(TopicsSchema, load_default=None)
    security = fields.Nested(SecuritySchema, load_default=None)
    connection = fields.Nested(ConnectionSchema, load_default=None)
    #: Extra librdkafka properties, passed through as given (new in libkb).
    client_config = fields.Dict(keys=fields.String(), values=fields.Raw(), load_default=dict)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> SourceOptions:
        return SourceOptions(
            bootstrap_servers=tuple(data["bootstrap_servers"]),
            topics=data["topics"] or TopicSelection(),
            security=data["security"] or KafkaSecurity(),
            client_config=dict(data["client_config"]),
            connection=data["connection"] or ConnectionOptions(),
        )
