"""``twistd --health ENDPOINT``: liveness, readiness and Prometheus metrics over a tiny HTTP server.

* ``GET /healthz``: 200 while the reactor turns (the answer itself comes from
  the reactor, so a stalled loop answers nothing and the probe times out);
* ``GET /readyz``: 200 once every service has started, 503 from the moment
  SIGTERM arrives (before the ``--drain-time`` window, as Kubernetes expects:
  the endpoint is taken out of rotation while the ports still accept);
* ``GET /metrics``: the Prometheus text format, version 0.0.4.

The server is twistd's own, never part of the application (it is not saved,
and a reload does not touch it), and it stops last, so ``/readyz`` keeps
saying 503 through the drain. It is written by hand rather than with
prometheus_client or the web plugin: a probe sends one small GET, and the
whole exchange is bounded (a request head of at most 8 KiB, 5 seconds to
send it, at most 64 probes at once, one answer per connection, then close).
No thread is started: the metrics are read when scraped.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tapster.core.protocol import Factory, Protocol

if TYPE_CHECKING:
    from tapster.core.interfaces import ITransport
    from tapster.core.reactor import AsyncioReactor

__all__ = ["HealthFactory", "HealthState", "parse_request", "render_metrics", "MAX_HEAD", "MAX_PROBES"]

#: Largest request head a probe may send (bytes); longer is 431, the connection closed.
MAX_HEAD = 8192
#: Probes served at once; more are closed at once (a probe retries).
MAX_PROBES = 64
#: Seconds a probe has to send its request head.
HEAD_TIMEOUT = 5.0
#: Seconds between measurements of the reactor's lag.
LAG_INTERVAL = 0.25

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            431: "Request Header Fields Too Large", 503: "Service Unavailable"}


@dataclass
class HealthState:
    """What the probes report, kept up to date by the runner."""

    reactor: AsyncioReactor
    name: str
    #: "starting", "ready" or "stopping".
    phase: str = "starting"
    reloads: dict[str, int] = field(default_factory=lambda: {"ok": 0, "error": 0})
    lag: float = 0.0
    max_lag: float = 0.0
    started: float = field(default_factory=time.time)
    _expected: float = 0.0

    def start_lag_ticks(self) -> None:
        self._expected = self.reactor.seconds() + LAG_INTERVAL
        self.reactor.callLater(LAG_INTERVAL, self._tick)

    def _tick(self) -> None:
        now = self.reactor.seconds()
        self.lag = max(0.0, now - self._expected)
        self.max_lag = max(self.max_lag, self.lag)
        self._expected = now + LAG_INTERVAL
        if self.reactor.running:
            self.reactor.callLater(LAG_INTERVAL, self._tick)


def parse_request(head: bytes) -> tuple[int, str, str] | tuple[int, None, None]:
    """(0, method, path) for a well-formed request line, else (status, None, None): 400 or 431."""
    if len(head) > MAX_HEAD:
        return 431, None, None
    line = head.split(b"\n", 1)[0].rstrip(b"\r")
    parts = line.split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1.") or not parts[1].startswith(b"/"):
        return 400, None, None
    try:
        method, target = parts[0].decode("ascii"), parts[1].decode("ascii")
    except UnicodeDecodeError:
        return 400, None, None
    if not method.isalpha() or not method.isupper() or any(c <= " " or c == "\x7f" for c in target):
        return 400, None, None
    return 0, method, target.split("?", 1)[0]


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _process() -> list[str]:
    lines = []
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        cpu = (int(fields[11]) + int(fields[12])) / ticks
        with open("/proc/self/statm") as f:
            rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        lines += ["# HELP process_cpu_seconds_total User and system CPU time of twistd.",
                  "# TYPE process_cpu_seconds_total counter", f"process_cpu_seconds_total {cpu:.2f}",
                  "# HELP process_resident_memory_bytes Resident memory of twistd.",
                  "# TYPE process_resident_memory_bytes gauge", f"process_resident_memory_bytes {rss}",
                  "# HELP process_open_fds Open file descriptors.", "# TYPE process_open_fds gauge",
                  f"process_open_fds {len(os.listdir('/proc/self/fd'))}"]
    except (OSError, IndexError, ValueError):
        pass  # no /proc: the other metrics still answer
    return lines


def render_metrics(state: HealthState) -> str:
    """The Prometheus text exposition (format 0.0.4) of ``state`` and the process."""
    reactor = state.reactor
    lines = ["# HELP tapster_up 1 while the application runs; 0 once it is stopping.", "# TYPE tapster_up gauge",
             f'tapster_up{{application="{_label(state.name)}"}} {int(state.phase == "ready")}',
             "# HELP tapster_connections_open Connections open now, per listening port.",
             "# TYPE tapster_connections_open gauge"]
    accepted = ["# HELP tapster_connections_accepted_total Connections accepted, per listening port.",
                "# TYPE tapster_connections_accepted_total counter"]
    for port in sorted(reactor.getListeningPorts(), key=repr):
        if isinstance(port.factory, HealthFactory):
            continue  # the probes' own port
        host = port.getHost()
        where = getattr(host, "name", None) or f"{getattr(host, 'host', '')}:{getattr(host, 'port', '')}"
        labels = (f'port="{_label(f"{port.kind.lower()}:{where}")}",'
                  f'factory="{_label(type(port.factory).__name__)}"')
        lines.append(f"tapster_connections_open{{{labels}}} {port.connectionCount()}")
        accepted.append(f"tapster_connections_accepted_total{{{labels}}} {port.accepted}")
    lines += accepted
    lines += ["# HELP tapster_connections_open_total Every connection open now, accepted or outgoing.",
              "# TYPE tapster_connections_open_total gauge",
              f"tapster_connections_open_total {reactor.getConnectionCount()}",
              "# HELP tapster_reactor_lag_seconds How late the reactor ran a timer last time it was measured.",
              "# TYPE tapster_reactor_lag_seconds gauge", f"tapster_reactor_lag_seconds {state.lag:.6f}",
              "# HELP tapster_reactor_lag_max_seconds The largest lag seen since start.",
              "# TYPE tapster_reactor_lag_max_seconds gauge", f"tapster_reactor_lag_max_seconds {state.max_lag:.6f}",
              "# HELP tapster_reloads_total Reloads (SIGHUP) by outcome.", "# TYPE tapster_reloads_total counter"]
    lines += [f'tapster_reloads_total{{outcome="{k}"}} {v}' for k, v in sorted(state.reloads.items())]
    lines += ["# HELP process_start_time_seconds Start time of twistd, seconds since the epoch.",
              "# TYPE process_start_time_seconds gauge", f"process_start_time_seconds {state.started:.3f}"]
    lines += _process()
    return "\n".join(lines) + "\n"


class _Probe(Protocol):
    """One request, one answer, then close: nothing a probe sends is kept beyond MAX_HEAD bytes."""

    factory: HealthFactory

    @property
    def _transport(self) -> ITransport:
        transport = self.transport
        assert transport is not None  # called only while connected
        return transport

    def connectionMade(self) -> None:
        self._head = b""
        self._answered = False
        if self.factory.open >= MAX_PROBES:
            self._answered = True
            self._transport.abortConnection()
            return
        self.factory.open += 1
        self._counted = True
        self._timer = self.factory.state.reactor.callLater(HEAD_TIMEOUT, self._transport.abortConnection)

    def dataReceived(self, data: bytes) -> None:
        if self._answered:
            return
        self._head += data
        end = self._head.find(b"\r\n\r\n")
        if end < 0:
            end = self._head.find(b"\n\n")
        if end < 0:
            if len(self._head) > MAX_HEAD:
                self._answer(431, "request head too large\n")
            return
        status, method, path = parse_request(self._head[:end])
        if method is None or path is None:
            self._answer(status, "bad request\n")
            return
        if method not in ("GET", "HEAD"):
            self._answer(405, "only GET and HEAD\n", head=False, allow=True)
            return
        self._route(path, head=method == "HEAD")

    def _route(self, path: str, head: bool) -> None:
        state = self.factory.state
        if path == "/healthz":
            self._answer(200, "ok\n", head)
        elif path == "/readyz":
            ready = state.phase == "ready"
            self._answer(200 if ready else 503, "ready\n" if ready else f"{state.phase}\n", head)
        elif path == "/metrics":
            self._answer(200, render_metrics(state), head, content_type="text/plain; version=0.0.4; charset=utf-8")
        else:
            self._answer(404, "try /healthz, /readyz or /metrics\n", head)

    def _answer(self, status: int, body: str, head: bool = False, allow: bool = False,
                content_type: str = "text/plain; charset=utf-8") -> None:
        self._answered = True
        self._head = b""
        data = body.encode()
        lines = [f"HTTP/1.1 {status} {_REASONS[status]}", f"Content-Type: {content_type}",
                 f"Content-Length: {len(data)}", "Cache-Control: no-store", "Connection: close"]
        if allow:
            lines.append("Allow: GET, HEAD")
        self._transport.write(("\r\n".join(lines) + "\r\n\r\n").encode() + (b"" if head else data))
        self._transport.loseConnection()

    def connectionLost(self, reason: object = None) -> None:
        timer = getattr(self, "_timer", None)
        if timer is not None and timer.active():
            timer.cancel()
        if getattr(self, "_counted", False):
            self.factory.open -= 1
            self._counted = False


class HealthFactory(Factory):
    """Serves the probes of one twistd (see the module docstring)."""

    protocol = _Probe

    def __init__(self, state: HealthState) -> None:
        self.state = state
        self.open = 0

    def __reduce__(self) -> tuple[Callable[..., object], tuple[object, ...]]:
        raise TypeError("the health server belongs to twistd, not to the application: it is never saved")
