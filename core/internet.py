"""Services that own a listening port or an outgoing connection.

``TCPServer(8007, factory)`` is the service form of ``reactor.listenTCP(8007,
factory)``: the arguments are those of the reactor method, the port is bound
in ``privilegedStartService`` (so ports below 1024 work before twistd drops
root), closed in ``stopService``, and never saved with the application.

==================  ============================================
service             reactor call
==================  ============================================
TCPServer           listenTCP(port, factory, backlog, interface)
TCPClient           connectTCP(host, port, factory, timeout, bindAddress)
UNIXServer          listenUNIX(address, factory, backlog, mode, wantPID)
UNIXClient          connectUNIX(address, factory, timeout, checkPID)
SSLServer           listenSSL(port, factory, contextFactory, backlog, interface)
SSLClient           connectSSL(host, port, factory, contextFactory, timeout, bindAddress)
UDPServer           listenUDP(port, protocol, interface, maxPacketSize)
UNIXDatagramServer  listenUNIXDatagram(address, protocol, maxPacketSize, mode)
UNIXDatagramClient  connectUNIXDatagram(address, protocol, maxPacketSize, mode, bindAddress)
MulticastServer     listenMulticast(port, protocol, interface, maxPacketSize, listenMultiple)
TimerService        a LoopingCall of ``callable`` every ``step`` seconds
==================  ============================================

Set ``service.reactor`` to a :class:`tapster.core.testing.MemoryReactor` to test
without sockets; ``None`` (the default) means the shared reactor.

Stopping a stream server (``TCPServer``, ``UNIXServer``, ``SSLServer``) is a
drain: it stops accepting at once, then the connections it accepted finish
their current exchange and are closed cleanly (``ListeningPort.drainConnections``;
a protocol may take part with ``connectionDraining``). ``stopService`` then
returns an awaitable that completes when they are all closed (None when there
were none); those still open at the reactor's ``shutdownTimeout`` (twistd's
``--shutdown-timeout``), or when the awaitable is cancelled, are aborted.
Twisted's TCPServer leaves accepted connections open until the reactor stops.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

from tapster.core.service import Service
from tapster.core.task import LoopingCall

if TYPE_CHECKING:
    import asyncio
    import ssl

    from tapster.core._reactor.loop import AsyncioReactor
    from tapster.core.address import IPv4Address, IPv6Address
    from tapster.core.interfaces import (
        IAddress,
        IConnector,
        IListeningPort,
        IOpenSSLContextFactory,
        IProtocolFactory,
        IReactorMulticast,
        IReactorSSL,
        IReactorTCP,
        IReactorTime,
        IReactorUDP,
        IReactorUNIX,
        IReactorUNIXDatagram,
    )
    from tapster.core.protocol import ClientFactory, DatagramProtocol

__all__ = [
    "TCPServer",
    "TCPClient",
    "UNIXServer",
    "UNIXClient",
    "SSLServer",
    "SSLClient",
    "UDPServer",
    "UNIXDatagramServer",
    "UNIXDatagramClient",
    "MulticastServer",
    "TimerService",
]

_log = logging.getLogger("tapster.internet")


def _shared_reactor() -> AsyncioReactor:
    from tapster.core import reactor

    return reactor.getReactor()


def _reactor_of(service: _AbstractServer | _AbstractClient) -> object:
    """The reactor ``service`` listens or connects with: its own, else the shared one."""
    if service.reactor is not None:
        return service.reactor
    return _shared_reactor()


def _describe_host(host: IAddress) -> str:
    name = getattr(host, "name", None)
    if name is not None or not hasattr(host, "port"):
        return str(name)
    inet = cast("IPv4Address | IPv6Address", host)
    return f"[{inet.host}]:{inet.port}" if ":" in inet.host else f"{inet.host}:{inet.port}"


class _ArgumentFactory:
    """``service.factory``: the factory among the arguments the service was made with.

    A descriptor without ``__set__``, so a subclass (or ported code) that sets
    ``self.factory`` itself simply stores its own, and nothing is added to
    the state a saved file records.
    """

    def __get__(self, service: object, owner: type | None = None) -> object:
        if service is None:
            return self
        args: tuple[object, ...] = getattr(service, "args", ())
        kwargs: dict[str, object] = getattr(service, "kwargs", {})
        for arg in args:
            if hasattr(arg, "buildProtocol") or hasattr(arg, "datagramReceived"):
                return arg
        return kwargs.get("factory", kwargs.get("protocol"))


def _service_repr(service: Service, active: bool) -> str:
    """``<TCPServer 'qotd' tcp:8007 QOTDFactory running>``: a listing in the console tells which is which."""
    try:
        from tapster.core.endpoints import describe

        where = describe(service)
    except Exception:  # noqa: BLE001 - a kind describe() does not know (UDP, multicast...): its arguments
        where = ":".join(str(a) for a in getattr(service, "args", ())[:1]) or "?"
    factory = getattr(service, "factory", None)
    parts = [type(service).__name__]
    if service.name is not None:
        parts.append(repr(service.name))
    parts.append(where)
    if factory is not None:
        parts.append(type(factory).__name__ if not isinstance(factory, type) else factory.__name__)
    parts.append("running" if service.running and active else "stopped")
    return f"<{' '.join(parts)}>"


class _AbstractServer(Service):
    """Listens while running. Subclasses name the reactor method in ``method``.

    The arguments are recorded as given (``args``, ``kwargs``: they are saved with
    the application and :func:`tapster.core.endpoints.describe` reads them);
    each subclass spells out its reactor method's signature for a type checker.
    """

    method = ""
    #: The reactor to listen with; None means the shared one (tests set a MemoryReactor).
    reactor: object = None
    _port: IListeningPort | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs

    def privilegedStartService(self) -> None:
        Service.privilegedStartService(self)
        if self._port is None:
            self._port = self._getPort()

    def startService(self) -> None:
        Service.startService(self)
        if self._port is None:
            self._port = self._getPort()

    def stopService(self) -> Awaitable[object] | None:
        Service.stopService(self)
        port, self._port = self._port, None
        if port is not None:
            _log.info("%s stopped listening on %s", self._what(), _describe_host(port.getHost()),
                      extra={"system": self.name or self._what()})
            stopped = port.stopListening()
            # Then the connections this port accepted finish their exchange and close (a
            # graceful stop, as SIGTERM promises). Twisted would leave them to the reactor's
            # shutdown; a MemoryReactor's or a datagram port has nothing to drain.
            drain: Callable[[], Awaitable[object] | None] | None = getattr(port, "drainConnections", None)
            drained = drain() if drain is not None else None
            return drained if drained is not None else stopped
        return None

    def _what(self) -> str:
        target = self.args[1] if len(self.args) > 1 else self.kwargs.get("factory", self.kwargs.get("protocol"))
        return type(target).__name__ if target is not None else type(self).__name__

    def _getPort(self) -> IListeningPort:
        port: IListeningPort = getattr(_reactor_of(self), "listen" + self.method)(*self.args, **self.kwargs)
        _log.info("%s listening on %s (%s)", self._what(), _describe_host(port.getHost()), self.method,
                  extra={"system": self.name or self._what()})
        return port

    def getHost(self) -> IAddress:
        """The bound address (handy with port 0); only while running."""
        if self._port is None:
            raise RuntimeError(f"{self!r} is not listening")
        return self._port.getHost()

    #: The factory (or protocol) this server listens with: ``application.ports[1].factory`` in the shell.
    factory = _ArgumentFactory()

    def __repr__(self) -> str:
        return _service_repr(self, self._port is not None)

    def __getstate__(self) -> dict[str, object]:
        state = Service.__getstate__(self)
        state.pop("_port", None)
        state.pop("reactor", None)  # a process resource (and a live loop does not pickle)
        return state


class _AbstractClient(Service):
    """Connects while running; arguments recorded as :class:`_AbstractServer`'s are."""

    method = ""
    #: The reactor to connect with; None means the shared one.
    reactor: object = None
    _connection: IConnector | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs

    def startService(self) -> None:
        Service.startService(self)
        self._connection = self._getConnection()

    def stopService(self) -> Awaitable[object] | None:
        Service.stopService(self)
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.disconnect()
            except Exception:  # noqa: BLE001 - already disconnected
                pass
        return None

    #: The factory this client connects with.
    factory = _ArgumentFactory()

    def __repr__(self) -> str:
        return _service_repr(self, self._connection is not None)

    def _getConnection(self) -> IConnector:
        connection: IConnector = getattr(_reactor_of(self), "connect" + self.method)(*self.args, **self.kwargs)
        return connection

    def __getstate__(self) -> dict[str, object]:
        state = Service.__getstate__(self)
        state.pop("_connection", None)
        state.pop("reactor", None)  # a process resource (and a live loop does not pickle)
        return state


class TCPServer(_AbstractServer):
    """``TCPServer(port, factory, backlog=50, interface='')``"""

    method = "TCP"
    reactor: IReactorTCP | None

    if TYPE_CHECKING:

        def __init__(self, port: int, factory: IProtocolFactory, backlog: int = 50, interface: str = "") -> None: ...


class TCPClient(_AbstractClient):
    """``TCPClient(host, port, factory, timeout=30, bindAddress=None)``"""

    method = "TCP"
    reactor: IReactorTCP | None

    if TYPE_CHECKING:

        def __init__(self, host: str, port: int, factory: ClientFactory, timeout: float = 30,
                     bindAddress: tuple[str, int] | None = None) -> None: ...


class UNIXServer(_AbstractServer):
    """``UNIXServer(address, factory, backlog=50, mode=0o666, wantPID=False)``"""

    method = "UNIX"
    reactor: IReactorUNIX | None

    if TYPE_CHECKING:

        def __init__(self, address: str, factory: IProtocolFactory, backlog: int = 50, mode: int = 0o666,
                     wantPID: bool = False) -> None: ...


class UNIXClient(_AbstractClient):
    """``UNIXClient(address, factory, timeout=30, checkPID=False)``"""

    method = "UNIX"
    reactor: IReactorUNIX | None

    if TYPE_CHECKING:

        def __init__(self, address: str, factory: ClientFactory, timeout: float = 30,
                     checkPID: bool = False) -> None: ...


class SSLServer(_AbstractServer):
    """``SSLServer(port, factory, contextFactory, backlog=50, interface='')``"""

    method = "SSL"
    reactor: IReactorSSL | None

    if TYPE_CHECKING:

        def __init__(self, port: int, factory: IProtocolFactory,
                     contextFactory: IOpenSSLContextFactory | ssl.SSLContext, backlog: int = 50,
                     interface: str = "") -> None: ...


class SSLClient(_AbstractClient):
    """``SSLClient(host, port, factory, contextFactory, timeout=30, bindAddress=None)``"""

    method = "SSL"
    reactor: IReactorSSL | None

    if TYPE_CHECKING:

        def __init__(self, host: str, port: int, factory: ClientFactory,
                     contextFactory: IOpenSSLContextFactory | ssl.SSLContext, timeout: float = 30,
                     bindAddress: tuple[str, int] | None = None) -> None: ...


class UDPServer(_AbstractServer):
    """``UDPServer(port, protocol, interface='', maxPacketSize=8192)``"""

    method = "UDP"
    reactor: IReactorUDP | None

    if TYPE_CHECKING:

        def __init__(self, port: int, protocol: DatagramProtocol, interface: str = "",
                     maxPacketSize: int = 8192) -> None: ...


class UNIXDatagramServer(_AbstractServer):
    """``UNIXDatagramServer(address, protocol, maxPacketSize=8192, mode=0o666)``"""

    method = "UNIXDatagram"
    reactor: IReactorUNIXDatagram | None

    if TYPE_CHECKING:

        def __init__(self, address: str, protocol: DatagramProtocol, maxPacketSize: int = 8192,
                     mode: int = 0o666) -> None: ...


class UNIXDatagramClient(_AbstractClient):
    """``UNIXDatagramClient(address, protocol, maxPacketSize=8192, mode=0o666, bindAddress=None)``"""

    method = "UNIXDatagram"
    reactor: IReactorUNIXDatagram | None

    if TYPE_CHECKING:

        def __init__(self, address: str, protocol: DatagramProtocol, maxPacketSize: int = 8192,
                     mode: int = 0o666, bindAddress: str | None = None) -> None: ...

    def stopService(self) -> Awaitable[object] | None:
        Service.stopService(self)
        connection, self._connection = self._connection, None
        if connection is not None:
            # connectUNIXDatagram returns the (connected) port itself, not a connector.
            return cast("IListeningPort", connection).stopListening()
        return None


class MulticastServer(_AbstractServer):
    """``MulticastServer(port, protocol, interface='', maxPacketSize=8192, listenMultiple=False)``"""

    method = "Multicast"
    reactor: IReactorMulticast | None

    if TYPE_CHECKING:

        def __init__(self, port: int, protocol: DatagramProtocol, interface: str = "", maxPacketSize: int = 8192,
                     listenMultiple: bool = False) -> None: ...


class TimerService(Service):
    """Call ``callable(*args, **kwargs)`` every ``step`` seconds while running (first call at start)."""

    #: What schedules the calls; the shared reactor when None (tests set a Clock).
    clock: IReactorTime | None = None

    def __init__(self, step: float, callable: Callable[..., object], *args: object, **kwargs: object) -> None:
        self.step = step
        self.call = (callable, args, kwargs)

    def startService(self) -> None:
        Service.startService(self)
        callable, args, kwargs = self.call
        self._loop = LoopingCall(callable, *args, **kwargs)
        self._loop.clock = self.clock if self.clock is not None else _shared_reactor()
        self._loopFinished = self._loop.start(self.step, now=True)
        if self._loopFinished is not None:
            # The LoopingCall already logged a failure; retrieve it so asyncio does not
            # report it again as "Future exception was never retrieved".
            self._loopFinished.add_done_callback(_consume)

    def stopService(self) -> Awaitable[object] | None:
        Service.stopService(self)
        loop: LoopingCall | None = getattr(self, "_loop", None)
        if loop is not None and loop.running:
            loop.stop()
        return None

    def __getstate__(self) -> dict[str, object]:
        state = Service.__getstate__(self)
        state.pop("_loop", None)
        state.pop("_loopFinished", None)
        state.pop("clock", None)  # a process resource, like a server's reactor
        return state


def _consume(future: asyncio.Future[LoopingCall]) -> None:
    if not future.cancelled():
        future.exception()
