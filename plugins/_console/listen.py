"""A listening socket for an endpoint description, bound now: for servers that are not Protocols.

asyncssh serves on a socket handed to it, so the manhole binds one itself,
with the reactor's own helpers: the same address handling (IPv6, host names,
stale UNIX sockets) and the same :class:`tapster.core.errors.CannotListenError`
naming the address when the port is taken.
"""

from __future__ import annotations

import socket
from typing import Any

__all__ = ["bind", "check_endpoint"]


def check_endpoint(description: str) -> Any:
    """Parse ``description`` for a server that brings its own encryption: tcp, tcp6 or unix only."""
    from tapster.core import endpoints

    parsed = endpoints.parse(description)
    if parsed[0] == "ssl":
        raise endpoints.EndpointError(description, "SSH is encrypted already: use tcp:PORT, not ssl")
    return parsed


def bind(description: str) -> socket.socket:
    """A non-blocking socket bound and listening as ``description`` says."""
    from tapster.core._reactor.ports import _bind_inet, _bind_unix

    kind, args, kw = check_endpoint(description)
    if kind == "unix":
        return _bind_unix(socket.SOCK_STREAM, args[0], kw["backlog"], kw["mode"])
    return _bind_inet(socket.SOCK_STREAM, kw["interface"], args[0], kw["backlog"])
