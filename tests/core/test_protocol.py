"""Tests for tapster.core.protocol: factories, reconnection, datagram protocols and the class-level asyncio alias."""

from __future__ import annotations

import pickle

import pytest

from tapster.core.address import IPv4Address
from tapster.core.basic import LineReceiver
from tapster.core.errors import ConnectError, ConnectionDone, ConnectionLost
from tapster.core.failure import Failure
from tapster.core.protocol import (
    ClientFactory,
    DatagramProtocol,
    Factory,
    Protocol,
    ReconnectingClientFactory,
    ServerFactory,
)
from tapster.core.testing import Clock, MemoryReactor, StringTransport

ADDR = IPv4Address("TCP", "127.0.0.1", 40000)


class Hello(Protocol):
    def connectionMade(self):
        self.transport.write(b"hello\r\n")


class CountingFactory(Factory):
    """Module level so that it pickles."""

    protocol = Hello

    def __init__(self, greeting=b"hi"):
        self.greeting = greeting
        self.started = 0
        self.stopped = 0

    def startFactory(self):
        self.started += 1

    def stopFactory(self):
        self.stopped += 1


# -- Factory ---------------------------------------------------------------------------


def test_buildProtocol_makes_a_protocol_pointing_back_at_the_factory():
    factory = CountingFactory()
    proto = factory.buildProtocol(ADDR)
    assert isinstance(proto, Hello)
    assert proto.factory is factory
    assert factory.buildProtocol(ADDR) is not proto


def test_built_protocol_talks_through_a_string_transport():
    proto = CountingFactory().buildProtocol(ADDR)
    tr = StringTransport()
    proto.makeConnection(tr)
    assert proto.connected and proto.transport is tr
    assert tr.value() == b"hello\r\n"


def test_forProtocol_sets_protocol_and_passes_constructor_arguments():
    factory = CountingFactory.forProtocol(Hello, b"howdy")
    assert isinstance(factory, CountingFactory)
    assert factory.protocol is Hello and factory.greeting == b"howdy"
    server = ServerFactory.forProtocol(Hello)
    assert isinstance(server, ServerFactory) and isinstance(server.buildProtocol(ADDR), Hello)


def test_buildProtocol_without_protocol_fails_clearly():
    with pytest.raises((AssertionError, TypeError)):
        Factory().buildProtocol(ADDR)


def test_factory_starts_once_for_two_ports_and_stops_after_the_last():
    reactor = MemoryReactor()
    factory = CountingFactory()
    port1 = reactor.listenTCP(8001, factory)
    port2 = reactor.listenTCP(8002, factory)
    assert factory.started == 1 and factory.numPorts == 2
    port1.stopListening()
    assert factory.stopped == 0 and factory.numPorts == 1
    port2.stopListening()
    assert factory.stopped == 1 and factory.numPorts == 0


def test_factory_can_restart_after_stopping():
    factory = CountingFactory()
    factory.doStart()
    factory.doStop()
    factory.doStart()
    assert (factory.started, factory.stopped, factory.numPorts) == (2, 1, 1)


def test_extra_doStop_is_ignored():
    factory = CountingFactory()
    factory.doStop()
    assert factory.stopped == 0 and factory.numPorts == 0


def test_factory_pickles_without_numPorts():
    factory = CountingFactory(b"saved")
    factory.doStart()
    factory.doStart()
    assert "numPorts" not in factory.__getstate__()
    restored = pickle.loads(pickle.dumps(factory))
    assert restored.numPorts == 0
    assert restored.greeting == b"saved" and restored.started == 1
    restored.doStart()
    assert restored.started == 2  # starts again in the new process


# -- ReconnectingClientFactory -------------------------------------------------------------


class Connector:
    """Records what the factory asks of it."""

    def __init__(self, connecting=True):
        self.connects = 0
        self.stops = 0
        self.connecting = connecting

    def connect(self):
        self.connects += 1

    def stopConnecting(self):
        if not self.connecting:
            raise RuntimeError("not connecting")
        self.stops += 1


def reconnecting(**attrs):
    factory = ReconnectingClientFactory()
    factory.clock = Clock()
    factory.jitter = 0
    factory.noisy = False
    for name, value in attrs.items():
        setattr(factory, name, value)
    return factory


def failure():
    return Failure(ConnectError(string="refused"))


def test_retry_delay_grows_by_factor_and_is_capped_at_maxDelay():
    factory = reconnecting(initialDelay=1.0, factor=2.0, maxDelay=10)
    connector = Connector()
    delays = []
    for _ in range(6):
        factory.clientConnectionFailed(connector, failure())
        (call,) = factory.clock.getDelayedCalls()
        delays.append(call.getTime() - factory.clock.seconds())
        factory.clock.advance(delays[-1])
    assert delays == [2.0, 4.0, 8.0, 10, 10, 10]
    assert connector.connects == 6
    assert factory.retries == 6


def test_retry_reconnects_when_the_delay_has_passed():
    factory = reconnecting(initialDelay=1.0, factor=3.0)
    connector = Connector()
    factory.clientConnectionLost(connector, Failure(ConnectionLost()))
    factory.clock.advance(2.9)
    assert connector.connects == 0
    factory.clock.advance(0.1)
    assert connector.connects == 1
    assert factory._callID is None


def test_jitter_randomises_the_delay():
    factory = reconnecting(initialDelay=1.0, factor=2.0)
    factory.jitter = ReconnectingClientFactory.jitter
    factory.clientConnectionFailed(Connector(), failure())
    (call,) = factory.clock.getDelayedCalls()
    assert call.getTime() > 0
    assert factory.delay != 2.0  # drawn from a normal distribution around 2.0


def test_maxRetries_stops_retrying():
    factory = reconnecting(maxRetries=2)
    connector = Connector()
    for _ in range(2):
        factory.clientConnectionFailed(connector, failure())
        factory.clock.advance(factory.maxDelay)
    assert connector.connects == 2
    factory.clientConnectionFailed(connector, failure())
    assert factory.clock.getDelayedCalls() == []
    factory.clock.advance(factory.maxDelay)
    assert connector.connects == 2


def test_stopTrying_cancels_the_pending_call_and_stops_connecting():
    factory = reconnecting()
    connector = Connector()
    factory.clientConnectionFailed(connector, failure())
    (call,) = factory.clock.getDelayedCalls()
    factory.stopTrying()
    assert call.cancelled
    assert factory.clock.getDelayedCalls() == []
    assert connector.stops == 1
    assert not factory.continueTrying
    factory.clock.advance(factory.maxDelay)
    assert connector.connects == 0
    factory.clientConnectionFailed(connector, failure())
    factory.clientConnectionLost(connector, Failure(ConnectionDone()))
    assert factory.clock.getDelayedCalls() == []


def test_stopTrying_tolerates_a_connector_that_is_not_connecting():
    factory = reconnecting()
    connector = Connector(connecting=False)
    factory.clientConnectionLost(connector, Failure(ConnectionDone()))
    factory.stopTrying()
    assert factory.clock.getDelayedCalls() == []


def test_resetDelay_starts_over_from_the_initial_delay():
    factory = reconnecting(initialDelay=1.0, factor=2.0)
    connector = Connector()
    for _ in range(3):
        factory.clientConnectionFailed(connector, failure())
        factory.clock.advance(factory.maxDelay)
    assert factory.delay == 8.0 and factory.retries == 3
    factory.resetDelay()
    assert factory.delay == 1.0 and factory.retries == 0 and factory.continueTrying
    factory.clientConnectionLost(connector, Failure(ConnectionDone()))
    (call,) = factory.clock.getDelayedCalls()
    assert call.getTime() - factory.clock.seconds() == 2.0


def test_retry_without_any_connector_raises():
    factory = reconnecting()
    with pytest.raises(ValueError):
        factory.retry()


def test_reconnecting_factory_pickling_drops_runtime_state():
    factory = reconnecting(maxDelay=60)
    connector = Connector()
    factory.clientConnectionFailed(connector, failure())
    state = factory.__getstate__()
    for key in ("connector", "_callID", "clock", "retries", "delay", "continueTrying", "numPorts"):
        assert key not in state
    assert state["maxDelay"] == 60


def test_reconnecting_factory_round_trips_through_pickle():
    factory = ReconnectingClientFactory()
    factory.maxDelay = 30
    factory.connector = "not picklable in real life"
    factory.retries = 4
    restored = pickle.loads(pickle.dumps(factory))
    assert restored.maxDelay == 30
    assert restored.connector is None and restored.retries == 0
    assert restored.delay == ReconnectingClientFactory.initialDelay


def test_reconnecting_factory_with_memory_reactor_connector():
    reactor = MemoryReactor()
    factory = reconnecting(initialDelay=1.0, factor=2.0)
    factory.protocol = Hello
    connector = reactor.connectTCP("127.0.0.1", 7, factory)
    connector.connectionFailed(failure())
    assert connector.state == "disconnected"
    factory.clock.advance(2.0)
    assert connector.state == "connecting" and connector.connectAttempts == 2
    proto = connector.buildProtocol()
    assert isinstance(proto, Hello)
    factory.stopTrying()  # connected: the connector is not connecting any more
    assert not factory.continueTrying


def test_client_factory_callbacks_exist_and_do_nothing():
    factory = ClientFactory()
    connector = Connector()
    factory.startedConnecting(connector)
    factory.clientConnectionFailed(connector, failure())
    factory.clientConnectionLost(connector, Failure(ConnectionDone()))
    assert connector.connects == 0


# -- DatagramProtocol -----------------------------------------------------------------------


class Datagrams(DatagramProtocol):
    def __init__(self):
        self.events = []

    def startProtocol(self):
        self.events.append("start")

    def stopProtocol(self):
        self.events.append("stop")

    def datagramReceived(self, datagram, addr):
        self.events.append((datagram, addr))


def test_datagram_protocol_doStart_and_doStop_call_start_and_stop_protocol():
    proto = Datagrams()
    proto.doStart()
    proto.doStart()
    assert proto.events == ["start"] and proto.numPorts == 2
    proto.doStop()
    assert proto.events == ["start"]
    proto.doStop()
    assert proto.events == ["start", "stop"] and proto.numPorts == 0
    proto.doStop()
    assert proto.events == ["start", "stop"]


def test_datagram_protocol_makeConnection_attaches_and_starts():
    proto = Datagrams()
    transport = object()
    proto.makeConnection(transport)
    assert proto.transport is transport and proto.events == ["start"]
    proto.doStop()
    assert proto.transport is None and proto.events == ["start", "stop"]


def test_datagram_received_alias_is_bound_at_class_level():
    assert Datagrams.datagram_received is Datagrams.datagramReceived
    proto = Datagrams()
    proto.datagram_received(b"x", ("127.0.0.1", 1))
    assert proto.events == [(b"x", ("127.0.0.1", 1))]


def test_datagram_protocol_pickles_without_transport():
    proto = Datagrams()
    proto.makeConnection(object())
    state = proto.__getstate__()
    assert "transport" not in state and "numPorts" not in state


# -- the class-level asyncio alias ------------------------------------------------------------


def test_subclass_defining_dataReceived_has_data_received_bound_at_class_level():
    class Collect(Protocol):
        def dataReceived(self, data):
            self.got = data

    assert "data_received" in Collect.__dict__
    assert Collect.data_received is Collect.dataReceived
    proto = Collect()
    proto.data_received(b"abc")
    assert proto.got == b"abc"


def test_grandchild_inherits_the_alias_of_its_parent():
    class Parent(Protocol):
        def dataReceived(self, data):
            self.got = ("parent", data)

    class Child(Parent):
        pass

    class Override(Parent):
        def dataReceived(self, data):
            self.got = ("override", data)

    assert Child.data_received is Parent.dataReceived
    assert Override.data_received is Override.dataReceived
    o = Override()
    o.data_received(b"x")
    assert o.got == ("override", b"x")


def test_line_receiver_subclass_has_data_received_bound_at_class_level():
    class Lines(LineReceiver):
        def __init__(self):
            self.lines = []

        def lineReceived(self, line):
            self.lines.append(line)

    assert Lines.data_received is LineReceiver.dataReceived
    proto = Lines()
    proto.makeConnection(StringTransport())
    proto.data_received(b"a\r\nb\r\n")
    assert proto.lines == [b"a", b"b"]


def test_connectionLost_default_reason_is_connection_done():
    reasons = []

    class P(Protocol):
        def connectionLost(self, reason=None):
            reasons.append(reason)

    proto = P()
    proto.connection_lost(None)
    proto.connection_lost(OSError(104, "reset"))
    assert reasons[0].check(ConnectionDone)
    assert reasons[1].check(ConnectionLost)
    assert not proto.connected


# -- flow control: the protocol's pause and the write-buffer pause are independent ----------


class _FakeAioTransport:
    """Just enough of an asyncio transport to watch pause/resume_reading."""

    def __init__(self) -> None:
        self.reading = True
        self.closing = False

    def write(self, data: bytes) -> None:
        pass

    def is_reading(self) -> bool:
        return self.reading

    def is_closing(self) -> bool:
        return self.closing

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True


def _transport_pair():
    from tapster.core._reactor.transport import Transport
    from tapster.core.protocol import Protocol

    aio = _FakeAioTransport()
    return aio, Transport(aio, Protocol())


def test_buffer_drain_does_not_undo_the_protocols_pause() -> None:
    aio, t = _transport_pair()
    t._pause_writing()  # write buffer full: stop reading
    assert not aio.reading
    t.pauseProducing()  # the protocol wants a pause too
    t._resume_writing()  # buffer drained
    assert not aio.reading  # still paused: the protocol has not resumed
    t.resumeProducing()
    assert aio.reading


def test_protocol_resume_keeps_the_backpressure_pause() -> None:
    aio, t = _transport_pair()
    t.pauseProducing()
    t._pause_writing()
    t.resumeProducing()  # buffer still full
    assert not aio.reading
    t._resume_writing()
    assert aio.reading


def test_transport_connected_flag() -> None:
    from tapster.core.errors import ConnectionDone
    from tapster.core.failure import Failure

    _, t = _transport_pair()
    assert t.connected
    t._connection_lost(Failure(ConnectionDone()))
    assert not t.connected


def test_subclass_defining_data_received_keeps_it() -> None:
    from tapster.core.protocol import Protocol

    class Native(Protocol):
        def data_received(self, data: bytes) -> None:
            self.got = data

        def dataReceived(self, data: bytes) -> None:
            raise AssertionError("not this one")

    p = Native()
    p.data_received(b"x")
    assert p.got == b"x"


def test_half_closeable_protocol_keeps_writing_after_the_peer_stops_sending() -> None:
    """Twisted's IHalfCloseableProtocol: readConnectionLost instead of a close on EOF."""
    import socket as socketlib

    from tapster.core._builtin_hooks import _asyncio_reactor
    from tapster.core.protocol import Factory, Protocol

    class Summer(Protocol):
        total = 0

        def dataReceived(self, data: bytes) -> None:
            self.total += len(data)

        def readConnectionLost(self) -> None:
            self.transport.write(b"got %d\n" % self.total)
            self.transport.loseConnection()

    reactor = _asyncio_reactor()
    try:
        port = reactor.listenTCP(0, Factory.forProtocol(Summer), interface="127.0.0.1")
        result: list[bytes] = []

        def client() -> None:
            with socketlib.create_connection(("127.0.0.1", port.getHost().port), timeout=5) as s:
                s.sendall(b"x" * 1000)
                s.shutdown(socketlib.SHUT_WR)
                data = b""
                while chunk := s.recv(100):
                    data += chunk
                result.append(data)
            reactor.callFromThread(reactor.stop)

        reactor.callWhenRunning(lambda: reactor.callInThread(client))
        reactor.callLater(10, reactor.stop)
        reactor.run(installSignalHandlers=False)
        assert result == [b"got 1000\n"]
    finally:
        reactor.loop.close()


# -- connectionLost written without its reason (seed 004's code) ------------------------


def test_connection_lost_without_a_reason_argument_still_runs() -> None:
    from tapster.core.protocol import Protocol
    from tapster.core.testing import StringTransportWithDisconnection

    class Old(Protocol):
        lost = 0

        def connectionLost(self):  # type: ignore[override]  # written as in 2002
            """Counts."""
            self.lost += 1

    class New(Protocol):
        def connectionLost(self, reason=None):  # type: ignore[no-untyped-def]
            self.reason = reason

    class Star(Protocol):
        def connectionLost(self, *args):  # type: ignore[no-untyped-def]
            self.args = args

    old = Old()
    transport = StringTransportWithDisconnection()
    transport.protocol = old
    old.makeConnection(transport)
    transport.loseConnection()
    assert old.lost == 1
    old.connectionLost("a reason")  # Twisted's callers always pass one
    assert old.lost == 2 and Old.connectionLost.__doc__ == "Counts."
    assert Old.connectionLost.__wrapped__.__code__.co_argcount == 1  # type: ignore[attr-defined]
    assert not hasattr(New.connectionLost, "__wrapped__") and not hasattr(Star.connectionLost, "__wrapped__")
    star = Star()
    star.connectionLost("r")
    assert star.args == ("r",)

    class Child(Old):  # inherits the adapted method; nothing to decide again
        pass

    child = Child()
    child.connectionLost("x")
    assert child.lost == 1
