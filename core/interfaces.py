"""The interfaces, as ``typing.Protocol`` classes: what tapster's objects promise to each other.

Twisted spells these as zope interfaces in ``twisted.internet.interfaces``;
here they are structural types for a type checker, under the same names, so a
ported annotation changes only its import::

    from tapster.core.interfaces import IReactorTime, ITransport

Nothing needs to inherit from them or declare them: a class provides one by
having its methods (tapster's own transports, reactors, ports and test doubles
do, and mypy checks that). They are not meant for ``isinstance`` at run time;
the service interfaces that Twisted code *adapts* at run time
(``IService(obj)``) are in :mod:`tapster.core.service`.

Importing this module costs nothing beyond :mod:`typing`: the modules that
use these names in their annotations import it only while type checking.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Protocol

from tapster.core.address import IPv4Address, IPv6Address, UNIXAddress

if TYPE_CHECKING:
    import ssl as _ssl

    from tapster.core.protocol import ClientFactory, DatagramProtocol
    from tapster.core.protocol import Protocol as _StreamProtocol

__all__ = [
    "IAddress",
    "IDelayedCall",
    "IReactorTime",
    "IReactorTCP",
    "IReactorSSL",
    "IReactorUNIX",
    "IReactorUDP",
    "IReactorMulticast",
    "IReactorUNIXDatagram",
    "IListeningPort",
    "IConnector",
    "IProducer",
    "IPushProducer",
    "IPullProducer",
    "IConsumer",
    "ITransport",
    "ITCPTransport",
    "IUDPTransport",
    "IMulticastTransport",
    "IProtocolFactory",
    "IOpenSSLContextFactory",
]

#: What ``getPeer()``/``getHost()`` return and ``buildProtocol(addr)`` receives.
IAddress = IPv4Address | IPv6Address | UNIXAddress

# Where a datagram goes: ``(host, port)``, IPv6's ``(host, port, flowinfo, scope_id)``, or a UNIX path.
_DatagramAddress = tuple[str, int] | tuple[str, int, int, int] | str


# -- time ------------------------------------------------------------------------------


class IDelayedCall(Protocol):
    """What ``callLater`` returns."""

    def getTime(self) -> float:
        """When the call will run, in the scheduler's clock."""
        ...

    def cancel(self) -> None: ...

    def delay(self, secondsLater: float) -> None: ...

    def reset(self, secondsFromNow: float) -> None: ...

    def active(self) -> bool: ...


class IReactorTime(Protocol):
    """A clock that schedules calls: the reactor, or ``tapster.core.testing.Clock`` in tests."""

    def seconds(self) -> float: ...

    def callLater(self, delay: float, callable: Callable[..., object], /, *args: object) -> IDelayedCall:
        """Call ``callable(*args)`` in ``delay`` seconds.

        Tapster's clocks also pass keyword arguments on; the interface does not
        promise that, because a keyword named like one of the implementation's
        own parameters (``callable``, ``f``) could not get through.
        """
        ...

    def getDelayedCalls(self) -> Sequence[IDelayedCall]: ...


# -- ports and connectors -----------------------------------------------------------------


class IListeningPort(Protocol):
    """What ``listen*`` returns."""

    def startListening(self) -> None: ...

    def stopListening(self) -> Awaitable[object] | None:
        """Stop accepting; tapster's ports stop at once (None), another reactor's may return an awaitable."""
        ...

    def getHost(self) -> IAddress: ...


class IConnector(Protocol):
    """What ``connect*`` returns and a ClientFactory's callbacks receive."""

    def connect(self) -> None: ...

    def disconnect(self) -> None: ...

    def stopConnecting(self) -> None: ...

    def getDestination(self) -> IAddress: ...


class IOpenSSLContextFactory(Protocol):
    """Twisted's context factory shape; an ``ssl.SSLContext`` itself is accepted too."""

    def getContext(self) -> _ssl.SSLContext: ...


class IReactorTCP(Protocol):
    def listenTCP(self, port: int, factory: IProtocolFactory, backlog: int = 50,
                  interface: str = "") -> IListeningPort: ...

    def connectTCP(self, host: str, port: int, factory: ClientFactory, timeout: float = 30,
                   bindAddress: tuple[str, int] | None = None) -> IConnector: ...


class IReactorSSL(Protocol):
    def listenSSL(self, port: int, factory: IProtocolFactory,
                  contextFactory: IOpenSSLContextFactory | _ssl.SSLContext, backlog: int = 50,
                  interface: str = "") -> IListeningPort: ...

    def connectSSL(self, host: str, port: int, factory: ClientFactory,
                   contextFactory: IOpenSSLContextFactory | _ssl.SSLContext, timeout: float = 30,
                   bindAddress: tuple[str, int] | None = None) -> IConnector: ...


class IReactorUNIX(Protocol):
    def listenUNIX(self, address: str, factory: IProtocolFactory, backlog: int = 50, mode: int = 0o666,
                   wantPID: bool = False) -> IListeningPort: ...

    def connectUNIX(self, address: str, factory: ClientFactory, timeout: float = 30,
                    checkPID: bool = False) -> IConnector: ...


class IReactorUDP(Protocol):
    def listenUDP(self, port: int, protocol: DatagramProtocol, interface: str = "",
                  maxPacketSize: int = 8192) -> IListeningPort: ...


class IReactorMulticast(Protocol):
    def listenMulticast(self, port: int, protocol: DatagramProtocol, interface: str = "",
                        maxPacketSize: int = 8192, listenMultiple: bool = False) -> IListeningPort: ...


class IReactorUNIXDatagram(Protocol):
    def listenUNIXDatagram(self, address: str, protocol: DatagramProtocol, maxPacketSize: int = 8192,
                           mode: int = 0o666) -> IListeningPort: ...

    def connectUNIXDatagram(self, address: str, protocol: DatagramProtocol, maxPacketSize: int = 8192,
                            mode: int = 0o666, bindAddress: str | None = None) -> IListeningPort: ...


# -- producers, consumers, transports ---------------------------------------------------


class IProducer(Protocol):
    def stopProducing(self) -> None: ...


class IPushProducer(IProducer, Protocol):
    """Produces on its own until paused."""

    def pauseProducing(self) -> None: ...

    def resumeProducing(self) -> None: ...


class IPullProducer(IProducer, Protocol):
    """Produces one chunk each time it is asked."""

    def resumeProducing(self) -> None: ...


class IConsumer(Protocol):
    def registerProducer(self, producer: IPushProducer | IPullProducer, streaming: bool) -> None: ...

    def unregisterProducer(self) -> None: ...

    def write(self, data: bytes) -> None: ...


class ITransport(IConsumer, IPushProducer, Protocol):
    """``protocol.transport`` of a stream connection (TCP, UNIX, SSL).

    Twisted's ``ITransport`` plus what every tapster stream transport also is
    and what Twisted code uses of it all the time: a consumer (producers
    register with it), a push producer (pausing it stops reading from the
    peer), ``abortConnection()`` and the ``disconnecting`` flag.
    """

    @property
    def disconnecting(self) -> bool:
        """True once ``loseConnection`` (or the peer) started closing the connection."""
        ...

    def write(self, data: bytes) -> None: ...

    def writeSequence(self, data: Iterable[bytes]) -> None: ...

    def loseConnection(self) -> None: ...

    def abortConnection(self) -> None: ...

    def getPeer(self) -> IAddress: ...

    def getHost(self) -> IAddress: ...


class ITCPTransport(ITransport, Protocol):
    """A TCP connection's socket options."""

    def getTcpNoDelay(self) -> bool: ...

    def setTcpNoDelay(self, enabled: bool) -> None: ...

    def getTcpKeepAlive(self) -> bool: ...

    def setTcpKeepAlive(self, enabled: bool) -> None: ...


class IUDPTransport(Protocol):
    """``protocol.transport`` of a datagram port (UDP or UNIX datagram)."""

    def write(self, datagram: bytes, addr: _DatagramAddress | None = None) -> None:
        """Send to ``addr`` (``(host, port)`` or a path), or to the peer after :meth:`connect`."""
        ...

    def writeSequence(self, seq: Iterable[bytes], addr: _DatagramAddress | None = None) -> None: ...

    def connect(self, host: str, port: int) -> None: ...

    def getHost(self) -> IAddress: ...

    def stopListening(self) -> None: ...

    def loseConnection(self) -> None: ...


class IMulticastTransport(IUDPTransport, Protocol):
    def joinGroup(self, addr: str, interface: str = "") -> None: ...

    def leaveGroup(self, addr: str, interface: str = "") -> None: ...

    def getTTL(self) -> int: ...

    def setTTL(self, ttl: int) -> None: ...

    def getLoopbackMode(self) -> bool: ...

    def setLoopbackMode(self, mode: bool) -> None: ...

    def setOutgoingInterface(self, addr: str) -> None: ...

    def getBroadcastAllowed(self) -> bool: ...

    def setBroadcastAllowed(self, enabled: bool) -> None: ...


# -- factories ------------------------------------------------------------------------------


class IProtocolFactory(Protocol):
    """What a listening port asks for one protocol per connection."""

    def buildProtocol(self, addr: IAddress) -> _StreamProtocol | None:
        """A protocol for the connection from ``addr``; ``None`` refuses it."""
        ...

    def doStart(self) -> None: ...

    def doStop(self) -> None: ...

