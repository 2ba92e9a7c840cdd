"""Address objects returned by ``getPeer()``/``getHost()`` and passed to ``buildProtocol``.

They are named tuples: immutable, hashable (fit as dict keys, e.g. per-peer
limits), and the cheapest Python object to build, which matters because
every accepted connection makes one.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["IPv4Address", "IPv6Address", "UNIXAddress", "from_sockaddr"]


class IPv4Address(NamedTuple):
    """An IPv4 endpoint; ``type`` is ``"TCP"`` or ``"UDP"`` as in Twisted."""

    type: str
    host: str
    port: int


class IPv6Address(NamedTuple):
    """An IPv6 endpoint; flow info and scope id are kept for link-local addresses."""

    type: str
    host: str
    port: int
    flowInfo: int = 0
    scopeID: int | str = 0


class UNIXAddress(NamedTuple):
    """A UNIX socket path (``None`` for an unnamed socket)."""

    name: str | bytes | None


def from_sockaddr(sockaddr: object, kind: str = "TCP") -> IPv4Address | IPv6Address | UNIXAddress:
    """Turn what ``socket.getsockname``/``getpeername`` returned into an address object."""
    if isinstance(sockaddr, tuple):
        if len(sockaddr) == 4:
            return IPv6Address(kind, sockaddr[0], sockaddr[1], sockaddr[2], sockaddr[3])
        return IPv4Address(kind, sockaddr[0], sockaddr[1])
    if sockaddr in ("", b""):
        sockaddr = None
    return UNIXAddress(sockaddr)  # type: ignore[arg-type]  # AF_UNIX: a str or bytes path, or None
