"""Test doubles for protocols, factories and anything that schedules calls: no sockets, no loop.

The pattern for a protocol::

    from tapster.core.testing import StringTransport

    proto = factory.buildProtocol(addr)
    tr = StringTransport()
    proto.makeConnection(tr)
    proto.dataReceived(b"HELO example.org\\r\\n")
    assert tr.value() == b"250 Hello\\r\\n"
    assert tr.disconnecting            # the protocol called loseConnection()

Use :class:`StringTransportWithDisconnection` (and set ``tr.protocol = proto``)
when the test needs ``connectionLost`` to follow ``loseConnection``.

:class:`Clock` stands in for the reactor's ``callLater``: time moves only when
the test calls :meth:`Clock.advance`. :class:`MemoryReactor` records what
would have been listened on or connected to, and :class:`MemoryReactorClock`
is both. The names and recorded shapes follow Twisted's
``twisted.internet.testing``, so tests ported from Twisted keep working.

For tests that need the real shared reactor, :func:`freshReactor` installs
a new one for the length of a ``with`` block and puts back whatever was
installed before.

This module imports neither asyncio nor socket.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from io import BytesIO
from typing import TYPE_CHECKING

from tapster.core._reactor.delayedcall import DelayedCall
from tapster.core.address import IPv4Address, IPv6Address, UNIXAddress
from tapster.core.errors import (
    ConnectError,
    ConnectionDone,
    ConnectionLost,
    ReactorAlreadyRunning,
    ReactorNotRunning,
)
from tapster.core.failure import Failure

if TYPE_CHECKING:
    import ssl

    from tapster.core._reactor.loop import AsyncioReactor
    from tapster.core.interfaces import (
        IAddress,
        IConnector,
        IOpenSSLContextFactory,
        IProtocolFactory,
        IPullProducer,
        IPushProducer,
        _DatagramAddress,
    )
    from tapster.core.protocol import ClientFactory, DatagramProtocol, Protocol

    _Call = tuple[Callable[..., object], tuple[object, ...], dict[str, object]]
    _ContextFactory = IOpenSSLContextFactory | ssl.SSLContext

__all__ = [
    "StringTransport",
    "StringTransportWithDisconnection",
    "Clock",
    "MemoryReactor",
    "MemoryReactorClock",
    "FakePort",
    "FakeDatagramPort",
    "FakeConnector",
    "freshReactor",
]


# -- transports -------------------------------------------------------------------


class StringTransport:
    """A transport that keeps what is written in memory and records what it is asked.

    ``value()`` is everything written since the last ``clear()``.
    ``loseConnection()`` only sets ``disconnecting``; ``abortConnection()``
    also sets ``aborted`` (and Twisted's ``disconnected``). Writing ``str``
    raises ``TypeError`` as a real transport does.

    As a push producer (the side that reads from the peer), ``pauseProducing``,
    ``resumeProducing`` and ``stopProducing`` set ``producerState`` to
    ``"paused"``, ``"producing"`` or ``"stopped"``; pausing or resuming after
    ``loseConnection`` or ``stopProducing`` raises ``RuntimeError`` (it would
    be a bug in the protocol) unless the transport was built with
    ``lenient=True``.
    """

    disconnecting = False
    disconnected = False
    aborted = False
    producer: IPushProducer | IPullProducer | None = None
    streaming: bool | None = None
    hostAddr: IAddress | None = None
    peerAddr: IAddress | None = None
    producerState = "producing"
    protocol: Protocol | None = None
    connector: IConnector | None = None
    tcpNoDelay = False
    tcpKeepAlive = False

    def __init__(self, hostAddress: IAddress | None = None, peerAddress: IAddress | None = None,
                 lenient: bool = False) -> None:
        self.clear()
        if hostAddress is not None:
            self.hostAddr = hostAddress
        if peerAddress is not None:
            self.peerAddr = peerAddress
        self.connected = True
        self._lenient = lenient

    # -- for tests -------------------------------------------------------------

    def clear(self) -> None:
        """Forget what was written so far."""
        self.io = BytesIO()

    def value(self) -> bytes:
        """Everything written since the transport was made or last cleared."""
        return self.io.getvalue()

    # -- ITransport --------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if isinstance(data, str):
            raise TypeError(f"transport.write() takes bytes, not str: {data[:40]!r}")
        self.io.write(data)

    def writeSequence(self, data: Iterable[bytes]) -> None:
        for chunk in data:
            self.write(chunk)

    def loseConnection(self) -> None:
        self.disconnecting = True

    def abortConnection(self) -> None:
        self.aborted = True
        self.disconnected = True
        self.loseConnection()

    def getPeer(self) -> IAddress:
        if self.peerAddr is None:
            return IPv4Address("TCP", "192.168.1.1", 54321)
        return self.peerAddr

    def getHost(self) -> IAddress:
        if self.hostAddr is None:
            return IPv4Address("TCP", "10.0.0.1", 12345)
        return self.hostAddr

    def getTcpNoDelay(self) -> bool:
        return self.tcpNoDelay

    def setTcpNoDelay(self, enabled: bool) -> None:
        self.tcpNoDelay = bool(enabled)

    def getTcpKeepAlive(self) -> bool:
        return self.tcpKeepAlive

    def setTcpKeepAlive(self, enabled: bool) -> None:
        self.tcpKeepAlive = bool(enabled)

    def logPrefix(self) -> str:
        return type(self.protocol).__name__ if self.protocol is not None else type(self).__name__

    # -- IConsumer -----------------------------------------------------------------

    def registerProducer(self, producer: IPushProducer | IPullProducer, streaming: bool) -> None:
        if self.producer is not None:
            raise RuntimeError(
                f"Cannot register producer {producer!r}, because producer {self.producer!r} was never unregistered."
            )
        self.producer = producer
        self.streaming = streaming

    def unregisterProducer(self) -> None:
        if self.producer is None:
            raise RuntimeError("Cannot unregister a producer unless one is registered")
        self.producer = None
        self.streaming = None

    @property
    def streamingProducer(self) -> bool:
        """The real transport's name for ``streaming``."""
        return bool(self.streaming)

    # -- IPushProducer ---------------------------------------------------------------

    def _checkState(self) -> None:
        if self.disconnecting and not self._lenient:
            raise RuntimeError("Cannot resume producing after loseConnection")
        if self.producerState == "stopped":
            raise RuntimeError("Cannot resume a stopped producer")

    def pauseProducing(self) -> None:
        self._checkState()
        self.producerState = "paused"

    def resumeProducing(self) -> None:
        self._checkState()
        self.producerState = "producing"

    def stopProducing(self) -> None:
        self.producerState = "stopped"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {len(self.io.getbuffer())} bytes written>"


class StringTransportWithDisconnection(StringTransport):
    """A :class:`StringTransport` whose closing reaches the protocol, as a real one does.

    Set ``transport.protocol`` first. The first ``loseConnection()`` calls
    ``protocol.connectionLost`` with a :class:`~tapster.core.errors.ConnectionDone`
    failure, ``abortConnection()`` with :class:`~tapster.core.errors.ConnectionLost`;
    later calls do nothing. A registered producer is stopped and unregistered
    first, as the real transport does.
    """

    def loseConnection(self) -> None:
        self._disconnect(Failure(ConnectionDone()))

    def abortConnection(self) -> None:
        self.aborted = True
        self.disconnected = True
        self._disconnect(Failure(ConnectionLost()))

    def _disconnect(self, reason: Failure) -> None:
        self.disconnecting = True
        if not self.connected:
            return
        protocol = self.protocol
        if protocol is None:
            raise RuntimeError(
                "StringTransportWithDisconnection needs .protocol set to the protocol whose connectionLost it calls"
            )
        self.connected = False
        producer = self.producer
        if producer is not None:
            self.producer = None
            self.streaming = None
            producer.stopProducing()
        if hasattr(protocol, "connected"):
            protocol.connected = 0
        protocol.connectionLost(reason)


# -- time ---------------------------------------------------------------------------


class Clock:
    """A ``callLater`` provider whose time moves only when told to.

    ``seconds()`` starts at 0. :meth:`advance` moves time forward and runs,
    one by one, every call that is due; a call scheduled *while* advancing
    runs in the same ``advance`` when its time has come (``callLater(0, f)``
    from a running call runs before ``advance`` returns). Calls due at the
    same time run in the order they were scheduled. ``getDelayedCalls()`` is
    the pending calls, soonest first.
    """

    rightNow: float = 0.0

    def __init__(self) -> None:
        self.calls: list[DelayedCall] = []

    def seconds(self) -> float:
        return self.rightNow

    def _sortCalls(self) -> None:
        # A stable sort: equal times keep the order in which they were scheduled.
        self.calls.sort(key=DelayedCall.getTime)

    def callLater(self, delay: float, f: Callable[..., object], *args: object, **kw: object) -> DelayedCall:
        """Run ``f(*args, **kw)`` once ``delay`` seconds have been advanced through."""
        if not callable(f):
            raise TypeError(f"callLater() needs a callable, not {f!r}")
        call = DelayedCall(
            self.rightNow + delay,
            f,
            args,
            kw,
            self.calls.remove,
            lambda _call: self._sortCalls(),
            self.seconds,
        )
        calls = self.calls
        when = call.time
        index = len(calls)
        while index and calls[index - 1].time > when:  # usually zero or few steps
            index -= 1
        calls.insert(index, call)
        return call

    def getDelayedCalls(self) -> list[DelayedCall]:
        return self.calls

    def advance(self, amount: float) -> None:
        """Move time forward by ``amount`` seconds and run every call that is due."""
        self.rightNow += amount
        self._sortCalls()
        calls = self.calls
        while calls and calls[0].time <= self.rightNow:
            call = calls.pop(0)
            call._run()
            self._sortCalls()

    def pump(self, timings: Iterable[float]) -> None:
        """``advance`` by each amount in turn."""
        for amount in timings:
            self.advance(amount)


# -- the reactor --------------------------------------------------------------------


def _ip_address(kind: str, host: str, port: int) -> IPv4Address | IPv6Address:
    if ":" in host:
        return IPv6Address(kind, host, port)
    return IPv4Address(kind, host or "0.0.0.0", port)


class FakePort:
    """What ``listenTCP``/``listenUNIX``/``listenSSL`` of :class:`MemoryReactor` return.

    The factory was started (``doStart``) by the listen call;
    :meth:`stopListening` stops it (``doStop``) once.
    """

    def __init__(self, address: IAddress, factory: IProtocolFactory | DatagramProtocol) -> None:
        self._address = address
        self.factory = factory
        self.listening = False

    def startListening(self) -> None:
        if not self.listening:
            self.listening = True
            self.factory.doStart()

    def stopListening(self) -> None:
        if self.listening:
            self.listening = False
            self.factory.doStop()

    loseConnection = stopListening

    def getHost(self) -> IAddress:
        return self._address

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._address} listening={self.listening}>"


class FakeDatagramPort(FakePort):
    """A fake UDP/UNIX datagram/multicast port; it is also the protocol's transport.

    What the protocol writes is in ``written`` as ``(datagram, addr)``
    pairs. Multicast settings are recorded: ``groups`` (joined groups),
    ``ttl``, ``loopback``, ``outgoingInterface``.
    """

    def __init__(self, address: IAddress, protocol: DatagramProtocol) -> None:
        super().__init__(address, protocol)
        self.protocol = protocol
        self.written: list[tuple[bytes, _DatagramAddress | None]] = []
        self.connectedTo: _DatagramAddress | None = None
        self.broadcastAllowed = False
        self.groups: list[tuple[str, str]] = []
        self.ttl = 1
        self.loopback = True
        self.outgoingInterface = ""

    def startListening(self) -> None:
        if not self.listening:
            self.listening = True
            self.protocol.makeConnection(self)  # attaches the transport and runs doStart

    def write(self, datagram: bytes, addr: _DatagramAddress | None = None) -> None:
        if isinstance(datagram, str):
            raise TypeError("datagrams are bytes, not str")
        self.written.append((datagram, addr if addr is not None else self.connectedTo))

    def writeSequence(self, seq: Iterable[bytes], addr: _DatagramAddress | None = None) -> None:
        self.write(b"".join(seq), addr)

    def connect(self, host: str, port: int | None = None) -> None:
        self.connectedTo = host if port is None else (host, port)

    def getBroadcastAllowed(self) -> bool:
        return self.broadcastAllowed

    def setBroadcastAllowed(self, enabled: bool) -> None:
        self.broadcastAllowed = bool(enabled)

    def joinGroup(self, addr: str, interface: str = "") -> None:
        self.groups.append((addr, interface))

    def leaveGroup(self, addr: str, interface: str = "") -> None:
        self.groups.remove((addr, interface))

    def getTTL(self) -> int:
        return self.ttl

    def setTTL(self, ttl: int) -> None:
        self.ttl = ttl

    def getLoopbackMode(self) -> bool:
        return self.loopback

    def setLoopbackMode(self, mode: bool) -> None:
        self.loopback = bool(mode)

    def getOutgoingInterface(self) -> str:
        return self.outgoingInterface

    def setOutgoingInterface(self, addr: str) -> None:
        self.outgoingInterface = addr


class FakeConnector:
    """What the ``connect*`` methods of :class:`MemoryReactor` return.

    It follows a real connector's states (``"disconnected"``,
    ``"connecting"``, ``"connected"``) and its bookkeeping of the factory
    (``doStart`` on the first connect, ``doStop`` once an attempt ends
    without a new one), but no connection ever happens by itself: the test
    plays the network with :meth:`buildProtocol` (the connection succeeded),
    :meth:`connectionFailed` and :meth:`connectionLost`.
    """

    def __init__(self, factory: ClientFactory, destination: IAddress) -> None:
        self.factory = factory
        self._destination = destination
        self.state = "disconnected"
        self.factoryStarted = False
        self.stoppedConnecting = False
        self.disconnected = False
        self.connectAttempts = 0

    def getDestination(self) -> IAddress:
        return self._destination

    def connect(self) -> None:
        """Start a connection attempt (again)."""
        if self.state != "disconnected":
            raise RuntimeError(f"can't connect in state {self.state!r}")
        self.state = "connecting"
        self.connectAttempts += 1
        if not self.factoryStarted:
            self.factory.doStart()
            self.factoryStarted = True
        self.factory.startedConnecting(self)

    def stopConnecting(self) -> None:
        """Give up the attempt in progress (an error when not connecting)."""
        if self.state != "connecting":
            raise RuntimeError(f"not connecting (state {self.state!r})")
        self.stoppedConnecting = True
        self.state = "disconnected"
        self._stopFactory()

    def disconnect(self) -> None:
        """Stop connecting, or record that the connection should close."""
        self.disconnected = True
        if self.state == "connecting":
            self.stopConnecting()

    # -- for tests: play the network ----------------------------------------

    def buildProtocol(self, addr: IAddress | None = None) -> Protocol | None:
        """The attempt succeeded: build the protocol from the factory for ``addr``."""
        self.state = "connected"
        return self.factory.buildProtocol(addr if addr is not None else self._destination)

    def connectionFailed(self, reason: Failure | None = None) -> None:
        """The attempt failed: tell the factory, which may call :meth:`connect` again."""
        self.state = "disconnected"
        self.factory.clientConnectionFailed(self, reason or Failure(ConnectError(string="connection failed")))
        if self.state == "disconnected":
            self._stopFactory()

    def connectionLost(self, reason: Failure | None = None) -> None:
        """The established connection closed: tell the factory, which may reconnect."""
        self.state = "disconnected"
        self.factory.clientConnectionLost(self, reason or Failure(ConnectionDone()))
        if self.state == "disconnected":
            self._stopFactory()

    def _stopFactory(self) -> None:
        if self.factoryStarted:
            self.factoryStarted = False
            self.factory.doStop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} to {self._destination} {self.state}>"


class MemoryReactor:
    """A reactor that records listen and connect calls instead of making them.

    Each ``listen*``/``connect*`` call appends its arguments, as a tuple, to
    the matching list (``tcpServers``, ``tcpClients``, ``sslServers``,
    ``sslClients``, ``unixServers``, ``unixClients``, ``udpServers``,
    ``multicastServers``, ``unixDatagramServers``, ``unixDatagramClients``).
    Listening starts the factory (or datagram protocol) and returns a
    :class:`FakePort` (:class:`FakeDatagramPort`); connecting starts the
    factory, calls ``startedConnecting`` and returns a :class:`FakeConnector`,
    also kept in ``connectors``.

    ``run()`` fires the ``startup`` triggers, runs the ``callWhenRunning``
    calls and then stops, which fires the ``shutdown`` triggers; ``stop()``
    may also be called from one of those calls. ``triggers`` is
    ``{phase: {eventType: [(f, args, kw), ...]}}``.
    """

    def __init__(self) -> None:
        self.hasInstalled = False
        self.running = False
        self.hasRun = False
        self.hasStopped = False
        self.hasCrashed = False
        self.whenRunningHooks: list[_Call] = []
        self.triggers: dict[str, dict[str, list[_Call]]] = {}
        # (port, factory, backlog, interface) and so on: each listen*/connect* call's arguments.
        self.tcpServers: list[tuple[int, IProtocolFactory, int, str]] = []
        self.tcpClients: list[tuple[str, int, ClientFactory, float, tuple[str, int] | None]] = []
        self.sslServers: list[tuple[int, IProtocolFactory, _ContextFactory, int, str]] = []
        self.sslClients: list[tuple[str, int, ClientFactory, _ContextFactory, float, tuple[str, int] | None]] = []
        self.unixServers: list[tuple[str, IProtocolFactory, int, int, bool]] = []
        self.unixClients: list[tuple[str, ClientFactory, float, bool]] = []
        self.udpServers: list[tuple[int, DatagramProtocol, str, int]] = []
        self.multicastServers: list[tuple[int, DatagramProtocol, str, int, bool]] = []
        self.unixDatagramServers: list[tuple[str, DatagramProtocol, int, int]] = []
        self.unixDatagramClients: list[tuple[str, DatagramProtocol, int, int, str | None]] = []
        self.connectors: list[FakeConnector] = []

    def install(self) -> None:
        self.hasInstalled = True

    # -- lifecycle -------------------------------------------------------------

    def callWhenRunning(self, f: Callable[..., object], *args: object, **kw: object) -> None:
        """Call ``f`` when :meth:`run` is called, or now if already running."""
        if self.running:
            f(*args, **kw)
        else:
            self.whenRunningHooks.append((f, args, kw))

    def addSystemEventTrigger(
        self, phase: str, eventType: str, f: Callable[..., object], *args: object, **kw: object
    ) -> tuple[str, str, _Call]:
        """Record a trigger; returns the id :meth:`removeSystemEventTrigger` takes."""
        if phase not in ("before", "during", "after"):
            raise KeyError(f"invalid trigger phase {phase!r}: use 'before', 'during' or 'after'")
        entry = (f, args, kw)
        self.triggers.setdefault(phase, {}).setdefault(eventType, []).append(entry)
        return (phase, eventType, entry)

    def removeSystemEventTrigger(self, triggerID: tuple[str, str, _Call]) -> None:
        try:
            phase, eventType, entry = triggerID
            entries = self.triggers[phase][eventType]
        except (TypeError, ValueError, KeyError):
            raise ValueError(f"invalid trigger id {triggerID!r}") from None
        for index, candidate in enumerate(entries):
            if candidate is entry:
                del entries[index]
                return
        raise ValueError(f"trigger {triggerID!r} was already removed")

    def fireSystemEvent(self, eventType: str) -> None:
        """Run the ``before``, ``during`` and ``after`` triggers of ``eventType``, in order."""
        for phase in ("before", "during", "after"):
            for f, args, kw in list(self.triggers.get(phase, {}).get(eventType, ())):
                f(*args, **kw)

    def run(self) -> None:
        if self.running:
            raise ReactorAlreadyRunning("the reactor is already running")
        self.running = True
        self.hasRun = True
        self.fireSystemEvent("startup")
        hooks, self.whenRunningHooks = self.whenRunningHooks, []
        for f, args, kw in hooks:
            f(*args, **kw)
        if self.running:
            self.stop()

    def stop(self) -> None:
        if not self.running:
            raise ReactorNotRunning("can't stop a reactor that is not running")
        self.running = False
        self.hasStopped = True
        self.fireSystemEvent("shutdown")

    def crash(self) -> None:
        """Stop at once, without the shutdown triggers."""
        self.running = False
        self.hasCrashed = True

    # -- streams ---------------------------------------------------------------

    def _listen(self, address: IAddress, factory: IProtocolFactory) -> FakePort:
        port = FakePort(address, factory)
        port.startListening()
        return port

    def _connect(self, factory: ClientFactory, destination: IAddress) -> FakeConnector:
        connector = FakeConnector(factory, destination)
        self.connectors.append(connector)
        connector.connect()
        return connector

    def listenTCP(self, port: int, factory: IProtocolFactory, backlog: int = 50, interface: str = "") -> FakePort:
        self.tcpServers.append((port, factory, backlog, interface))
        return self._listen(_ip_address("TCP", interface, port), factory)

    def connectTCP(
        self, host: str, port: int, factory: ClientFactory, timeout: float = 30,
        bindAddress: tuple[str, int] | None = None,
    ) -> FakeConnector:
        self.tcpClients.append((host, port, factory, timeout, bindAddress))
        return self._connect(factory, _ip_address("TCP", host, port))

    def listenSSL(
        self, port: int, factory: IProtocolFactory, contextFactory: _ContextFactory, backlog: int = 50,
        interface: str = "",
    ) -> FakePort:
        self.sslServers.append((port, factory, contextFactory, backlog, interface))
        return self._listen(_ip_address("TCP", interface, port), factory)

    def connectSSL(
        self,
        host: str,
        port: int,
        factory: ClientFactory,
        contextFactory: _ContextFactory,
        timeout: float = 30,
        bindAddress: tuple[str, int] | None = None,
    ) -> FakeConnector:
        self.sslClients.append((host, port, factory, contextFactory, timeout, bindAddress))
        return self._connect(factory, _ip_address("TCP", host, port))

    def listenUNIX(
        self, address: str, factory: IProtocolFactory, backlog: int = 50, mode: int = 0o666, wantPID: bool = False
    ) -> FakePort:
        self.unixServers.append((address, factory, backlog, mode, wantPID))
        return self._listen(UNIXAddress(address), factory)

    def connectUNIX(self, address: str, factory: ClientFactory, timeout: float = 30,
                    checkPID: bool = False) -> FakeConnector:
        self.unixClients.append((address, factory, timeout, checkPID))
        return self._connect(factory, UNIXAddress(address))

    # -- datagrams -------------------------------------------------------------

    def _listenDatagram(self, address: IAddress, protocol: DatagramProtocol) -> FakeDatagramPort:
        port = FakeDatagramPort(address, protocol)
        port.startListening()
        return port

    def listenUDP(
        self, port: int, protocol: DatagramProtocol, interface: str = "", maxPacketSize: int = 8192
    ) -> FakeDatagramPort:
        self.udpServers.append((port, protocol, interface, maxPacketSize))
        return self._listenDatagram(_ip_address("UDP", interface, port), protocol)

    def listenMulticast(
        self,
        port: int,
        protocol: DatagramProtocol,
        interface: str = "",
        maxPacketSize: int = 8192,
        listenMultiple: bool = False,
    ) -> FakeDatagramPort:
        self.multicastServers.append((port, protocol, interface, maxPacketSize, listenMultiple))
        return self._listenDatagram(_ip_address("UDP", interface, port), protocol)

    def listenUNIXDatagram(
        self, address: str, protocol: DatagramProtocol, maxPacketSize: int = 8192, mode: int = 0o666
    ) -> FakeDatagramPort:
        self.unixDatagramServers.append((address, protocol, maxPacketSize, mode))
        return self._listenDatagram(UNIXAddress(address), protocol)

    def connectUNIXDatagram(
        self,
        address: str,
        protocol: DatagramProtocol,
        maxPacketSize: int = 8192,
        mode: int = 0o666,
        bindAddress: str | None = None,
    ) -> FakeDatagramPort:
        self.unixDatagramClients.append((address, protocol, maxPacketSize, mode, bindAddress))
        port = FakeDatagramPort(UNIXAddress(bindAddress), protocol)
        port.connectedTo = address
        port.startListening()
        return port


class MemoryReactorClock(MemoryReactor, Clock):
    """A :class:`MemoryReactor` that also has a :class:`Clock`'s ``callLater``."""

    def __init__(self) -> None:
        MemoryReactor.__init__(self)
        Clock.__init__(self)


# -- the real reactor, fresh ------------------------------------------------------


@contextlib.contextmanager
def freshReactor(name: str | None = None) -> Iterator[AsyncioReactor]:
    """Install a new shared reactor (``name``, default the default one) for the ``with`` block.

    Whatever reactor was installed before is set aside and put back
    afterwards, and the fresh one's loop is closed: one test's reactor never
    leaks into the next. As a pytest fixture::

        @pytest.fixture
        def reactor():
            with freshReactor() as r:
                yield r
    """
    from tapster.core import reactor as shared

    saved = shared.setAside()
    try:
        yield shared.install(name)
    finally:
        shared.uninstall()
        shared.restore(saved)
