"""WSGI (PEP 3333): a :class:`WSGIResource` runs an application in a bounded thread pool.

The reactor thread parses the request and builds ``environ``; a worker thread
calls the application, iterates what it returns and closes it; every write goes
back to the reactor thread with ``callFromThread``. A worker waits while the
client is not reading (the transport paused us) or more than ``MAX_IN_FLIGHT``
bytes are on their way, so a slow client never makes the server hold a large
body in memory. ``application`` is a dotted name (``pkg.module.app``), imported
at start and whenever it is changed, or a callable; the dotted name is what is
saved, so every file format can hold it.
"""

from __future__ import annotations

import importlib
import os
import queue
import sys
import threading
import urllib.parse
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from tapster.plugins.web._http import encode_headers
from tapster.plugins.web._site import Resource, WebError, check_header

if TYPE_CHECKING:
    from tapster.plugins.web._http import Request
    from tapster.plugins.web._site import Site

__all__ = ["WSGIResource", "load_application"]

MAX_IN_FLIGHT = 256 * 1024
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
                         "proxy-authenticate", "proxy-authorization"})


def load_application(name: str) -> Callable[..., Any]:
    """Import ``module.attr`` (or ``module:attr``) and return the callable; WebError says what is wrong."""
    module_name, sep, attr = name.partition(":")
    if not sep:
        module_name, _, attr = name.rpartition(".")
    if not module_name or not attr:
        raise WebError(f"--wsgi {name}: give MODULE.APP, e.g. myapp.application")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)  # as twistd does for the application's own modules
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # noqa: BLE001 - whatever the module raises on import, named in one line
        raise WebError(f"--wsgi {name}: cannot import {module_name}: {type(e).__name__}: {e}") from e
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise WebError(f"--wsgi {name}: {module_name} has no attribute {attr}") from None
    if not callable(obj):
        raise WebError(f"--wsgi {name}: {type(obj).__name__} object is not callable")
    return obj


class _Workers:
    """``count`` threads running what :meth:`submit` gives them, in order: a thread pool without futures.

    (concurrent.futures builds a Future, its Condition and a work item per call and
    takes a semaphore per submit; a WSGI call reports through the reactor instead.)
    """

    def __init__(self, count: int, name: str) -> None:
        self._queue: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._work, name=f"{name}_{i}") for i in range(count)]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[[], None]) -> None:
        self._queue.put(fn)

    def _work(self) -> None:
        get = self._queue.get
        while True:
            fn = get()
            if fn is None:
                return
            fn()  # _Call.run reports its own errors
            del fn

    def shutdown(self) -> None:
        """Drop what has not started; each thread ends after its current call (nobody waits for it)."""
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        for _ in self._threads:
            self._queue.put(None)


class WSGIResource(Resource):
    """Serve the WSGI ``application`` with at most ``maxThreads`` requests running at a time."""

    def __init__(self, application: str | Callable[..., Any], maxThreads: int = 10) -> None:
        self.application = application
        self.maxThreads = maxThreads
        self._init_transient()

    def _init_transient(self) -> None:
        self._resolved: tuple[object, Callable[..., Any]] | None = None
        self._executor: _Workers | None = None
        self._lock = threading.Lock()
        self._cond = threading.Condition()  # shared by the calls: flow control waits on it (rarely)

    def __getstate__(self) -> dict[str, object]:
        state = self.__dict__.copy()
        for key in ("_resolved", "_executor", "_lock", "_cond"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._init_transient()

    def __repr__(self) -> str:
        return f"<WSGIResource {self.application!r}>"

    def resolve(self) -> Callable[..., Any]:
        """The callable for ``application`` now (re-imported when the name changed)."""
        app = self.application
        resolved = self._resolved
        if resolved is not None and resolved[0] is app:
            return resolved[1]
        func = load_application(app) if isinstance(app, str) else app
        if not callable(func):
            raise WebError(f"WSGI application {app!r} is not callable")
        self._resolved = (app, func)
        return func

    def _pool(self) -> _Workers:
        executor = self._executor
        if executor is not None:
            return executor
        with self._lock:
            if self._executor is None:
                self._executor = _Workers(max(1, int(self.maxThreads)), "tapster-wsgi")
            return self._executor

    def startService(self, site: Site) -> None:
        self.resolve()  # an application that does not import fails the start, by name
        self._pool()

    def stopService(self, site: Site) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown()

    def render(self, request: Request) -> None:
        try:
            app = self.resolve()
        except WebError as e:
            from tapster.plugins.web._site import _log

            _log.error("web: %s", e)
            request.keepAlive = False
            request.error(500)
            return
        environ = make_environ(request)
        call = _Call(request, app, environ, request.channel.site, self._cond)
        request.registerProducer(call, True)
        self._pool().submit(call.run)


def _connection_environ(request: Request) -> dict[str, Any]:
    """What every request of a connection shares in its environ (asked of the transport once)."""
    channel = request.channel
    base = channel.wsgiEnviron
    if base is None or base["REMOTE_ADDR"] != (request.client[0] if request.client else ""):
        transport = channel.transport
        host = transport.getHost() if transport is not None else None
        base = channel.wsgiEnviron = {
            "SCRIPT_NAME": "",
            "SERVER_NAME": str(getattr(host, "host", "localhost")),
            "SERVER_PORT": str(getattr(host, "port", "80")),
            "REMOTE_ADDR": request.client[0] if request.client else "",
            "REMOTE_PORT": str(request.client[1]) if request.client else "",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "https" if getattr(host, "type", "") == "SSL" else "http",
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "wsgi.input_terminated": True,
        }
    return base


def make_environ(request: Request) -> dict[str, Any]:
    environ = _connection_environ(request).copy()
    path = request.path
    environ["REQUEST_METHOD"] = request.method
    environ["PATH_INFO"] = (urllib.parse.unquote_to_bytes(path) if b"%" in path else path).decode("latin-1")
    environ["QUERY_STRING"] = request.query.decode("latin-1")
    environ["SERVER_PROTOCOL"] = f"HTTP/{request.version}"
    environ["REQUEST_URI"] = request.target.decode("latin-1")
    environ["wsgi.input"] = request.body
    environ["wsgi.errors"] = sys.stderr  # looked up per request, as before: a test may swap sys.stderr
    for name, value in request.headers:
        lower = name.decode("latin-1")
        if "_" in lower:
            continue  # header names with underscores could pose as others (nginx drops them too)
        key = lower.upper().replace("-", "_")
        text = value.decode("latin-1")
        if key == "CONTENT_TYPE":
            environ["CONTENT_TYPE"] = text
        elif key == "CONTENT_LENGTH":
            continue
        else:
            key = "HTTP_" + key
            environ[key] = environ[key] + "," + text if key in environ else text
    if request.bodyLength or request.getHeader("content-length") is not None:
        environ["CONTENT_LENGTH"] = str(request.bodyLength)
    return environ


class _Call:
    """One application call: runs in a worker thread, talks to the reactor thread only by callFromThread."""

    def __init__(self, request: Request, app: Callable[..., Any], environ: dict[str, Any], site: Site,
                 cond: threading.Condition) -> None:
        self.request = request
        self.app = app
        self.environ = environ
        self.site = site
        self.reactor = site.clock()
        self.cond = cond
        self.in_flight = 0
        self.paused = False
        self.lost = False
        self.status: tuple[int, str] | None = None
        self.headers: list[tuple[str, str]] = []
        self.length: int | None = None
        self.started = False  # headers handed to the reactor thread

    # -- push-producer interface, called in the reactor thread ---------------------

    def pauseProducing(self) -> None:
        with self.cond:
            self.paused = True

    def resumeProducing(self) -> None:
        with self.cond:
            self.paused = False
            self.cond.notify_all()

    def stopProducing(self) -> None:
        with self.cond:
            self.lost = True
            self.cond.notify_all()

    # -- the worker thread -----------------------------------------------------------

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if self.started:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError("start_response was already called (pass exc_info to replace the headers)")
        if not isinstance(status, str):
            raise TypeError(f"status must be str, not {type(status).__name__}")
        code_text, _, reason = status.partition(" ")
        if len(code_text) != 3 or not code_text.isdigit():
            raise ValueError(f"bad status {status!r}")
        checked = []
        length = None
        for name, value in headers:
            if not isinstance(name, str) or not isinstance(value, str):
                raise TypeError("header names and values must be str")
            name, value = check_header(name, value)
            lower = name.lower()
            if lower in _HOP_BY_HOP:
                continue
            if lower == "content-length":
                length = int(value)
                continue
            checked.append((name, value))
        self.status = (int(code_text), reason)
        self.headers = checked
        self.length = length
        return self.write

    def _send(self, data: bytes) -> bool:
        """Hand ``data`` to the reactor thread (the headers first); False once the client is gone."""
        with self.cond:
            while not self.lost and (self.paused or self.in_flight > MAX_IN_FLIGHT):
                self.cond.wait()
            if self.lost:
                return False
            self.in_flight += len(data)
        if not self.started:
            self.started = True
            assert self.status is not None
            code, reason = self.status
            self.reactor.callFromThread(self._start, code, reason, self.headers, self.length)  # type: ignore[attr-defined]
        if data:
            self.reactor.callFromThread(self._write, data)  # type: ignore[attr-defined]
        return True

    def write(self, data: bytes) -> None:
        """The write callable start_response returns (PEP 3333's legacy interface)."""
        if self.status is None:
            raise AssertionError("write() before start_response()")
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"WSGI applications write bytes, not {type(data).__name__}")
        if not self._send(bytes(data)):
            raise OSError("the client went away")

    def run(self) -> None:
        result: Iterable[bytes] | None = None
        try:
            result = self.app(self.environ, self.start_response)
            if (isinstance(result, (list, tuple)) and len(result) == 1 and not self.started
                    and self.status is not None and self._whole(result)):
                return
            if self.length is None and isinstance(result, (list, tuple)) and len(result) == 1 and not self.started:
                self.length = len(result[0])
            for chunk in result:
                if not isinstance(chunk, (bytes, bytearray)):
                    raise TypeError(f"a WSGI application yields bytes, not {type(chunk).__name__}")
                if self.status is None:
                    raise AssertionError("the application yielded before calling start_response()")
                if chunk or not self.started:
                    if not self._send(bytes(chunk)):
                        break
            if self.status is None:
                raise AssertionError("the application returned without calling start_response()")
            if not self.started:
                self._send(b"")
            self.reactor.callFromThread(self._finish)  # type: ignore[attr-defined]
        except BaseException:
            exc_info = sys.exc_info()
            self.reactor.callFromThread(self._failed, exc_info)  # type: ignore[attr-defined]
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:  # noqa: BLE001 - logged; the response is already decided
                    from tapster.plugins.web._site import _log

                    _log.exception("web: the WSGI result's close() raised")

    def _whole(self, result: list[bytes] | tuple[bytes, ...]) -> bool:
        """The usual answer, one body (or none) in a list: head, body and end in one call to the reactor.

        False (nothing done) when the general path must take it: a chunk that is not
        bytes (it raises there), or the client not reading (flow control waits there).
        """
        body = result[0]
        if type(body) is not bytes:
            return False
        with self.cond:
            if self.paused or self.lost:
                return False
        self.started = True
        assert self.status is not None
        code, reason = self.status
        length = self.length if self.length is not None else len(body)
        self.reactor.callFromThread(self._answer, code, reason, self.headers, length, body)  # type: ignore[attr-defined]
        return True

    # -- back in the reactor thread --------------------------------------------------

    def _answer(self, code: int, reason: str, headers: list[tuple[str, str]], length: int, body: bytes) -> None:
        request = self.request
        if request._producer is self:
            request.unregisterProducer()
        if request.disconnected or request.headersSent:
            return
        request.sendHead(code, encode_headers(headers), length, reason=reason or None, body=body)
        request.finish()

    def _start(self, code: int, reason: str, headers: list[tuple[str, str]], length: int | None) -> None:
        if not self.request.disconnected and not self.request.headersSent:
            self.request.startResponse(code, headers, length, reason=reason or None)

    def _write(self, data: bytes) -> None:
        self.request.write(data)
        with self.cond:
            self.in_flight -= len(data)
            self.cond.notify_all()

    def _finish(self) -> None:
        request = self.request
        if request._producer is self:
            request.unregisterProducer()
        if not request.disconnected:
            request.finish()

    def _failed(self, exc_info: Any) -> None:
        request = self.request
        if request._producer is self:
            request.unregisterProducer()
        if request.disconnected:
            return
        self.site.internalError(request, exc_info)
