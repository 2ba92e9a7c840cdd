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
"""

from __future__ import annotations

import logging
from typing import Any

from tapster.core.service import Service
from tapster.core.task import LoopingCall

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


def _reactor_of(service: Any) -> Any:
    if service.reactor is not None:
        return service.reactor
    from tapster.core import reactor

    return reactor.getReactor()


def _describe_host(host: Any) -> str:
    name = getattr(host, "name", None)
    if name is not None or not hasattr(host, "port"):
        return str(name)
    return f"[{host.host}]:{host.port}" if ":" in host.host else f"{host.host}:{host.port}"


class _AbstractServer(Service):
    """Listens while running. Subclasses name the reactor method in ``method``."""

    method = ""
    reactor: Any = None
    _port: Any = None

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

    def stopService(self) -> Any:
        Service.stopService(self)
        port, self._port = self._port, None
        if port is not None:
            _log.info("%s stopped listening on %s", self._what(), _describe_host(port.getHost()),
                      extra={"system": self.name or self._what()})
            return port.stopListening()
        return None

    def _what(self) -> str:
        target = self.args[1] if len(self.args) > 1 else self.kwargs.get("factory", self.kwargs.get("protocol"))
        return type(target).__name__ if target is not None else type(self).__name__

    def _getPort(self) -> Any:
        port = getattr(_reactor_of(self), "listen" + self.method)(*self.args, **self.kwargs)
        _log.info("%s listening on %s (%s)", self._what(), _describe_host(port.getHost()), self.method,
                  extra={"system": self.name or self._what()})
        return port

    def getHost(self) -> Any:
        """The bound address (handy with port 0); only while running."""
        if self._port is None:
            raise RuntimeError(f"{self!r} is not listening")
        return self._port.getHost()

    def __getstate__(self) -> dict[str, Any]:
        state = Service.__getstate__(self)
        state.pop("_port", None)
        state.pop("reactor", None)  # a process resource (and a live loop does not pickle)
        return state


class _AbstractClient(Service):
    """Connects while running."""

    method = ""
    reactor: Any = None
    _connection: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs

    def startService(self) -> None:
        Service.startService(self)
        self._connection = self._getConnection()

    def stopService(self) -> Any:
        Service.stopService(self)
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.disconnect()
            except Exception:  # noqa: BLE001 - already disconnected
                pass
        return None

    def _getConnection(self) -> Any:
        return getattr(_reactor_of(self), "connect" + self.method)(*self.args, **self.kwargs)

    def __getstate__(self) -> dict[str, Any]:
        state = Service.__getstate__(self)
        state.pop("_connection", None)
        state.pop("reactor", None)  # a process resource (and a live loop does not pickle)
        return state


class TCPServer(_AbstractServer):
    """``TCPServer(port, factory, backlog=50, interface='')``"""

    method = "TCP"


class TCPClient(_AbstractClient):
    """``TCPClient(host, port, factory, timeout=30, bindAddress=None)``"""

    method = "TCP"


class UNIXServer(_AbstractServer):
    """``UNIXServer(address, factory, backlog=50, mode=0o666, wantPID=False)``"""

    method = "UNIX"


class UNIXClient(_AbstractClient):
    """``UNIXClient(address, factory, timeout=30, checkPID=False)``"""

    method = "UNIX"


class SSLServer(_AbstractServer):
    """``SSLServer(port, factory, contextFactory, backlog=50, interface='')``"""

    method = "SSL"


class SSLClient(_AbstractClient):
    """``SSLClient(host, port, factory, contextFactory, timeout=30, bindAddress=None)``"""

    method = "SSL"


class UDPServer(_AbstractServer):
    """``UDPServer(port, protocol, interface='', maxPacketSize=8192)``"""

    method = "UDP"


class UNIXDatagramServer(_AbstractServer):
    """``UNIXDatagramServer(address, protocol, maxPacketSize=8192, mode=0o666)``"""

    method = "UNIXDatagram"


class UNIXDatagramClient(_AbstractClient):
    """``UNIXDatagramClient(address, protocol, maxPacketSize=8192, mode=0o666, bindAddress=None)``"""

    method = "UNIXDatagram"

    def stopService(self) -> Any:
        Service.stopService(self)
        connection, self._connection = self._connection, None
        if connection is not None:
            return connection.stopListening()
        return None


class MulticastServer(_AbstractServer):
    """``MulticastServer(port, protocol, interface='', maxPacketSize=8192, listenMultiple=False)``"""

    method = "Multicast"


class TimerService(Service):
    """Call ``callable(*args, **kwargs)`` every ``step`` seconds while running (first call at start)."""

    clock: Any = None

    def __init__(self, step: float, callable: Any, *args: Any, **kwargs: Any) -> None:
        self.step = step
        self.call = (callable, args, kwargs)

    def startService(self) -> None:
        Service.startService(self)
        callable, args, kwargs = self.call
        self._loop = LoopingCall(callable, *args, **kwargs)
        self._loop.clock = self.clock if self.clock is not None else _reactor_of(_NoReactor)
        self._loopFinished = self._loop.start(self.step, now=True)
        if self._loopFinished is not None:
            # The LoopingCall already logged a failure; retrieve it so asyncio does not
            # report it again as "Future exception was never retrieved".
            self._loopFinished.add_done_callback(_consume)

    def stopService(self) -> Any:
        Service.stopService(self)
        loop = getattr(self, "_loop", None)
        if loop is not None and loop.running:
            loop.stop()
        return None

    def __getstate__(self) -> dict[str, Any]:
        state = Service.__getstate__(self)
        state.pop("_loop", None)
        state.pop("_loopFinished", None)
        state.pop("clock", None)  # a process resource, like a server's reactor
        return state


def _consume(future: Any) -> None:
    if not future.cancelled():
        future.exception()


class _NoReactor:
    reactor = None
