"""Kerberos (SASL/GSSAPI) settings as librdkafka takes them.

The original tool takes a keytab and a ``krb5.conf`` path and lets the
Kerberos library pick the keytab's principal. librdkafka runs ``kinit`` with
a keytab *and* a principal, so without an explicit ``sasl_kerberos_principal``
the keytab's first principal is used, the same one. ``krb5.conf`` has no
librdkafka property: the Kerberos library (in librdkafka and in ``kinit``)
reads ``KRB5_CONFIG`` from the environment.
"""

from __future__ import annotations

import os
import struct
from typing import Any

from libkb.config.models import KafkaSecurity
from libkb.errors import ConfigError


def kerberos_properties(security: KafkaSecurity, *, prefix: str = "security") -> dict[str, Any]:
    """The ``sasl.kerberos.*`` properties the settings ask for (empty without any)."""
    props: dict[str, Any] = {}
    if security.sasl_kerberos_service_name:
        props["sasl.kerberos.service.name"] = security.sasl_kerberos_service_name
    principal = security.sasl_kerberos_principal
    if security.sasl_keytab_path:
        props["sasl.kerberos.keytab"] = security.sasl_keytab_path
        if principal is None:
            principal = keytab_principal(security.sasl_keytab_path, key=f"{prefix}.sasl_keytab_path")
    if principal:
        props["sasl.kerberos.principal"] = principal
    if security.sasl_kerberos_kinit_cmd:
        props["sasl.kerberos.kinit.cmd"] = security.sasl_kerberos_kinit_cmd
    if security.sasl_krb5_config_path:
        use_krb5_config(security.sasl_krb5_config_path, key=f"{prefix}.sasl_krb5_config_path")
    return props


def use_krb5_config(path: str, *, key: str) -> None:
    """Point this process's Kerberos library (and the ``kinit`` it runs) at ``path``.

    One process talks to one cluster per job, so one ``krb5.conf``: a second,
    different one is refused rather than silently replacing the first.
    """
    if not os.path.isfile(path):
        raise ConfigError(f"no such file: {path}", key=key)
    current = os.environ.get("KRB5_CONFIG")
    if current and os.path.abspath(current) != os.path.abspath(path):
        raise ConfigError(f"KRB5_CONFIG is already {current}; one process uses one krb5.conf", key=key)
    os.environ["KRB5_CONFIG"] = path


def keytab_principal(path: str, *, key: str = "sasl_keytab_path") -> str:
    """The principal (``name/instance@REALM``) of the first entry of an MIT keytab file."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ConfigError(f"cannot read the keytab {path}: {exc.strerror}", key=key) from None
    try:
        return _first_principal(data)
    except (struct.error, ValueError, UnicodeDecodeError):
        raise ConfigError(
            f"{path} is not a keytab with an entry; or set sasl_kerberos_principal", key=key
        ) from None


def _first_principal(data: bytes) -> str:
    if len(data) < 2 or data[0] != 5 or data[1] not in (1, 2):
        raise ValueError("not a keytab")
    order = ">" if data[1] == 2 else "="  # version 1 keytabs are in the writer's byte order
    pos = 2
    while pos < len(data):
        (size,) = struct.unpack_from(f"{order}i", data, pos)
        pos += 4
        if size < 0:  # a deleted entry: a hole of -size bytes
            pos -= size
            continue
        (count,) = struct.unpack_from(f"{order}H", data, pos)
        pos += 2
        if data[1] == 1:
            count -= 1  # version 1 counts the realm among the components
        realm, pos = _counted(data, pos, order)
        names = []
        for _ in range(count):
            name, pos = _counted(data, pos, order)
            names.append(name)
        return f"{'/'.join(names)}@{realm}"
    raise ValueError("no entry")


def _counted(data: bytes, pos: int, order: str) -> tuple[str, int]:
    (length,) = struct.unpack_from(f"{order}H", data, pos)
    start = pos + 2
    if start + length > len(data):
        raise ValueError("truncated")
    return data[start : start + length].decode("utf-8"), start + length
