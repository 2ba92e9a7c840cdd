"""Listening ports and connectors for the reactor.

Binding is synchronous (a plain ``socket.bind``/``listen`` before asyncio sees
the socket) so errors surface where the user can act on them:
``listenTCP(80, f)`` raises :class:`CannotListenError` naming ``0.0.0.0:80``
at once. Serving is asyncio's (``create_server(sock=...)``): with uvloop the
accept loop is libuv's, not ours.

Each accepted connection first meets a tiny :class:`_Acceptor`; it asks the
factory for a protocol with the peer's address (Twisted's
``buildProtocol(addr)``), then hands the asyncio transport to that protocol
with ``transport.set_protocol``. From then on the loop calls the protocol's
``data_received`` (which is its ``dataReceived``) directly.

Draining (a graceful close, for SIGTERM and ``stopService``): the reactor keeps
a :class:`_Stream` record of every open stream connection, accepted or made,
and :func:`drain_streams` closes a set of them without a reset; see
:class:`_Drain` for the rules. None of it touches the data path while the
process serves: a connection meets the drain's shims only once it is draining.
"""

from __future__ import annotations

import asyncio
import errno
import inspect
import ipaddress
import logging
import os
import socket
import stat
import struct
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, cast

from tapster.core._reactor.transport import Transport, attach
from tapster.core.address import IPv4Address, IPv6Address, UNIXAddress, from_sockaddr
from tapster.core.errors import (
    CannotListenError,
    ConnectError,
    ConnectionRefusedError,
    DNSLookupError,
    NotConnectingError,
    TimeoutError,
    describe_address,
)
from tapster.core.failure import Failure

if TYPE_CHECKING:
    import ssl as _ssl

    from tapster.core.interfaces import IAddress, IOpenSSLContextFactory, IProtocolFactory
    from tapster.core.interfaces import _DatagramAddress as DatagramAddress
    from tapster.core.protocol import ClientFactory, DatagramProtocol, Protocol

__all__ = ["PortsMixin", "ListeningPort", "Connector", "DatagramPort"]

_log = logging.getLogger("tapster.reactor")


def _ssl_context(contextFactory: IOpenSSLContextFactory | _ssl.SSLContext) -> _ssl.SSLContext:
    """Accept an ``ssl.SSLContext`` or a Twisted-style object with ``getContext()``."""
    get = getattr(contextFactory, "getContext", None)
    return get() if get is not None else cast("_ssl.SSLContext", contextFactory)


def _inet_family(interface: str) -> int:
    if not interface:
        return socket.AF_INET
    try:
        return socket.AF_INET6 if ipaddress.ip_address(interface.split("%")[0]).version == 6 else socket.AF_INET
    except ValueError:  # a host name: resolve it once, now
        try:
            return socket.getaddrinfo(interface, None, type=socket.SOCK_STREAM)[0][0]
        except socket.gaierror:
            return socket.AF_INET


#: Listening sockets bound before this process's reactor existed, by the process that forked it (a
#: supervising twistd with --workers): the next listen on the same address adopts a duplicate instead
#: of binding. Keyed by what listenTCP/listenSSL/listenUNIX are given, so the same service finds it.
_provided: dict[tuple[object, ...], socket.socket] = {}


def inet_key(interface: str, port: int) -> tuple[object, ...]:
    return ("inet", interface, port)


def unix_key(path: str) -> tuple[object, ...]:
    return ("unix", os.path.abspath(path))


def provide_socket(key: tuple[object, ...], sock: socket.socket) -> None:
    """Register ``sock`` (bound and listening) to be adopted by the next listen on ``key``."""
    _provided[key] = sock


def provided_sockets() -> dict[tuple[object, ...], socket.socket]:
    return dict(_provided)


def _adopt(key: tuple[object, ...], backlog: int) -> socket.socket | None:
    """A duplicate of the provided socket for ``key`` (closing it leaves the original open), or None."""
    sock = _provided.get(key)
    if sock is None:
        return None
    dup = sock.dup()
    dup.listen(backlog)
    dup.setblocking(False)
    return dup


def _adopted_socket(fd: int, family: int, kind: int) -> socket.socket:
    """A non-blocking duplicate of ``fd``, checked to be a socket of ``family`` and ``kind``."""
    try:
        sock = socket.socket(fileno=os.dup(fd))
    except OSError as e:
        raise ValueError(f"descriptor {fd} cannot be adopted: {e.strerror or e}") from None
    if sock.family != family or sock.type != kind:
        sock.close()
        raise ValueError(f"descriptor {fd} is a {socket.AddressFamily(sock.family).name} "
                         f"{socket.SocketKind(sock.type).name} socket, not {socket.AddressFamily(family).name} "
                         f"{socket.SocketKind(kind).name}")
    sock.setblocking(False)
    return sock


def bind_inet(kind: int, interface: str, port: int, backlog: int | None, reuse: bool = True) -> socket.socket:
    family = _inet_family(interface)
    sock = socket.socket(family, kind)
    try:
        if reuse and os.name == "posix":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.bind(socket.getaddrinfo(interface, port, family, kind)[0][4])
        else:
            sock.bind((interface, port))
        if backlog is not None:
            sock.listen(backlog)
    except (OSError, OverflowError) as e:
        sock.close()
        raise CannotListenError(interface, port, e) from e
    sock.setblocking(False)
    return sock


class _Stream:
    """One open stream connection, as the reactor keeps it so that shutdown can drain it.

    ``origin`` is the :class:`ListeningPort` that accepted it or the :class:`Connector`
    that made it; ``lost`` is the transport's ``lost_hook`` (it runs after the
    protocol's ``connectionLost``) and hands on to ``then`` (the connector's own).
    """

    __slots__ = ("reactor", "origin", "transport", "then", "drain")

    def __init__(self, reactor: PortsMixin, origin: ListeningPort | Connector,
                 then: Callable[[Failure], None] | None = None) -> None:
        self.reactor = reactor
        self.origin = origin
        self.transport: Transport | None = None
        self.then = then
        self.drain: _Drain | None = None

    def register(self, transport: Transport) -> None:
        self.transport = transport
        self.reactor._streams.add(self)

    def lost(self, reason: Failure) -> None:
        self.reactor._streams.discard(self)
        drain = self.drain
        if drain is not None:
            drain.lost()
        then = self.then
        if then is not None:
            then(reason)


class _Acceptor:
    """Meets each accepted connection, builds the real protocol and steps aside.

    An asyncio protocol by shape (not by inheritance, as before the type hints);
    :meth:`ListeningPort.startListening` tells the type checker so.
    """

    __slots__ = ("_port",)

    def __init__(self, port: ListeningPort) -> None:
        self._port = port

    def connection_made(self, transport: asyncio.Transport) -> None:
        port = self._port
        addr = from_sockaddr(transport.get_extra_info("peername"), port.kind)
        try:
            protocol = port.factory.buildProtocol(addr)
        except Exception:
            _log.exception("%s.buildProtocol(%r) failed; dropping the connection", type(port.factory).__name__, addr)
            transport.abort()
            return
        if protocol is None:
            transport.abort()
            return
        transport.set_protocol(protocol)
        port.accepted += 1
        stream = _Stream(port.reactor, port)
        try:
            ours = attach(protocol, transport, port.kind, None, stream.lost)
        except Exception:
            _drop_after_failed_connection_made(protocol, transport)
            return
        stream.register(ours)

    def data_received(self, data: bytes) -> None:  # only before the hand-over, i.e. never
        pass

    def eof_received(self) -> None:
        return None

    def connection_lost(self, exc: BaseException | None) -> None:
        pass


def _drop_after_failed_connection_made(protocol: Protocol, transport: asyncio.Transport) -> None:
    """Twisted's rule: a connectionMade that raises is logged and costs the connection.

    Left alone, asyncio would only log it and keep feeding data to a protocol
    that never finished setting up.
    """
    _log.exception("%s.connectionMade failed; dropping the connection", type(protocol).__name__)
    ours = getattr(protocol, "transport", None)
    if ours is not None and hasattr(ours, "abortConnection"):
        ours.abortConnection()  # connectionLost then gets ConnectionLost
    else:
        transport.abort()


class ListeningPort:
    """A listening stream socket (TCP, UNIX or SSL) serving ``factory``."""

    def __init__(self, reactor: PortsMixin, kind: str, sock: socket.socket, factory: IProtocolFactory,
                 ssl: _ssl.SSLContext | None = None, unlink: tuple[str, ...] = ()) -> None:
        self.reactor = reactor
        self.kind = kind
        self.factory = factory
        self.connected = False
        self._sock = sock
        self._ssl = ssl
        self._unlink = unlink
        self._server: asyncio.Server | None = None
        self._pending: asyncio.Future[asyncio.Server] | None = None
        self._host = from_sockaddr(sock.getsockname(), "TCP" if kind == "SSL" else kind)
        #: Connections accepted and handed to a protocol since the port was made (twistd's metrics).
        self.accepted = 0

    def connectionCount(self) -> int:
        """How many connections this port accepted are open now (tapster's addition, for metrics)."""
        return sum(1 for s in self.reactor._streams if s.origin is self)

    def startListening(self) -> None:
        """Hand the bound socket to the loop and start the factory."""
        loop = self.reactor.loop
        self.factory.doStart()
        self.connected = True
        self.reactor._listening.add(self)
        acceptor = cast("Callable[[], asyncio.Protocol]", lambda: _Acceptor(self))
        coro = loop.create_server(acceptor, sock=self._sock, ssl=self._ssl)
        if loop.is_running():
            self._pending = pending = asyncio.ensure_future(coro, loop=loop)
            pending.add_done_callback(self._served)
        else:
            self._server = loop.run_until_complete(coro)

    def _served(self, fut: asyncio.Future[asyncio.Server]) -> None:
        self._pending = None
        if fut.cancelled():
            return
        if fut.exception() is not None:
            _log.error("could not serve %s: %s", self._describe(), fut.exception())
            return
        self._server = fut.result()
        if not self.connected:  # stopListening came first
            self._server.close()

    def getHost(self) -> IPv4Address | IPv6Address | UNIXAddress:
        return self._host

    def stopListening(self) -> None:
        """Stop accepting connections (open ones stay), stop the factory."""
        if not self.connected:
            return None
        self.connected = False
        self.reactor._listening.discard(self)
        if self._server is not None:
            self._server.close()
        elif self._pending is None:
            self._sock.close()
        for path in self._unlink:
            try:
                os.unlink(path)
            except OSError:
                pass
        self.factory.doStop()
        return None

    loseConnection = stopListening

    def drainConnections(self, timeout: float | None = None) -> asyncio.Future[int] | None:
        """Close the connections this port accepted, gracefully; None when there are none.

        tapster's addition (Twisted's ``stopListening`` leaves them open, and so
        does this one): each connection finishes its current exchange and is
        closed without a reset (:class:`_Drain`); whatever is still open after
        ``timeout`` seconds (default the reactor's ``shutdownTimeout``, never
        past the deadline of a shutdown in progress), or when the returned
        future is cancelled, is aborted. The future's result is how many were.
        Call it after :meth:`stopListening`, so that no new connection arrives
        meanwhile (``TCPServer.stopService`` does both).
        """
        reactor = self.reactor
        if not any(s.origin is self for s in reactor._streams):
            return None
        deadline = reactor._drain_deadline(timeout)
        mine = cast("Callable[[], Iterable[_Stream]]", lambda: [s for s in reactor._streams if s.origin is self])
        return asyncio.ensure_future(drain_streams(reactor, mine, deadline), loop=reactor.loop)

    def _describe(self) -> str:
        h = self._host
        return str(h.name) if isinstance(h, UNIXAddress) else f"{h.host}:{h.port}"

    def __repr__(self) -> str:
        state = "listening" if self.connected else "not listening"
        return f"<{type(self.factory).__name__} on {self.kind} {self._describe()} ({state})>"


class _ClientAdapter:
    """Meets an outgoing connection once it is up, then hands over like :class:`_Acceptor`."""

    __slots__ = ("_connector",)

    def __init__(self, connector: Connector) -> None:
        self._connector = connector

    def connection_made(self, transport: asyncio.Transport) -> None:
        connector = self._connector
        addr = from_sockaddr(transport.get_extra_info("peername"), connector.kind)
        protocol = connector.factory.buildProtocol(addr)
        if protocol is None:
            transport.abort()
            connector._connection_failed(Failure(ConnectError(string="buildProtocol refused the connection")))
            return
        transport.set_protocol(protocol)
        connector.state = "connected"
        stream = _Stream(connector.reactor, connector, connector._connection_lost)
        try:
            connector.transport = attach(protocol, transport, connector.kind, connector, stream.lost)
        except Exception:
            connector.transport = getattr(protocol, "transport", None)
            _drop_after_failed_connection_made(protocol, transport)
            return
        stream.register(connector.transport)

    def data_received(self, data: bytes) -> None:
        pass

    def eof_received(self) -> None:
        return None

    def connection_lost(self, exc: BaseException | None) -> None:
        pass


class Connector:
    """An outgoing connection attempt: ``connect()``, ``disconnect()``, ``stopConnecting()``."""

    def __init__(self, reactor: PortsMixin, kind: str, factory: ClientFactory, timeout: float,
                 open_connection: Callable[[Callable[[], asyncio.Protocol]], Awaitable[object]],
                 destination: IPv4Address | IPv6Address | UNIXAddress) -> None:
        self.reactor = reactor
        self.kind = kind
        self.factory = factory
        self.timeout = timeout
        self.state = "disconnected"
        self.transport: Transport | None = None
        self.factoryStarted = False
        self._open = open_connection
        self._destination = destination
        self._task: asyncio.Task[None] | None = None

    def connect(self) -> None:
        """Start a connection attempt (also used to reconnect after a loss)."""
        if self.state != "disconnected":
            raise RuntimeError(f"can't connect in state {self.state!r}")
        self.state = "connecting"
        if not self.factoryStarted:
            self.factory.doStart()
            self.factoryStarted = True
        self._task = self.reactor.loop.create_task(self._attempt())
        self.factory.startedConnecting(self)

    async def _attempt(self) -> None:
        try:
            timeout = self.timeout if self.timeout and self.timeout > 0 else None
            adapter = cast("Callable[[], asyncio.Protocol]", lambda: _ClientAdapter(self))  # asyncio's by shape
            await asyncio.wait_for(self._open(adapter), timeout)
        except asyncio.CancelledError:
            if self.state == "connecting":
                self._connection_failed(Failure(ConnectError(string="connection was cancelled")))
        except asyncio.TimeoutError:
            self._connection_failed(
                Failure(TimeoutError(string=f"no answer from {self._describe()} in {self.timeout}s"))
            )
        except socket.gaierror as e:
            self._connection_failed(Failure(DNSLookupError(e, self._describe())))
        except OSError as e:
            cls = ConnectionRefusedError if e.errno == errno.ECONNREFUSED else ConnectError
            self._connection_failed(Failure(cls(e.strerror or str(e), self._describe())))
        finally:
            # A factory may have reconnected from clientConnectionFailed: that new
            # attempt's task must stay reachable for stopConnecting().
            if self._task is asyncio.current_task():
                self._task = None

    def _connection_failed(self, reason: Failure) -> None:
        self.transport = None
        self.state = "disconnected"
        self.factory.clientConnectionFailed(self, reason)
        if self.state == "disconnected":
            self._stop_factory()

    def _connection_lost(self, reason: Failure) -> None:
        self.transport = None
        self.state = "disconnected"
        self.factory.clientConnectionLost(self, reason)
        if self.state == "disconnected":
            self._stop_factory()

    def _stop_factory(self) -> None:
        if self.factoryStarted:
            self.factoryStarted = False
            self.factory.doStop()

    def stopConnecting(self) -> None:
        """Abandon the attempt in progress; the factory hears clientConnectionFailed."""
        if self.state != "connecting" or self._task is None:
            raise NotConnectingError("we're not trying to connect")
        self._task.cancel()

    def disconnect(self) -> None:
        """Stop connecting, or close the established connection."""
        if self.state == "connecting":
            self.stopConnecting()
        elif self.state == "connected" and self.transport is not None:
            self.transport.loseConnection()

    def getDestination(self) -> IAddress:
        return self._destination

    def _describe(self) -> str:
        d = self._destination
        return str(d.name) if isinstance(d, UNIXAddress) else describe_address(d.host, d.port)

    def __repr__(self) -> str:
        return f"<Connector {self.kind} to {self._describe()} ({self.state})>"


class DatagramTransport:
    """``protocol.transport`` of a datagram port: ``write(data, addr)`` and multicast controls."""

    def __init__(self, port: DatagramPort, aio_transport: asyncio.DatagramTransport) -> None:
        self._port = port
        self._t = aio_transport
        self._connected_to: tuple[str, int] | None = None

    def write(self, datagram: bytes, addr: DatagramAddress | None = None) -> None:
        if addr is None:
            # After connect() the asyncio transport still thinks the socket is
            # unconnected, so it needs the peer spelled out.
            addr = self._connected_to
            if addr is None and self._port.kind != "UNIXConnected":
                raise ValueError("write() needs an address on an unconnected datagram port")
        self._t.sendto(datagram, addr)

    def writeSequence(self, seq: Iterable[bytes], addr: DatagramAddress | None = None) -> None:
        self.write(b"".join(seq), addr)

    def connect(self, host: str, port: int) -> None:
        """Talk to one peer only: write() without an address goes there."""
        if self._connected_to is not None:
            raise RuntimeError("already connected, reconnecting is not supported")
        self._port._sock.connect((host, port))
        self._connected_to = (host, port)

    def getHost(self) -> IAddress:
        return self._port.getHost()

    def getPeer(self) -> IAddress | None:
        return from_sockaddr(self._connected_to, "UDP") if self._connected_to else None

    def stopListening(self) -> None:
        self._port.stopListening()

    loseConnection = stopListening

    # -- multicast -------------------------------------------------------------

    def _sockopt(self, level: int, opt: int, value: int | bytes) -> None:
        self._port._sock.setsockopt(level, opt, value)

    def joinGroup(self, addr: str, interface: str = "") -> None:
        """Join multicast group ``addr`` on ``interface`` (default: any)."""
        mreq = socket.inet_aton(addr) + socket.inet_aton(interface or "0.0.0.0")
        self._sockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)

    def leaveGroup(self, addr: str, interface: str = "") -> None:
        mreq = socket.inet_aton(addr) + socket.inet_aton(interface or "0.0.0.0")
        self._sockopt(socket.IPPROTO_IP, socket.IP_DROP_MEMBERSHIP, mreq)

    def setTTL(self, ttl: int) -> None:
        self._sockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, struct.pack("B", ttl))

    def getTTL(self) -> int:
        return self._port._sock.getsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL)

    def setLoopbackMode(self, mode: bool) -> None:
        self._sockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, struct.pack("B", int(bool(mode))))

    def getLoopbackMode(self) -> bool:
        return bool(self._port._sock.getsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP))

    def setOutgoingInterface(self, addr: str) -> None:
        self._sockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(addr))

    def setBroadcastAllowed(self, enabled: bool) -> None:
        self._sockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, int(bool(enabled)))

    def getBroadcastAllowed(self) -> bool:
        return bool(self._port._sock.getsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST))


class _DatagramAdapter:
    __slots__ = ("_port",)

    def __init__(self, port: DatagramPort) -> None:
        self._port = port

    def connection_made(self, transport: asyncio.DatagramTransport) -> None:
        port = self._port
        transport.set_protocol(port.protocol)
        port.transport = DatagramTransport(port, transport)
        port.protocol.makeConnection(port.transport)

    def datagram_received(self, data: bytes, addr: object) -> None:  # before hand-over: never
        pass

    def error_received(self, exc: BaseException) -> None:
        pass

    def connection_lost(self, exc: BaseException | None) -> None:
        pass


class DatagramPort:
    """A bound datagram socket (UDP, multicast, UNIX datagram) serving one DatagramProtocol."""

    def __init__(self, reactor: PortsMixin, kind: str, sock: socket.socket, protocol: DatagramProtocol,
                 unlink: str | None = None) -> None:
        self.reactor = reactor
        self.kind = kind
        self.protocol = protocol
        self.transport: DatagramTransport | None = None
        self.connected = False
        self._sock = sock
        self._unlink = unlink
        self._aio: asyncio.DatagramTransport | None = None
        self._host = from_sockaddr(sock.getsockname(), "UDP")

    def startListening(self) -> None:
        loop = self.reactor.loop
        self.connected = True
        adapter = cast("Callable[[], asyncio.DatagramProtocol]", lambda: _DatagramAdapter(self))  # by shape
        coro = loop.create_datagram_endpoint(adapter, sock=self._sock)
        if loop.is_running():
            fut = asyncio.ensure_future(coro, loop=loop)
            fut.add_done_callback(self._served)
        else:
            self._aio = loop.run_until_complete(coro)[0]

    def _served(self, fut: asyncio.Future[tuple[asyncio.DatagramTransport, asyncio.DatagramProtocol]]) -> None:
        if fut.cancelled() or fut.exception() is not None:
            _log.error(
                "could not serve datagrams on %s: %s",
                self._host,
                fut.exception() if not fut.cancelled() else "cancelled",
            )
            return
        self._aio = fut.result()[0]
        if not self.connected:
            self._aio.close()

    def getHost(self) -> IAddress:
        return self._host

    def stopListening(self) -> None:
        if not self.connected:
            return None
        self.connected = False
        if self._aio is not None:
            self._aio.close()
        if self._unlink:
            try:
                os.unlink(self._unlink)
            except OSError:
                pass
        if self.protocol.transport is not None:
            self.protocol.doStop()
        return None

    loseConnection = stopListening

    def __repr__(self) -> str:
        return f"<{type(self.protocol).__name__} on {self.kind} {self._host}>"


def _prepare_unix_path(path: str) -> None:
    """Remove a stale socket file left by a dead server; refuse to clobber anything else."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    except OSError as e:
        raise CannotListenError(path, None, e) from e
    if not stat.S_ISSOCK(st.st_mode):
        raise CannotListenError(path, None, OSError(errno.EEXIST, "a file that is not a socket is in the way"))
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError as e:
        # Compare errno: the name ConnectionRefusedError is tapster.core.errors' in this module,
        # not the builtin OSError subclass that connect() raises.
        if e.errno == errno.ECONNREFUSED:
            os.unlink(path)  # nobody listens: left over from a crash
        return  # otherwise a datagram socket or no permission: let bind report it
    finally:
        probe.close()
    raise CannotListenError(path, None, OSError(errno.EADDRINUSE, "Address already in use"))


def bind_unix(kind: int, path: str, backlog: int | None, mode: int | None) -> socket.socket:
    _prepare_unix_path(path)
    sock = socket.socket(socket.AF_UNIX, kind)
    try:
        sock.bind(path)
        if mode is not None:
            os.chmod(path, mode)
        if backlog is not None:
            sock.listen(backlog)
    except OSError as e:
        sock.close()
        raise CannotListenError(path, None, e) from e
    sock.setblocking(False)
    return sock


# -- draining: closing stream connections gracefully --------------------------------

#: After our FIN, a peer that sends nothing for this long (and has taken everything we
#: wrote) is closed without waiting for its own EOF: it has been told, it just does not answer.
_QUIET = 0.25
#: How often a draining connection that is still busy is looked at again (beside the
#: look right after each read while it drains).
_SWEEP = 0.01


def _unread(aio: asyncio.BaseTransport) -> int:
    """Bytes waiting in the kernel's receive queue of ``aio``'s socket (FIONREAD); 0 if unknown."""
    import fcntl
    import termios

    sock = aio.get_extra_info("socket")
    try:
        raw = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
    except (AttributeError, OSError, ValueError):
        return 0
    return int(struct.unpack("i", raw)[0])


def _between_exchanges(transport: Transport) -> bool:
    """A protocol that knows nothing of requests is between two exchanges when this holds.

    Everything the peer sent has been read and handled (the kernel holds nothing
    unread and reading is not paused), and everything the protocol wrote in
    reply has left the transport's buffer (no producer is still writing). Right
    after a request/response round this is true until the peer's next request
    arrives, which is the moment to close.
    """
    aio = transport._t
    return (
        transport.producer is None
        and aio.get_write_buffer_size() == 0
        and aio.is_reading()
        and _unread(aio) == 0
    )


def _discard_write(data: bytes) -> None:
    """``transport.write`` once the close is decided: Twisted drops writes after loseConnection too."""


class _Watch:
    """The asyncio protocol of a draining connection until its close is decided.

    It forwards everything to the real protocol and, after each read (and each
    time the write buffer drains), asks the drain to look again. It is put in
    place with ``set_protocol`` only when draining starts, so serving never pays for it.
    """

    __slots__ = ("_protocol", "_drain")

    def __init__(self, protocol: Protocol, drain: _Drain) -> None:
        self._protocol = protocol
        self._drain = drain

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # never: already connected
        pass

    def data_received(self, data: bytes) -> None:
        self._protocol.data_received(data)
        self._drain.look_soon()

    def eof_received(self) -> bool | None:
        return self._protocol.eof_received()

    def pause_writing(self) -> None:
        self._protocol.pause_writing()

    def resume_writing(self) -> None:
        self._protocol.resume_writing()
        self._drain.look_soon()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._protocol.connection_lost(exc)


class _Discard(_Watch):
    """The asyncio protocol once the close is decided and our FIN is on its way.

    What the peer still sends is read and dropped, so that the kernel never
    holds unread data when the socket closes (it would answer with a reset);
    the peer's EOF closes the connection (``eof_received`` says so by returning None).
    """

    __slots__ = ()

    def data_received(self, data: bytes) -> None:
        self._drain.heard()

    def eof_received(self) -> bool | None:
        return None

    def pause_writing(self) -> None:  # keep reading (and dropping) whatever the buffer does
        pass

    def resume_writing(self) -> None:
        pass


class _Drain:
    """Drains one connection: let it finish its exchange, then close it without a reset.

    In order:

    1. The protocol is asked first: ``connectionDraining()`` may return an
       awaitable (it finishes the exchange its own way, for example an HTTP
       server ending the current response and closing); the close follows when
       it completes, unless the protocol closed the connection itself.
       Returning None (the default) leaves it to the generic rule.
    2. The generic rule, for a protocol that knows nothing of requests: the
       connection keeps being served, and as soon as it is between exchanges
       (:func:`_between_exchanges`, looked at right after each read and every
       ``_SWEEP`` seconds) the close is decided.
    3. The close: writes from then on are dropped, the write side is shut
       after the buffer is flushed (``write_eof``: a FIN, not a reset), and
       reading goes on, dropping what arrives, until the peer's EOF or until it
       has been quiet for ``_QUIET`` seconds.

    What is still open at the deadline is aborted by :func:`drain_streams`.
    """

    __slots__ = ("stream", "transport", "done", "closing", "aborted", "_loop", "_heard", "_looking", "_handed")

    def __init__(self, stream: _Stream, transport: Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.stream = stream
        self.transport = transport
        self._loop = loop
        self.done: asyncio.Future[None] = loop.create_future()
        self.closing = False
        self.aborted = False
        self._heard = loop.time()
        self._looking = False
        self._handed = False  # the protocol's connectionDraining took over

    @property
    def _aio(self) -> asyncio.Transport:
        return self.transport._t

    def start(self) -> None:
        transport = self.transport
        if not transport.connected or self._aio.is_closing():
            return  # the protocol is closing it already: wait for connectionLost
        protocol = transport.protocol
        hook = getattr(protocol, "connectionDraining", None)
        result: object = None
        if hook is not None:
            try:
                result = hook()
            except Exception:
                _log.exception("%s.connectionDraining failed; closing the connection", type(protocol).__name__)
                self.close()
                return
        if self.done.done() or self._aio.is_closing():
            return
        if result is not None and inspect.isawaitable(result):
            self._handed = True
            asyncio.ensure_future(result, loop=self._loop).add_done_callback(self._protocol_done)
            return
        self._aio.set_protocol(cast("asyncio.BaseProtocol", _Watch(protocol, self)))  # asyncio's by shape
        self.look()

    def _protocol_done(self, fut: asyncio.Future[object]) -> None:
        if not fut.cancelled() and fut.exception() is not None:
            _log.error("%s.connectionDraining failed: %r", type(self.transport.protocol).__name__, fut.exception(),
                       exc_info=fut.exception())
        self.close()

    def look_soon(self) -> None:
        # On the next loop turn, so that writes a protocol defers to the end of this one are counted.
        if not self._looking and not self.closing:
            self._looking = True
            self._loop.call_soon(self._look_now)

    def _look_now(self) -> None:
        self._looking = False
        self.look()

    def look(self) -> None:
        if self.closing or self._handed or self.done.done() or self._aio.is_closing():
            return
        if _between_exchanges(self.transport):
            self.close()

    def heard(self) -> None:
        self._heard = self._loop.time()

    def close(self) -> None:
        """Decide the close: from now on nothing more is read for the protocol nor written by it."""
        if self.closing or self.done.done():
            return
        self.closing = True
        transport, aio = self.transport, self._aio
        if aio.is_closing():
            return
        transport.disconnecting = True
        transport.write = _discard_write
        aio.set_protocol(cast("asyncio.BaseProtocol", _Discard(transport.protocol, self)))
        self._heard = self._loop.time()
        if not aio.is_reading():
            aio.resume_reading()  # to see the peer's EOF (and keep its data from piling up)
        if aio.can_write_eof():
            try:
                aio.write_eof()
                return
            except (OSError, RuntimeError):
                pass
        aio.close()  # TLS: close_notify after the flush; there is no half-close to use

    def sweep(self) -> None:
        """Called every ``_SWEEP`` seconds while draining."""
        if self.done.done():
            return
        if not self.closing:
            self.look()
            return
        aio = self._aio
        if self._loop.time() - self._heard >= _QUIET and aio.get_write_buffer_size() == 0:
            if aio.is_closing():
                aio.abort()  # a TLS close waiting for a close_notify that does not come; nothing is unread
            else:
                aio.close()

    def abort(self) -> bool:
        """Time is up: abortConnection (the protocol hears ConnectionLost). True if this call did it."""
        if self.done.done() or self.aborted:
            return False
        self.aborted = True
        self.transport.abortConnection()
        return True

    def lost(self) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def drain_streams(reactor: PortsMixin, streams: Callable[[], Iterable[_Stream]], deadline: float) -> int:
    """Drain the connections ``streams()`` lists (looked up again on every sweep, for late arrivals).

    Returns once all are closed, or at ``deadline`` (the loop's clock) after
    aborting those still open; cancelling it aborts them too. The result is how
    many were aborted; they are also added to ``reactor.forcedDisconnects``, which
    is how twistd knows a stop was forced.
    """
    loop = reactor.loop
    drains: set[_Drain] = set()
    try:
        while True:
            for stream in list(streams()):
                drain = stream.drain
                if drain is None and stream.transport is not None:
                    drain = stream.drain = _Drain(stream, stream.transport, loop)
                    drains.add(drain)
                    drain.start()
                elif drain is not None:
                    drains.add(drain)  # another drain (the port's, the reactor's) may have started it
            drains = {d for d in drains if not d.done.done()}
            if not drains:
                return 0
            now = loop.time()
            if now >= deadline:
                break
            await asyncio.sleep(min(_SWEEP, deadline - now))
            for d in drains:
                d.sweep()
    finally:
        aborted = sum(d.abort() for d in drains)
        if aborted:
            reactor.forcedDisconnects += aborted
            _log.warning("%d connection(s) still busy at the end of the shutdown timeout: aborted", aborted)
    # Let the aborted ones hear connectionLost before the loop may stop.
    await asyncio.wait([d.done for d in drains], timeout=1.0)
    return aborted


class PortsMixin:
    """The listen*/connect* half of the reactor interface."""

    if TYPE_CHECKING:  # AsyncioReactor provides them

        @property
        def loop(self) -> asyncio.AbstractEventLoop: ...

        _streams: set[_Stream]
        _listening: set[ListeningPort]
        forcedDisconnects: int

        def _drain_deadline(self, timeout: float | None) -> float: ...

    # -- stream servers ------------------------------------------------------

    def listenTCP(self, port: int, factory: IProtocolFactory, backlog: int = 50, interface: str = "") -> ListeningPort:
        """Listen on TCP ``interface:port`` (all IPv4 interfaces by default); bound before returning."""
        sock = _adopt(inet_key(interface, port), backlog) or bind_inet(socket.SOCK_STREAM, interface, port, backlog)
        p = ListeningPort(self, "TCP", sock, factory)
        p.startListening()
        return p

    def listenSSL(self, port: int, factory: IProtocolFactory, contextFactory: IOpenSSLContextFactory | _ssl.SSLContext,
                  backlog: int = 50, interface: str = "") -> ListeningPort:
        """Like listenTCP, with TLS from ``contextFactory`` (an ``ssl.SSLContext`` or ``.getContext()``)."""
        ctx = _ssl_context(contextFactory)
        sock = _adopt(inet_key(interface, port), backlog) or bind_inet(socket.SOCK_STREAM, interface, port, backlog)
        p = ListeningPort(self, "SSL", sock, factory, ssl=ctx)
        p.startListening()
        return p

    def listenUNIX(self, address: str, factory: IProtocolFactory, backlog: int = 50, mode: int = 0o666,
                   wantPID: bool = False) -> ListeningPort:
        """Listen on a UNIX socket path; a stale socket file from a crash is replaced."""
        adopted = _adopt(unix_key(address), backlog)
        if adopted is not None:  # its path belongs to the process that bound it: never unlinked here
            p = ListeningPort(self, "UNIX", adopted, factory)
            p.startListening()
            return p
        lock = None
        if wantPID:
            lock = _pid_lock(address)
        try:
            sock = bind_unix(socket.SOCK_STREAM, address, backlog, mode)
        except CannotListenError:
            if lock:
                os.unlink(lock)
            raise
        p = ListeningPort(self, "UNIX", sock, factory, unlink=(address, lock) if lock else (address,))
        p.startListening()
        return p

    # -- stream clients ------------------------------------------------------

    def connectTCP(self, host: str, port: int, factory: ClientFactory, timeout: float = 30,
                   bindAddress: tuple[str, int] | None = None) -> Connector:
        loop = self.loop

        def open_connection(pf: Callable[[], asyncio.Protocol]) -> Awaitable[object]:
            return loop.create_connection(pf, host, port, local_addr=bindAddress)

        c = Connector(self, "TCP", factory, timeout, open_connection, _destination(host, port))
        c.connect()
        return c

    def connectSSL(self, host: str, port: int, factory: ClientFactory,
                   contextFactory: IOpenSSLContextFactory | _ssl.SSLContext, timeout: float = 30,
                   bindAddress: tuple[str, int] | None = None) -> Connector:
        loop = self.loop
        ctx = _ssl_context(contextFactory)

        def open_connection(pf: Callable[[], asyncio.Protocol]) -> Awaitable[object]:
            return loop.create_connection(pf, host, port, ssl=ctx, local_addr=bindAddress,
                                          server_hostname=getattr(contextFactory, "hostname", None) or host)

        c = Connector(self, "SSL", factory, timeout, open_connection, _destination(host, port))
        c.connect()
        return c

    def connectUNIX(
        self, address: str, factory: ClientFactory, timeout: float = 30, checkPID: bool = False
    ) -> Connector:
        loop = self.loop

        def open_connection(pf: Callable[[], asyncio.Protocol]) -> Awaitable[object]:
            return loop.create_unix_connection(pf, address)

        c = Connector(self, "UNIX", factory, timeout, open_connection, UNIXAddress(address))
        c.connect()
        return c

    # -- datagrams -------------------------------------------------------------

    def adoptStreamPort(self, fileDescriptor: int, addressFamily: int, factory: IProtocolFactory) -> ListeningPort:
        """Serve ``factory`` on a listening stream socket someone else opened (Twisted's IReactorSocket).

        The descriptor is duplicated: the caller still owns (and should close)
        ``fileDescriptor``. ``addressFamily`` is ``socket.AF_INET``,
        ``AF_INET6`` or ``AF_UNIX``; a descriptor of another family or kind is
        refused with ValueError.
        """
        sock = _adopted_socket(fileDescriptor, addressFamily, socket.SOCK_STREAM)
        if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
            sock.close()
            raise ValueError(f"descriptor {fileDescriptor} is a stream socket that does not listen")
        kind = "UNIX" if addressFamily == socket.AF_UNIX else "TCP"
        p = ListeningPort(self, kind, sock, factory)
        p.startListening()
        return p

    def adoptDatagramPort(self, fileDescriptor: int, addressFamily: int, protocol: DatagramProtocol,
                          maxPacketSize: int = 8192) -> DatagramPort:
        """Serve ``protocol`` on a bound datagram socket someone else opened (duplicated, as adoptStreamPort)."""
        sock = _adopted_socket(fileDescriptor, addressFamily, socket.SOCK_DGRAM)
        p = DatagramPort(self, "UNIX" if addressFamily == socket.AF_UNIX else "UDP", sock, protocol)
        p.startListening()
        return p

    def listenUDP(self, port: int, protocol: DatagramProtocol, interface: str = "",
                  maxPacketSize: int = 8192) -> DatagramPort:
        sock = bind_inet(socket.SOCK_DGRAM, interface, port, None, reuse=False)
        p = DatagramPort(self, "UDP", sock, protocol)
        p.startListening()
        return p

    def listenMulticast(self, port: int, protocol: DatagramProtocol, interface: str = "", maxPacketSize: int = 8192,
                        listenMultiple: bool = False) -> DatagramPort:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if listenMultiple and hasattr(socket, "SO_REUSEPORT"):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((interface, port))
        except OSError as e:
            sock.close()
            raise CannotListenError(interface, port, e) from e
        sock.setblocking(False)
        p = DatagramPort(self, "UDP", sock, protocol)
        p.startListening()
        return p

    def listenUNIXDatagram(self, address: str, protocol: DatagramProtocol, maxPacketSize: int = 8192,
                           mode: int = 0o666) -> DatagramPort:
        sock = bind_unix(socket.SOCK_DGRAM, address, None, mode)
        p = DatagramPort(self, "UNIX", sock, protocol, unlink=address)
        p.startListening()
        return p

    def connectUNIXDatagram(
        self,
        address: str,
        protocol: DatagramProtocol,
        maxPacketSize: int = 8192,
        mode: int = 0o666,
        bindAddress: str | None = None,
    ) -> DatagramPort:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            if bindAddress:
                _prepare_unix_path(bindAddress)
                sock.bind(bindAddress)
                os.chmod(bindAddress, mode)
            sock.connect(address)
        except OSError as e:
            sock.close()
            raise ConnectError(e.strerror or str(e), address) from e
        sock.setblocking(False)
        p = DatagramPort(self, "UNIXConnected", sock, protocol, unlink=bindAddress)
        p.startListening()
        return p


def _destination(host: str, port: int) -> IPv4Address | IPv6Address:
    """What ``connector.getDestination()`` reports: an IPv6Address for an IPv6 literal."""
    try:
        if ipaddress.ip_address(host.split("%")[0]).version == 6:
            return IPv6Address("TCP", host, port)
    except ValueError:  # a host name
        pass
    return IPv4Address("TCP", host, port)


def _pid_lock(address: str) -> str:
    """Twisted's ``wantPID``: ``<address>.lock`` holds our pid; a live holder means in use."""
    lock = address + ".lock"
    try:
        with open(lock) as f:
            pid = int(f.read().strip() or 0)
    except (FileNotFoundError, ValueError):
        pid = 0
    if pid and pid != os.getpid():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            pass
        except PermissionError:
            raise CannotListenError(address, None, OSError(errno.EADDRINUSE, f"locked by live pid {pid}")) from None
        else:
            raise CannotListenError(address, None, OSError(errno.EADDRINUSE, f"locked by live pid {pid}"))
    try:
        with open(lock, "w") as f:
            f.write(str(os.getpid()))
    except OSError as e:  # no such directory, no permission: the same error binding would give
        raise CannotListenError(address, None, e) from None
    return lock
