"""The real reactor on real 127.0.0.1 sockets, for both the asyncio and the uvloop loop.

Every test gets its own :class:`AsyncioReactor` (never the shared one) and
closes its loop afterwards. Waiting is always "poll until a condition holds,
with a deadline": :meth:`Env.spin` runs the loop until a predicate is true.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import shutil
import socket
import stat
import struct
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from tapster.core import _builtin_hooks
from tapster.core._reactor.ports import NotConnectingError
from tapster.core.address import IPv4Address, IPv6Address, UNIXAddress
from tapster.core.errors import (
    AlreadyCalled,
    AlreadyCancelled,
    CannotListenError,
    ConnectError,
    ConnectionDone,
    ConnectionLost,
    ConnectionRefusedError,
    ReactorAlreadyInstalledError,
    ReactorAlreadyRunning,
    ReactorNotRunning,
    TapsterError,
    TimeoutError,
)
from tapster.core.protocol import ClientFactory, DatagramProtocol, Protocol, ReconnectingClientFactory

LOCAL = "127.0.0.1"
MB = 1024 * 1024


# -- harness ---------------------------------------------------------------------


class Env:
    """One fresh reactor plus what a test opened on it, closed at teardown."""

    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor
        self._closers: list[Callable[[], Any]] = []
        self.factories: list[RecFactory] = []
        self._ran = False

    def defer(self, closer: Callable[[], Any]) -> None:
        self._closers.append(closer)

    def spin(self, predicate: Callable[[], Any], timeout: float = 5.0, what: str = "the condition") -> None:
        """Run the loop until ``predicate()`` is true; fail after ``timeout`` seconds."""

        async def wait() -> None:
            deadline = time.monotonic() + timeout
            while not predicate():
                if time.monotonic() > deadline:
                    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
                await asyncio.sleep(0.001)

        self.reactor.loop.run_until_complete(wait())

    def iterate(self, times: int = 5) -> None:
        """Let the loop run a few iterations (to show that something does *not* happen)."""

        async def turns() -> None:
            for _ in range(times):
                await asyncio.sleep(0)

        self.reactor.loop.run_until_complete(turns())

    def run(self, timeout: float = 5.0) -> None:
        """``reactor.run()`` with a watchdog that fails the test instead of hanging it."""
        r = self.reactor
        dog = r.callLater(timeout, r.crash)
        self._ran = True
        r.run(installSignalHandlers=False)
        if not dog.active():
            raise AssertionError(f"the reactor did not stop within {timeout}s")
        dog.cancel()

    def factory(self, protocol: type | None = None) -> RecFactory:
        f = RecFactory(protocol or Rec)
        self.factories.append(f)
        return f

    def tcp_server(self, factory: Any) -> Any:
        port = self.reactor.listenTCP(0, factory, interface=LOCAL)
        self.defer(port.stopListening)
        return port

    def raw_client(self, port: int, blocking: bool = False) -> socket.socket:
        s = socket.create_connection((LOCAL, port), timeout=5)
        s.setblocking(blocking)
        self.defer(s.close)
        return s

    def socket(self, *args: Any) -> socket.socket:
        s = socket.socket(*args)
        self.defer(s.close)
        return s

    def close(self) -> None:
        for closer in reversed(self._closers):
            try:
                closer()
            except Exception:  # noqa: BLE001 - best effort at teardown
                pass
        for f in self.factories:
            for p in f.protocols:
                if p.transport is not None and p.reason is None:
                    p.transport.abortConnection()
        loop = self.reactor.loop
        if not loop.is_closed():
            for task in asyncio.all_tasks(loop):
                task.cancel()
            for _ in range(3):
                loop.run_until_complete(asyncio.sleep(0))
            loop.close()
        if self._ran:
            # run() made this loop the thread's current one; do not leave a closed loop
            # behind for later tests (asyncio.run() resets it the same way).
            asyncio.set_event_loop(None)


def make_reactor(name: str) -> Any:
    if name == "uvloop":
        pytest.importorskip("uvloop")
        return _builtin_hooks._uvloop_reactor()
    return _builtin_hooks._asyncio_reactor()


@pytest.fixture(params=["asyncio", "uvloop"])
def env(request):
    e = Env(make_reactor(request.param))
    yield e
    e.close()


@pytest.fixture
def sockdir():
    """A short directory for UNIX socket paths (tmp_path may exceed the 107-byte limit)."""
    d = tempfile.mkdtemp(prefix="tr")
    yield d
    shutil.rmtree(d, ignore_errors=True)


class Rec(Protocol):
    """Records what arrives and why the connection ended."""

    reason: Any = None

    def connectionMade(self) -> None:
        self.received = bytearray()
        self.reason = None
        self.factory.protocols.append(self)

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def connectionLost(self, reason: Any) -> None:
        self.reason = reason


class Echo(Rec):
    def dataReceived(self, data: bytes) -> None:
        self.received += data
        self.transport.write(data)


class RecFactory(ClientFactory):
    """Server and client factory that records every event."""

    def __init__(self, protocol: type = Rec) -> None:
        self.protocol = protocol
        self.protocols: list[Rec] = []
        self.addrs: list[Any] = []
        self.events: list[Any] = []

    def buildProtocol(self, addr: Any) -> Any:
        self.addrs.append(addr)
        return super().buildProtocol(addr)

    def startFactory(self) -> None:
        self.events.append("start")

    def stopFactory(self) -> None:
        self.events.append("stop")

    def startedConnecting(self, connector: Any) -> None:
        self.events.append("connecting")

    def clientConnectionFailed(self, connector: Any, reason: Any) -> None:
        self.events.append(("failed", reason))

    def clientConnectionLost(self, connector: Any, reason: Any) -> None:
        self.events.append(("lost", reason))

    def outcome(self, kind: str) -> Any:
        for e in self.events:
            if isinstance(e, tuple) and e[0] == kind:
                return e[1]
        return None


def drain(sock: socket.socket, into: bytearray) -> bool:
    """Read what a non-blocking socket has; True once the peer closed."""
    while True:
        try:
            chunk = sock.recv(256 * 1024)
        except BlockingIOError:
            return False
        except ConnectionResetError:
            return True
        if not chunk:
            return True
        into += chunk


# -- TCP -------------------------------------------------------------------------


def test_listen_tcp_on_port_zero_reports_the_bound_port(env):
    f = env.factory()
    port = env.tcp_server(f)
    host = port.getHost()
    assert isinstance(host, IPv4Address)
    assert (host.type, host.host) == ("TCP", LOCAL)
    assert host.port > 0
    assert port.connected
    assert f.events == ["start"]


def test_tcp_round_trip_between_reactor_server_and_client(env):
    server = env.factory(Echo)
    port = env.tcp_server(server)

    class Hello(Rec):
        def connectionMade(self) -> None:
            super().connectionMade()
            self.transport.write(b"hello, ")
            self.transport.writeSequence([b"wor", b"ld"])

    client = env.factory(Hello)
    connector = env.reactor.connectTCP(LOCAL, port.getHost().port, client)
    env.spin(lambda: client.protocols and bytes(client.protocols[0].received) == b"hello, world", what="the echo")
    assert connector.state == "connected"
    cproto, sproto = client.protocols[0], server.protocols[0]
    assert bytes(sproto.received) == b"hello, world"
    # Addresses on both ends agree.
    assert cproto.transport.getPeer() == port.getHost()
    assert sproto.transport.getHost() == port.getHost()
    assert sproto.transport.getPeer() == IPv4Address("TCP", LOCAL, cproto.transport.getHost().port)
    assert connector.getDestination() == IPv4Address("TCP", LOCAL, port.getHost().port)
    cproto.transport.loseConnection()
    env.spin(lambda: cproto.reason is not None and sproto.reason is not None, what="both connectionLost")
    assert cproto.reason.check(ConnectionDone)
    assert sproto.reason.check(ConnectionDone)
    env.spin(lambda: client.outcome("lost") is not None)
    assert client.outcome("lost").check(ConnectionDone)


def test_build_protocol_receives_the_peer_address(env):
    f = env.factory()
    port = env.tcp_server(f)
    raw = env.raw_client(port.getHost().port)
    env.spin(lambda: f.protocols, what="the connection")
    assert f.addrs == [IPv4Address("TCP", LOCAL, raw.getsockname()[1])]
    assert f.protocols[0].factory is f


def test_build_protocol_returning_none_closes_the_connection(env):
    class Refuser(RecFactory):
        def buildProtocol(self, addr: Any) -> Any:
            self.addrs.append(addr)
            return None

    f = Refuser()
    port = env.tcp_server(f)
    raw = env.raw_client(port.getHost().port)
    got = bytearray()
    env.spin(lambda: drain(raw, got), what="the refused connection to close")
    assert got == b""
    assert len(f.addrs) == 1


def test_build_protocol_raising_drops_the_connection_and_keeps_serving(env, caplog):
    class Broken(RecFactory):
        calls = 0

        def buildProtocol(self, addr: Any) -> Any:
            self.calls += 1
            if self.calls == 1:
                raise RuntimeError("boom")
            return super().buildProtocol(addr)

    f = Broken(Echo)
    port = env.tcp_server(f)
    with caplog.at_level(logging.ERROR, logger="tapster.reactor"):
        first = env.raw_client(port.getHost().port)
        env.spin(lambda: drain(first, bytearray()), what="the first connection to be dropped")
    assert "boom" in caplog.text or "buildProtocol" in caplog.text
    second = env.raw_client(port.getHost().port)
    second.sendall(b"still here")
    got = bytearray()
    env.spin(lambda: (drain(second, got), got == b"still here")[1], what="the echo")


def test_exception_in_data_received_drops_the_connection(env):
    class Raiser(Rec):
        def dataReceived(self, data: bytes) -> None:
            raise ValueError("bad input")

    f = env.factory(Raiser)
    port = env.tcp_server(f)
    raw = env.raw_client(port.getHost().port)
    raw.sendall(b"x")
    env.spin(lambda: f.protocols and f.protocols[0].reason is not None, what="connectionLost")
    assert f.protocols[0].reason.check(ConnectionLost)
    env.spin(lambda: drain(raw, bytearray()), what="the client to see the close")


def test_exception_in_connection_made_drops_the_connection(env, caplog):
    class Raiser(Rec):
        def connectionMade(self) -> None:
            super().connectionMade()
            raise ValueError("cannot greet")

    f = env.factory(Raiser)
    port = env.tcp_server(f)
    with caplog.at_level(logging.ERROR):
        raw = env.raw_client(port.getHost().port)
        env.spin(lambda: drain(raw, bytearray()), what="the connection to be dropped")
    assert "cannot greet" in caplog.text
    env.spin(lambda: f.protocols[0].reason is not None, what="connectionLost")


def test_exception_in_client_connection_made_drops_the_connection(env, caplog):
    class Raiser(Rec):
        def connectionMade(self) -> None:
            super().connectionMade()
            raise ValueError("client cannot start")

    server = env.factory()
    port = env.tcp_server(server)
    client = env.factory(Raiser)
    with caplog.at_level(logging.ERROR):
        env.reactor.connectTCP(LOCAL, port.getHost().port, client)
        env.spin(lambda: client.outcome("lost"), what="clientConnectionLost")
    assert client.outcome("lost").check(ConnectionLost)
    assert "client cannot start" in caplog.text
    env.spin(lambda: server.protocols and server.protocols[0].reason is not None)


def test_connection_lost_is_connection_done_on_clean_close(env):
    f = env.factory()
    port = env.tcp_server(f)
    raw = env.raw_client(port.getHost().port)
    env.spin(lambda: f.protocols)
    raw.sendall(b"bye")
    raw.close()
    env.spin(lambda: f.protocols[0].reason is not None, what="connectionLost")
    assert f.protocols[0].reason.check(ConnectionDone)
    assert bytes(f.protocols[0].received) == b"bye"
    assert not f.protocols[0].connected


def test_local_lose_connection_reports_connection_done(env):
    class Closer(Rec):
        def connectionMade(self) -> None:
            super().connectionMade()
            self.transport.loseConnection()

    f = env.factory(Closer)
    port = env.tcp_server(f)
    raw = env.raw_client(port.getHost().port)
    env.spin(lambda: f.protocols and f.protocols[0].reason is not None)
    assert f.protocols[0].reason.check(ConnectionDone)
    assert f.protocols[0].transport.disconnecting
    env.spin(lambda: drain(raw, bytearray()), what="the client to see EOF")


def test_abort_connection_reports_connection_lost(env):
    class Aborter(Rec):
        def dataReceived(self, data: bytes) -> None:
            self.transport.write(b"this may never be sent")
            self.transport.abortConnection()

    f = env.factory(Aborter)
    port = env.tcp_server(f)
    raw = env.raw_client(port.getHost().port)
    raw.sendall(b"x")
    env.spin(lambda: f.protocols and f.protocols[0].reason is not None, what="connectionLost")
    reason = f.protocols[0].reason
    assert reason.check(ConnectionLost)
    assert not reason.check(ConnectionDone)
    env.spin(lambda: drain(raw, bytearray()), what="the client to see the close")


def test_peer_reset_reports_connection_lost(env):
    f = env.factory()
    port = env.tcp_server(f)
    raw = env.raw_client(port.getHost().port)
    env.spin(lambda: f.protocols)
    # SO_LINGER with a zero timeout makes close() send a RST.
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    raw.close()
    env.spin(lambda: f.protocols[0].reason is not None, what="connectionLost")
    assert f.protocols[0].reason.check(ConnectionLost)


def test_lose_connection_flushes_pending_data_first(env):
    payload = bytes(range(256)) * (4 * 1024)  # 1 MB

    class BigWriter(Rec):
        def connectionMade(self) -> None:
            super().connectionMade()
            self.transport.write(payload)
            self.transport.loseConnection()

    server = env.factory(BigWriter)
    port = env.tcp_server(server)
    client = env.factory()
    env.reactor.connectTCP(LOCAL, port.getHost().port, client)
    env.spin(lambda: client.protocols and client.protocols[0].reason is not None, what="the close")
    assert len(client.protocols[0].received) == len(payload)
    assert bytes(client.protocols[0].received) == payload
    assert client.protocols[0].reason.check(ConnectionDone)
    env.spin(lambda: server.protocols[0].reason is not None)
    assert server.protocols[0].reason.check(ConnectionDone)


def test_listen_tcp_on_a_port_in_use_raises_cannot_listen_error(env):
    blocker = env.socket()
    blocker.bind((LOCAL, 0))
    blocker.listen(1)
    taken = blocker.getsockname()[1]
    f = env.factory()
    with pytest.raises(CannotListenError) as info:
        env.reactor.listenTCP(taken, f, interface=LOCAL)
    message = str(info.value)
    assert f"{LOCAL}:{taken}" in message
    assert "in use" in message
    assert info.value.port == taken
    assert info.value.socketError.errno == errno.EADDRINUSE
    assert f.events == []  # the factory was never started


def test_stop_listening_stops_accepting_and_stops_the_factory(env):
    f = env.factory(Echo)
    port = env.tcp_server(f)
    number = port.getHost().port
    open_conn = env.raw_client(number)
    env.spin(lambda: f.protocols)
    assert port.stopListening() is None
    assert not port.connected
    assert f.events == ["start", "stop"]

    def refused() -> bool:
        probe = socket.socket()
        probe.settimeout(2)
        try:
            probe.connect((LOCAL, number))
        except OSError as e:  # the builtin ConnectionRefusedError (shadowed by tapster.core.errors' here)
            return e.errno == errno.ECONNREFUSED
        finally:
            probe.close()
        return False

    env.spin(refused, what="new connections to be refused")
    # Connections accepted before stopListening stay open.
    open_conn.sendall(b"ping")
    got = bytearray()
    env.spin(lambda: (drain(open_conn, got), got == b"ping")[1], what="the echo on the old connection")
    port.stopListening()  # a second call is harmless
    assert f.events == ["start", "stop"]


def test_factory_shared_by_two_ports_starts_and_stops_once(env):
    f = env.factory()
    p1 = env.tcp_server(f)
    p2 = env.tcp_server(f)
    assert f.events == ["start"]
    p1.stopListening()
    assert f.events == ["start"]
    p2.stopListening()
    assert f.events == ["start", "stop"]


def test_connect_tcp_to_a_closed_port_fails_with_connection_refused(env):
    closed = env.socket()
    closed.bind((LOCAL, 0))  # bound but not listening: connections are refused
    f = env.factory()
    connector = env.reactor.connectTCP(LOCAL, closed.getsockname()[1], f)
    assert connector.state == "connecting"
    env.spin(lambda: f.outcome("failed"), what="clientConnectionFailed")
    reason = f.outcome("failed")
    assert reason.check(ConnectionRefusedError)
    assert f.events[0] == "start" and f.events[1] == "connecting"
    assert f.events[-1] == "stop"
    assert connector.state == "disconnected"
    assert f.protocols == []


def _unresponsive_listener(env: Env) -> int:
    """A port whose accept queue is full: SYNs are dropped, so connects hang."""
    hang = env.socket()
    hang.bind((LOCAL, 0))
    hang.listen(0)
    addr = hang.getsockname()
    fillers = []
    for _ in range(2):
        s = env.socket()
        s.setblocking(False)
        s.connect_ex(addr)
        fillers.append(s)

    def first_connected() -> bool:
        try:
            fillers[0].getpeername()
            return True
        except OSError:
            return False

    env.spin(first_connected, what="the accept queue to fill")
    return addr[1]


def test_connect_timeout_fails_with_timeout_error(env):
    number = _unresponsive_listener(env)
    f = env.factory()
    connector = env.reactor.connectTCP(LOCAL, number, f, timeout=0.2)
    env.spin(lambda: f.outcome("failed") or f.protocols, what="the connect to time out")
    if f.protocols:
        pytest.skip("this kernel accepted a connection beyond the backlog")
    assert f.outcome("failed").check(TimeoutError)
    assert connector.state == "disconnected"
    assert f.events[-1] == "stop"


def test_stop_connecting_abandons_the_attempt(env):
    number = _unresponsive_listener(env)
    f = env.factory()
    connector = env.reactor.connectTCP(LOCAL, number, f, timeout=30)
    env.iterate()
    if f.protocols:
        pytest.skip("this kernel accepted a connection beyond the backlog")
    assert connector.state == "connecting"
    connector.stopConnecting()
    env.spin(lambda: f.outcome("failed"), what="clientConnectionFailed")
    assert f.outcome("failed").check(ConnectError)
    assert connector.state == "disconnected"
    assert f.events[-1] == "stop"
    with pytest.raises(NotConnectingError):
        connector.stopConnecting()


def test_reconnecting_from_client_connection_failed_can_still_be_stopped(env):
    number = _unresponsive_listener(env)

    class RetryOnce(RecFactory):
        def clientConnectionFailed(self, connector: Any, reason: Any) -> None:
            super().clientConnectionFailed(connector, reason)
            if self.events.count("connecting") == 1:
                connector.timeout = 30
                connector.connect()  # synchronously, from inside the failure callback

    f = RetryOnce()
    env.factories.append(f)
    connector = env.reactor.connectTCP(LOCAL, number, f, timeout=0.1)
    env.spin(lambda: f.events.count("connecting") == 2, what="the second attempt")
    if f.protocols:
        pytest.skip("this kernel accepted a connection beyond the backlog")
    assert f.outcome("failed").check(TimeoutError)
    env.iterate()
    assert connector.state == "connecting"
    connector.stopConnecting()  # the second attempt is still reachable
    env.spin(lambda: len([e for e in f.events if isinstance(e, tuple)]) == 2, what="the second failure")
    assert connector.state == "disconnected"
    assert f.events.count("start") == 1 and f.events[-1] == "stop"


def test_listen_inside_the_running_loop_serves_and_stops(env):
    r = env.reactor
    f = env.factory(Echo)
    ports: list[Any] = []

    async def listen_while_running() -> None:
        ports.append(r.listenTCP(0, f, interface=LOCAL))
        cancelled = r.listenTCP(0, env.factory(), interface=LOCAL)
        cancelled.stopListening()  # before the loop even started serving it
        ports.append(cancelled)

    r.loop.run_until_complete(listen_while_running())
    live, cancelled = ports
    env.defer(live.stopListening)
    raw = env.raw_client(live.getHost().port)
    raw.sendall(b"served")
    got = bytearray()
    env.spin(lambda: (drain(raw, got), got == b"served")[1], what="the echo")
    number = cancelled.getHost().port

    def refused() -> bool:
        probe = socket.socket()
        probe.settimeout(2)
        try:
            probe.connect((LOCAL, number))
        except OSError as e:
            return e.errno == errno.ECONNREFUSED
        finally:
            probe.close()
        return False

    env.spin(refused, what="the cancelled port to close")


def test_tcp_over_ipv6_loopback(env):
    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    f = env.factory(Echo)
    try:
        port = env.reactor.listenTCP(0, f, interface="::1")
    except CannotListenError as e:
        pytest.skip(f"cannot listen on ::1: {e}")
    env.defer(port.stopListening)
    host = port.getHost()
    assert isinstance(host, IPv6Address) and host.host == "::1"

    class Hello(Rec):
        def connectionMade(self) -> None:
            super().connectionMade()
            self.transport.write(b"v6")

    client = env.factory(Hello)
    connector = env.reactor.connectTCP("::1", host.port, client)
    assert connector.getDestination() == IPv6Address("TCP", "::1", host.port)
    env.spin(lambda: client.protocols and client.protocols[0].received == b"v6", what="the echo")
    assert isinstance(f.addrs[0], IPv6Address) and f.addrs[0].host == "::1"


def test_client_connection_lost_and_reconnect(env):
    class CloseAtOnce(Rec):
        def connectionMade(self) -> None:
            super().connectionMade()
            self.transport.loseConnection()

    server = env.factory(CloseAtOnce)
    port = env.tcp_server(server)

    class Reconnecting(RecFactory):
        def clientConnectionLost(self, connector: Any, reason: Any) -> None:
            super().clientConnectionLost(connector, reason)
            if len(self.protocols) < 2:
                connector.connect()

    client = Reconnecting()
    env.factories.append(client)
    connector = env.reactor.connectTCP(LOCAL, port.getHost().port, client)
    env.spin(lambda: len([e for e in client.events if isinstance(e, tuple)]) == 2, what="two lost connections")
    losses = [e for e in client.events if isinstance(e, tuple)]
    assert [kind for kind, _ in losses] == ["lost", "lost"]
    assert all(reason.check(ConnectionDone) for _, reason in losses)
    assert len(server.protocols) == 2
    # The factory started once, for the whole life of the connector, and stopped at the end.
    assert client.events.count("start") == 1
    assert client.events[-1] == "stop"
    assert connector.state == "disconnected"


class CountingReconnector(ReconnectingClientFactory):
    """Retries fast (no jitter, millisecond delays) and counts what happens."""

    protocol = Rec
    initialDelay = delay = 0.001
    maxDelay = 0.002
    jitter = 0

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self.protocols: list[Rec] = []
        self.attempts = 0
        self.failures = 0
        self.losses = 0

    def startedConnecting(self, connector: Any) -> None:
        self.attempts += 1

    def clientConnectionFailed(self, connector: Any, reason: Any) -> None:
        self.failures += 1
        super().clientConnectionFailed(connector, reason)

    def clientConnectionLost(self, connector: Any, reason: Any) -> None:
        self.losses += 1
        super().clientConnectionLost(connector, reason)


def test_reconnecting_client_factory_gives_up_after_max_retries(env):
    closed = env.socket()
    closed.bind((LOCAL, 0))
    f = CountingReconnector(env.reactor)
    f.maxRetries = 3
    env.reactor.connectTCP(LOCAL, closed.getsockname()[1], f)
    env.spin(lambda: f.failures == 4, what="four failed attempts")
    env.iterate(20)
    assert (f.attempts, f.failures) == (4, 4)  # the first attempt and three retries
    assert not env.reactor.getDelayedCalls()


def test_reconnecting_client_factory_reconnects_until_stop_trying(env):
    class CloseAtOnce(Rec):
        def connectionMade(self) -> None:
            super().connectionMade()
            self.transport.loseConnection()

    server = env.factory(CloseAtOnce)
    port = env.tcp_server(server)
    f = CountingReconnector(env.reactor)
    env.reactor.connectTCP(LOCAL, port.getHost().port, f)
    env.spin(lambda: f.losses >= 3, what="three reconnections")
    f.stopTrying()
    attempts = f.attempts
    env.iterate(20)
    assert not env.reactor.getDelayedCalls()  # no retry pending
    assert f.attempts == attempts  # and none started
    assert f.continueTrying == 0
    assert len(server.protocols) >= 3


def test_connector_disconnect_closes_the_connection(env):
    server = env.factory()
    port = env.tcp_server(server)
    client = env.factory()
    connector = env.reactor.connectTCP(LOCAL, port.getHost().port, client)
    env.spin(lambda: connector.state == "connected" and server.protocols)
    connector.disconnect()
    env.spin(lambda: server.protocols[0].reason is not None and client.outcome("lost"))
    assert client.outcome("lost").check(ConnectionDone)


def test_transport_tcp_options(env):
    f = env.factory()
    port = env.tcp_server(f)
    env.raw_client(port.getHost().port)
    env.spin(lambda: f.protocols)
    t = f.protocols[0].transport
    t.setTcpNoDelay(True)
    assert t.getTcpNoDelay()
    t.setTcpNoDelay(False)
    assert not t.getTcpNoDelay()
    t.setTcpKeepAlive(True)
    assert t.getTcpKeepAlive()


# -- timed calls -----------------------------------------------------------------


def test_call_later_runs_calls_in_time_order(env):
    r = env.reactor
    order: list[str] = []
    r.callLater(0.03, order.append, "c")
    r.callLater(0.01, order.append, "a")
    r.callLater(0.02, order.append, "b")
    env.spin(lambda: len(order) == 3)
    assert order == ["a", "b", "c"]


def test_call_later_zero_delay_runs_in_scheduling_order(env):
    order: list[int] = []
    for i in range(10):
        env.reactor.callLater(0, order.append, i)
    env.spin(lambda: len(order) == 10)
    assert order == list(range(10))


def test_call_later_passes_arguments(env):
    seen: list[Any] = []
    env.reactor.callLater(0, lambda *a, **kw: seen.append((a, kw)), 1, 2, key="v")
    env.spin(lambda: seen)
    assert seen == [((1, 2), {"key": "v"})]


def test_call_later_needs_a_callable(env):
    with pytest.raises(TypeError):
        env.reactor.callLater(0, "not callable")


def test_call_later_negative_delay_is_an_error(env):
    with pytest.raises(ValueError):
        env.reactor.callLater(-1, lambda: None)


def test_cancelled_call_does_not_run(env):
    r = env.reactor
    ran: list[str] = []
    call = r.callLater(0.01, ran.append, "cancelled")
    r.callLater(0.03, ran.append, "marker")
    assert call.active()
    assert call in r.getDelayedCalls()
    call.cancel()
    assert not call.active()
    assert call.cancelled
    assert call not in r.getDelayedCalls()
    env.spin(lambda: ran)
    assert ran == ["marker"]
    with pytest.raises(AlreadyCancelled):
        call.cancel()
    with pytest.raises(AlreadyCancelled):
        call.reset(1)
    with pytest.raises(AlreadyCancelled):
        call.delay(1)


def test_called_call_is_inactive_and_cannot_be_changed(env):
    ran: list[int] = []
    call = env.reactor.callLater(0, ran.append, 1)
    env.spin(lambda: ran)
    assert call.called
    assert not call.active()
    assert call not in env.reactor.getDelayedCalls()
    with pytest.raises(AlreadyCalled):
        call.cancel()
    with pytest.raises(AlreadyCalled):
        call.reset(1)
    with pytest.raises(AlreadyCalled):
        call.delay(1)


def test_get_time_delay_and_reset(env):
    r = env.reactor
    ran: list[str] = []
    before = r.seconds()
    call = r.callLater(10, ran.append, "x")
    assert before + 10 <= call.getTime() <= r.seconds() + 10
    original = call.getTime()
    call.delay(5)
    assert call.getTime() == pytest.approx(original + 5)
    call.reset(0.01)
    assert call.getTime() == pytest.approx(r.seconds() + 0.01, abs=0.5)
    env.spin(lambda: ran, what="the reset call")
    assert ran == ["x"]


def test_reset_to_later_postpones_the_call(env):
    r = env.reactor
    ran: list[str] = []
    call = r.callLater(0.01, ran.append, "postponed")
    call.reset(30)
    r.callLater(0.03, ran.append, "marker")
    env.spin(lambda: ran)
    assert ran == ["marker"]
    assert call.active()
    call.cancel()


def test_delay_postpones_the_call(env):
    r = env.reactor
    ran: list[str] = []
    call = r.callLater(0.01, ran.append, "delayed")
    call.delay(30)
    r.callLater(0.03, ran.append, "marker")
    env.spin(lambda: ran)
    assert ran == ["marker"]
    call.cancel()


def test_seconds_follows_the_loop_clock(env):
    r = env.reactor
    assert r.seconds() == pytest.approx(r.loop.time(), abs=0.01)


# -- running, stopping, threads, triggers ----------------------------------------


def test_call_when_running_defers_until_startup_then_runs_at_once(env):
    r = env.reactor
    seen: list[Any] = []
    r.callWhenRunning(lambda: seen.append(("first", r.running)))

    def later() -> None:
        r.callWhenRunning(seen.append, "immediate")
        seen.append("after immediate")
        r.stop()

    r.callWhenRunning(later)
    assert seen == []
    env.run()
    assert seen == [("first", True), "immediate", "after immediate"]
    assert not r.running


def test_call_from_thread_runs_in_the_reactor_thread(env):
    r = env.reactor
    result: dict[str, Any] = {}
    threads: list[threading.Thread] = []

    def in_reactor(value: int) -> None:
        result["thread"] = threading.get_ident()
        result["value"] = value
        r.stop()

    def start_thread() -> None:
        t = threading.Thread(target=r.callFromThread, args=(in_reactor, 42))
        threads.append(t)
        t.start()

    r.callWhenRunning(start_thread)
    env.run()
    for t in threads:
        t.join(5)
    assert result == {"thread": threading.get_ident(), "value": 42}


def test_call_in_thread_returns_a_future(env):
    r = env.reactor
    fut = r.callInThread(threading.get_ident)
    env.spin(fut.done)
    assert fut.result() != threading.get_ident()


def test_system_event_triggers_run_in_phase_order(env):
    r = env.reactor
    log: list[tuple[str, str]] = []
    for event in ("startup", "shutdown"):
        for phase in ("after", "during", "before"):
            r.addSystemEventTrigger(phase, event, log.append, (event, phase))
    r.callWhenRunning(r.stop)
    env.run()
    assert log == [
        ("startup", "before"),
        ("startup", "during"),
        ("startup", "after"),
        ("shutdown", "before"),
        ("shutdown", "during"),
        ("shutdown", "after"),
    ]


def test_removed_trigger_does_not_run(env):
    r = env.reactor
    log: list[str] = []
    handle = r.addSystemEventTrigger("before", "shutdown", log.append, "removed")
    r.addSystemEventTrigger("during", "shutdown", log.append, "kept")
    r.removeSystemEventTrigger(handle)
    with pytest.raises(ValueError):
        r.removeSystemEventTrigger(handle)
    r.callWhenRunning(r.stop)
    env.run()
    assert log == ["kept"]


def test_unknown_trigger_phase_is_rejected(env):
    with pytest.raises(KeyError):
        env.reactor.addSystemEventTrigger("sometime", "shutdown", lambda: None)


def test_before_shutdown_awaitable_delays_the_stop(env):
    r = env.reactor
    log: list[str] = []

    def slow_before() -> Any:
        fut = r.loop.create_future()

        def finish() -> None:
            log.append("before done")
            fut.set_result(None)

        log.append("before")
        r.callLater(0.05, finish)
        return fut

    async def coroutine_before() -> None:
        await asyncio.sleep(0.01)
        log.append("coroutine done")

    r.addSystemEventTrigger("before", "shutdown", slow_before)
    r.addSystemEventTrigger("before", "shutdown", coroutine_before)
    r.addSystemEventTrigger("during", "shutdown", log.append, "during")
    r.addSystemEventTrigger("after", "shutdown", log.append, "after")
    r.callWhenRunning(r.stop)
    env.run()
    assert log == ["before", "coroutine done", "before done", "during", "after"]


def test_failing_trigger_does_not_prevent_shutdown(env, caplog):
    r = env.reactor
    log: list[str] = []

    def broken() -> None:
        raise RuntimeError("trigger failed")

    async def broken_async() -> None:
        raise RuntimeError("async trigger failed")

    r.addSystemEventTrigger("before", "shutdown", broken)
    r.addSystemEventTrigger("before", "shutdown", broken_async)
    r.addSystemEventTrigger("during", "shutdown", log.append, "during")
    r.callWhenRunning(r.stop)
    with caplog.at_level(logging.ERROR, logger="tapster.reactor"):
        env.run()
    assert log == ["during"]
    assert "trigger failed" in caplog.text
    assert "async trigger failed" in caplog.text


def test_stop_when_not_running_raises(env):
    with pytest.raises(ReactorNotRunning):
        env.reactor.stop()


def test_stop_twice_raises_and_run_inside_run_raises(env):
    r = env.reactor
    errors: list[type] = []

    def twice() -> None:
        try:
            r.run(installSignalHandlers=False)
        except ReactorAlreadyRunning:
            errors.append(ReactorAlreadyRunning)
        r.stop()
        try:
            r.stop()
        except ReactorNotRunning:
            errors.append(ReactorNotRunning)

    r.callWhenRunning(twice)
    env.run()
    assert errors == [ReactorAlreadyRunning, ReactorNotRunning]
    with pytest.raises(ReactorNotRunning):
        r.stop()


def test_run_twice_works(env):
    r = env.reactor
    runs: list[bool] = []
    for _ in range(2):
        r.callWhenRunning(lambda: (runs.append(r.running), r.stop()))
        env.run()
        assert not r.running
    assert runs == [True, True]


def test_sigterm_runs_the_shutdown_triggers(env):
    import signal

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers need the main thread")
    r = env.reactor
    log: list[str] = []
    r.addSystemEventTrigger("before", "shutdown", log.append, "before shutdown")
    r.callWhenRunning(os.kill, os.getpid(), signal.SIGTERM)
    dog = r.callLater(5, r.crash)
    env._ran = True
    r.run()  # installs SIGINT/SIGTERM handlers that stop the reactor cleanly
    assert dog.active(), "SIGTERM did not stop the reactor"
    dog.cancel()
    assert log == ["before shutdown"]
    # The handlers are gone once run() returned (uvloop's would otherwise swallow Ctrl-C).
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_crash_stops_without_shutdown_triggers(env):
    r = env.reactor
    log: list[str] = []
    r.addSystemEventTrigger("before", "shutdown", log.append, "shutdown")
    r.callWhenRunning(r.crash)
    env.run()
    assert log == []
    assert not r.running


# -- UNIX sockets ----------------------------------------------------------------


def test_listen_unix_round_trip_mode_and_cleanup(env, sockdir):
    path = os.path.join(sockdir, "echo.sock")
    server = env.factory(Echo)
    port = env.reactor.listenUNIX(path, server, mode=0o600)
    env.defer(port.stopListening)
    st = os.stat(path)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert port.getHost() == UNIXAddress(path)

    class Hello(Rec):
        def connectionMade(self) -> None:
            super().connectionMade()
            self.transport.write(b"over unix")

    client = env.factory(Hello)
    connector = env.reactor.connectUNIX(path, client)
    env.spin(lambda: client.protocols and client.protocols[0].received == b"over unix", what="the echo")
    assert isinstance(server.addrs[0], UNIXAddress)
    assert client.protocols[0].transport.getPeer() == UNIXAddress(path)
    assert connector.getDestination() == UNIXAddress(path)
    client.protocols[0].transport.loseConnection()
    env.spin(lambda: server.protocols[0].reason is not None and client.outcome("lost"))
    assert server.protocols[0].reason.check(ConnectionDone)
    port.stopListening()
    assert not os.path.exists(path)
    assert server.events == ["start", "stop"]


def test_listen_unix_replaces_a_stale_socket_file(env, sockdir):
    path = os.path.join(sockdir, "stale.sock")
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(path)
    dead.close()  # the file stays behind, nobody listens: what a crash leaves
    assert os.path.exists(path)
    f = env.factory()
    port = env.reactor.listenUNIX(path, f)
    env.defer(port.stopListening)
    probe = env.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.connect(path)
    env.spin(lambda: f.protocols, what="the connection")


def test_listen_unix_refuses_a_live_socket(env, sockdir):
    path = os.path.join(sockdir, "live.sock")
    live = env.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    live.bind(path)
    live.listen(1)
    f = env.factory()
    with pytest.raises(CannotListenError) as info:
        env.reactor.listenUNIX(path, f)
    assert path in str(info.value)
    assert "in use" in str(info.value)
    assert f.events == []
    # The live server's socket file is untouched.
    probe = env.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.connect(path)


def test_listen_unix_refuses_to_clobber_a_regular_file(env, sockdir):
    path = os.path.join(sockdir, "data")
    with open(path, "w") as fh:
        fh.write("precious")
    with pytest.raises(CannotListenError, match="data"):
        env.reactor.listenUNIX(path, env.factory())
    with open(path) as fh:
        assert fh.read() == "precious"


def test_listen_unix_want_pid_writes_and_removes_a_lock(env, sockdir):
    path = os.path.join(sockdir, "pid.sock")
    port = env.reactor.listenUNIX(path, env.factory(), wantPID=True)
    env.defer(port.stopListening)
    with open(path + ".lock") as fh:
        assert int(fh.read()) == os.getpid()
    port.stopListening()
    assert not os.path.exists(path + ".lock")
    assert not os.path.exists(path)


def test_listen_unix_want_pid_refuses_a_live_holder_and_replaces_a_dead_one(env, sockdir):
    import subprocess
    import sys

    path = os.path.join(sockdir, "held.sock")
    with open(path + ".lock", "w") as fh:
        fh.write("1")  # init is always alive
    with pytest.raises(CannotListenError, match="pid 1"):
        env.reactor.listenUNIX(path, env.factory(), wantPID=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    with open(path + ".lock", "w") as fh:
        fh.write(dead.stdout.strip())
    port = env.reactor.listenUNIX(path, env.factory(), wantPID=True)
    env.defer(port.stopListening)
    with open(path + ".lock") as fh:
        assert int(fh.read()) == os.getpid()


def test_connect_unix_to_missing_path_fails(env, sockdir):
    f = env.factory()
    env.reactor.connectUNIX(os.path.join(sockdir, "nobody.sock"), f)
    env.spin(lambda: f.outcome("failed"))
    assert f.outcome("failed").check(ConnectError)


# -- datagrams -------------------------------------------------------------------


class UDPRec(DatagramProtocol):
    def __init__(self) -> None:
        self.got: list[tuple[bytes, Any]] = []
        self.started = 0
        self.stopped = 0

    def startProtocol(self) -> None:
        self.started += 1

    def stopProtocol(self) -> None:
        self.stopped += 1

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        self.got.append((datagram, addr))


class UDPEcho(UDPRec):
    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        super().datagramReceived(datagram, addr)
        self.transport.write(datagram, addr)


def test_udp_round_trip(env):
    r = env.reactor
    sproto, cproto = UDPEcho(), UDPRec()
    server = r.listenUDP(0, sproto, interface=LOCAL)
    env.defer(server.stopListening)
    client = r.listenUDP(0, cproto, interface=LOCAL)
    env.defer(client.stopListening)
    assert sproto.started == 1 and cproto.started == 1
    shost, chost = server.getHost(), client.getHost()
    assert shost.type == "UDP" and shost.host == LOCAL and shost.port > 0
    cproto.transport.write(b"datagram", (LOCAL, shost.port))
    env.spin(lambda: cproto.got, what="the echoed datagram")
    assert sproto.got == [(b"datagram", (LOCAL, chost.port))]
    assert cproto.got == [(b"datagram", (LOCAL, shost.port))]
    server.stopListening()
    assert sproto.stopped == 1
    assert sproto.transport is None


def test_udp_write_without_address_needs_connect(env):
    r = env.reactor
    sproto, cproto = UDPRec(), UDPRec()
    server = r.listenUDP(0, sproto, interface=LOCAL)
    env.defer(server.stopListening)
    client = r.listenUDP(0, cproto, interface=LOCAL)
    env.defer(client.stopListening)
    with pytest.raises(ValueError):
        cproto.transport.write(b"nowhere")
    cproto.transport.connect(LOCAL, server.getHost().port)
    assert cproto.transport.getPeer() == IPv4Address("UDP", LOCAL, server.getHost().port)
    cproto.transport.write(b"connected")
    env.spin(lambda: sproto.got, what="the datagram")
    assert sproto.got == [(b"connected", (LOCAL, client.getHost().port))]


def test_udp_port_in_use_raises_cannot_listen_error(env):
    taken = env.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind((LOCAL, 0))
    number = taken.getsockname()[1]
    with pytest.raises(CannotListenError, match=f"{LOCAL}:{number}"):
        env.reactor.listenUDP(number, UDPRec(), interface=LOCAL)


def test_unix_datagram_listen_and_connect(env, sockdir):
    r = env.reactor
    spath = os.path.join(sockdir, "server.dgram")
    cpath = os.path.join(sockdir, "client.dgram")
    sproto, cproto = UDPEcho(), UDPRec()
    server = r.listenUNIXDatagram(spath, sproto, mode=0o600)
    env.defer(server.stopListening)
    assert stat.S_IMODE(os.stat(spath).st_mode) == 0o600
    client = r.connectUNIXDatagram(spath, cproto, bindAddress=cpath)
    env.defer(client.stopListening)
    cproto.transport.write(b"unix datagram")
    env.spin(lambda: cproto.got, what="the echoed datagram")
    assert [(d, os.fsdecode(a)) for d, a in sproto.got] == [(b"unix datagram", cpath)]
    assert [(d, os.fsdecode(a)) for d, a in cproto.got] == [(b"unix datagram", spath)]
    client.stopListening()
    server.stopListening()
    assert not os.path.exists(spath)
    assert not os.path.exists(cpath)
    assert sproto.stopped == 1 and cproto.stopped == 1


def test_connect_unix_datagram_to_missing_path_raises(env, sockdir):
    with pytest.raises(ConnectError):
        env.reactor.connectUNIXDatagram(os.path.join(sockdir, "absent"), UDPRec())


def test_multicast_socket_options(env):
    proto = UDPRec()
    port = env.reactor.listenMulticast(0, proto, interface=LOCAL)
    env.defer(port.stopListening)
    proto.transport.setTTL(2)
    assert proto.transport.getTTL() == 2
    proto.transport.setLoopbackMode(False)
    assert not proto.transport.getLoopbackMode()
    proto.transport.setLoopbackMode(True)
    assert proto.transport.getLoopbackMode()
    proto.transport.setBroadcastAllowed(True)
    assert proto.transport.getBroadcastAllowed()


def test_multicast_join_group_and_receive(env):
    r = env.reactor
    group = "228.0.0.5"
    receiver = UDPRec()
    try:
        port = r.listenMulticast(0, receiver, interface=group, listenMultiple=True)
    except CannotListenError as e:
        pytest.skip(f"cannot bind a multicast group here: {e}")
    env.defer(port.stopListening)
    try:
        receiver.transport.joinGroup(group, LOCAL)
    except OSError as e:
        pytest.skip(f"cannot join a multicast group on {LOCAL}: {e}")
    sender = UDPRec()
    out = r.listenUDP(0, sender, interface=LOCAL)
    env.defer(out.stopListening)
    try:
        sender.transport.setOutgoingInterface(LOCAL)
        sender.transport.setTTL(0)
        sender.transport.setLoopbackMode(True)
        sender.transport.write(b"to the group", (group, port.getHost().port))
    except OSError as e:
        pytest.skip(f"cannot send multicast on {LOCAL}: {e}")
    try:
        env.spin(lambda: receiver.got, timeout=1.0)
    except AssertionError:
        pytest.skip(f"multicast on {LOCAL} is not delivered on this machine")
    assert receiver.got[0][0] == b"to the group"
    receiver.transport.leaveGroup(group, LOCAL)


# -- flow control ----------------------------------------------------------------


class PushProducer:
    """Writes chunks while not paused (a streaming producer)."""

    def __init__(self, transport: Any, chunk: bytes, limit: int) -> None:
        self.transport = transport
        self.chunk = chunk
        self.limit = limit
        self.sent = 0
        self.paused = False
        self.pauses = 0
        self.resumes = 0
        self.stopped = False

    def pump(self) -> None:
        while not self.paused and self.sent < self.limit and not self.transport.disconnecting:
            self.transport.write(self.chunk)
            self.sent += len(self.chunk)

    def pauseProducing(self) -> None:
        self.paused = True
        self.pauses += 1

    def resumeProducing(self) -> None:
        self.paused = False
        self.resumes += 1

    def stopProducing(self) -> None:
        self.stopped = True


def test_streaming_producer_is_paused_and_resumed(env):
    limit = 64 * MB  # a safety cap: the producer must be paused long before

    class Pushing(Rec):
        def connectionMade(self) -> None:
            super().connectionMade()
            self.producer = PushProducer(self.transport, b"p" * 65536, limit)
            self.transport.registerProducer(self.producer, True)
            self.producer.pump()

    f = env.factory(Pushing)
    port = env.tcp_server(f)
    raw = env.raw_client(port.getHost().port)  # does not read yet
    env.spin(lambda: f.protocols and f.protocols[0].producer.pauses, what="pauseProducing")
    producer = f.protocols[0].producer
    assert producer.paused
    assert producer.sent < limit
    assert producer.resumes == 0
    got = bytearray()
    env.spin(lambda: (drain(raw, got), producer.resumes)[1], what="resumeProducing once the client reads")
    assert not producer.paused
    assert len(got) > 0
    with pytest.raises(RuntimeError):
        f.protocols[0].transport.registerProducer(PushProducer(None, b"", 0), True)
    f.protocols[0].transport.unregisterProducer()
    assert f.protocols[0].transport.producer is None


def test_producer_is_stopped_when_the_connection_is_lost(env):
    class Pushing(Rec):
        def connectionMade(self) -> None:
            super().connectionMade()
            self.producer = PushProducer(self.transport, b"", 0)
            self.transport.registerProducer(self.producer, True)

    f = env.factory(Pushing)
    port = env.tcp_server(f)
    raw = env.raw_client(port.getHost().port)
    env.spin(lambda: f.protocols)
    raw.close()
    env.spin(lambda: f.protocols[0].reason is not None)
    assert f.protocols[0].producer.stopped


def test_echo_without_producer_stops_reading_from_a_client_that_never_reads(env):
    f = env.factory(Echo)
    port = env.tcp_server(f)
    raw = env.raw_client(port.getHost().port)
    env.spin(lambda: f.protocols)
    server = f.protocols[0]
    chunk = b"e" * 65536
    cap = 64 * MB
    state = {"sent": 0}

    async def flood() -> None:
        deadline = time.monotonic() + 10
        blocked_turns = 0
        while blocked_turns < 20 and state["sent"] < cap:
            if time.monotonic() > deadline:
                raise AssertionError("flooding did not settle")
            try:
                state["sent"] += raw.send(chunk)
                blocked_turns = 0
                await asyncio.sleep(0)
            except BlockingIOError:
                # Count only turns where the server has stopped reading: the client is
                # blocked because nobody reads, not because the server is merely slow.
                if not server.transport._t.is_reading():
                    blocked_turns += 1
                await asyncio.sleep(0.001)

    env.reactor.loop.run_until_complete(flood())
    assert state["sent"] < cap, "the server kept reading while its peer never read"
    assert not server.transport._t.is_reading()
    buffered = server.transport._t.get_write_buffer_size()
    assert buffered < 4 * MB
    # Once the client reads, the server drains, reads again, and echoes every byte.
    got = bytearray()
    env.spin(lambda: (drain(raw, got), len(got) >= state["sent"])[1], timeout=10, what="the full echo")
    assert len(got) == state["sent"]
    assert server.transport._t.is_reading()


def test_pull_producer_is_asked_for_data_repeatedly(env):
    chunk = b"q" * 16384

    class PullProducer:
        def __init__(self, transport: Any) -> None:
            self.transport = transport
            self.calls = 0

        def resumeProducing(self) -> None:
            self.calls += 1
            self.transport.write(chunk)
            if self.calls == 20:
                self.transport.unregisterProducer()
                self.transport.loseConnection()

        def stopProducing(self) -> None:
            pass

    class Pulling(Rec):
        def connectionMade(self) -> None:
            super().connectionMade()
            self.producer = PullProducer(self.transport)
            self.transport.registerProducer(self.producer, False)

    server = env.factory(Pulling)
    port = env.tcp_server(server)
    client = env.factory()
    env.reactor.connectTCP(LOCAL, port.getHost().port, client)
    env.spin(lambda: client.protocols and client.protocols[0].reason is not None, what="the producer to finish")
    assert server.protocols[0].producer.calls == 20
    assert bytes(client.protocols[0].received) == chunk * 20


def test_pull_producer_waits_while_the_peer_does_not_read(env):
    chunk = b"w" * (256 * 1024)

    class Endless:
        def __init__(self, transport: Any) -> None:
            self.transport = transport
            self.calls = 0

        def resumeProducing(self) -> None:
            self.calls += 1
            self.transport.write(chunk)

        def stopProducing(self) -> None:
            pass

    class Pulling(Rec):
        def connectionMade(self) -> None:
            super().connectionMade()
            self.producer = Endless(self.transport)
            self.transport.registerProducer(self.producer, False)

    f = env.factory(Pulling)
    port = env.tcp_server(f)
    raw = env.raw_client(port.getHost().port)
    env.spin(lambda: f.protocols and f.protocols[0].transport._writing_paused, what="the write buffer to fill")
    producer = f.protocols[0].producer
    calls = producer.calls
    env.iterate(20)
    assert producer.calls == calls  # not asked while the buffer is full
    got = bytearray()
    env.spin(lambda: (drain(raw, got), producer.calls > calls)[1], what="the producer to be asked again")
    f.protocols[0].transport.unregisterProducer()


# -- choosing the shared reactor -------------------------------------------------


@pytest.fixture
def shared():
    import tapster.core.reactor as shared_reactor

    saved = shared_reactor.setAside()
    yield shared_reactor
    shared_reactor.uninstall()
    shared_reactor.restore(saved)


def test_available_reactors_and_default(shared):
    names = set(shared.availableReactors())
    assert {"asyncio", "uvloop"} <= names
    assert shared.defaultReactorName() == "uvloop"


def test_install_unknown_reactor_lists_the_names(shared):
    with pytest.raises(TapsterError) as info:
        shared.install("no-such-loop")
    message = str(info.value)
    assert "no-such-loop" in message
    assert "asyncio" in message and "uvloop" in message
    assert not shared.installed()


def test_install_then_a_different_name_raises(shared):
    r = shared.install("asyncio")
    assert r.name == "asyncio"
    assert shared.installed()
    assert shared.install("asyncio") is r
    assert shared.install() is r
    assert shared.getReactor() is r
    with pytest.raises(ReactorAlreadyInstalledError, match="asyncio"):
        shared.install("uvloop")


def test_proxy_attributes_reach_the_installed_reactor(shared):
    r = shared.install("asyncio")
    assert shared.seconds() == pytest.approx(r.loop.time(), abs=0.1)
    call = shared.callLater(100, lambda: None)
    assert call in r.getDelayedCalls()
    call.cancel()
    with pytest.raises(AttributeError):
        shared.__no_such_dunder__


def test_get_reactor_installs_the_default(shared):
    r = shared.getReactor()
    assert r.name == shared.defaultReactorName()
    assert shared.installed()
