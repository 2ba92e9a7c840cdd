"""Drive an HTTPChannel over core.testing's StringTransport and read the answers back."""

from __future__ import annotations

import queue
from dataclasses import dataclass, field

from tapster.core.address import IPv4Address
from tapster.core.testing import Clock, StringTransport
from tapster.plugins.web._http import HTTPChannel
from tapster.plugins.web._site import Resource, Site


class ThreadClock(Clock):
    """A Clock that also takes callFromThread (queued; ``drain`` runs them in the test's thread)."""

    def __init__(self) -> None:
        super().__init__()
        self.fromThread: queue.Queue = queue.Queue()

    def callFromThread(self, f, *args, **kw) -> None:
        self.fromThread.put((f, args, kw))

    def drain(self, until, timeout: float = 5.0) -> None:
        import time

        end = time.monotonic() + timeout
        while not until():
            remaining = end - time.monotonic()
            if remaining <= 0:
                raise AssertionError("timed out waiting for the worker thread")
            try:
                f, args, kw = self.fromThread.get(timeout=remaining)
            except queue.Empty:
                continue
            f(*args, **kw)


@dataclass
class Response:
    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None


def parse_responses(data: bytes, head_only: set[int] | None = None) -> list[Response]:
    """Split a byte stream of HTTP/1.1 responses (Content-Length, chunked, or bodiless)."""
    out = []
    head_only = head_only or set()
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        assert sep, f"incomplete head: {data[:200]!r}"
        lines = head.decode("latin-1").split("\r\n")
        _, code, reason = (lines[0].split(" ", 2) + [""])[:3]
        resp = Response(int(code), reason, [tuple(x.strip() for x in line.split(":", 1)) for line in lines[1:]])
        index = len(out)
        if index in head_only or resp.status in (100, 204, 304):
            data = rest
        elif resp.header("transfer-encoding") == "chunked":
            body = b""
            while True:
                size_line, _, rest = rest.partition(b"\r\n")
                size = int(size_line, 16)
                if size == 0:
                    rest = rest[2:]
                    break
                body += rest[:size]
                rest = rest[size + 2 :]
            resp.body = body
            data = rest
        else:
            n = int(resp.header("content-length") or 0)
            resp.body, data = rest[:n], rest[n:]
        out.append(resp)
    return out


class Conn:
    """One connection to a Site, in memory."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.transport = StringTransport(
            hostAddress=IPv4Address("TCP", "127.0.0.1", 8080),
            peerAddress=IPv4Address("TCP", "127.0.0.1", 40000),
            lenient=True,
        )
        self.protocol = site.buildProtocol(self.transport.getPeer())
        assert isinstance(self.protocol, HTTPChannel)
        self.protocol.makeConnection(self.transport)
        self.transport.protocol = self.protocol

    def send(self, data: bytes) -> None:
        self.protocol.dataReceived(data)
        self.pump()

    def pump(self) -> None:
        for _ in range(100000):
            producer = self.transport.producer
            if producer is None or self.transport.streaming:
                return
            producer.resumeProducing()

    def responses(self, head_only: set[int] | None = None) -> list[Response]:
        return parse_responses(self.transport.value(), head_only)

    def close(self) -> None:
        from tapster.core.protocol import connectionDone

        self.protocol.connectionLost(connectionDone)


def make_site(resource: Resource, clock: Clock | None = None, **kw) -> Site:
    site = Site(resource, **kw)
    site._reactor = clock or Clock()
    return site
