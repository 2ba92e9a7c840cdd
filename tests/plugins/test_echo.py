"""The echo plugin on a StringTransport."""

from __future__ import annotations

from tapster.core.internet import TCPServer
from tapster.core.testing import StringTransport
from tapster.plugins import echo


def test_echoes_every_chunk() -> None:
    proto = echo.EchoFactory().buildProtocol(None)
    transport = StringTransport()
    proto.makeConnection(transport)
    proto.dataReceived(b"hello ")
    proto.dataReceived(b"world\n")
    assert transport.value() == b"hello world\n"
    assert not transport.disconnecting


def test_options_and_service() -> None:
    config = echo.Options()
    config.parseOptions(["-p", "7007"])
    service = echo.makeService(config)
    assert isinstance(service, TCPServer)
    assert service.args[0] == 7007
    assert isinstance(service.args[1], echo.EchoFactory)
