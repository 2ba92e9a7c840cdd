"""The 2002 application API: ``application.listenTCP(...)`` adds a service; ``application.ports`` lists them."""

from __future__ import annotations

import socket

from tapster.core import internet, protocol
from tapster.core.service import Application, MultiService
from tapster.core.testing import freshReactor


class Hello(protocol.Protocol):
    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.write(b"hi\\r\\n")
        self.transport.loseConnection()


def test_listen_methods_add_services_in_order_and_ports_finds_them() -> None:
    app = Application("old")
    inner = MultiService()
    inner.setServiceParent(app)
    first = protocol.ServerFactory()
    second = protocol.ServerFactory()
    a = app.listenTCP(8007, first, interface="127.0.0.1")
    internet.TCPServer(8008, second).setServiceParent(inner)  # deeper in the tree, still a port
    b = app.listenUNIX("/tmp/never.sock", protocol.ServerFactory())
    app.connectTCP("127.0.0.1", 80, protocol.ClientFactory())  # a client is not a port
    assert [type(s).__name__ for s in app] == ["MultiService", "TCPServer", "UNIXServer", "TCPClient"]
    assert app.ports == [next(iter(inner)), a, b]
    assert app.ports[1].factory is first  # type: ignore[attr-defined]


def test_listen_on_a_running_application_starts_listening_at_once() -> None:
    with freshReactor("asyncio") as reactor:
        app = Application("live")
        app.privilegedStartService()
        app.startService()
        factory = protocol.ServerFactory()
        factory.protocol = Hello
        server = app.listenTCP(0, factory, interface="127.0.0.1")
        port = server.getHost().port  # type: ignore[attr-defined]
        assert repr(server).endswith("ServerFactory running>")
        got: list[bytes] = []

        def fetch() -> None:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                got.append(s.recv(100))
            reactor.stop()

        reactor.callWhenRunning(lambda: reactor.loop.run_in_executor(None, fetch))
        reactor.run()
        assert got == [b"hi\\r\\n"]
