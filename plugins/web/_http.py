"""HTTP/1.1 over a tapster Protocol: httptools (llhttp) parses, this module keeps the rules.

Why httptools: ``bench/http_parsers.py`` measured it at ~1.1 µs per pipelined
browser-like request on this machine against ~33 µs for h11 (30×); the
connection rules h11 would have given us (keep-alive, pipelining, smuggling
refusals, bounds) are few and stated below, so they are kept here instead.

The rules of a connection, each byte from the client being hostile:

* Requests are answered in order, one at a time. A request is dispatched to
  the resource when it is complete (body included). While one is being
  answered, reading pauses, and parsing ahead stops once ``MAX_PIPELINE``
  complete requests wait (bytes outside bodies are fed 1 KiB at a time, so
  at most ``MAX_PIPELINE`` + 57 requests are parsed ahead of the one
  answered): a pipelining client costs a bounded amount of memory.
* Bounds: the request target (``MAX_URL``, else 414), the header block
  (``MAX_HEADER_BYTES`` and ``MAX_HEADERS``, else 431), the body
  (``Site.maxRequestBody``, else 413; spooled to a temporary file past 1 MiB).
* Refused as ambiguous (400, then close): Content-Length with
  Transfer-Encoding, more than one Content-Length, a Transfer-Encoding whose
  last coding is not chunked; an HTTP/1.1 request without exactly one Host.
  A coding other than chunked is 501. llhttp refuses the rest of what is
  malformed (400). Every error answer closes the connection.
* ``Expect: 100-continue`` is answered with ``100 Continue`` when the request
  is the next to be answered and its announced body fits; a body announced
  too large gets 413 at once.
* Timeouts: the header block must arrive within ``Site.headerTimeout`` of the
  first byte of a request (or of the connection); an idle keep-alive
  connection is closed after ``Site.keepAliveTimeout``; a response the client
  stops accepting (bytes wait to be sent and none was taken by the kernel for
  ``Site.sendTimeout`` seconds: nginx's ``send_timeout``) is aborted; the
  client's progress is what leaves the socket's send queue (``SIOCOUTQ``), so
  a slow reader behind a large kernel buffer is not mistaken for a stalled one. An
  answer still being computed (a slow WSGI application) is not a stall.
  The send timeout is watched only for answers that outlive their dispatch
  (small answers, sent at once, cost nothing); it is checked four times
  per period, so a stall is cut within 1¼ periods.
"""

from __future__ import annotations

import io
import re
import tempfile
import time
from collections import deque
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

import httptools

from tapster.core.protocol import Protocol

if TYPE_CHECKING:
    from tapster.core.failure import Failure
    from tapster.core.interfaces import IDelayedCall
    from tapster.plugins.web._site import Site

__all__ = ["HTTPChannel", "Request", "STATUS_REASONS", "MAX_URL", "MAX_HEADER_BYTES", "MAX_HEADERS"]

MAX_URL = 8192
MAX_HEADER_BYTES = 32768
MAX_HEADERS = 100
MAX_PIPELINE = 16
FEED_SLICE = 16384  # inside a body
FEED_SLICE_HEADERS = 1024  # elsewhere: one feed completes at most 1024/18 requests
SPOOL_IN_MEMORY = 1 << 20

STATUS_REASONS: dict[int, str] = {
    100: "Continue", 200: "OK", 201: "Created", 204: "No Content", 206: "Partial Content",
    301: "Moved Permanently", 302: "Found", 304: "Not Modified", 400: "Bad Request", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout", 411: "Length Required",
    413: "Content Too Large", 414: "URI Too Long", 416: "Range Not Satisfiable", 417: "Expectation Failed",
    431: "Request Header Fields Too Large", 500: "Internal Server Error", 501: "Not Implemented",
    503: "Service Unavailable", 505: "HTTP Version Not Supported",
}

_date_cache: list[Any] = [0, b""]
#: (code, reason, server name) -> the status line, Date and Server as bytes, for the second in ``_date_cache``.
_prefix_cache: dict[tuple[int, str | None, bytes], bytes] = {}
_BODILESS = frozenset({204, 304, *range(100, 200)})


def http_date() -> bytes:
    """The Date header value, formatted once per second."""
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[0] = now
        _date_cache[1] = formatdate(now, usegmt=True).encode("ascii")
        _prefix_cache.clear()
    return _date_cache[1]


def status_prefix(code: int, reason: str | None, server: bytes) -> bytes:
    """``HTTP/1.1 code reason``, ``Date`` and ``Server`` lines: built once per second per status."""
    date = http_date()  # clears the cache when the second changes
    key = (code, reason, server)
    prefix = _prefix_cache.get(key)
    if prefix is None:
        if len(_prefix_cache) > 256:  # reasons chosen by applications: keep the cache small
            _prefix_cache.clear()
        text = (reason or STATUS_REASONS.get(code, "Unknown")).encode("latin-1")
        prefix = _prefix_cache[key] = (b"HTTP/1.1 %d %s\r\nDate: %s\r\nServer: %s\r\n"
                                       % (code, text, date, server))
    return prefix


def encode_headers(headers: list[tuple[str, str]]) -> bytes:
    """``Name: value`` lines (CRLF-terminated) as latin-1 bytes."""
    return "".join([f"{name}: {value}\r\n" for name, value in headers]).encode("latin-1")


_UNKNOWN: Any = object()


class _Refused(Exception):
    """A request the server answers with an error status and then closes the connection."""

    def __init__(self, status: int, detail: str = "") -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class Request:
    """One parsed request and the means to answer it.

    The parsed part: ``method`` (str), ``target`` (the raw request target, bytes),
    ``path`` and ``query`` (bytes, still percent-encoded), ``version`` ("1.1"),
    ``headers`` (a list of (lower-case name, value) bytes pairs), ``body`` (a file
    positioned at 0), ``client`` ((host, port) or None).

    The answer: :meth:`respond` for a whole body, or :meth:`startResponse`,
    :meth:`write`* and :meth:`finish`; :meth:`sendFile` streams a file with flow
    control. For HEAD, whatever would be the body is dropped.
    """

    def __init__(self, channel: HTTPChannel) -> None:
        self.channel = channel
        self.headers: list[tuple[bytes, bytes]] = []
        self.method = ""
        self.target = b""
        self.path = b""
        self.query = b""
        self.version = "1.1"
        self.body: Any = None
        self.bodyLength = 0
        self.keepAlive = True
        self.expectContinue = False
        self.continued = False
        self.client: tuple[str, int] | None = None
        self.started = 0.0
        # the answer
        self.code = 0
        self.sentLength = 0
        self.headersSent = False
        self.finished = False
        self._chunked = False
        self._remaining: int | None = None  # declared Content-Length still to send
        self._producer: Any = None

    # -- reading ----------------------------------------------------------------

    def getHeader(self, name: str) -> str | None:
        """The value of the header ``name`` (case-insensitive) as text, or None; the last one if repeated."""
        key = name.lower().encode("latin-1")
        for k, v in reversed(self.headers):
            if k == key:
                return v.decode("latin-1")
        return None

    # -- answering --------------------------------------------------------------

    def startResponse(self, code: int, headers: list[tuple[str, str]], contentLength: int | None = None,
                      reason: str | None = None) -> None:
        """Send the status line and headers (Date, Server and the site's extra headers are added).

        ``contentLength`` None means the length is unknown: chunked for HTTP/1.1,
        close-delimited for HTTP/1.0.
        """
        self.sendHead(code, encode_headers(headers), contentLength, reason)

    def sendHead(self, code: int, encoded: bytes, contentLength: int | None = None, reason: str | None = None,
                 body: bytes = b"") -> None:
        """:meth:`startResponse` with the headers already encoded (``Name: value\\r\\n`` lines).

        ``body``, if given, goes out in the same write as the head (as :meth:`write`
        would send it: dropped for HEAD, cut to ``contentLength``). The one way a
        head is built: the general path and the cached ones answer the same bytes.
        """
        assert not self.headersSent, "startResponse called twice"
        channel = self.channel
        self.code = code
        self.headersSent = True
        site = channel.site
        head = [status_prefix(code, reason, site.serverName)]
        if code in _BODILESS:
            self._remaining = 0
        elif contentLength is not None:
            self._remaining = contentLength
            head.append(b"Content-Length: %d\r\n" % contentLength)
        elif self.version == "1.1":
            if self.method != "HEAD":
                self._chunked = True
                head.append(b"Transfer-Encoding: chunked\r\n")
        else:
            self.keepAlive = False
        head.append(encoded)
        head.append(site.extraHeaderBlock())
        if not self.keepAlive or channel.draining:
            self.keepAlive = False
            head.append(b"Connection: close\r\n")
        elif self.version == "1.0":
            head.append(b"Connection: keep-alive\r\n")
        head.append(b"\r\n")
        if body and not self._chunked:
            remaining = self._remaining
            if self.method != "HEAD" and remaining != 0:
                if remaining is not None:
                    if len(body) > remaining:
                        body = body[:remaining]
                    self._remaining = remaining - len(body)
                self.sentLength += len(body)
                head.append(body)
            body = b""
        channel.send(b"".join(head))
        if body:
            self.write(body)

    def write(self, data: bytes) -> None:
        """Send part of the body (nothing for HEAD or a bodiless status)."""
        if not data or self.method == "HEAD" or self.finished:
            return
        if self._remaining is not None:
            if len(data) > self._remaining:
                data = data[: self._remaining]
            self._remaining -= len(data)
        self.sentLength += len(data)
        if self._chunked:
            self.channel.send(b"%x\r\n%s\r\n" % (len(data), data))
        else:
            self.channel.send(data)

    def finish(self) -> None:
        """The answer is complete: log it and go on with the next request (or close)."""
        if self.finished:
            return
        self.finished = True
        if self._chunked:
            self.channel.send(b"0\r\n\r\n")
        if self._remaining and self.method != "HEAD":
            self.keepAlive = False  # fewer bytes than announced: the connection cannot be reused
            self.channel.abort()
        self.channel.requestDone(self)

    def respond(self, code: int, body: bytes = b"", headers: list[tuple[str, str]] | None = None,
                contentType: str = "text/plain; charset=utf-8") -> None:
        """A whole answer at once."""
        hdrs = list(headers or [])
        if body or code not in (204, 304):
            hdrs.insert(0, ("Content-Type", contentType))
        self.sendHead(code, encode_headers(hdrs), len(body), body=body)
        self.finish()

    def error(self, code: int, detail: str = "") -> None:
        """A small HTML error page."""
        from html import escape

        reason = STATUS_REASONS.get(code, "Error")
        text = f"<html><head><title>{code} {reason}</title></head><body><h1>{code} {reason}</h1>"
        if detail:
            text += f"<p>{escape(detail)}</p>"
        text += "</body></html>\n"
        self.respond(code, text.encode("utf-8"), contentType="text/html; charset=utf-8")

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self._producer = producer
        transport = self.channel.transport
        assert transport is not None
        transport.registerProducer(producer, streaming)

    def unregisterProducer(self) -> None:
        self._producer = None
        transport = self.channel.transport
        if transport is not None:
            transport.unregisterProducer()

    @property
    def disconnected(self) -> bool:
        return self.channel.lost


def _unacknowledged(transport: Any) -> int:
    """Bytes in the socket's send queue, not yet taken by the peer (Linux SIOCOUTQ); 0 if unknown.

    The client's progress is seen as this shrinks, even while the queue is too
    full for the socket to be writable (a large send buffer, a slow reader).
    """
    try:
        import fcntl
        import struct
        import termios

        fd = transport.getHandle().fileno()
        value: int = struct.unpack("i", fcntl.ioctl(fd, termios.TIOCOUTQ, b"\0\0\0\0"))[0]
        return value
    except (AttributeError, ImportError, OSError, ValueError, TypeError):
        return 0


class HTTPChannel(Protocol):
    """One HTTP connection: parse with httptools, answer requests in order through ``factory.resource``."""

    factory: Site

    def __init__(self) -> None:
        self.site: Site = None  # type: ignore[assignment]  # set in connectionMade
        self.parser: Any = None
        self._clock: Any = None  # the site's reactor, for timeouts
        self.lost = False
        self.draining = False
        self._buffer = b""
        self._current: Request | None = None  # being parsed
        self._queue: deque[Request] = deque()  # complete, waiting their turn
        self._active: Request | None = None  # being answered
        self._timer: IDelayedCall | None = None
        self._deadline: float | None = None  # when the armed timeout expires (None: disarmed)
        self._client: Any = _UNKNOWN  # the peer, as (host, port) or None: asked once per connection
        #: The part of a WSGI environ every request of this connection shares (built by _wsgi on first use).
        self.wsgiEnviron: dict[str, Any] | None = None
        self._paused = False
        self._header_bytes = 0
        self._header_count = 0
        self._url_len = 0
        self._header_name = b""
        self._closing = False
        self._stopped = False
        self._pumping = False
        self._in_body = False
        self._refusal: tuple[Request, _Refused] | None = None
        self._drained: Any = None
        self._send_mark: tuple[Request, int] | None = None  # (the answer, its bytes taken by the kernel)
        self._send_since = 0.0  # when that mark last moved

    # -- connection -------------------------------------------------------------

    def connectionMade(self) -> None:
        self.site = self.factory
        self._clock = self.site.clock()
        self.parser = httptools.HttpRequestParser(self)
        self._arm(self.site.headerTimeout)

    def connectionLost(self, reason: Failure | None = None) -> None:
        self.lost = True
        self._cancel_timer(hard=True)
        active = self._active
        if active is not None and active._producer is not None:
            producer, active._producer = active._producer, None
            stop = getattr(producer, "stopProducing", None)
            if stop is not None:
                stop()
        for req in (self._current, *self._queue):
            if req is not None and req.body is not None:
                req.body.close()
        self._queue.clear()
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def connectionDraining(self) -> Any:
        """A graceful stop: finish the request being answered with ``Connection: close``."""
        self.draining = True
        if self._active is None:
            self.close()
            return None
        import asyncio

        self._drained = asyncio.get_event_loop().create_future()
        return self._drained

    def send(self, data: bytes) -> None:
        transport = self.transport
        if transport is not None and not self.lost:
            transport.write(data)

    def close(self) -> None:
        self._closing = True
        self._cancel_timer(hard=True)
        if self.transport is not None:
            self.transport.loseConnection()

    def abort(self) -> None:
        self._closing = True
        self._cancel_timer(hard=True)
        if self.transport is not None:
            self.transport.abortConnection()

    # -- timers -----------------------------------------------------------------

    # One timeout is armed at a time, as a deadline. Re-arming it (twice a request on a
    # keep-alive connection) only moves the deadline; the one delayed call, when it comes,
    # goes back to sleep until the deadline if that moved later. A delayed call is
    # scheduled anew only when the deadline moves earlier than it, or none is pending.

    def _arm(self, seconds: float | None) -> None:
        if not seconds:
            self._deadline = None
            return
        clock = self._clock
        deadline = self._deadline = clock.seconds() + seconds
        timer = self._timer
        if timer is not None:
            if timer.active() and timer.getTime() <= deadline:
                return
            self._cancel_timer(hard=True)
            self._deadline = deadline
        self._timer = clock.callLater(seconds, self._timer_fired)

    def _cancel_timer(self, hard: bool = False) -> None:
        """Disarm; ``hard`` also cancels the pending delayed call (the connection is going away)."""
        self._deadline = None
        if hard:
            timer, self._timer = self._timer, None
            if timer is not None and timer.active():
                timer.cancel()

    def _timer_fired(self) -> None:
        self._timer = None
        deadline = self._deadline
        if deadline is None:
            return
        clock = self._clock
        left = deadline - clock.seconds()
        if left > 0:
            self._timer = clock.callLater(left, self._timer_fired)
            return
        self._deadline = None
        self._timed_out()

    def _timed_out(self) -> None:
        if self._active is not None:
            self._check_send()
            return
        if self._current is not None and self._header_count >= 0 and self._current.started:
            self._refuse(_Refused(408, "the request headers took too long"))
            self._pump()
        else:
            self.close()

    # -- bytes in ---------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        if self._closing or self._stopped:
            return
        self._buffer = self._buffer + data if self._buffer else data
        self._pump()

    def _pump(self) -> None:
        """Parse, dispatch and answer in order until there is nothing to do; then set reading and timers."""
        if self._pumping:
            return  # the loop below, further up the stack, goes on
        self._pumping = True
        try:
            while not self.lost and not self._closing:
                if self._active is None:
                    if self._queue:
                        self._dispatch_one(self._queue.popleft())
                        continue
                    if self._refusal is not None:
                        req, e = self._refusal
                        self._refusal = None
                        self._active = req
                        req.error(e.status, e.detail)
                        continue
                if self._buffer and not self._stopped and len(self._queue) < MAX_PIPELINE and (
                    self._active is None or not self._queue
                ):
                    self._feed()
                    continue
                break
        finally:
            self._pumping = False
        if self.lost or self._closing:
            return
        if self._active is not None:
            if self._queue or self._buffer or self._current is not None:
                self._pause()
            return
        if self._stopped:
            return
        self._maybe_continue()
        self._resume()
        self._arm(self.site.keepAliveTimeout if self._current is None else self.site.headerTimeout)

    def _feed(self) -> None:
        size = FEED_SLICE if self._in_body else FEED_SLICE_HEADERS
        chunk = self._buffer
        if len(chunk) > size:
            chunk, self._buffer = chunk[:size], chunk[size:]
        else:
            self._buffer = b""  # the usual case: one request, fed whole
        try:
            self.parser.feed_data(chunk)
        except _Refused as e:
            self._refuse(e)
        except httptools.HttpParserUpgrade:
            # Upgrade/CONNECT: llhttp stops parsing there. Answer what was complete, then close.
            self._buffer = b""
            self._stopped = True
            if self._current is not None:
                self._refuse(_Refused(501, "upgrades are not supported"))
                return
            for req in self._queue:
                req.keepAlive = False
            if self._active is not None:
                self._active.keepAlive = False
            self._pause()
        except httptools.HttpParserCallbackError as e:
            cause = e.__context__
            self._refuse(cause if isinstance(cause, _Refused) else _Refused(400, "malformed request"))
        except httptools.HttpParserInvalidMethodError:
            # A method llhttp does not know, on what looks like a request line: 501; noise: 400.
            looks_like_request = re.match(rb"[A-Za-z0-9!#$%&'*+.^_`|~-]+ \S+ HTTP/1\.[01]\r?\n", chunk)
            self._refuse(_Refused(501 if looks_like_request else 400, "unknown method"))
        except httptools.HttpParserError as e:
            self._refuse(self._classify(e))

    def _classify(self, e: Exception) -> _Refused:
        text = str(e)
        if "Transfer-Encoding" in text or "transfer-encoding" in text:
            te = self._current and self._current.getHeader("transfer-encoding")
            codings = [c.strip().lower() for c in (te or "").split(",") if c.strip()]
            if codings and any(c not in ("chunked",) for c in codings) and not self._has_cl():
                return _Refused(501, "unsupported transfer coding")
        return _Refused(400, "malformed request")

    def _has_cl(self) -> bool:
        return self._current is not None and any(k == b"content-length" for k, _ in self._current.headers)

    def _pause(self) -> None:
        if not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pauseProducing()

    def _resume(self) -> None:
        if self._paused and self.transport is not None and not self.lost:
            self._paused = False
            self.transport.resumeProducing()

    # -- httptools callbacks ----------------------------------------------------

    def on_message_begin(self) -> None:
        req = self._current = Request(self)
        req.started = time.time()
        client = self._client
        if client is _UNKNOWN:
            client = self._client = self._peer()
        req.client = client
        self._header_bytes = 0
        self._header_count = 0
        self._url_len = 0
        if self._active is None and not self._queue:
            self._arm(self.site.headerTimeout)

    def on_url(self, url: bytes) -> None:
        self._url_len += len(url)
        if self._url_len > MAX_URL:
            raise _Refused(414, "the request target is too long")
        req = self._current
        assert req is not None
        req.target += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value) + 4
        self._header_count += 1
        if self._header_bytes > MAX_HEADER_BYTES or self._header_count > MAX_HEADERS:
            raise _Refused(431, "the request headers are too large")
        req = self._current
        assert req is not None
        req.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        req = self._current
        assert req is not None
        parser = self.parser
        req.method = parser.get_method().decode("latin-1")
        req.version = parser.get_http_version()
        req.keepAlive = bool(parser.should_keep_alive())
        target = req.target
        if target.startswith(b"/"):
            path, _, req.query = target.partition(b"?")
            req.path = path.partition(b"#")[0]
        elif target == b"*" and req.method == "OPTIONS":
            req.path = b"*"
        elif b"://" in target[:16]:
            # absolute-form (RFC 9112 3.2.2): the path part is what is served
            rest = target.split(b"://", 1)[1]
            slash = rest.find(b"/")
            path = rest[slash:] if slash >= 0 else b"/"
            path, _, req.query = path.partition(b"?")
            req.path = path
        else:
            raise _Refused(400, "bad request target")
        lengths: list[bytes] = []
        te: list[bytes] = []
        hosts = 0
        expect: bytes | None = None
        for k, v in req.headers:
            if k == b"host":
                hosts += 1
            elif k == b"content-length":
                lengths.append(v)
            elif k == b"transfer-encoding":
                te.append(v)
            elif k == b"expect":
                expect = v
        if len(lengths) > 1:
            raise _Refused(400, "more than one Content-Length")
        if lengths and te:
            raise _Refused(400, "both Content-Length and Transfer-Encoding")
        if te:
            codings = [c.strip().lower() for v in te for c in v.split(b",") if c.strip()]
            if not codings or codings[-1] != b"chunked":
                raise _Refused(400, "the last transfer coding is not chunked")
            if any(c != b"chunked" for c in codings) or len(codings) > 1:
                raise _Refused(501, "unsupported transfer coding")
        if req.version == "1.1":
            if hosts != 1:
                raise _Refused(400, "an HTTP/1.1 request needs exactly one Host header")
        limit = self.site.maxRequestBody
        if lengths:
            try:
                declared = int(lengths[0].strip())
            except ValueError:
                raise _Refused(400, "bad Content-Length") from None
            if limit is not None and declared > limit:
                raise _Refused(413, f"the request body is larger than {limit} bytes")
        self._in_body = True
        if expect is not None:
            if expect.strip().lower() != b"100-continue":
                raise _Refused(417, "only 100-continue is understood")
            if req.version == "1.1":
                req.expectContinue = True
                self._maybe_continue()

    def on_body(self, body: bytes) -> None:
        req = self._current
        assert req is not None
        req.bodyLength += len(body)
        limit = self.site.maxRequestBody
        if limit is not None and req.bodyLength > limit:
            raise _Refused(413, f"the request body is larger than {limit} bytes")
        if req.body is None:
            req.body = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
        req.body.write(body)

    def on_message_complete(self) -> None:
        req = self._current
        assert req is not None
        self._current = None
        self._in_body = False
        if req.body is None:
            req.body = io.BytesIO()
        else:
            req.body.seek(0)
        self._queue.append(req)

    # -- answering in order -----------------------------------------------------

    def _maybe_continue(self) -> None:
        req = self._current
        if req is not None and req.expectContinue and not req.continued and self._active is None and not self._queue:
            req.continued = True
            self.send(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _dispatch_one(self, req: Request) -> None:
        self._active = req
        self._deadline = None  # no timeout while the request is answered
        if self.draining:
            req.keepAlive = False
        try:
            self.site.handle(req)
        except Exception:  # noqa: BLE001 - a broken resource answers 500, the server goes on
            self.site.internalError(req)
        if self._active is req and not self.lost:
            self._watch_send(req)

    # -- the send timeout -------------------------------------------------------

    def _watch_send(self, req: Request) -> None:
        """The answer to ``req`` goes on after its dispatch: check now and then that the client takes it."""
        timeout = self.site.sendTimeout
        if not timeout:
            return
        self._send_mark = None
        self._check_send()

    def _check_send(self) -> None:
        req = self._active
        timeout = self.site.sendTimeout
        if req is None or not timeout or self.lost or self._closing:
            return
        transport = self.transport
        size = getattr(transport, "writeBufferSize", None)
        buffered = size() if size is not None else 0
        producer = req._producer
        waiting = buffered > 0 or bool(getattr(producer, "active", False))  # bytes wait for the client
        taken = req.sentLength - buffered - _unacknowledged(transport)  # bytes the client has taken
        now = self._clock.seconds()
        mark = self._send_mark
        if not waiting or mark is None or mark[0] is not req or mark[1] != taken:
            self._send_mark = (req, taken)
            self._send_since = now
        elif now - self._send_since >= timeout:
            from tapster.plugins.web._site import _log

            _log.info("web: %s %r: the client took nothing for %gs (--send-timeout): disconnected",
                      req.method, req.target, timeout)
            req.keepAlive = False
            self.abort()
            return
        self._arm(timeout / 4)

    def requestDone(self, req: Request) -> None:
        """Called by :meth:`Request.finish`: log, then the next request or the close."""
        if req is not self._active:
            return
        self._active = None
        self.site.logAccess(req)
        if req.body is not None:
            req.body.close()
        if not req.keepAlive or self.draining:
            self.close()
            if self._drained is not None and not self._drained.done():
                self._drained.set_result(None)
            return
        self._pump()

    def _refuse(self, e: _Refused) -> None:
        """Answer an error for the request being parsed, after those before it, then close."""
        self._buffer = b""
        self._stopped = True
        self._in_body = False
        req = self._current or Request(self)
        self._current = None
        req.keepAlive = False
        req.method = req.method or "GET"
        if req.client is None:
            client = self._client
            if client is _UNKNOWN:
                client = self._client = self._peer()
            req.client = client
        req.target = req.target or b"-"
        if req.body is not None:
            req.body.close()
            req.body = None
        self._refusal = (req, e)
        self._pause()

    def _peer(self) -> tuple[str, int] | None:
        transport = self.transport
        if transport is None:
            return None
        try:
            peer = transport.getPeer()
        except Exception:  # noqa: BLE001 - a UNIX socket peer or a test double
            return None
        host = getattr(peer, "host", None)
        port = getattr(peer, "port", 0)
        return (host, port) if host is not None else None
