"""Echo server (RFC 862): whatever a client sends comes back."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tapster.core import usage
from tapster.core.protocol import Factory, Protocol
from tapster.plugins._common import endpoint

if TYPE_CHECKING:
    from tapster.core.service import Service

__all__ = ["Options", "makeService", "description", "safeNames", "Echo", "EchoFactory"]

description = "An echo server (RFC 862): sends back whatever it receives."

#: What an application file from a stranger (XML) may name of this plugin: its saved parts.
safeNames = ("tapster.plugins.echo.EchoFactory", "tapster.plugins.echo.Echo", "tapster.plugins.echo.Options")


class Echo(Protocol):
    """Write every received chunk straight back (flow control is the transport's)."""

    def dataReceived(self, data: bytes) -> None:
        transport = self.transport
        assert transport is not None  # data arrives only once connected
        transport.write(data)


class EchoFactory(Factory):
    protocol = Echo


class Options(usage.Options):
    synopsis = "[-p PORT]"
    longdesc = "Serves the echo protocol (RFC 862): every byte a client sends is sent back."
    optParameters = [
        ["port", "p", "7", "Port number or endpoint to listen on (7 needs root).", endpoint],
    ]


def makeService(config: usage.Options) -> Service:
    from tapster.core import endpoints

    return endpoints.service(config["port"], EchoFactory())
