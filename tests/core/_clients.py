"""A client that collects what a server sends, shared by the endpoint and TLS tests."""

from __future__ import annotations

from tapster.core.protocol import ClientFactory, Protocol


class Collector(Protocol):
    def dataReceived(self, data):
        self.factory.received += data

    def connectionLost(self, reason):
        self.factory.done = True


class CollectingFactory(ClientFactory):
    protocol = Collector

    def __init__(self):
        self.received = b""
        self.done = False
        self.failure = None

    def clientConnectionFailed(self, connector, reason):
        self.failure = reason
        self.done = True
