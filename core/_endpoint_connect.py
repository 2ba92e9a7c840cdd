"""How a client endpoint learns that its connection is up, without standing between protocol and transport.

Twisted wraps the protocol an endpoint connects in a proxy that fires the
``connect()`` Deferred from its ``connectionMade``. tapster does not: the
transport must see the real protocol (uvloop binds ``data_received`` at class
level, the line receivers' writes are held by the transport for them,
``connectionDraining`` is looked up on it). Instead the factory handed to the
reactor builds the real protocol and hooks *that instance*: an instance
attribute shadows one method for one call, then removes itself, so the
protocol is left exactly as its class made it. :func:`after_call` is the one
place that does it; :class:`tapster.core.internet.ClientService` uses it to hear
``connectionLost``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tapster.core.defer import Deferred
from tapster.core.errors import ConnectError
from tapster.core.failure import Failure
from tapster.core.protocol import ClientFactory

if TYPE_CHECKING:
    from tapster.core.interfaces import IAddress, IConnector, IProtocolFactory
    from tapster.core.protocol import Protocol

__all__ = ["ConnectingFactory", "after_call"]


def after_call(obj: object, name: str, then: Callable[..., object], always: bool = False) -> None:
    """The next ``obj.name(*args)`` runs as usual, then ``then(*args)``; later calls are untouched.

    ``then`` runs only if the method returned normally, unless ``always``.
    An object that cannot take instance attributes (``__slots__``) gets
    ``then`` at once instead of after the call (it then runs before the
    method does).
    """
    original = getattr(type(obj), name)

    def once(*args: Any, **kwargs: Any) -> object:
        obj.__dict__.pop(name, None)
        try:
            result = original(obj, *args, **kwargs)
        except BaseException:
            if always:
                then(*args)
            raise
        then(*args)
        return result

    try:
        obj.__dict__[name] = once
    except AttributeError:  # no __dict__
        then()


class ConnectingFactory(ClientFactory):
    """The ClientFactory a client endpoint gives the reactor for ``connect(factory)``.

    It starts and stops the wrapped factory with itself (as Twisted's
    wrapping factory does), builds the wrapped factory's protocol and fires
    ``deferred`` with it once its ``makeConnection`` (so ``connectionMade``)
    has run, or fails it with the reason the attempt failed (a
    ``buildProtocol`` that raises or returns None fails it too).
    """

    noisy = False

    def __init__(self, wrapped: IProtocolFactory) -> None:
        self.wrapped = wrapped
        self.connector: IConnector | None = None
        self.deferred: Deferred[Protocol] = Deferred(self._cancel)

    def _cancel(self, deferred: Deferred[Protocol]) -> None:
        connector = self.connector
        if connector is not None:
            try:
                connector.disconnect()
            except Exception:  # noqa: BLE001 - already over; the Deferred is cancelled either way
                pass

    def startFactory(self) -> None:
        self.wrapped.doStart()

    def stopFactory(self) -> None:
        self.wrapped.doStop()

    def buildProtocol(self, addr: IAddress) -> Protocol | None:
        try:
            protocol = self.wrapped.buildProtocol(addr)
        except Exception:
            self._fail(Failure())
            return None
        if protocol is None:
            self._fail(Failure(ConnectError(string=f"{type(self.wrapped).__name__}.buildProtocol returned None")))
            return None
        if self.deferred.called:  # cancelled meanwhile
            return None
        after_call(protocol, "makeConnection", lambda *_: self._made(protocol))
        return protocol

    def _made(self, protocol: Protocol) -> None:
        if not self.deferred.called:
            self.deferred.callback(protocol)

    def _fail(self, reason: Failure) -> None:
        if not self.deferred.called:
            self.deferred.errback(reason)

    def clientConnectionFailed(self, connector: IConnector, reason: Failure) -> None:
        self._fail(reason)

    def clientConnectionLost(self, connector: IConnector, reason: Failure) -> None:
        self._fail(reason)  # lost before it was reported (connectionMade raised): the attempt failed

    def __repr__(self) -> str:
        return f"<connecting {self.wrapped!r}>"
