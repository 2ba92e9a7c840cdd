"""The HTTP/1.1 layer: keep-alive, pipelining, bodies, refusals, bounds and timeouts."""

from __future__ import annotations

import pytest

from tapster.core.testing import Clock
from tapster.plugins.web._http import MAX_HEADER_BYTES, MAX_URL
from tapster.plugins.web._site import Resource, combined_log_line
from tests.plugins.web._helpers import Conn, make_site


class Echo(Resource):
    """Answers with the method, path and body it got."""

    def __init__(self) -> None:
        self.seen = []

    def render(self, request) -> None:
        body = request.body.read()
        self.seen.append((request.method, request.path, body))
        request.respond(200, b"%s %s %s" % (request.method.encode(), request.path, body))


def conn(**kw) -> tuple[Conn, Echo]:
    echo = Echo()
    return Conn(make_site(echo, **kw)), echo


def test_keep_alive_two_requests_one_connection():
    c, _ = conn()
    c.send(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
    c.send(b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
    r = c.responses()
    assert [x.body for x in r] == [b"GET /a ", b"GET /b "]
    assert not c.transport.disconnecting
    assert r[0].header("date") and r[0].header("server").startswith("tapster/")
    assert r[0].header("content-length") == "7"


def test_pipelined_requests_answered_in_order():
    c, _ = conn()
    c.send(b"".join(b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(50)))
    assert [x.body for x in c.responses()] == [b"GET /%d " % i for i in range(50)]


def test_pipelined_requests_split_byte_by_byte():
    c, _ = conn()
    data = b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nPOST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
    for i in range(len(data)):
        c.send(data[i : i + 1])
    assert [x.body for x in c.responses()] == [b"GET /1 ", b"POST /2 abc"]


def test_http10_closes_unless_keep_alive():
    c, _ = conn()
    c.send(b"GET / HTTP/1.0\r\n\r\n")
    assert c.transport.disconnecting
    c2, _ = conn()
    c2.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert not c2.transport.disconnecting
    assert c2.responses()[0].header("connection") == "keep-alive"


def test_connection_close_is_honoured():
    c, _ = conn()
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert c.responses()[0].header("connection") == "close"
    assert c.transport.disconnecting


def test_chunked_request_body():
    c, echo = conn()
    c.send(b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    assert echo.seen == [("POST", b"/up", b"hello world")]


def test_expect_100_continue():
    c, echo = conn()
    c.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
    assert c.transport.value() == b"HTTP/1.1 100 Continue\r\n\r\n"
    c.send(b"abcd")
    assert echo.seen == [("POST", b"/", b"abcd")]


def test_expect_100_continue_too_large_gets_413_at_once():
    c, echo = conn(maxRequestBody=10)
    c.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n")
    assert c.responses()[0].status == 413
    assert c.transport.disconnecting and not echo.seen


def test_head_has_length_but_no_body():
    c, _ = conn()
    c.send(b"HEAD /x HTTP/1.1\r\nHost: x\r\n\r\nGET /y HTTP/1.1\r\nHost: x\r\n\r\n")
    r = c.responses(head_only={0})
    assert r[0].header("content-length") == "8" and r[1].body == b"GET /y "


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (b"BREW / HTTP/1.1\r\nHost: x\r\n\r\n", 501),
        (b"GET / HTTP/1.1\r\nHost: x\r\nExpect: tea\r\n\r\n", 417),
        (b"garbage\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n", 400),
    ],
)
def test_ambiguous_or_malformed_requests_refused_and_closed(request_bytes, status):
    c, echo = conn()
    c.send(request_bytes)
    r = c.responses()
    assert [x.status for x in r] == [status]
    assert r[0].header("connection") == "close"
    assert c.transport.disconnecting
    assert not echo.seen


def test_refusal_comes_after_the_pipelined_requests_before_it():
    c, _ = conn()
    c.send(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n"
           b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
    assert [x.status for x in c.responses()] == [200, 400]


def test_uri_too_long_414():
    c, _ = conn()
    c.send(b"GET /" + b"a" * MAX_URL + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert c.responses()[0].status == 414


def test_headers_too_large_431():
    c, _ = conn()
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * MAX_HEADER_BYTES + b"\r\n\r\n")
    assert c.responses()[0].status == 431


def test_too_many_headers_431():
    c, _ = conn()
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(200)) + b"\r\n")
    assert c.responses()[0].status == 431


def test_body_too_large_413_chunked():
    c, echo = conn(maxRequestBody=8)
    c.send(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n9\r\n123456789\r\n0\r\n\r\n")
    assert c.responses()[0].status == 413 and not echo.seen


def test_header_timeout_408_and_keep_alive_timeout_close():
    clock = Clock()
    c, _ = conn(clock=clock, headerTimeout=5, keepAliveTimeout=10)
    c.send(b"GET / HTTP/1.1\r\nHo")
    clock.advance(5.1)
    assert c.responses()[0].status == 408 and c.transport.disconnecting
    c2, _ = conn(clock=clock, headerTimeout=5, keepAliveTimeout=10)
    c2.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    clock.advance(9)
    assert not c2.transport.disconnecting
    clock.advance(1.1)
    assert c2.transport.disconnecting


def test_idle_connection_without_a_byte_is_closed_at_header_timeout():
    clock = Clock()
    c, _ = conn(clock=clock, headerTimeout=5)
    clock.advance(5.1)
    assert c.transport.disconnecting and c.transport.value() == b""


class Slow(Resource):
    def __init__(self) -> None:
        self.pending = []

    def render(self, request) -> None:
        self.pending.append(request)


def test_reading_pauses_while_pipelined_requests_wait():
    slow = Slow()
    c = Conn(make_site(slow))
    c.send(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n" * 400)
    assert len(slow.pending) == 1
    assert c.transport.producerState == "paused"
    assert len(c.protocol._queue) <= 16 + 1024 // 18
    while slow.pending:
        slow.pending.pop(0).respond(200, b"k")
        c.pump()
    assert len(c.responses()) == 400
    assert c.transport.producerState == "producing"


def test_extra_headers_sent_and_changed_live():
    c, _ = conn(headers=[("X-One", "1")])
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    c.site.addHeader("X-Two", "2")
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    r = c.responses()
    assert r[0].header("x-one") == "1" and r[0].header("x-two") is None
    assert r[1].header("x-two") == "2"


def test_broken_resource_gives_500_without_traceback_by_default():
    class Broken(Resource):
        def render(self, request):
            raise RuntimeError("secret detail")

    c = Conn(make_site(Broken()))
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    r = c.responses()[0]
    assert r.status == 500 and b"secret" not in r.body
    c2 = Conn(make_site(Broken(), displayTracebacks=True))
    c2.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"secret detail" in c2.responses()[0].body


def test_combined_log_line_escapes_hostile_bytes():
    c, _ = conn()
    c.send(b'GET /a"b HTTP/1.1\r\nHost: x\r\nUser-Agent: evil\x01"\r\nReferer: r\r\n\r\n')
    line = combined_log_line(c.protocol._last if hasattr(c.protocol, "_last") else _last_request(c))
    assert line.startswith('127.0.0.1 - - [') and '"GET /a\\"b HTTP/1.1" 200' in line
    assert '"r" "evil\\x01\\""' in line


def _last_request(c):
    from tapster.plugins.web._http import Request

    req = Request(c.protocol)
    req.method, req.target, req.code, req.sentLength = "GET", b'/a"b', 200, 9
    req.client = ("127.0.0.1", 1)
    req.headers = [(b"user-agent", b'evil\x01"'), (b"referer", b"r")]
    return req


def test_upgrade_request_answered_then_closed():
    c, _ = conn()
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n")
    r = c.responses()
    assert len(r) == 1 and c.transport.disconnecting
