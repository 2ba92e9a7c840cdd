"""The send timeout (nginx's send_timeout) and the sendfile fallback, in memory with a Clock.

The transport double reports a write buffer (``writeBufferSize``) the test sets:
bytes waiting for the client. The real sockets are in tests/e2e/test_web_large.py.
"""

from __future__ import annotations

import pickle

from tapster.core.testing import Clock
from tapster.plugins.web import Options
from tapster.plugins.web._site import Resource, Site
from tests.plugins.web._helpers import Conn, make_site

GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


class Streaming(Resource):
    """Starts a response and leaves it open; the test writes the body through ``self.request``."""

    request = None

    def render(self, request) -> None:
        self.request = request
        request.startResponse(200, [("Content-Type", "text/plain")], 1000)
        request.write(b"x" * 100)


class Slow(Resource):
    """An answer still being computed: nothing written yet."""

    request = None

    def render(self, request) -> None:
        self.request = request


def connection(resource: Resource, timeout: float | None = 4.0) -> tuple[Conn, Clock]:
    clock = Clock()
    c = Conn(make_site(resource, clock=clock, sendTimeout=timeout))
    c.transport.buffered = 0
    c.transport.writeBufferSize = lambda: c.transport.buffered
    return c, clock


def test_an_answer_the_client_stops_taking_is_aborted_after_the_send_timeout() -> None:
    c, clock = connection(Streaming())
    c.send(GET)
    c.transport.buffered = 100  # nothing leaves
    for _ in range(4):
        clock.advance(1.0)
    assert not c.transport.aborted  # the stall was first seen at one check, so not yet
    clock.advance(1.0)
    clock.advance(1.0)
    assert c.transport.aborted


def test_a_client_that_keeps_taking_bytes_slowly_is_never_cut() -> None:
    resource = Streaming()
    c, clock = connection(resource)
    c.send(GET)
    c.transport.buffered = 100
    for _ in range(40):  # ten timeouts' worth: a few bytes taken per check
        clock.advance(1.0)
        c.transport.buffered -= 2
        resource.request.write(b"yy")
        c.transport.buffered += 2
        c.transport.buffered -= 1
    assert not c.transport.aborted


def test_an_answer_still_being_computed_is_not_a_stall() -> None:
    resource = Slow()
    c, clock = connection(resource)
    c.send(GET)
    for _ in range(40):
        clock.advance(1.0)
    assert not c.transport.aborted
    resource.request.respond(200, b"late")
    assert c.responses()[0].body == b"late"


def test_no_send_timeout_when_it_is_off_and_none_for_answers_sent_at_once() -> None:
    c, clock = connection(Streaming(), timeout=None)
    c.send(GET)
    c.transport.buffered = 100
    for _ in range(100):
        clock.advance(1.0)
    assert not c.transport.aborted

    class Quick(Resource):
        def render(self, request) -> None:
            request.respond(200, b"ok")

    c, clock = connection(Quick())
    c.send(GET)
    assert not clock.getDelayedCalls() or all(call.getTime() >= 30 for call in clock.getDelayedCalls())  # no 1 s check


def test_a_large_file_falls_back_to_the_producer_without_sendfile(tmp_path) -> None:
    from tapster.plugins.web import _static

    (tmp_path / "big.bin").write_bytes(b"z" * 300_000)
    before = dict(_static.stats)
    c = Conn(make_site(_static.File(str(tmp_path))))
    c.send(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
    assert c.responses()[0].body == b"z" * 300_000
    assert _static.stats["producer"] == before["producer"] + 1
    assert _static.stats["sendfile"] == before["sendfile"]


def test_send_timeout_option_default_zero_and_saved() -> None:
    config = Options()
    config.parseOptions(["--path", "."])
    assert config["send-timeout"] == 60.0
    config = Options()
    config.parseOptions(["--path", ".", "--send-timeout", "0"])
    from tapster.plugins.web import makeService

    assert makeService(config).factory.sendTimeout is None
    config = Options()
    config.parseOptions(["--path", ".", "--send-timeout", "2.5"])
    site = makeService(config).factory
    assert pickle.loads(pickle.dumps(site)).sendTimeout == 2.5


def test_a_site_saved_before_the_option_existed_gets_the_default() -> None:
    site = Site(Resource())
    state = site.__getstate__()
    state.pop("sendTimeout")
    old = Site.__new__(Site)
    old.__setstate__(state)
    assert old.sendTimeout == 60.0
