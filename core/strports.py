"""Twisted's ``strports``: a listening service, or a listening port, from a description string.

``strports.service("tcp:8007:interface=127.0.0.1", factory)`` is what a
``.tac`` ported from Twisted writes::

    from tapster.core import strports
    from tapster.core.service import Application

    application = Application("echo")
    strports.service("tcp:8007", EchoFactory()).setServiceParent(application)

The description syntax is :mod:`tapster.core.endpoints`'; a bad one raises
:class:`tapster.core.errors.EndpointError` naming it, when the service is made
(not when it starts). Importing this module is as cheap as importing
:mod:`tapster.core.endpoints`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tapster.core import endpoints

if TYPE_CHECKING:
    from tapster.core.defer import Deferred
    from tapster.core.interfaces import IListeningPort, IProtocolFactory
    from tapster.core.internet import StreamServerEndpointService

__all__ = ["service", "listen"]


def service(description: str, factory: IProtocolFactory, reactor: endpoints._StreamReactor | None = None,
            ) -> StreamServerEndpointService:
    """A :class:`~tapster.core.internet.StreamServerEndpointService` listening on ``description`` with ``factory``.

    As in Twisted, the service raises from ``privilegedStartService`` when it
    cannot listen ("address in use" is reported at start, by name).
    ``reactor`` is the one to listen with (default: the shared one).
    """
    from tapster.core.internet import StreamServerEndpointService

    svc = StreamServerEndpointService(endpoints.serverFromString(reactor, description), factory)
    svc._raiseSynchronously = True
    return svc


def listen(description: str, factory: IProtocolFactory) -> Deferred[IListeningPort]:
    """Listen on ``description`` now with the shared reactor: a Deferred of the port (already fired)."""
    return endpoints.serverFromString(None, description).listen(factory)
