"""A listening socket for an endpoint description, bound now: for servers that are not Protocols.

asyncssh serves on a socket handed to it, so the manhole binds one itself,
with :func:`tapster.core.endpoints.listeningSocket`, the public call any
third-party plugin has: the same address handling as the reactor's ports and
the same :class:`tapster.core.errors.CannotListenError` naming the address.
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
    from tapster.core.endpoints import listeningSocket

    check_endpoint(description)  # the SSH-specific refusal of ssl comes first
    return listeningSocket(description)
