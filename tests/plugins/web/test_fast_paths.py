"""The fast paths answer exactly what the general paths answer, and stay correct when files change.

The small-file cache, the head built once per second, the head and a small body
in one write, the WSGI one-body answer in one call to the reactor, the lazily
moved keep-alive timer: each is checked here against the general code.
"""

from __future__ import annotations

import os
import pickle
import time

import pytest

import tapster.plugins.web._static as static
from tapster.core.testing import Clock
from tapster.plugins.web._http import encode_headers, status_prefix
from tapster.plugins.web._site import _quote
from tapster.plugins.web._static import File
from tapster.plugins.web._wsgi import WSGIResource
from tests.plugins.web._helpers import Conn, ThreadClock, make_site

OLD = time.time() - 3600  # an mtime old enough for a file to be cached


@pytest.fixture
def root(tmp_path, monkeypatch):
    # os.utime sets ctime to now, and a file changed less than CACHE_RACY seconds ago is
    # not cached: the racy rule sees these files from a clock a minute ahead.
    monkeypatch.setattr(static, "_now", lambda: time.time() + 60)
    www = tmp_path / "www"
    www.mkdir()
    for name, text in (("a.txt", "0123456789"), ("index.html", "<h1>home</h1>"), ("b.css", "b{}")):
        (www / name).write_text(text)
        os.utime(www / name, (OLD, OLD))
    (tmp_path / "secret").write_text("top secret")
    return www


def _conn(resource, **kw):
    return Conn(make_site(resource, **kw))


def _raw(c: Conn, request: bytes) -> bytes:
    before = len(c.transport.value())
    c.send(request)
    return c.transport.value()[before:]


def _same_second(f):
    """Run ``f`` until two answers come within one second (the Date header must match)."""
    for _ in range(3):
        t = int(time.time())
        out = f()
        if int(time.time()) == t:
            return out
    raise AssertionError("the clock kept crossing seconds")


GET_A = b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n"


def test_cached_answer_is_byte_identical_to_the_general_path(root):
    def answers():
        cached = File(str(root))
        c = _conn(cached)
        first = _raw(c, GET_A)  # general path; fills the cache
        assert cached._cache and b"/a.txt" in cached._cache
        second = _raw(c, GET_A)  # from the cache
        fresh = _raw(_conn(File(str(root))), GET_A)  # another File: general path
        return first, second, fresh

    first, second, fresh = _same_second(answers)
    assert first == second == fresh
    assert first.endswith(b"\r\n\r\n0123456789")
    assert b"Content-Length: 10\r\n" in first and b"ETag: " in first


def test_cached_head_and_index_and_extra_headers_match(root):
    def answers():
        out = []
        for resource in (File(str(root)), File(str(root))):
            c = _conn(resource, headers=[("X-Frame-Options", "DENY")])
            if not out:  # warm the first one's cache
                _raw(c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                _raw(c, b"HEAD /a.txt HTTP/1.1\r\nHost: x\r\n\r\n")
                _raw(c, GET_A)
            out.append((_raw(c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
                        _raw(c, b"HEAD /a.txt HTTP/1.1\r\nHost: x\r\n\r\n"),
                        _raw(c, b"GET /a.txt HTTP/1.0\r\n\r\n")))
        return out

    warm, cold = _same_second(answers)
    assert warm == cold
    index, head, http10 = warm
    assert index.endswith(b"<h1>home</h1>") and b"X-Frame-Options: DENY\r\n" in index
    assert head.endswith(b"\r\n\r\n") and b"Content-Length: 10\r\n" in head
    assert b"Connection: close\r\n" in http10


def test_head_and_small_body_go_out_in_one_write(root):
    c = _conn(File(str(root)))
    writes = []
    original = c.transport.write
    c.transport.write = lambda data: (writes.append(data), original(data))  # type: ignore[method-assign]
    c.send(GET_A)
    c.send(GET_A)
    assert len(writes) == 2 and all(w.endswith(b"0123456789") for w in writes)


def test_status_prefix_and_encoded_headers_are_what_startResponse_used_to_build():
    from email.utils import formatdate

    def build():
        now = int(time.time())
        return status_prefix(200, None, b"tapster/x"), status_prefix(299, "Fine", b"tapster/x"), now

    ok, custom, now = _same_second(build)
    date = formatdate(now, usegmt=True).encode()
    assert ok == b"HTTP/1.1 200 OK\r\nDate: " + date + b"\r\nServer: tapster/x\r\n"
    assert custom.startswith(b"HTTP/1.1 299 Fine\r\n")
    assert encode_headers([("A", "1"), ("B-c", "x y")]) == b"A: 1\r\nB-c: x y\r\n"


def test_changed_file_is_served_anew_even_with_size_and_mtime_kept(root):
    resource = File(str(root))
    c = _conn(resource)
    c.send(GET_A)
    c.send(GET_A)
    assert resource._cache
    time.sleep(0.05)  # past the file system's timestamp tick (the racy rule, moved aside here, covers it)
    (root / "a.txt").write_text("abcdefghij")  # same size
    os.utime(root / "a.txt", (OLD, OLD))  # same mtime: ctime still moves
    c.send(GET_A)
    assert [r.body for r in c.responses()] == [b"0123456789", b"0123456789", b"abcdefghij"]


def test_vanished_file_and_file_replaced_by_an_escaping_symlink(root, tmp_path):
    resource = File(str(root))
    c = _conn(resource)
    c.send(GET_A)
    c.send(GET_A)
    (root / "a.txt").unlink()
    c.send(GET_A)
    os.symlink(tmp_path / "secret", root / "a.txt")
    c.send(GET_A)
    assert [r.status for r in c.responses()] == [200, 200, 404, 403]


def test_recently_changed_file_is_not_cached(root, monkeypatch):
    monkeypatch.setattr(static, "_now", time.time)
    (root / "new.txt").write_text("fresh")
    resource = File(str(root))
    c = _conn(resource)
    c.send(b"GET /new.txt HTTP/1.1\r\nHost: x\r\n\r\n")
    assert not resource._cache
    assert c.responses()[0].body == b"fresh"


def test_resolution_is_redone_after_the_ttl(root, monkeypatch):
    resource = File(str(root))
    c = _conn(resource)
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"/" in (resource._cache or {})
    # another index file, first in the list, appears: seen once the resolution is redone
    (root / "home.html").write_text("new home")
    resource._cache[b"/"].checked -= static.CACHE_TTL + 1  # type: ignore[index]
    resource.indexNames.insert(0, "home.html")
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert c.responses()[1].body == b"new home"


def test_live_changes_of_the_configuration_empty_the_cache(root, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.txt").write_text("other file")
    (other / "c.txt").write_text("c")
    os.utime(other / "a.txt", (OLD, OLD))
    os.utime(other / "c.txt", (OLD, OLD))
    resource = File(str(root))
    c = _conn(resource)
    c.send(GET_A)  # cached under root
    resource.path = str(other)
    c.send(b"GET /c.txt HTTP/1.1\r\nHost: x\r\n\r\n")  # a miss, cached under other
    c.send(GET_A)  # the root entry must not answer
    resource.path = str(root)
    c.send(b"GET /c.txt HTTP/1.1\r\nHost: x\r\n\r\n")  # other's entry must not answer
    resource.mimeTypes[".txt"] = "text/x-mine"
    c.send(GET_A)
    bodies = [(r.status, r.body) for r in c.responses()]
    assert bodies == [(200, b"0123456789"), (200, b"c"), (200, b"other file"), (404, bodies[3][1]),
                      (200, b"0123456789")]
    assert c.responses()[4].header("content-type") == "text/x-mine"


def test_conditional_and_range_requests_on_a_cached_file(root):
    resource = File(str(root))
    c = _conn(resource)
    c.send(GET_A)
    etag = c.responses()[0].header("etag")
    assert resource._cache
    c.send(b"GET /a.txt HTTP/1.1\r\nHost: x\r\nIf-None-Match: " + etag.encode() + b"\r\n\r\n")
    c.send(b"GET /a.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=2-4\r\n\r\n")
    c.send(b"POST /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    responses = c.responses()
    assert [r.status for r in responses] == [200, 304, 206, 405]
    assert responses[2].body == b"234"


def test_cache_is_bounded_and_not_saved(root, monkeypatch):
    monkeypatch.setattr(static, "CACHE_ENTRIES", 2)
    resource = File(str(root))
    c = _conn(resource)
    for name in ("a.txt", "index.html", "b.css"):
        c.send(f"GET /{name} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert list(resource._cache or {}) == [b"/index.html", b"/b.css"]
    assert resource._cache_bytes == len("<h1>home</h1>") + len("b{}")
    copy = pickle.loads(pickle.dumps(resource))
    assert "_cache" not in copy.__dict__ and copy._cache is None
    assert copy.path == resource.path


def test_keep_alive_timer_moves_without_new_delayed_calls():
    from tests.plugins.web.test_http import Echo

    clock = Clock()
    c = Conn(make_site(Echo(), clock=clock, headerTimeout=5, keepAliveTimeout=10))
    for _ in range(20):
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        clock.advance(1)
    assert len(clock.getDelayedCalls()) == 1
    clock.advance(8.9)  # 9.9 s after the last answer
    assert not c.transport.disconnecting
    clock.advance(0.2)
    assert c.transport.disconnecting
    assert len(c.responses()) == 20


def _wsgi_raw(app, request: bytes) -> bytes:
    clock = ThreadClock()
    site = make_site(WSGIResource(app, maxThreads=1), clock=clock)
    site.startFactory()
    try:
        c = Conn(site)
        c.send(request)
        clock.drain(lambda: c.protocol._active is None and not c.protocol._queue)
        return c.transport.value()
    finally:
        site.stopFactory()


@pytest.mark.parametrize("declared", [True, False])
def test_wsgi_one_body_answer_matches_the_streamed_one(declared):
    body = b"Hello, world!\n"
    headers = [("Content-Type", "text/plain")] + ([("Content-Length", str(len(body)))] if declared else [])

    def listed(environ, start_response):
        start_response("200 OK", headers)
        return [body]

    def streamed(environ, start_response):  # a generator takes the general path
        start_response("200 OK", headers + ([] if declared else [("Content-Length", str(len(body)))]))
        yield body

    request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    fast, slow = _same_second(lambda: (_wsgi_raw(listed, request), _wsgi_raw(streamed, request)))
    assert fast == slow
    assert fast.endswith(b"\r\n\r\nHello, world!\n")


@pytest.mark.parametrize("value", ["Mozilla/5.0 (X11)", "", "GET / HTTP/1.1", 'say "hi"', "a\\b", "\x1b[31m",
                                   "caf\xe9", "\x7f"])
def test_log_quoting_fast_path_agrees_with_the_escaping(value):
    slow = []
    for ch in value:
        if ch == '"' or ch == "\\":
            slow.append("\\" + ch)
        elif ch < " " or "\x7f" <= ch <= "\xff":
            slow.append(f"\\x{ord(ch):02x}")
        else:
            slow.append(ch)
    assert _quote(value) == "".join(slow)
    assert _quote(value.encode("latin-1")) == "".join(slow)


def test_wsgi_environ_per_request_on_a_shared_connection_part():
    seen = []

    def app(environ, start_response):
        seen.append(dict(environ))
        environ["SERVER_NAME"] = "changed by the app"  # must not leak into the next request
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [environ["PATH_INFO"].encode()]

    raw = _wsgi_raw(app, b"GET /a%2Fb?q=1 HTTP/1.1\r\nHost: x\r\nX-One: 1\r\n\r\n"
                         b"POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
    first, second = seen
    assert raw.count(b"HTTP/1.1 200 OK") == 2
    assert first["PATH_INFO"] == "/a/b" and first["QUERY_STRING"] == "q=1" and first["HTTP_X_ONE"] == "1"
    assert second["PATH_INFO"] == "/c" and second["REQUEST_METHOD"] == "POST" and "HTTP_X_ONE" not in second
    assert second["CONTENT_LENGTH"] == "2" and second["wsgi.input"] is not first["wsgi.input"]
    assert first["SERVER_NAME"] == second["SERVER_NAME"] == "127.0.0.1"
    assert first["REMOTE_ADDR"] == "127.0.0.1" and first["REMOTE_PORT"] == "40000"


def test_wsgi_workers_stop_and_drop_what_has_not_started():
    import threading

    from tapster.plugins.web._wsgi import _Workers

    gate, started = threading.Event(), threading.Event()
    ran = []
    workers = _Workers(1, "test-wsgi")
    workers.submit(lambda: (started.set(), gate.wait(5), ran.append("first")))
    workers.submit(lambda: ran.append("queued"))
    assert started.wait(5)  # the one thread is busy with the first call
    workers.shutdown()
    gate.set()
    for thread in workers._threads:
        thread.join(5)
        assert not thread.is_alive()
    assert ran == ["first"]


@pytest.mark.parametrize(("version", "method", "length"), [("1.1", "GET", 5), ("1.1", "GET", 3), ("1.0", "GET", None),
                                                           ("1.1", "HEAD", 5), ("1.1", "GET", None)])
def test_send_head_with_a_body_is_start_response_and_write(version, method, length):
    from tapster.plugins.web._site import Resource

    class Both(Resource):
        def __init__(self, one_write):
            self.one_write = one_write

        def render(self, request):
            if self.one_write:
                request.sendHead(200, b"X-A: 1\r\n", length, body=b"hello")
            else:
                request.startResponse(200, [("X-A", "1")], length)
                request.write(b"hello")
            request.finish()

    def answer(one_write):
        c = _conn(Both(one_write))
        c.send(f"{method} / HTTP/{version}\r\nHost: x\r\n\r\n".encode())
        return c.transport.value(), c.transport.disconnecting

    fast, slow = _same_second(lambda: (answer(True), answer(False)))
    assert fast == slow
