"""Checked by mypy only (.ci/typecheck.py adds it), never run: tapster's classes provide its interfaces.

The interfaces are ``typing.Protocol`` classes, matched by structure, so nothing
declares that ``Transport`` is an ``ITransport``; each function below returns an
implementation as the interface, which makes the type checker prove that it fits,
for the real implementations and for the test doubles alike. A change that breaks
one of these promises fails CI here, naming the member that no longer fits.
"""

from __future__ import annotations

from tapster.core import reactor as shared_reactor
from tapster.core._reactor.loop import AsyncioReactor
from tapster.core._reactor.ports import Connector, DatagramPort, DatagramTransport, ListeningPort
from tapster.core._reactor.transport import Transport
from tapster.core.interfaces import (
    IConnector,
    IDelayedCall,
    IListeningPort,
    IMulticastTransport,
    IOpenSSLContextFactory,
    IProtocolFactory,
    IReactorMulticast,
    IReactorSSL,
    IReactorTCP,
    IReactorTime,
    IReactorUDP,
    IReactorUNIX,
    IReactorUNIXDatagram,
    ITCPTransport,
)
from tapster.core.protocol import ClientFactory, Factory, ServerFactory
from tapster.core.service import Application, IProcess, IService, IServiceCollection, MultiService, Service
from tapster.core.ssl import ClientContextFactory, DefaultOpenSSLContextFactory
from tapster.core.testing import Clock, FakeConnector, FakeDatagramPort, FakePort, MemoryReactorClock, StringTransport

_Reactor = AsyncioReactor | MemoryReactorClock


def clocks(reactor: _Reactor, clock: Clock) -> list[IReactorTime]:
    return [reactor, clock]


def delayed_call(clock: Clock) -> IDelayedCall:
    return clock.callLater(1, print)


def reactors(reactor: _Reactor) -> tuple[IReactorTCP, IReactorSSL, IReactorUNIX, IReactorUDP, IReactorMulticast,
                                         IReactorUNIXDatagram]:
    return reactor, reactor, reactor, reactor, reactor, reactor


def shared() -> IListeningPort:
    # The module proxy's attributes are typed like the shared reactor's (the module itself
    # is no IReactorTime for mypy: its __all__ does not list them, on purpose).
    shared_reactor.callLater(1, print).cancel()
    return shared_reactor.listenTCP(0, Factory())


def ports(listening: ListeningPort, datagram: DatagramPort, fake: FakePort,
          fake_datagram: FakeDatagramPort) -> list[IListeningPort]:
    return [listening, datagram, fake, fake_datagram]


def connectors(connector: Connector, fake: FakeConnector) -> list[IConnector]:
    return [connector, fake]


def stream_transports(real: Transport, fake: StringTransport) -> list[ITCPTransport]:
    return [real, fake]


def datagram_transports(real: DatagramTransport, fake: FakeDatagramPort) -> list[IMulticastTransport]:
    return [real, fake]


def factories(server: ServerFactory, client: ClientFactory) -> list[IProtocolFactory]:
    return [Factory(), server, client]


def context_factories(server: DefaultOpenSSLContextFactory,
                      client: ClientContextFactory) -> list[IOpenSSLContextFactory]:
    return [server, client]


def services(app: Application) -> tuple[list[IService], list[IServiceCollection], IProcess]:
    return [Service(), MultiService(), app], [MultiService(), app], app
