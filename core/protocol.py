"""Protocols and factories with Twisted's names, running directly on asyncio transports.

The contract of a stream protocol, in the order the callbacks arrive::

    makeConnection(transport)      # sets .transport and .connected, then
      connectionMade()             # once
      dataReceived(data)*          # zero or more times, bytes as they arrive
      connectionDraining()         # at most once, if the server stops gracefully
      connectionLost(reason)       # once; reason is a Failure of ConnectionDone
                                   # (clean close) or ConnectionLost (anything else)

A :class:`Protocol` is itself the asyncio protocol object: ``data_received``
is bound to ``dataReceived`` *at class level* when a subclass is created,
because uvloop looks the method up once per connection and ignores instance
attributes. The result is that a byte from the socket reaches
``dataReceived`` with no adapter frame in between. Consequently, assigning
``protocol.dataReceived = f`` on an *instance*, or on the class after it was
created, does not reroute data; define it in the class body.

A :class:`Factory` builds one protocol per connection (``buildProtocol(addr)``;
returning ``None`` refuses the connection) and is told when it starts and stops
serving (``doStart``/``doStop`` → ``startFactory``/``stopFactory``, counted
over all the ports it listens on). Factories are saved with the application;
protocols are not.

This module imports neither asyncio nor socket: plugin modules can import it
at the top without slowing down ``mktap --help``.
"""

from __future__ import annotations

import logging
import random
import types
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

from tapster.core._reactor.transport import attach
from tapster.core.errors import ConnectionDone, ConnectionLost
from tapster.core.failure import Failure

if TYPE_CHECKING:
    import asyncio
    from typing import Self

    from tapster.core._reactor.transport import Transport
    from tapster.core.interfaces import IAddress, IConnector, IDelayedCall, IReactorTime, ITransport, IUDPTransport

    # A Protocol *is* an asyncio protocol (it has every callback asyncio calls), without
    # inheriting from asyncio's classes: that would import asyncio. The type checker is told.
    _AsyncioProtocol = asyncio.Protocol
    _AsyncioDatagramProtocol = asyncio.DatagramProtocol
else:
    _AsyncioProtocol = _AsyncioDatagramProtocol = object

__all__ = [
    "BaseProtocol",
    "Protocol",
    "Factory",
    "ServerFactory",
    "ClientFactory",
    "ReconnectingClientFactory",
    "DatagramProtocol",
    "ConnectedDatagramProtocol",
    "connectionDone",
]

_log = logging.getLogger("tapster.protocol")

#: The reason handed to ``connectionLost`` when a connection closed cleanly.
connectionDone = Failure(ConnectionDone())


def _reason(exc: BaseException | None) -> Failure:
    if exc is None:
        return connectionDone  # shared, as in Twisted: every clean close would otherwise build one
    if isinstance(exc, (ConnectionDone, ConnectionLost)):
        return Failure(exc)
    return Failure(ConnectionLost(exc))


class BaseProtocol:
    """What every protocol has: a transport and the moment it was connected."""

    connected = 0
    #: Set by :meth:`makeConnection`; None before the connection is made (as in Twisted).
    transport: ITransport | None = None

    def makeConnection(self, transport: ITransport) -> None:
        """Attach ``transport`` and call :meth:`connectionMade`. Called by the reactor."""
        self.connected = 1
        self.transport = transport
        self.connectionMade()

    def connectionMade(self) -> None:
        """The connection is up; ``self.transport`` may be written to."""

    def logPrefix(self) -> str:
        return type(self).__name__


def _takes_no_reason(method: object) -> bool:
    """Whether ``method`` is a plain function declared ``connectionLost(self)``: code of 2002 does that.

    Read from the code object, once, when the class is created (not per call,
    and without importing :mod:`inspect`, which the help paths avoid).
    """
    code = getattr(method, "__code__", None)
    if code is None or not isinstance(method, types.FunctionType):
        return False
    has_varargs = bool(code.co_flags & 0x04)  # CO_VARARGS
    return code.co_argcount == 1 and not has_varargs


def _ignoring_reason(method: Callable[[Any], object]) -> Callable[..., object]:
    """``connectionLost(self)`` made callable as ``connectionLost(self, reason)``, as Twisted's callers do."""

    def connectionLost(self: Any, reason: object = None) -> object:
        return method(self)

    connectionLost.__doc__ = method.__doc__
    connectionLost.__qualname__ = method.__qualname__
    connectionLost.__module__ = method.__module__
    connectionLost.__wrapped__ = method  # type: ignore[attr-defined]
    return connectionLost


class Protocol(BaseProtocol, _AsyncioProtocol):
    """A stream protocol: override :meth:`dataReceived` and friends.

    The asyncio callbacks (``connection_made``, ``data_received``,
    ``connection_lost``, ``pause_writing``, ``resume_writing``,
    ``eof_received``) are the adapter; do not override them.
    """

    #: The factory that built this protocol (set by :meth:`Factory.buildProtocol`).
    factory: Factory | None = None

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        # The hot path: asyncio/uvloop call data_received, which *is* dataReceived.
        # A class that defines data_received itself (asyncio-native code) keeps it.
        if "data_received" not in cls.__dict__:
            cls.data_received = cls.dataReceived
        lost = cls.__dict__.get("connectionLost")
        if _takes_no_reason(lost):
            cls.connectionLost = _ignoring_reason(lost)  # type: ignore[method-assign, assignment, arg-type]  # 2002 code

    def dataReceived(self, data: bytes) -> None:
        """Bytes arrived. There is no message framing: ``data`` may be any slice of the stream."""

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """The connection is gone; ``reason`` says why. No more writes are possible."""

    def connectionDraining(self) -> Awaitable[object] | None:
        """The server is stopping gracefully: finish the current exchange. tapster's addition.

        Called once, when SIGTERM, ``reactor.stop()`` or the ``stopService`` of
        the port that accepted this connection starts draining it. Return None
        (the default) to let the reactor decide: it closes the connection as
        soon as it is between two exchanges (everything received has been read
        and handled, everything written has left the buffer), with a FIN, never
        a reset. A protocol that knows its requests can do better: finish the
        one in progress (an HTTP server answers it with ``Connection: close``)
        and return an awaitable that completes then; the reactor closes the
        connection after it if the protocol did not. Either way, what is still
        open at the shutdown timeout is aborted (``connectionLost`` hears
        ConnectionLost). Twisted has no such hook.
        """
        return None

    # -- asyncio protocol interface ------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        attach(self, transport)

    data_received = dataReceived

    def eof_received(self) -> bool | None:
        # Twisted's IHalfCloseableProtocol: a protocol with readConnectionLost() is told
        # that the peer finished sending and keeps the connection open for writing (it
        # closes it itself). Any other protocol is closed, then hears connectionLost.
        readConnectionLost = getattr(self, "readConnectionLost", None)
        if readConnectionLost is None:
            return None
        readConnectionLost()
        return True

    def connection_lost(self, exc: BaseException | None) -> None:
        # asyncio calls this only after connection_made, so the transport is attach()'s.
        transport = cast("Transport | None", self.transport)
        if exc is None and getattr(transport, "_aborted", False):
            exc = ConnectionLost("the connection was aborted locally")
        reason = _reason(exc)
        self.connected = 0
        if transport is None:
            self.connectionLost(reason)
            return
        transport._connection_lost(reason)
        try:
            self.connectionLost(reason)
        finally:
            hook = transport._lost_hook
            if hook is not None:
                hook(reason)

    def pause_writing(self) -> None:
        cast("Transport", self.transport)._pause_writing()

    def resume_writing(self) -> None:
        cast("Transport", self.transport)._resume_writing()


class Factory:
    """Builds protocols for the connections of one or more ports.

    ``protocol`` is the class instantiated by :meth:`buildProtocol`; the
    instance gets ``.factory`` pointing back here.
    """

    protocol: Callable[[], Protocol] | None = None
    numPorts = 0
    noisy = True

    @classmethod
    def forProtocol(cls, protocol: Callable[[], Protocol], *args: object, **kwargs: object) -> Self:
        """A factory of this class whose ``protocol`` is ``protocol``."""
        factory = cls(*args, **kwargs)
        factory.protocol = protocol
        return factory

    def logPrefix(self) -> str:
        return type(self).__name__

    def doStart(self) -> None:
        """Called by each port that starts using this factory; starts it on the first."""
        if not self.numPorts:
            if self.noisy:
                _log.debug("Starting factory %r", self)
            self.startFactory()
        self.numPorts += 1

    def doStop(self) -> None:
        """Called by each port that stops; stops the factory with the last one."""
        if self.numPorts == 0:
            return
        self.numPorts -= 1
        if not self.numPorts:
            if self.noisy:
                _log.debug("Stopping factory %r", self)
            self.stopFactory()

    def startFactory(self) -> None:
        """Acquire what the protocols share (open files, connections). Override."""

    def stopFactory(self) -> None:
        """Release what :meth:`startFactory` acquired. Override."""

    def buildProtocol(self, addr: IAddress) -> Protocol | None:
        """A new protocol for a connection from ``addr``; ``None`` refuses the connection."""
        assert self.protocol is not None, f"{type(self).__name__}.protocol is not set"
        p = self.protocol()
        p.factory = self
        return p

    def __getstate__(self) -> dict[str, object]:
        # How many ports use the factory is a fact about this process, not the application.
        state = self.__dict__.copy()
        state.pop("numPorts", None)
        return state


class ServerFactory(Factory):
    """A factory for servers (nothing more than :class:`Factory`, named for clarity)."""


class ClientFactory(Factory):
    """A factory for outgoing connections; told how connection attempts went."""

    def startedConnecting(self, connector: IConnector) -> None:
        """A connection attempt has started; ``connector.stopConnecting()`` cancels it."""

    def clientConnectionFailed(self, connector: IConnector, reason: Failure) -> None:
        """The connection attempt failed; ``connector.connect()`` would try again."""

    def clientConnectionLost(self, connector: IConnector, reason: Failure) -> None:
        """An established connection was lost; ``connector.connect()`` reconnects."""


class ReconnectingClientFactory(ClientFactory):
    """A client factory that reconnects with exponential back-off and jitter.

    Call :meth:`resetDelay` once a connection is known good (typically in the
    protocol's ``connectionMade``), :meth:`stopTrying` to give up.
    """

    maxDelay = 3600
    initialDelay = 1.0
    factor = 2.7182818284590451
    jitter = 0.11962656472
    delay = initialDelay
    retries = 0
    maxRetries: int | None = None
    _callID: IDelayedCall | None = None
    connector: IConnector | None = None
    #: What schedules the retries; the shared reactor when None (tests set a Clock).
    clock: IReactorTime | None = None
    continueTrying = 1

    def clientConnectionFailed(self, connector: IConnector, reason: Failure) -> None:
        if self.continueTrying:
            self.connector = connector
            self.retry()

    def clientConnectionLost(self, connector: IConnector, unused_reason: Failure) -> None:
        if self.continueTrying:
            self.connector = connector
            self.retry()

    def retry(self, connector: IConnector | None = None) -> None:
        """Schedule the next connection attempt after the current delay."""
        if not self.continueTrying:
            return
        if connector is None:
            if self.connector is None:
                raise ValueError("no connector to retry")
            connector = self.connector
        self.retries += 1
        if self.maxRetries is not None and self.retries > self.maxRetries:
            if self.noisy:
                _log.info("Abandoning %r after %d retries.", connector, self.retries)
            return
        self.delay = min(self.delay * self.factor, self.maxDelay)
        if self.jitter:
            self.delay = random.normalvariate(self.delay, self.delay * self.jitter)
        if self.noisy:
            _log.info("%r will retry in %d seconds", connector, self.delay)

        def reconnector() -> None:
            self._callID = None
            connector.connect()

        clock = self.clock
        if clock is None:
            from tapster.core import reactor

            clock = reactor.getReactor()  # the shared reactor
        self._callID = clock.callLater(self.delay, reconnector)

    def stopTrying(self) -> None:
        """Stop retrying, cancel a pending attempt and any connection in progress."""
        if self._callID:
            self._callID.cancel()
            self._callID = None
        self.continueTrying = 0
        if self.connector:
            try:
                self.connector.stopConnecting()
            except Exception:  # noqa: BLE001 - not connecting: nothing to stop
                pass

    def resetDelay(self) -> None:
        """Call after a successful connection: the next failure starts from the initial delay."""
        self.delay = self.initialDelay
        self.retries = 0
        self._callID = None
        self.continueTrying = 1

    def __getstate__(self) -> dict[str, object]:
        state = super().__getstate__()
        for key in ("connector", "retries", "delay", "continueTrying", "_callID", "clock"):
            state.pop(key, None)
        return state


class DatagramProtocol(_AsyncioDatagramProtocol):
    """A UDP (or UNIX datagram) protocol: override :meth:`datagramReceived`.

    ``startProtocol`` runs when the port starts listening, ``stopProtocol``
    when it stops. ``self.transport.write(data, addr)`` sends.
    """

    #: The port's transport while listening, else None.
    transport: IUDPTransport | None = None
    numPorts = 0
    noisy = True

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        # The alias asyncio calls, rebound per subclass as for Protocol.data_received; declared
        # above with asyncio's argument name, which Twisted's datagramReceived does not share.
        cls.datagram_received = cls.datagramReceived  # type: ignore[method-assign, assignment]

    def logPrefix(self) -> str:
        return type(self).__name__

    def doStart(self) -> None:
        if not self.numPorts:
            self.startProtocol()
        self.numPorts += 1

    def doStop(self) -> None:
        if self.numPorts == 0:
            return
        self.numPorts -= 1
        self.transport = None
        if not self.numPorts:
            self.stopProtocol()

    def startProtocol(self) -> None:
        """The port is listening."""

    def stopProtocol(self) -> None:
        """The port stopped listening."""

    def makeConnection(self, transport: IUDPTransport) -> None:
        """Attach the datagram transport and start the protocol."""
        assert self.transport is None, "a DatagramProtocol serves one port at a time"
        self.transport = transport
        self.doStart()

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        """A datagram arrived from ``addr`` (a ``(host, port)`` tuple, or a path).

        ``addr`` is ``Any`` as in Twisted, so that an override may say which kind
        its port delivers (``addr: tuple[str, int]``) without breaking the override rules.
        """

    def connectionRefused(self) -> None:
        """A connected datagram port got ICMP port unreachable."""

    # -- asyncio datagram protocol interface ----------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # set by the port instead
        pass

    if TYPE_CHECKING:  # asyncio names the first argument ``data``, Twisted ``datagram``

        def datagram_received(self, data: bytes, addr: Any) -> None: ...

    else:
        datagram_received = datagramReceived

    def error_received(self, exc: BaseException) -> None:
        if isinstance(exc, ConnectionRefusedError):
            self.connectionRefused()
        else:
            _log.warning("%s: datagram error: %s", self.logPrefix(), exc)

    def connection_lost(self, exc: BaseException | None) -> None:
        pass

    def __getstate__(self) -> dict[str, object]:
        state = self.__dict__.copy()
        state.pop("transport", None)
        state.pop("numPorts", None)
        return state


class ConnectedDatagramProtocol(DatagramProtocol):
    """A datagram protocol for a port connected to one peer (``transport.connect``)."""

