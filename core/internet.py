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

And the endpoint services of Twisted's newer API, for any endpoint object
(:func:`tapster.core.endpoints.serverFromString`/``clientFromString``):
``StreamServerEndpointService(endpoint, factory)`` listens while running;
``ClientService(endpoint, factory, retryPolicy=backoffPolicy())`` keeps a
connection up, reconnecting, with ``whenConnected()``. Both return Deferreds
(:mod:`tapster.core.defer`) from ``stopService``, which a MultiService (and
twistd) awaits like any awaitable.

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

from tapster.core.failure import Failure
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
    "StreamServerEndpointService",
    "ClientService",
    "backoffPolicy",
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
    """``UDPServer(port, protocol, interface='', maxPacketSize=8192)``

    tapster's addition: ``port`` may be ``"systemd:name=NAME"``,
    ``"systemd:index=N"`` or ``"fd:N"``, a datagram socket passed to the
    process (socket activation), adopted when the service starts.
    """

    method = "UDP"
    reactor: IReactorUDP | None

    if TYPE_CHECKING:

        def __init__(self, port: int | str, protocol: DatagramProtocol, interface: str = "",
                     maxPacketSize: int = 8192) -> None: ...

    def _getPort(self) -> IListeningPort:
        port = self.args[0] if self.args else self.kwargs.get("port")
        if not isinstance(port, str):
            return super()._getPort()
        import socket

        from tapster.core import endpoints, systemd

        kind, args, kw = endpoints.parse(port, default=None)
        if kind == "fd":
            sock = systemd.adoptDescriptor(args[0], socket.SOCK_DGRAM)
        elif kind == "systemd":
            sock = systemd.adopt(name=kw["name"], index=kw["index"], kind=socket.SOCK_DGRAM)
        else:
            from tapster.core.errors import EndpointError

            raise EndpointError(port, "a UDP port is a number, or systemd:name=NAME, systemd:index=N or fd:N")
        try:
            protocol = self.args[1] if len(self.args) > 1 else self.kwargs["protocol"]
            reactor: Any = _reactor_of(self)  # Any: the shared reactor or a test's, duck-typed
            listening: IListeningPort = reactor.adoptDatagramPort(sock.fileno(), sock.family, protocol)
        finally:
            sock.close()  # adopted as a duplicate
        _log.info("%s listening on %s (UDP, passed by systemd)", self._what(), port,
                  extra={"system": self.name or self._what()})
        return listening


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


# -- endpoint services -------------------------------------------------------------------


def _fire_when_done(awaitable: Awaitable[object] | None) -> object:
    """What a Deferred callback returns to wait for ``awaitable``: a Deferred of it (or None)."""
    from tapster.core.defer import Deferred, ensureDeferred

    if awaitable is None:
        return None
    if isinstance(awaitable, Deferred):
        return awaitable
    return ensureDeferred(awaitable)


class StreamServerEndpointService(Service):
    """Listen on ``endpoint`` with ``factory`` while running (Twisted's service of the same name).

    As in Twisted: ``endpoint.listen(factory)`` is called in
    ``privilegedStartService`` (or ``startService`` if that did not run);
    ``stopService`` cancels a listen still in progress, else stops listening,
    and returns a Deferred that fires with None once stopped (the service
    counts as running until then). As :class:`TCPServer`'s, the stop is a
    drain: when the port can ``drainConnections``, the connections it
    accepted finish their exchange first.

    Two choices differ from Twisted on purpose:

    * ``_raiseSynchronously`` is True by default: a listen that fails at once
      ("address in use") raises from ``privilegedStartService``, so twistd
      reports it by name at start, as for every other server (tapster's
      contract). Twisted's default logs it and runs on without the port; set
      the attribute to False on the instance for that. A failure that comes
      later (an endpoint whose listen takes time) is logged either way.
    * After ``stopService`` the service may be started again and listens
      anew (Twisted's would not listen a second time).

    It saves like :class:`TCPServer`: the endpoint and the factory are kept,
    the port never is, and the endpoints of
    :func:`tapster.core.endpoints.serverFromString` save in every format.
    """

    _raiseSynchronously = True
    _waitingForPort: Any = None  # Deferred[IListeningPort] | None; Any: defer is imported on use

    def __init__(self, endpoint: Any, factory: IProtocolFactory) -> None:
        # Any: any object with listen(factory) returning a Deferred (Twisted's IStreamServerEndpoint).
        self.endpoint = endpoint
        self.factory = factory

    def privilegedStartService(self) -> None:
        Service.privilegedStartService(self)
        if self._waitingForPort is not None:  # listening already (twistd's reload handed a port over)
            return
        from tapster.core.defer import CancelledError, Deferred, maybeDeferred

        waiting: Deferred[Any] = maybeDeferred(self.endpoint.listen, self.factory)
        self._waitingForPort = waiting
        raisedNow: list[Failure] = []

        def listening(port: IListeningPort) -> IListeningPort:
            try:
                where = _describe_host(port.getHost())
            except Exception:  # noqa: BLE001 - an endpoint's own port type: the log line only
                where = repr(port)
            _log.info("%s listening on %s", type(self.factory).__name__, where, extra={"system": self._system()})
            return port

        def failed(failure: Failure) -> None:
            if self._raiseSynchronously and not startingDone:
                raisedNow.append(failure)
            elif not failure.check(CancelledError):
                _log.error("%r could not listen: %s", self, failure.getErrorMessage(),
                           extra={"system": self._system()})

        startingDone = False
        waiting.addCallbacks(listening, failed)
        startingDone = True
        if raisedNow:
            self._waitingForPort = None
            raisedNow[0].raiseException()

    def startService(self) -> None:
        Service.startService(self)
        if self._waitingForPort is None:
            self.privilegedStartService()

    def stopService(self) -> Any:
        """Stop listening; a Deferred that fires with None when the port (and its connections) are closed."""
        from tapster.core.defer import succeed

        waiting, self._waitingForPort = self._waitingForPort, None
        if waiting is None:
            Service.stopService(self)
            return succeed(None)
        waiting.cancel()

        def stopIt(port: IListeningPort | None) -> object:
            if port is None:
                return None
            _log.info("%s stopped listening", type(self.factory).__name__, extra={"system": self._system()})
            stopped = port.stopListening()
            drain: Callable[[], Awaitable[object] | None] | None = getattr(port, "drainConnections", None)
            drained = drain() if drain is not None else None
            return _fire_when_done(drained if drained is not None else stopped)

        def stop(passthrough: object) -> None:
            self.running = 0
            return None

        return waiting.addCallback(stopIt).addBoth(stop)

    def _system(self) -> str:
        return self.name or type(self.factory).__name__

    def _listening(self) -> bool:
        waiting = self._waitingForPort
        return waiting is not None and waiting.called and not isinstance(waiting.result, Failure)

    def getHost(self) -> IAddress:
        """The bound address (handy with port 0); only while listening. tapster's addition."""
        waiting = self._waitingForPort
        if not self._listening():
            raise RuntimeError(f"{self!r} is not listening")
        port: IListeningPort = waiting.result
        return port.getHost()

    def __repr__(self) -> str:
        return _service_repr(self, self._listening())

    def __getstate__(self) -> dict[str, object]:
        state = Service.__getstate__(self)
        state.pop("_waitingForPort", None)
        return state


class _BackoffPolicy:
    """What :func:`backoffPolicy` returns: an object, not a closure, so a ClientService saves in every format."""

    def __init__(self, initialDelay: float, maxDelay: float, factor: float,
                 jitter: Callable[[], float] | None) -> None:
        self.initialDelay = initialDelay
        self.maxDelay = maxDelay
        self.factor = factor
        self.jitter = jitter

    def __call__(self, attempt: int) -> float:
        try:
            delay = min(self.initialDelay * self.factor ** min(attempt, 100), self.maxDelay)
        except OverflowError:
            delay = self.maxDelay
        if self.jitter is None:
            import random

            return delay + random.random()
        return delay + self.jitter()

    def __repr__(self) -> str:
        return (f"backoffPolicy(initialDelay={self.initialDelay}, maxDelay={self.maxDelay}, "
                f"factor={self.factor})")


def backoffPolicy(initialDelay: float = 1.0, maxDelay: float = 60.0, factor: float = 1.5,
                  jitter: Callable[[], float] | None = None) -> Callable[[int], float]:
    """A retry policy for :class:`ClientService`: ``policy(attempt)`` is the delay before retry ``attempt``.

    The delay grows as ``initialDelay * factor ** attempt`` up to
    ``maxDelay``, plus ``jitter()`` (default ``random.random()``: up to a
    second, so that many clients do not retry in step), as Twisted's.
    """
    return _BackoffPolicy(initialDelay, maxDelay, factor, jitter)


class ClientService(Service):
    """Keep a connection to ``endpoint`` open while running: reconnect when it fails or is lost.

    Twisted's reconnecting client service, with its semantics:

    * ``startService`` connects with ``endpoint.connect(factory)``. A failed
      attempt, or the loss of an established connection, schedules another
      after ``retryPolicy(failedAttempts)`` seconds (default
      :func:`backoffPolicy`); a connection resets the count.
    * ``prepareConnection(protocol)``, if given, runs on each new connection
      before it counts as made; if it raises or its Deferred fails, that
      connection is closed and the attempt counts as failed.
    * ``whenConnected(failAfterFailures=None)`` is a Deferred of the connected
      protocol: at once if connected, else with the next connection; with
      ``failAfterFailures=n`` it fails with the n-th failed attempt's reason;
      it fails with :class:`tapster.core.defer.CancelledError` if the service
      stops first (at once when the service was stopped already).
    * ``stopService`` stops retrying, cancels an attempt in progress or
      closes the connection, and returns a Deferred that fires with None once
      the connection is gone.

    ``clock`` schedules the retries (the shared reactor when None). Like the
    other services, it saves without its connection, clock or timers.
    tapster does not put a proxy between the protocol and its transport as
    Twisted does (see :mod:`tapster.core._endpoint_connect`): the protocol
    ``whenConnected`` gives is the factory's own, and it is the one connected.
    """

    #: What schedules the retries; the shared reactor when None (tests set a Clock).
    clock: IReactorTime | None = None
    _state = "init"
    _failedAttempts = 0
    _attempt: Any = None  # the Deferred of the connection attempt in progress
    _candidate: Any = None  # its protocol, while prepareConnection runs
    _protocol: Any = None  # the connected protocol
    _retry: Any = None  # the IDelayedCall of the next attempt

    def __init__(self, endpoint: Any, factory: IProtocolFactory,
                 retryPolicy: Callable[[int], float] | None = None, clock: IReactorTime | None = None,
                 prepareConnection: Callable[[Any], object] | None = None) -> None:
        # Any: an endpoint is any object with connect(factory) -> Deferred (IStreamClientEndpoint).
        self.endpoint = endpoint
        self.factory = factory
        self.retryPolicy = retryPolicy if retryPolicy is not None else backoffPolicy()
        if clock is not None:
            self.clock = clock
        self.prepareConnection = prepareConnection

    # -- the waiting lists (per instance, not saved) -------------------------------------

    def _waiters(self) -> list[tuple[Any, int | None]]:
        waiters: list[tuple[Any, int | None]] = self.__dict__.setdefault("_awaiting", [])
        return waiters

    def _stoppers(self) -> list[Any]:
        stoppers: list[Any] = self.__dict__.setdefault("_stopping", [])
        return stoppers

    def _unawait(self, value: object) -> None:
        waiters, self.__dict__["_awaiting"] = self._waiters(), []
        for d, _ in waiters:
            d.callback(value)

    def _cancelWaiters(self) -> None:
        from tapster.core.defer import CancelledError

        self._unawait(Failure(CancelledError(f"{self!r} stopped before it connected")))

    def _finishStopping(self) -> None:
        stoppers, self.__dict__["_stopping"] = self._stoppers(), []
        for d in stoppers:
            d.callback(None)

    def _waitForStop(self) -> Any:
        from tapster.core.defer import Deferred

        d: Deferred[None] = Deferred()
        self._stoppers().append(d)
        return d

    # -- the public surface -------------------------------------------------------

    def whenConnected(self, failAfterFailures: int | None = None) -> Any:
        """A Deferred of the connected protocol (see the class)."""
        from tapster.core.defer import CancelledError, Deferred, fail, succeed

        if self._state == "connected":
            return succeed(self._protocol)
        if self._state == "stopped":
            return fail(CancelledError(f"{self!r} is stopped"))

        def forget(d: Deferred[Any]) -> None:
            self.__dict__["_awaiting"] = [(w, n) for w, n in self._waiters() if w is not d]

        result: Deferred[Any] = Deferred(forget)
        self._waiters().append((result, failAfterFailures))
        return result

    def startService(self) -> None:
        if self.running:
            return
        Service.startService(self)
        if self._state in ("init", "stopped"):
            self._connect()
        elif self._state == "disconnecting":
            self._state = "restarting"

    def stopService(self) -> Any:
        """Stop retrying and disconnect; a Deferred that fires with None once disconnected."""
        from tapster.core.defer import succeed

        Service.stopService(self)
        state = self._state
        if state in ("init", "stopped"):
            self._state = "stopped"
            return succeed(None)
        if state == "waiting":
            self._state = "stopped"
            retry, self._retry = self._retry, None
            if retry is not None and retry.active():
                retry.cancel()
            self._cancelWaiters()
            self._finishStopping()
            return succeed(None)
        waited = self._waitForStop()
        if state == "connecting":
            self._state = "disconnecting"
            self._attempt.cancel()
        elif state == "connected":
            self._state = "disconnecting"
            self._close(self._protocol)
        elif state == "restarting":
            self._state = "disconnecting"
        return waited

    # -- the machine ------------------------------------------------------------

    def _clock(self) -> IReactorTime:
        return self.clock if self.clock is not None else _shared_reactor()

    def _connect(self) -> None:
        from tapster.core.defer import maybeDeferred

        self._state = "connecting"
        attempt = maybeDeferred(self.endpoint.connect, _LossNotifyingFactory(self.factory, self._lost))
        self._attempt = attempt

        def prepare(protocol: object) -> object:
            if self.prepareConnection is None:
                return protocol
            self._candidate = protocol
            return maybeDeferred(self.prepareConnection, protocol).addCallback(lambda _: protocol)

        attempt.addCallback(prepare).addCallbacks(self._made, self._failed)

    def _made(self, protocol: object) -> None:
        self._attempt = self._candidate = None
        if self._state != "connecting":  # stopped while prepareConnection ran
            self._close(protocol)
            return
        self._state = "connected"
        self._protocol = protocol
        self._failedAttempts = 0
        _log.info("%r connected", self, extra={"system": self._system()})
        self._unawait(protocol)

    def _failed(self, failure: Failure) -> None:
        self._attempt = None
        candidate, self._candidate = self._candidate, None
        if candidate is not None:
            self._close(candidate)  # prepareConnection failed (or was cancelled) on an open connection
        if self._state == "disconnecting":
            self._state = "stopped"
            self._cancelWaiters()
            self._finishStopping()
            return
        if self._state != "connecting":
            return
        ready: list[Any] = []
        waiting: list[tuple[Any, int | None]] = []
        for d, remaining in self._waiters():
            if remaining is None:
                waiting.append((d, remaining))
            elif remaining <= 1:
                ready.append(d)
            else:
                waiting.append((d, remaining - 1))
        self.__dict__["_awaiting"] = waiting
        for d in ready:
            d.errback(failure)
        self._wait(failure)

    def _wait(self, failure: Failure | None) -> None:
        self._state = "waiting"
        self._failedAttempts += 1
        delay = self.retryPolicy(self._failedAttempts)
        why = f" ({failure.getErrorMessage()})" if failure is not None else ""
        _log.info("%r: retry %d in %.1f seconds%s", self, self._failedAttempts, delay, why,
                  extra={"system": self._system()})
        self._retry = self._clock().callLater(delay, self._reconnect)

    def _reconnect(self) -> None:
        self._retry = None
        if self._state == "waiting":
            self._connect()

    def _lost(self, protocol: object, reason: Failure | None) -> None:
        if protocol is not self._protocol:
            return  # a candidate closed after prepareConnection failed, or one closed after a stop
        self._protocol = None
        if self._state == "connected":
            self._wait(reason)
        elif self._state == "disconnecting":
            self._state = "stopped"
            self._cancelWaiters()
            self._finishStopping()
        elif self._state == "restarting":
            self._finishStopping()
            self._connect()

    @staticmethod
    def _close(protocol: object) -> None:
        transport = getattr(protocol, "transport", None)
        if transport is not None:
            transport.loseConnection()

    def _system(self) -> str:
        return self.name or type(self.factory).__name__

    def __repr__(self) -> str:
        head = _service_repr(self, True).rsplit(" ", 1)[0]
        return f"{head} {self._state}>"

    def __getstate__(self) -> dict[str, object]:
        state = Service.__getstate__(self)
        for transient in ("_state", "_failedAttempts", "_attempt", "_candidate", "_protocol", "_retry",
                          "_awaiting", "_stopping", "clock"):
            state.pop(transient, None)
        return state


class _LossNotifyingFactory:
    """Builds ``factory``'s protocols and tells ``lost(protocol, reason)`` when one's connection is gone.

    Not a proxy between protocol and transport (see :mod:`tapster.core._endpoint_connect`):
    the protocol's next ``connectionLost`` is hooked on the instance, once.
    """

    def __init__(self, factory: IProtocolFactory, lost: Callable[[object, Failure | None], None]) -> None:
        self._factory = factory
        self._lost = lost

    def buildProtocol(self, addr: IAddress) -> object:
        from tapster.core._endpoint_connect import after_call

        protocol = self._factory.buildProtocol(addr)
        if protocol is not None:
            after_call(protocol, "connectionLost", lambda reason=None: self._lost(protocol, reason), always=True)
        return protocol

    def doStart(self) -> None:
        self._factory.doStart()

    def doStop(self) -> None:
        self._factory.doStop()

    def __getattr__(self, name: str) -> object:
        return getattr(self._factory, name)

    def __repr__(self) -> str:
        return repr(self._factory)
