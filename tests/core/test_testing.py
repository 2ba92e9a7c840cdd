"""Tests for tapster.core.testing: the string transports, the clock and the memory reactor."""

from __future__ import annotations

import pytest

import tapster.core.testing
from tapster.core.address import IPv4Address, IPv6Address, UNIXAddress
from tapster.core.errors import (
    AlreadyCalled,
    AlreadyCancelled,
    ConnectError,
    ConnectionDone,
    ConnectionLost,
    ReactorAlreadyRunning,
    ReactorNotRunning,
)
from tapster.core.failure import Failure
from tapster.core.protocol import ClientFactory, DatagramProtocol, Factory, Protocol
from tapster.core.testing import (
    Clock,
    FakeConnector,
    FakeDatagramPort,
    FakePort,
    MemoryReactor,
    MemoryReactorClock,
    StringTransport,
    StringTransportWithDisconnection,
)


def test_public_names_are_exported():
    assert set(tapster.core.testing.__all__) == {
        "StringTransport",
        "StringTransportWithDisconnection",
        "Clock",
        "MemoryReactor",
        "MemoryReactorClock",
        "FakePort",
        "FakeDatagramPort",
        "FakeConnector", "freshReactor",
    }
    for name in tapster.core.testing.__all__:
        assert hasattr(tapster.core.testing, name)


# -- StringTransport ------------------------------------------------------------------


class Echo(Protocol):
    def dataReceived(self, data):
        self.transport.write(data)


def test_the_common_pattern_connects_a_protocol_to_a_string_transport():
    factory = Factory.forProtocol(Echo)
    proto = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 4000))
    tr = StringTransport()
    proto.makeConnection(tr)
    assert proto.transport is tr and proto.connected
    proto.dataReceived(b"ping")
    assert tr.value() == b"ping"


def test_write_and_writeSequence_accumulate_bytes():
    tr = StringTransport()
    tr.write(b"ab")
    tr.writeSequence([b"c", b"de"])
    tr.write(bytearray(b"f"))
    assert tr.value() == b"abcdef"
    assert tr.io.getvalue() == b"abcdef"


def test_write_str_raises_type_error():
    tr = StringTransport()
    with pytest.raises(TypeError):
        tr.write("text")
    with pytest.raises(TypeError):
        tr.writeSequence([b"ok", "text"])


def test_clear_forgets_written_data():
    tr = StringTransport()
    tr.write(b"old")
    tr.clear()
    tr.write(b"new")
    assert tr.value() == b"new"


def test_loseConnection_only_sets_disconnecting():
    tr = StringTransport()
    assert not tr.disconnecting
    tr.loseConnection()
    assert tr.disconnecting
    assert not tr.aborted
    tr.write(b"still recorded")
    assert tr.value() == b"still recorded"


def test_abortConnection_sets_aborted_and_disconnecting():
    tr = StringTransport()
    tr.abortConnection()
    assert tr.aborted and tr.disconnecting and tr.disconnected


def test_default_addresses_match_twisted():
    tr = StringTransport()
    assert tr.getPeer() == IPv4Address("TCP", "192.168.1.1", 54321)
    assert tr.getHost() == IPv4Address("TCP", "10.0.0.1", 12345)


def test_addresses_can_be_given():
    host = IPv6Address("TCP", "::1", 80)
    peer = UNIXAddress("/tmp/sock")
    tr = StringTransport(hostAddress=host, peerAddress=peer)
    assert tr.getHost() is host and tr.getPeer() is peer


def test_register_and_unregister_producer():
    tr = StringTransport()
    producer = object()
    tr.registerProducer(producer, True)
    assert tr.producer is producer and tr.streaming is True and tr.streamingProducer
    with pytest.raises(RuntimeError):
        tr.registerProducer(object(), False)
    tr.unregisterProducer()
    assert tr.producer is None and tr.streaming is None and not tr.streamingProducer
    with pytest.raises(RuntimeError):
        tr.unregisterProducer()
    tr.registerProducer(producer, False)
    assert tr.streaming is False


def test_producer_state_follows_pause_resume_stop():
    tr = StringTransport()
    assert tr.producerState == "producing"
    tr.pauseProducing()
    assert tr.producerState == "paused"
    tr.resumeProducing()
    assert tr.producerState == "producing"
    tr.stopProducing()
    assert tr.producerState == "stopped"
    with pytest.raises(RuntimeError):
        tr.resumeProducing()
    with pytest.raises(RuntimeError):
        tr.pauseProducing()


def test_resume_after_loseConnection_is_an_error_unless_lenient():
    tr = StringTransport()
    tr.loseConnection()
    with pytest.raises(RuntimeError):
        tr.resumeProducing()
    lenient = StringTransport(lenient=True)
    lenient.loseConnection()
    lenient.resumeProducing()
    assert lenient.producerState == "producing"


def test_socket_options_are_recorded():
    tr = StringTransport()
    assert tr.getTcpNoDelay() is False and tr.getTcpKeepAlive() is False
    tr.setTcpNoDelay(1)
    tr.setTcpKeepAlive(True)
    assert tr.getTcpNoDelay() is True and tr.getTcpKeepAlive() is True
    assert tr.tcpNoDelay and tr.tcpKeepAlive


# -- StringTransportWithDisconnection ---------------------------------------------------


class Recorder(Protocol):
    def __init__(self):
        self.reasons = []

    def connectionLost(self, reason):
        self.reasons.append(reason)


def _connected(transport):
    proto = Recorder()
    transport.protocol = proto
    proto.makeConnection(transport)
    return proto


def test_loseConnection_calls_connectionLost_once_with_connection_done():
    tr = StringTransportWithDisconnection()
    proto = _connected(tr)
    tr.loseConnection()
    tr.loseConnection()
    assert len(proto.reasons) == 1
    assert proto.reasons[0].check(ConnectionDone)
    assert tr.disconnecting and not tr.connected
    assert not proto.connected


def test_abortConnection_reports_connection_lost():
    tr = StringTransportWithDisconnection()
    proto = _connected(tr)
    tr.abortConnection()
    assert tr.aborted
    assert len(proto.reasons) == 1
    assert proto.reasons[0].check(ConnectionLost)


def test_disconnection_without_protocol_is_a_clear_error():
    tr = StringTransportWithDisconnection()
    with pytest.raises(RuntimeError, match="protocol"):
        tr.loseConnection()


def test_disconnection_stops_a_registered_producer():
    class Producer:
        stopped = False

        def stopProducing(self):
            self.stopped = True

    tr = StringTransportWithDisconnection()
    _connected(tr)
    producer = Producer()
    tr.registerProducer(producer, True)
    tr.loseConnection()
    assert producer.stopped
    assert tr.producer is None


# -- Clock --------------------------------------------------------------------------------


def test_clock_starts_at_zero_and_advances():
    clock = Clock()
    assert clock.seconds() == 0 == clock.rightNow
    clock.advance(2.5)
    assert clock.seconds() == 2.5


def test_callLater_runs_when_time_has_come():
    clock = Clock()
    calls = []
    dc = clock.callLater(3, calls.append, "x")
    assert dc.getTime() == 3 and dc.active()
    clock.advance(2.9)
    assert calls == []
    clock.advance(0.1)
    assert calls == ["x"]
    assert not dc.active() and dc.called
    assert clock.getDelayedCalls() == []


def test_callLater_passes_args_and_kwargs():
    clock = Clock()
    got = []
    clock.callLater(1, lambda *a, **kw: got.append((a, kw)), 1, 2, key="v")
    clock.advance(1)
    assert got == [((1, 2), {"key": "v"})]


def test_calls_run_in_time_order_and_same_time_in_scheduling_order():
    clock = Clock()
    order = []
    clock.callLater(2, order.append, "late")
    clock.callLater(1, order.append, "first")
    clock.callLater(1, order.append, "second")
    clock.callLater(1, order.append, "third")
    clock.callLater(0.5, order.append, "earliest")
    assert [c.getTime() for c in clock.getDelayedCalls()] == [0.5, 1, 1, 1, 2]
    clock.advance(5)
    assert order == ["earliest", "first", "second", "third", "late"]


def test_call_scheduled_for_now_during_advance_runs_in_the_same_advance():
    clock = Clock()
    order = []

    def first():
        order.append("first")
        clock.callLater(0, order.append, "scheduled-now")
        clock.callLater(1, order.append, "next-second")

    clock.callLater(1, first)
    clock.callLater(1, order.append, "same-time")
    clock.advance(1)
    # As in Twisted: time moved first, so "now" is the new time; the call runs
    # after the ones already due at that time.
    assert order == ["first", "same-time", "scheduled-now"]
    clock.advance(1)
    assert order[-1] == "next-second"


def test_advance_past_several_deadlines_runs_everything_due():
    clock = Clock()
    seen = []
    for t in (1, 2, 3):
        clock.callLater(t, lambda t=t: seen.append((t, clock.seconds())))
    clock.advance(10)
    # Time jumps at once: every call sees the new time.
    assert seen == [(1, 10), (2, 10), (3, 10)]


def test_cancel_removes_the_call():
    clock = Clock()
    calls = []
    dc = clock.callLater(1, calls.append, 1)
    dc.cancel()
    assert clock.getDelayedCalls() == []
    clock.advance(2)
    assert calls == []
    with pytest.raises(AlreadyCancelled):
        dc.cancel()


def test_cancel_after_run_raises_already_called():
    clock = Clock()
    dc = clock.callLater(1, lambda: None)
    clock.advance(1)
    with pytest.raises(AlreadyCalled):
        dc.cancel()
    with pytest.raises(AlreadyCalled):
        dc.reset(1)


def test_cancel_from_another_call_in_the_same_advance():
    clock = Clock()
    calls = []
    victim = clock.callLater(2, calls.append, "victim")
    clock.callLater(1, victim.cancel)
    clock.advance(3)
    assert calls == []


def test_reset_and_delay_move_the_call():
    clock = Clock()
    calls = []
    a = clock.callLater(1, calls.append, "a")
    b = clock.callLater(2, calls.append, "b")
    a.reset(5)
    assert clock.getDelayedCalls() == [b, a]
    b.delay(10)
    assert clock.getDelayedCalls() == [a, b]
    clock.advance(4)
    assert calls == []
    clock.advance(1)
    assert calls == ["a"]
    clock.advance(7)
    assert calls == ["a", "b"]


def test_pump_advances_step_by_step():
    clock = Clock()
    seen = []
    clock.callLater(1, lambda: seen.append(clock.seconds()))
    clock.callLater(3, lambda: seen.append(clock.seconds()))
    clock.pump([0.5, 0.5, 1, 1, 1])
    assert seen == [1, 3]
    assert clock.seconds() == 4


def test_callLater_rejects_non_callables():
    with pytest.raises(TypeError):
        Clock().callLater(1, "not callable")


def test_exception_in_a_call_propagates_and_the_rest_stay_scheduled():
    clock = Clock()
    calls = []

    def bad():
        raise ValueError("boom")

    clock.callLater(1, bad)
    clock.callLater(2, calls.append, "later")
    with pytest.raises(ValueError):
        clock.advance(2)
    assert len(clock.getDelayedCalls()) == 1
    clock.advance(0)
    assert calls == ["later"]


# -- MemoryReactor: streams ----------------------------------------------------------------


class CountingFactory(ClientFactory):
    def __init__(self):
        self.events = []
        self.protocol = Recorder

    def startFactory(self):
        self.events.append("start")

    def stopFactory(self):
        self.events.append("stop")

    def startedConnecting(self, connector):
        self.events.append(("startedConnecting", connector))

    def clientConnectionFailed(self, connector, reason):
        self.events.append(("failed", reason))

    def clientConnectionLost(self, connector, reason):
        self.events.append(("lost", reason))


def test_listenTCP_records_arguments_and_starts_the_factory():
    reactor = MemoryReactor()
    factory = CountingFactory()
    port = reactor.listenTCP(8007, factory, backlog=5, interface="127.0.0.1")
    assert reactor.tcpServers == [(8007, factory, 5, "127.0.0.1")]
    assert isinstance(port, FakePort)
    assert port.getHost() == IPv4Address("TCP", "127.0.0.1", 8007)
    assert factory.events == ["start"] and factory.numPorts == 1
    port.stopListening()
    port.stopListening()
    assert factory.events == ["start", "stop"] and factory.numPorts == 0


def test_listenTCP_defaults_and_ipv6():
    reactor = MemoryReactor()
    factory = Factory()
    assert reactor.listenTCP(80, factory).getHost() == IPv4Address("TCP", "0.0.0.0", 80)
    assert reactor.listenTCP(81, factory, interface="::1").getHost() == IPv6Address("TCP", "::1", 81)
    assert reactor.tcpServers == [(80, factory, 50, ""), (81, factory, 50, "::1")]
    assert factory.numPorts == 2


def test_connectTCP_records_and_returns_a_connecting_connector():
    reactor = MemoryReactor()
    factory = CountingFactory()
    connector = reactor.connectTCP("example.org", 25, factory, timeout=5)
    assert reactor.tcpClients == [("example.org", 25, factory, 5, None)]
    assert reactor.connectors == [connector]
    assert isinstance(connector, FakeConnector)
    assert connector.state == "connecting"
    assert connector.getDestination() == IPv4Address("TCP", "example.org", 25)
    assert factory.events == ["start", ("startedConnecting", connector)]


def test_connector_plays_a_successful_connection():
    reactor = MemoryReactor()
    factory = CountingFactory()
    connector = reactor.connectTCP("127.0.0.1", 25, factory)
    proto = connector.buildProtocol()
    assert connector.state == "connected"
    assert isinstance(proto, Recorder) and proto.factory is factory
    tr = StringTransport()
    proto.makeConnection(tr)
    connector.connectionLost()
    assert connector.state == "disconnected"
    kind, reason = factory.events[-2]
    assert kind == "lost" and reason.check(ConnectionDone)
    assert factory.events[-1] == "stop"


def test_connector_failure_reconnect_and_stop():
    reactor = MemoryReactor()
    factory = CountingFactory()
    connector = reactor.connectTCP("127.0.0.1", 25, factory)
    connector.connectionFailed(Failure(ConnectError(string="refused")))
    assert factory.events[-2][0] == "failed"
    assert factory.events[-1] == "stop"
    connector.connect()
    assert connector.state == "connecting" and connector.connectAttempts == 2
    with pytest.raises(RuntimeError):
        connector.connect()
    connector.stopConnecting()
    assert connector.stoppedConnecting and connector.state == "disconnected"
    with pytest.raises(RuntimeError):
        connector.stopConnecting()
    assert factory.events.count("start") == 2 and factory.events.count("stop") == 2


def test_connector_disconnect_while_connecting_stops_connecting():
    reactor = MemoryReactor()
    connector = reactor.connectTCP("h", 1, CountingFactory())
    connector.disconnect()
    assert connector.disconnected and connector.stoppedConnecting
    assert connector.state == "disconnected"


def test_ssl_and_unix_are_recorded_like_twisted():
    reactor = MemoryReactor()
    factory = CountingFactory()
    ctx = object()
    port = reactor.listenSSL(443, factory, ctx, interface="127.0.0.1")
    assert reactor.sslServers == [(443, factory, ctx, 50, "127.0.0.1")]
    assert port.getHost() == IPv4Address("TCP", "127.0.0.1", 443)
    reactor.connectSSL("h", 443, factory, ctx)
    assert reactor.sslClients == [("h", 443, factory, ctx, 30, None)]
    uport = reactor.listenUNIX("/tmp/x.sock", factory, mode=0o600)
    assert reactor.unixServers == [("/tmp/x.sock", factory, 50, 0o600, False)]
    assert uport.getHost() == UNIXAddress("/tmp/x.sock")
    uconn = reactor.connectUNIX("/tmp/x.sock", factory)
    assert reactor.unixClients == [("/tmp/x.sock", factory, 30, False)]
    assert uconn.getDestination() == UNIXAddress("/tmp/x.sock")
    assert len(reactor.connectors) == 2


# -- MemoryReactor: datagrams -------------------------------------------------------------


class Datagrams(DatagramProtocol):
    def __init__(self):
        self.events = []

    def startProtocol(self):
        self.events.append("start")

    def stopProtocol(self):
        self.events.append("stop")

    def datagramReceived(self, datagram, addr):
        self.transport.write(datagram.upper(), addr)


def test_listenUDP_starts_the_protocol_and_records_writes():
    reactor = MemoryReactor()
    proto = Datagrams()
    port = reactor.listenUDP(9999, proto, interface="127.0.0.1")
    assert reactor.udpServers == [(9999, proto, "127.0.0.1", 8192)]
    assert isinstance(port, FakeDatagramPort)
    assert proto.transport is port and proto.events == ["start"]
    assert port.getHost() == IPv4Address("UDP", "127.0.0.1", 9999)
    proto.datagramReceived(b"hi", ("10.0.0.2", 5000))
    assert port.written == [(b"HI", ("10.0.0.2", 5000))]
    port.stopListening()
    assert proto.events == ["start", "stop"] and proto.transport is None


def test_multicast_and_unix_datagram_are_recorded():
    reactor = MemoryReactor()
    proto = Datagrams()
    port = reactor.listenMulticast(5353, proto, listenMultiple=True)
    assert reactor.multicastServers == [(5353, proto, "", 8192, True)]
    port.joinGroup("224.0.0.251")
    port.setTTL(4)
    port.setLoopbackMode(False)
    assert port.groups == [("224.0.0.251", "")] and port.getTTL() == 4 and not port.getLoopbackMode()
    port.leaveGroup("224.0.0.251")
    assert port.groups == []
    port.stopListening()

    uproto = Datagrams()
    uport = reactor.listenUNIXDatagram("/tmp/d.sock", uproto)
    assert reactor.unixDatagramServers == [("/tmp/d.sock", uproto, 8192, 0o666)]
    assert uport.getHost() == UNIXAddress("/tmp/d.sock")

    cproto = Datagrams()
    cport = reactor.connectUNIXDatagram("/tmp/d.sock", cproto, bindAddress="/tmp/me.sock")
    assert reactor.unixDatagramClients == [("/tmp/d.sock", cproto, 8192, 0o666, "/tmp/me.sock")]
    cproto.transport.write(b"x")
    assert cport.written == [(b"x", "/tmp/d.sock")]


# -- MemoryReactor: lifecycle ---------------------------------------------------------------


def test_run_fires_startup_runs_hooks_then_stops_with_shutdown():
    reactor = MemoryReactor()
    order = []
    reactor.addSystemEventTrigger("before", "startup", order.append, "before-startup")
    reactor.callWhenRunning(order.append, "running")
    reactor.addSystemEventTrigger("after", "shutdown", order.append, "after-shutdown")
    reactor.addSystemEventTrigger("before", "shutdown", order.append, "before-shutdown")
    assert not reactor.hasRun and not reactor.hasStopped
    reactor.run()
    assert order == ["before-startup", "running", "before-shutdown", "after-shutdown"]
    assert reactor.hasRun and reactor.hasStopped and not reactor.running


def test_callWhenRunning_while_running_calls_at_once():
    reactor = MemoryReactor()
    seen = []

    def hook():
        assert reactor.running
        reactor.callWhenRunning(seen.append, "nested")
        seen.append("hook")

    reactor.callWhenRunning(hook)
    reactor.run()
    assert seen == ["nested", "hook"]


def test_stop_from_a_hook_is_allowed_and_stop_when_stopped_raises():
    reactor = MemoryReactor()
    reactor.callWhenRunning(reactor.stop)
    reactor.run()
    assert reactor.hasStopped
    with pytest.raises(ReactorNotRunning):
        reactor.stop()


def test_run_while_running_raises():
    reactor = MemoryReactor()
    errors = []

    def again():
        with pytest.raises(ReactorAlreadyRunning):
            reactor.run()
        errors.append("checked")

    reactor.callWhenRunning(again)
    reactor.run()
    assert errors == ["checked"]


def test_triggers_are_recorded_twisted_style_and_removable():
    reactor = MemoryReactor()

    def f(*a, **kw):
        pass

    trigger = reactor.addSystemEventTrigger("before", "shutdown", f, 1, k=2)
    reactor.addSystemEventTrigger("during", "shutdown", f)
    assert reactor.triggers == {"before": {"shutdown": [(f, (1,), {"k": 2})]}, "during": {"shutdown": [(f, (), {})]}}
    reactor.removeSystemEventTrigger(trigger)
    assert reactor.triggers["before"]["shutdown"] == []
    with pytest.raises(ValueError):
        reactor.removeSystemEventTrigger(trigger)
    with pytest.raises(ValueError):
        reactor.removeSystemEventTrigger("nonsense")
    with pytest.raises(KeyError):
        reactor.addSystemEventTrigger("whenever", "shutdown", f)


def test_fireSystemEvent_runs_phases_in_order():
    reactor = MemoryReactor()
    order = []
    for phase in ("after", "during", "before"):
        reactor.addSystemEventTrigger(phase, "custom", order.append, phase)
    reactor.fireSystemEvent("custom")
    assert order == ["before", "during", "after"]
    reactor.fireSystemEvent("unknown")  # nothing registered: nothing happens


def test_crash_stops_without_shutdown_triggers():
    reactor = MemoryReactor()
    seen = []
    reactor.addSystemEventTrigger("before", "shutdown", seen.append, "shutdown")
    reactor.callWhenRunning(reactor.crash)
    reactor.run()
    assert reactor.hasCrashed and not reactor.running and seen == []


def test_install_is_recorded():
    reactor = MemoryReactor()
    reactor.install()
    assert reactor.hasInstalled


def test_memory_reactor_clock_is_both():
    reactor = MemoryReactorClock()
    calls = []
    reactor.callLater(1, calls.append, "tick")
    reactor.listenTCP(1, Factory())
    reactor.advance(1)
    assert calls == ["tick"]
    assert reactor.tcpServers and reactor.seconds() == 1
