"""Graceful close of stream connections (issue 9, item 10): reactor.stop() and stopService drain.

The real reactor (asyncio and uvloop) on 127.0.0.1; the peers are plain sockets in this
process, so what they see (the echo, then a clean EOF or a reset) is what a client sees.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

from tapster.core.errors import ConnectionDone, ConnectionLost
from tapster.core.internet import TCPClient, TCPServer
from tests.core.test_reactor import LOCAL, Echo, Env, Rec, env  # noqa: F401  (env is a fixture)


def outcome(sock: socket.socket, deadline: float = 5.0) -> tuple[bytes, str]:
    """Everything ``sock`` receives until the peer closes, and how it closed: "eof" or "reset"."""
    sock.setblocking(True)
    sock.settimeout(deadline)
    got = bytearray()
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return bytes(got), "reset"
        except TimeoutError:
            return bytes(got), "open"
        if not chunk:
            return bytes(got), "eof"
        got += chunk


def in_thread_outcomes(env: Env, socks: list[socket.socket]) -> list[tuple[bytes, str]]:
    """Read the sockets to the end while the loop runs (the reactor must keep serving meanwhile)."""
    loop = env.reactor.loop
    return [loop.run_in_executor(None, outcome, s) for s in socks]  # type: ignore[misc]


def test_reactor_stop_closes_accepted_connections_cleanly_after_their_exchange(env):
    f = env.factory(Echo)
    port = env.tcp_server(f)
    socks = [env.raw_client(port.getHost().port, blocking=True) for _ in range(20)]
    env.spin(lambda: len(f.protocols) == 20, what="the connections")
    for i, s in enumerate(socks):
        s.sendall(b"request %d\n" % i)
    env.spin(lambda: all(p.received for p in f.protocols), what="the requests")
    results = in_thread_outcomes(env, socks)
    env.reactor.callWhenRunning(env.reactor.stop)
    env.run()
    env.spin(lambda: all(r.done() for r in results), what="the clients to see the close")
    for i, r in enumerate(results):
        assert r.result() == (b"request %d\n" % i, "eof")
    assert all(p.reason is not None and p.reason.check(ConnectionDone) for p in f.protocols)
    assert not port.connected  # stopped accepting
    assert env.reactor.forcedDisconnects == 0


def test_reactor_stop_closes_client_connections_too(env):
    server = env.factory(Rec)
    port = env.tcp_server(server)
    client = env.factory(Rec)
    env.reactor.connectTCP(LOCAL, port.getHost().port, client)
    env.spin(lambda: server.protocols and client.protocols, what="the connection")
    env.reactor.callWhenRunning(env.reactor.stop)
    env.run()
    env.spin(lambda: server.protocols[0].reason is not None, what="the server side to hear the close")
    assert client.protocols[0].reason.check(ConnectionDone)
    assert server.protocols[0].reason.check(ConnectionDone)


def test_data_already_received_is_still_handled_before_the_close(env):
    """A request in flight when the drain starts is answered, then the connection closes."""
    f = env.factory(Echo)
    port = env.tcp_server(f)
    s = env.raw_client(port.getHost().port, blocking=True)
    env.spin(lambda: f.protocols, what="the connection")
    result = in_thread_outcomes(env, [s])[0]

    def stop_with_a_request_on_the_wire() -> None:
        s.sendall(b"x" * 100_000)  # more than one read: still arriving when the drain starts
        env.reactor.stop()

    env.reactor.callWhenRunning(stop_with_a_request_on_the_wire)
    env.run()
    env.spin(result.done, what="the client to see the close")
    assert result.result() == (b"x" * 100_000, "eof")


def test_stop_service_stops_accepting_then_drains_and_returns_an_awaitable(env):
    f = env.factory(Echo)
    svc = TCPServer(0, f, interface=LOCAL)
    svc.reactor = env.reactor
    svc.startService()
    number = svc.getHost().port
    s = env.raw_client(number, blocking=True)
    env.spin(lambda: f.protocols, what="the connection")
    s.sendall(b"ping\n")
    env.spin(lambda: f.protocols[0].received, what="the request")
    stopping = svc.stopService()
    assert stopping is not None
    with socket.socket() as late:  # the listening socket is closed before anything else
        assert late.connect_ex((LOCAL, number)) != 0
    assert env.reactor.loop.run_until_complete(stopping) == 0
    assert outcome(s) == (b"ping\n", "eof")
    assert f.protocols[0].reason.check(ConnectionDone)


def test_a_connection_busy_past_the_timeout_is_aborted_and_counted(env):
    """A peer that sends and never reads fills every buffer: it never finishes, it is aborted."""
    f = env.factory(Echo)
    env.reactor.shutdownTimeout = 0.3
    svc = TCPServer(0, f, interface=LOCAL)
    svc.reactor = env.reactor
    svc.startService()
    hog = env.raw_client(svc.getHost().port)
    env.spin(lambda: f.protocols, what="the connection")

    async def flood() -> None:
        while f.protocols[0].reason is None:
            try:
                hog.send(b"y" * 65536)
            except BlockingIOError:
                await asyncio.sleep(0.005)
            except OSError:
                return

    flooding = env.reactor.ensureFuture(flood())
    env.spin(lambda: len(f.protocols[0].received) > 1_000_000, what="the buffers to fill")
    started = time.monotonic()
    stopping = svc.stopService()
    assert stopping is not None
    assert env.reactor.loop.run_until_complete(stopping) == 1
    assert 0.25 < time.monotonic() - started < 2
    env.spin(flooding.done, what="the flood to end")
    assert f.protocols[0].reason.check(ConnectionLost)
    assert env.reactor.forcedDisconnects == 1


def test_cancelling_the_drain_aborts_what_is_left(env):
    f = env.factory(Echo)
    port = env.tcp_server(f)
    s = env.raw_client(port.getHost().port)
    env.spin(lambda: f.protocols, what="the connection")

    # The protocol never lets go: only the deadline or a cancel ends it.
    f.protocols[0].connectionDraining = lambda: env.reactor.loop.create_future()  # type: ignore[method-assign]
    port.stopListening()
    drain = port.drainConnections(timeout=30)
    env.iterate()
    drain.cancel()
    env.spin(lambda: f.protocols[0].reason is not None, what="the abort")
    assert f.protocols[0].reason.check(ConnectionLost)
    assert outcome(s)[1] in ("eof", "reset")  # aborted: whatever the kernel makes of it


def test_a_protocol_takes_part_with_connection_draining(env):
    """connectionDraining can finish the exchange its own way: here a goodbye, a little later."""

    class Polite(Rec):
        def connectionDraining(self) -> Any:
            self.transport.write(b"goodbye\n")
            return asyncio.sleep(0.05)

    f = env.factory(Polite)
    svc = TCPServer(0, f, interface=LOCAL)
    svc.reactor = env.reactor
    svc.startService()
    s = env.raw_client(svc.getHost().port, blocking=True)
    env.spin(lambda: f.protocols, what="the connection")
    stopping = svc.stopService()
    started = time.monotonic()
    assert env.reactor.loop.run_until_complete(stopping) == 0
    assert time.monotonic() - started >= 0.04
    assert outcome(s) == (b"goodbye\n", "eof")


def test_data_that_arrives_after_the_close_is_dropped_without_a_reset(env):
    """The peer's last words after our FIN are read and dropped: the kernel never answers with a reset."""
    f = env.factory(Rec)
    port = env.tcp_server(f)
    s = env.raw_client(port.getHost().port, blocking=True)
    env.spin(lambda: f.protocols, what="the connection")
    port.stopListening()
    drain = port.drainConnections()
    s.settimeout(5)

    async def peer() -> tuple[bytes, str]:
        loop = env.reactor.loop
        first = await loop.run_in_executor(None, s.recv, 10)  # our FIN: b""
        s.sendall(b"late words" * 1000)  # after the close was decided
        s.shutdown(socket.SHUT_WR)
        return first, (await loop.run_in_executor(None, outcome, s))[1]

    assert env.reactor.loop.run_until_complete(peer()) == (b"", "eof")
    assert env.reactor.loop.run_until_complete(drain) == 0
    assert f.protocols[0].received == b""  # dropped, not handed to the protocol
    assert f.protocols[0].reason.check(ConnectionDone)


def test_tcp_client_service_connection_is_closed_cleanly_at_reactor_stop(env):
    server = env.factory(Rec)
    port = env.tcp_server(server)
    client = env.factory(Rec)
    svc = TCPClient(LOCAL, port.getHost().port, client)
    svc.reactor = env.reactor
    svc.startService()
    env.spin(lambda: server.protocols, what="the connection")
    env.reactor.callWhenRunning(env.reactor.stop)
    env.run()
    env.spin(lambda: server.protocols[0].reason is not None, what="the close")
    assert server.protocols[0].reason.check(ConnectionDone)
