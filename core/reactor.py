"""The shared reactor: one per process, over an asyncio event loop (uvloop when installed).

Use it the way Twisted code does::

    from tapster.core import reactor
    reactor.listenTCP(8007, factory)
    reactor.callLater(5, reactor.stop)
    reactor.run()

This module is a proxy: attribute access (``reactor.listenTCP``) goes to the
installed reactor, installing the default one on first use. ``install(name)``
picks one explicitly and must come first; ``twistd --reactor`` calls it.
Reactors are provided through the ``tapster_reactors`` hook (see
:mod:`tapster.core.hookspecs`), so a pip package can add one.

Importing this module is cheap: asyncio is imported only when a reactor is
installed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tapster.core.errors import ReactorAlreadyInstalledError, TapsterError

if TYPE_CHECKING:
    import asyncio

    # The reactor's class, named here for annotations outside core (twistd's runner).
    from tapster.core._reactor.loop import AsyncioReactor as AsyncioReactor
    from tapster.core._reactor.signals import StopSignals as StopSignals
    from tapster.core.hookspecs import ReactorSpec

__all__ = [
    "install", "installed", "uninstall", "setAside", "restore", "getReactor", "availableReactors",
    "defaultReactorName", "StopSignals", "prebindListeningPorts",
]

_reactor: AsyncioReactor | None = None

if TYPE_CHECKING:
    # What ``reactor.NAME`` gives through the module's __getattr__: the shared reactor's
    # attribute, spelled out for a type checker (``reactor.listenTCP(...)`` is checked).
    def _shared() -> AsyncioReactor: ...

    loop: asyncio.AbstractEventLoop
    name: str
    running: bool
    seconds = _shared().seconds
    callLater = _shared().callLater
    getDelayedCalls = _shared().getDelayedCalls
    callWhenRunning = _shared().callWhenRunning
    callFromThread = _shared().callFromThread
    callInThread = _shared().callInThread
    addSystemEventTrigger = _shared().addSystemEventTrigger
    removeSystemEventTrigger = _shared().removeSystemEventTrigger
    fireSystemEvent = _shared().fireSystemEvent
    run = _shared().run
    stop = _shared().stop
    crash = _shared().crash
    ensureFuture = _shared().ensureFuture
    listenTCP = _shared().listenTCP
    listenSSL = _shared().listenSSL
    listenUNIX = _shared().listenUNIX
    connectTCP = _shared().connectTCP
    connectSSL = _shared().connectSSL
    connectUNIX = _shared().connectUNIX
    listenUDP = _shared().listenUDP
    listenMulticast = _shared().listenMulticast
    listenUNIXDatagram = _shared().listenUNIXDatagram
    connectUNIXDatagram = _shared().connectUNIXDatagram
    adoptStreamPort = _shared().adoptStreamPort
    adoptDatagramPort = _shared().adoptDatagramPort
    getListeningPorts = _shared().getListeningPorts
    getConnectionCount = _shared().getConnectionCount


def availableReactors() -> dict[str, ReactorSpec]:
    """Name → ReactorSpec of every reactor the hooks provide (built-in and from plugins)."""
    from tapster.core.plugin import reactor_specs

    return reactor_specs()


def defaultReactorName() -> str:
    """``uvloop`` when it can be imported, else ``asyncio``."""
    import importlib.util

    return "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"


def install(name: str | None = None) -> AsyncioReactor:
    """Install the shared reactor ``name`` (default: :func:`defaultReactorName`) and return it.

    Installing the same reactor again is a no-op; a different one after the
    first raises ReactorAlreadyInstalledError.
    """
    global _reactor
    wanted = name or defaultReactorName()
    if _reactor is not None:
        if name is not None and _reactor.name != wanted:
            raise ReactorAlreadyInstalledError(
                f"reactor {_reactor.name!r} is already installed; choose {wanted!r} before anything uses the reactor"
            )
        return _reactor
    specs = availableReactors()
    spec = specs.get(wanted)
    if spec is None:
        raise TapsterError(f"unknown reactor {wanted!r}: choose one of {', '.join(sorted(specs))}")
    _reactor = spec.factory()
    return _reactor


def installed() -> bool:
    """Whether a shared reactor has been installed in this process."""
    return _reactor is not None


def getReactor() -> AsyncioReactor:
    """The shared reactor, installing the default one if none is yet."""
    return _reactor if _reactor is not None else install()


def uninstall() -> None:
    """Forget the shared reactor, so that the next use installs a fresh one.

    For tests and programs that embed tapster and run the reactor more than
    once with different loops; a running loop is left alone, a stopped one is
    closed. :func:`tapster.core.testing.freshReactor` wraps this for tests.
    """
    global _reactor
    if _reactor is not None and not _reactor.loop.is_running():
        _reactor.loop.close()
    _reactor = None


def setAside() -> AsyncioReactor | None:
    """Take the installed reactor out of the way (for :func:`restore`) without closing it; tests only."""
    global _reactor
    saved, _reactor = _reactor, None
    return saved


def restore(saved: AsyncioReactor | None) -> None:
    """Put back a reactor :func:`setAside` returned; tests only."""
    global _reactor
    _reactor = saved


def prebindListeningPorts(application: object) -> list[str]:
    """Bind every stream server's address in ``application`` now, before any reactor exists, to share it.

    tapster's addition, for ``twistd --workers``: the supervising process binds
    (as root, for ports below 1024) and forks; in each worker, the server's
    ``listenTCP``/``listenSSL``/``listenUNIX`` then adopts a duplicate of the
    inherited socket instead of binding, so all workers accept on the same
    socket. Returns the descriptions bound. A datagram server cannot be shared
    this way: TapsterError names it.
    """
    import socket

    from tapster.core import endpoints, internet
    from tapster.core._reactor import ports

    bound: list[str] = []

    def walk(service: object) -> None:
        if isinstance(service, (internet.UDPServer, internet.UNIXDatagramServer, internet.MulticastServer)):
            raise TapsterError(f"{service!r} is a datagram server: workers cannot share it "
                               "(run it without --workers, or in an application of its own)")
        endpoint_service = isinstance(service, internet.StreamServerEndpointService) and isinstance(
            service.endpoint, endpoints._ServerEndpoint)  # one of serverFromString's: its address is known
        if endpoint_service or isinstance(service, (internet.TCPServer, internet.SSLServer, internet.UNIXServer)):
            description = endpoints.describe(service)
            kind, args, kw = endpoints.parse(description)
            if kind in endpoints.ADOPTED_KINDS:  # passed by systemd: forked workers inherit it as it is
                bound.append(description)
            elif kind == "unix":
                sock = ports.bind_unix(socket.SOCK_STREAM, args[0], kw["backlog"], kw["mode"])
                ports.provide_socket(ports.unix_key(args[0]), sock)
            else:
                sock = ports.bind_inet(socket.SOCK_STREAM, kw["interface"], args[0], kw["backlog"])
                ports.provide_socket(ports.inet_key(kw["interface"], args[0]), sock)
            bound.append(description)
        for child in getattr(service, "services", ()):
            walk(child)

    walk(application)
    return bound


def __getattr__(name: str) -> object:
    if name.startswith("__"):
        raise AttributeError(name)
    if name == "StopSignals":  # the one signal policy, shared with twistd; imported on use
        from tapster.core._reactor.signals import StopSignals

        return StopSignals
    return getattr(getReactor(), name)
