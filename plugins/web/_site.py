"""The web server's factory: one :class:`Site` per ``web`` service, shared by all its ports.

What an administrator changes live (from the telnet console) lives here and on
the resource; every request reads it afresh, so a change applies to the next
request::

    web = application.getServiceNamed('web')
    web.factory.resource.path = '/srv/other'          # serve another directory
    web.factory.headers.append(('X-Frame-Options', 'DENY'))
    web.factory.resource = WSGIResource('mymod.app')  # or swap the root resource

Nothing process-specific is saved: the open access log, the thread pool and
the date cache are dropped by ``__getstate__``.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import TYPE_CHECKING, Any

from tapster.core import __version__
from tapster.core.protocol import Factory
from tapster.plugins.web._http import HTTPChannel, Request

if TYPE_CHECKING:
    from tapster.core.interfaces import IReactorTime

__all__ = ["Site", "Resource", "WebError"]

_access = logging.getLogger("tapster.web.access")
_log = logging.getLogger("tapster.web")

_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


class WebError(Exception):
    """Raised at start when the configuration cannot serve (a WSGI app that does not import)."""


_checked: dict[tuple[str, str], tuple[str, str]] = {}


def check_header(name: str, value: str) -> tuple[str, str]:
    """A (name, value) pair safe to send: a token name, a value without CR/LF/NUL.

    Pairs that passed are remembered (up to 4096): an application sends the same
    headers with every answer. (Any thread may call it; a dict is safe to share.)
    """
    key = (name, value)
    known = _checked.get(key)
    if known is not None and type(name) is str and type(value) is str:
        return known
    if not _HEADER_NAME.match(name):
        raise ValueError(f"bad header name {name!r}")
    if any(c in value for c in "\r\n\x00"):
        raise ValueError(f"header {name}: the value holds a line break or NUL")
    value.encode("latin-1")
    checked = name, value.strip()
    if type(name) is str and type(value) is str:
        if len(_checked) >= 4096:
            _checked.clear()
        _checked[key] = checked
    return checked


class Resource:
    """What a Site serves: ``render(request)`` answers, now or later (``request.finish()``)."""

    def render(self, request: Request) -> None:  # pragma: no cover - abstract
        request.error(404)

    def startService(self, site: Site) -> None:
        """The site starts serving (acquire what is process-specific)."""

    def stopService(self, site: Site) -> None:
        """The site stops serving."""


class Site(Factory):
    """Builds :class:`HTTPChannel` protocols; holds the root ``resource`` and the server's settings."""

    protocol = HTTPChannel
    noisy = False
    #: Seconds a client may take without accepting any byte of a response (nginx's send_timeout).
    #: A class default as well: an application saved before the option existed gets it.
    sendTimeout: float | None = 60.0

    def __init__(
        self,
        resource: Resource,
        *,
        headers: list[tuple[str, str]] | None = None,
        logPath: str | None = None,
        displayTracebacks: bool = False,
        maxRequestBody: int | None = 10 * 1024 * 1024,
        headerTimeout: float | None = 30.0,
        keepAliveTimeout: float | None = 75.0,
        sendTimeout: float | None = 60.0,
    ) -> None:
        self.resource = resource
        self.headers: list[tuple[str, str]] = list(headers or [])
        self.logPath = logPath
        self.displayTracebacks = displayTracebacks
        self.maxRequestBody = maxRequestBody
        self.headerTimeout = headerTimeout
        self.keepAliveTimeout = keepAliveTimeout
        self.sendTimeout = sendTimeout
        self._init_transient()

    def _init_transient(self) -> None:
        self._reactor: IReactorTime | None = None
        self._logfile: Any = None
        self._header_cache: tuple[list[tuple[str, str]], list[bytes], bytes] | None = None
        self.serverName = b"tapster/" + __version__.encode("ascii")

    def __getstate__(self) -> dict[str, object]:
        state = super().__getstate__()
        for key in ("_reactor", "_logfile", "_header_cache", "serverName"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._init_transient()

    # -- life cycle ------------------------------------------------------------

    def clock(self) -> IReactorTime:
        if self._reactor is None:
            from tapster.core import reactor

            self._reactor = reactor.getReactor()
        return self._reactor

    def startFactory(self) -> None:
        if self.logPath and self.logPath != "-":
            from tapster.core.logfile import LogFile

            # A LogFile: never opened through a symlink or as a planted file, and reopened with twistd's own
            # log on SIGUSR1/SIGHUP (logrotate); rotation is logrotate's, not ours (rotateLength=None).
            self._logfile = LogFile.fromFullPath(self.logPath, rotateLength=None)
        self.resource.startService(self)

    def stopFactory(self) -> None:
        self.resource.stopService(self)
        if self._logfile is not None:
            self._logfile.close()
            self._logfile = None

    # -- per request -----------------------------------------------------------

    def addHeader(self, name: str, value: str) -> None:
        """Send ``name: value`` with every response from now on."""
        self.headers.append(check_header(name, value))

    def extraHeaderLines(self) -> list[bytes]:
        """The site's extra headers, encoded (checked again: they may have been changed live)."""
        return self._extra_headers()[1]

    def extraHeaderBlock(self) -> bytes:
        """:meth:`extraHeaderLines` joined, as they go into every response head."""
        return self._extra_headers()[2]

    def _extra_headers(self) -> tuple[list[tuple[str, str]], list[bytes], bytes]:
        cache = self._header_cache
        headers = self.headers
        if cache is None or cache[0] != headers:
            lines = []
            for name, value in headers:
                try:
                    n, v = check_header(name, value)
                except (ValueError, UnicodeEncodeError) as e:
                    _log.warning("web: header %r not sent: %s", name, e)
                    continue
                lines.append(f"{n}: {v}\r\n".encode("latin-1"))
            cache = self._header_cache = (list(headers), lines, b"".join(lines))
        return cache

    def handle(self, request: Request) -> None:
        self.resource.render(request)

    def internalError(self, request: Request, exc_info: Any = None) -> None:
        """500, logged with its traceback; the traceback is shown only with --display-tracebacks."""
        exc_info = exc_info or sys.exc_info()
        _log.error("web: error answering %s %r", request.method, request.target, exc_info=exc_info)
        if request.headersSent:
            request.keepAlive = False
            request.channel.abort()
            request.finished = True
            request.channel.requestDone(request)
            return
        detail = ""
        if self.displayTracebacks:
            import traceback

            detail = "".join(traceback.format_exception(*exc_info))
        request.keepAlive = False
        request.error(500, detail)

    def logAccess(self, request: Request) -> None:
        if not self.logPath:
            return
        line = combined_log_line(request)
        if self._logfile is not None:
            self._logfile.write(line + "\n")
        else:
            _access.info("%s", line)


def _quote(value: bytes | str | None) -> str:
    """A header or request line as it may appear between quotes in a log line (control bytes escaped)."""
    if value is None:
        return "-"
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
        return value  # printable ASCII without quotes or backslashes: the usual case, as is
    out = []
    for ch in value:
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch < " " or "\x7f" <= ch <= "\xff":
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out)


_stamp_cache: list[Any] = [None, ""]


def combined_log_line(request: Request) -> str:
    """One line of the combined log format (Apache's and nginx's)."""
    host = request.client[0] if request.client else "-"
    second = int(request.started or time.time())
    if _stamp_cache[0] != second:
        _stamp_cache[:] = [second, time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(second))]
    stamp = _stamp_cache[1]
    line = f"{request.method} {request.target.decode('latin-1')} HTTP/{request.version}"
    size = str(request.sentLength) if request.sentLength else "-"
    referer = agent = None
    for name, value in request.headers:  # the last of each, as getHeader gives
        if name == b"user-agent":
            agent = value
        elif name == b"referer":
            referer = value
    return f'{host} - - [{stamp}] "{_quote(line)}" {request.code} {size} "{_quote(referer)}" "{_quote(agent)}"'

