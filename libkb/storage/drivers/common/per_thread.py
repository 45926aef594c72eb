"""One Libcloud connection per thread (Libcloud connections are not thread-safe)."""

from __future__ import annotations

import threading
import weakref
from typing import Any


class PerThreadConnectionMixin:
    """Gives each thread its own Libcloud connection (S3's share one pooled session).

    Libcloud's ``Connection`` stores the current action, method and context on
    itself and its ``LibcloudConnection`` keeps the last response, so one
    instance must never serve two threads at once. Subclasses implement
    :meth:`_libkb_new_connection`; ``self.connection`` then returns the calling
    thread's instance, created on first use. Connections of finished threads
    are dropped with the thread (only weak references are kept here).
    """

    def _libkb_new_connection(self) -> Any:
        raise NotImplementedError

    def _libkb_local(self) -> threading.local:
        local: threading.local | None = self.__dict__.get("_libkb_tls")
        if local is None:
            local = self.__dict__.setdefault("_libkb_tls", threading.local())
        assert local is not None
        return local

    def _libkb_registry(self) -> weakref.WeakSet[Any]:
        reg: weakref.WeakSet[Any] | None = self.__dict__.get("_libkb_conns")
        if reg is None:
            reg = self.__dict__.setdefault("_libkb_conns", weakref.WeakSet())
        assert reg is not None
        return reg

    @property
    def connection(self) -> Any:
        local = self._libkb_local()
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = self._libkb_new_connection()
            local.conn = conn
            self._libkb_registry().add(conn)
        return conn

    @connection.setter
    def connection(self, value: Any) -> None:
        self._libkb_local().conn = value
        if value is not None:
            self._libkb_registry().add(value)

    def _libkb_close_connections(self) -> None:
        """Close the HTTP sessions of every thread's connection."""
        for conn in list(self._libkb_registry()):
            inner = getattr(conn, "connection", None)
            session = getattr(inner, "session", None)
            if session is not None:
                session.close()
        self._libkb_registry().clear()
        self.__dict__.pop("_libkb_tls", None)
