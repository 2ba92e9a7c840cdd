"""Every byte a client sends is hostile: hypothesis throws bytes at the request path.

Properties: nothing raises out of dataReceived; whatever is written back is a
sequence of well-formed HTTP/1.1 responses; the buffers the channel holds stay
bounded; a valid request cut anywhere gets the same answer as sent whole.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tapster.plugins.web._http import FEED_SLICE, MAX_PIPELINE
from tapster.plugins.web._site import Resource
from tests.plugins.web._helpers import Conn, make_site, parse_responses

settings.register_profile("web", max_examples=200, deadline=None, derandomize=True)
PROFILE = settings.get_profile("web")


class Answer(Resource):
    def render(self, request) -> None:
        request.respond(200, b"ok:" + request.body.read()[:32])


PIECES = [
    b"GET / HTTP/1.1\r\n", b"POST /x HTTP/1.1\r\n", b"GET /a?b HTTP/1.0\r\n", b"Host: h\r\n", b"\r\n",
    b"Content-Length: 3\r\n", b"Content-Length: 99999999999999999999\r\n", b"Transfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: gzip\r\n", b"Expect: 100-continue\r\n", b"Connection: close\r\n", b"abc", b"3\r\nabc\r\n",
    b"0\r\n\r\n", b"ffffffffffffffff\r\n", b"\n", b"\r", b"\x00", b" ", b":", b"X-A: \xff\xfe\r\n", b"GET",
    b"Upgrade: h2c\r\nConnection: upgrade\r\n", b"CONNECT h:1 HTTP/1.1\r\n",
]

streams = st.lists(st.one_of(st.sampled_from(PIECES), st.binary(max_size=40)), max_size=30).map(b"".join)


def check_output(data: bytes) -> None:
    # Each answer starts with a status line; parse_responses raises on anything malformed.
    for resp in parse_responses(data):
        assert 100 <= resp.status <= 599


@PROFILE
@given(streams, st.lists(st.integers(min_value=1, max_value=64), max_size=20))
def test_hostile_bytes_never_break_the_channel(stream, cuts):
    c = Conn(make_site(Answer(), maxRequestBody=1000))
    pos = 0
    for n in cuts + [len(stream)]:
        piece = stream[pos : pos + n]
        pos += n
        if piece:
            c.send(piece)
        ch = c.protocol
        assert len(ch._queue) <= MAX_PIPELINE + 60
        assert len(ch._buffer) <= len(stream)
        if ch._current is not None and ch._current.body is not None:
            assert ch._current.bodyLength <= 1000
    if c.transport.aborted:
        return
    value = c.transport.value()
    if value.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"):
        value = value[len(b"HTTP/1.1 100 Continue\r\n\r\n"):]
    # A response may still be in progress only if the request was; the complete part is well formed.
    if c.protocol._active is None:
        check_output(value)


VALID = (b"GET /one HTTP/1.1\r\nHost: h\r\n\r\n"
         b"POST /two HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n"
         b"POST /three HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
         b"HEAD /four HTTP/1.1\r\nHost: h\r\n\r\n")


@PROFILE
@given(st.lists(st.integers(min_value=0, max_value=len(VALID)), max_size=12))
def test_split_invariance(points):
    whole = Conn(make_site(Answer()))
    whole.send(VALID)
    cut = Conn(make_site(Answer()))
    bounds = sorted(set(points)) + [len(VALID)]
    start = 0
    for end in bounds:
        if end > start:
            cut.send(VALID[start:end])
            start = end
    strip = [r.header("date") for r in parse_responses(whole.transport.value(), {3})]
    assert len(strip) == 4
    assert [(r.status, r.body) for r in parse_responses(cut.transport.value(), {3})] == [
        (r.status, r.body) for r in parse_responses(whole.transport.value(), {3})
    ]


def test_body_larger_than_a_slice_is_spooled_within_the_limit():
    c = Conn(make_site(Answer(), maxRequestBody=4 * FEED_SLICE))
    body = b"z" * (3 * FEED_SLICE)
    c.send(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    assert parse_responses(c.transport.value())[0].body == b"ok:" + b"z" * 32
