"""Echo server (RFC 862): whatever a client sends comes back."""

from __future__ import annotations

from typing import Any

from core import usage
from core.protocol import Factory, Protocol
from plugins._common import endpoint

__all__ = ["Options", "makeService", "description", "Echo", "EchoFactory"]

description = "An echo server (RFC 862): sends back whatever it receives."


class Echo(Protocol):
    """Write every received chunk straight back (flow control is the transport's)."""

    def dataReceived(self, data: bytes) -> None:
        self.transport.write(data)


class EchoFactory(Factory):
    protocol = Echo


class Options(usage.Options):
    synopsis = "[-p PORT]"
    longdesc = "Serves the echo protocol (RFC 862): every byte a client sends is sent back."
    optParameters = [
        ["port", "p", "7", "Port number or endpoint to listen on (7 needs root).", endpoint],
    ]


def makeService(config: Any) -> Any:
    from core import endpoints

    return endpoints.service(config["port"], EchoFactory())
