"""The runner's SIGTERM is a drain (issue 9, item 10): clean closes exit OK, a forced one exits FORCED."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from tapster.core.internet import TCPServer
from tapster.core.protocol import Factory, Protocol
from tapster.core.service import Application
from tapster.core.testing import freshReactor
from tapster.twistd.pidfile import NullPidFile
from tapster.twistd.runner import ExitStatus, Runner


class Echo(Protocol):
    def dataReceived(self, data: bytes) -> None:
        self.transport.write(data)


@pytest.fixture
def reactor():
    with freshReactor("asyncio") as r:  # the services listen on the shared reactor
        yield r


def serve(reactor, timeout: float) -> tuple[Runner, TCPServer]:
    app = Application("drain")
    server = TCPServer(0, Factory.forProtocol(Echo), interface="127.0.0.1")
    server.setServiceParent(app)
    return Runner(app, reactor, NullPidFile(), save=False, shutdown_timeout=timeout), server


def read_to_end(sock: socket.socket, into: list) -> None:
    got = bytearray()
    try:
        while chunk := sock.recv(65536):
            got += chunk
        into.append((bytes(got), "eof"))
    except ConnectionResetError:
        into.append((bytes(got), "reset"))


def test_sigterm_closes_an_idle_and_a_mid_exchange_client_cleanly_and_exits_ok(tmp_path: Path, monkeypatch,
                                                                               reactor) -> None:
    monkeypatch.chdir(tmp_path)
    runner, server = serve(reactor, 5)
    seen: list = []
    socks: list[socket.socket] = []

    def connect_then_stop() -> None:
        port = server.getHost().port
        for _ in range(2):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            socks.append(s)
            threading.Thread(target=read_to_end, args=(s, seen), daemon=True).start()
        socks[1].sendall(b"in flight\n")
        reactor.callLater(0.05, reactor.stop)

    reactor.callWhenRunning(connect_then_stop)
    started = time.monotonic()
    assert runner.run() == ExitStatus.OK
    assert time.monotonic() - started < 3
    deadline = time.monotonic() + 5
    while len(seen) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sorted(seen) == [(b"", "eof"), (b"in flight\n", "eof")]
    for s in socks:
        s.close()


def test_a_client_that_never_reads_makes_the_stop_forced_at_the_timeout(tmp_path: Path, monkeypatch,
                                                                        reactor) -> None:
    monkeypatch.chdir(tmp_path)
    runner, server = serve(reactor, 0.3)
    hog: list[socket.socket] = []

    def flood_then_stop() -> None:
        s = socket.create_connection(("127.0.0.1", server.getHost().port), timeout=5)
        s.setblocking(False)
        hog.append(s)

        def flood() -> None:
            try:
                s.send(b"z" * 65536)
            except BlockingIOError:
                pass
            except OSError:
                return
            reactor.callLater(0.001, flood)

        flood()
        reactor.callLater(0.2, reactor.stop)

    reactor.callWhenRunning(flood_then_stop)
    started = time.monotonic()
    assert runner.run() == ExitStatus.FORCED
    assert 0.4 < time.monotonic() - started < 3
    assert reactor.forcedDisconnects == 1
    hog[0].close()
