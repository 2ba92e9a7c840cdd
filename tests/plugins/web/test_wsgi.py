"""WSGI per PEP 3333, with a worker thread for real and the reactor side driven by the test."""

from __future__ import annotations

import sys

import pytest

from tapster.plugins.web._site import WebError
from tapster.plugins.web._wsgi import WSGIResource, load_application
from tests.plugins.web._helpers import Conn, ThreadClock, make_site


def run(app, request: bytes, **kw):
    clock = ThreadClock()
    resource = WSGIResource(app, maxThreads=2)
    site = make_site(resource, clock=clock, **kw)
    site.startFactory()
    try:
        c = Conn(site)
        c.send(request)
        clock.drain(lambda: c.protocol._active is None and not c.protocol._queue)
        return c, (None if c.transport.aborted else c.responses())
    finally:
        site.stopFactory()


def test_environ_and_body():
    seen = {}

    def app(environ, start_response):
        seen.update(environ)
        body = environ["wsgi.input"].read()
        start_response("201 Created", [("Content-Type", "text/plain"), ("X-App", "1")])
        return [b"got " + body]

    _, [r] = run(app, b"POST /p%20q?x=1 HTTP/1.1\r\nHost: h\r\nX-Thing: a\r\nContent-Type: text/x\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
    assert r.status == 201 and r.body == b"got abc" and r.header("x-app") == "1"
    assert r.header("content-length") == "7"
    assert seen["PATH_INFO"] == "/p q" and seen["QUERY_STRING"] == "x=1"
    assert seen["REQUEST_METHOD"] == "POST" and seen["CONTENT_LENGTH"] == "3" and seen["CONTENT_TYPE"] == "text/x"
    assert seen["HTTP_X_THING"] == "a" and seen["wsgi.url_scheme"] == "http" and seen["SERVER_PROTOCOL"] == "HTTP/1.1"


def test_generator_is_chunked_and_closed():
    closed = []

    class Body:
        def __iter__(self):
            yield b"a"
            yield b""
            yield b"bc"

        def close(self):
            closed.append(True)

    def app(environ, start_response):
        start_response("200 OK", [])
        return Body()

    _, [r] = run(app, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert r.header("transfer-encoding") == "chunked" and r.body == b"abc" and closed == [True]


def test_write_callable():
    def app(environ, start_response):
        write = start_response("200 OK", [("Content-Length", "5")])
        write(b"he")
        return [b"llo"]

    _, [r] = run(app, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert r.body == b"hello"


def test_exc_info_before_headers_replaces_them():
    def app(environ, start_response):
        start_response("200 OK", [])
        try:
            raise ValueError("x")
        except ValueError:
            start_response("500 Oops", [("Content-Type", "text/plain")], sys.exc_info())
        return [b"sorry"]

    _, [r] = run(app, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert r.status == 500 and r.body == b"sorry"


def test_exc_info_after_headers_reraises_and_aborts():
    def app(environ, start_response):
        write = start_response("200 OK", [])
        write(b"partial")
        try:
            raise ValueError("late")
        except ValueError:
            start_response("500 Oops", [], sys.exc_info())
        return []

    c, _ = run(app, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert c.transport.aborted


def test_application_error_is_500_and_next_request_still_served():
    def app(environ, start_response):
        raise RuntimeError("boom")

    _, [r] = run(app, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert r.status == 500 and b"boom" not in r.body


def test_no_start_response_is_500():
    _, [r] = run(lambda environ, start_response: [b"x"], b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert r.status == 500


def test_head_drops_the_body():
    def app(environ, start_response):
        start_response("200 OK", [("Content-Length", "3")])
        return [b"abc"]

    c, _ = run(app, b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert c.transport.value().endswith(b"\r\n\r\n")


def test_load_application_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "wsgimod_ok.py").write_text("def app(e, s):\n    return []\nnot_callable = 3\n")
    (tmp_path / "wsgimod_bad.py").write_text("raise ImportError('nope')\n")
    assert callable(load_application("wsgimod_ok.app"))
    for name, words in [("wsgimod_ok.not_callable", "not callable"), ("wsgimod_bad.app", "cannot import"),
                        ("wsgimod_missing.app", "cannot import"), ("wsgimod_ok.nothing", "no attribute"),
                        ("app", "MODULE.APP")]:
        with pytest.raises(WebError, match=words):
            load_application(name)


def test_application_is_saved_by_name_and_swapped_live(tmp_path, monkeypatch):
    import pickle

    monkeypatch.chdir(tmp_path)
    (tmp_path / "wsgimod_a.py").write_text(
        "def app(e, s):\n    s('200 OK', [])\n    return [b'A']\n"
        "def other(e, s):\n    s('200 OK', [])\n    return [b'B']\n")
    resource = WSGIResource("wsgimod_a.app")
    assert resource.resolve()({}, lambda *a: None) == [b"A"]
    resource.application = "wsgimod_a.other"
    assert resource.resolve()({}, lambda *a: None) == [b"B"]
    copy = pickle.loads(pickle.dumps(resource))
    assert copy.application == "wsgimod_a.other" and copy._executor is None and copy._resolved is None
