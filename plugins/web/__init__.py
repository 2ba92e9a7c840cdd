"""The ``web`` plugin: an HTTP/1.1 server for a directory of static files or a WSGI application.

``mktap web --path /srv/www`` then ``twistd -f web.tap``, or ``twistd -n web --wsgi myapp.app``.
The service tree: a :class:`WebService` named ``web`` whose ``factory`` is the
:class:`Site` every listening port shares; ``factory.resource`` is a
:class:`File` (``--path``) or a :class:`WSGIResource` (``--wsgi``). Everything a
request reads comes from there at the time of the request, so a change made
from the telnet console is live at once and saved in ``web-shutdown.tap``.

This module is imported by ``mktap --help``-like paths only through its
entry point; the server's modules (httptools among them) load in ``makeService``
and when a saved application is loaded.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from tapster.core import usage
from tapster.core.service import MultiService
from tapster.plugins._common import endpoint

if TYPE_CHECKING:
    from tapster.plugins.web._site import Site

__all__ = ["Options", "makeService", "description", "safeNames", "WebService", "Site", "File", "WSGIResource"]

#: The server's classes, importable from here for the console (``from tapster.plugins.web import File``),
#: loaded on first use so that listing plugins does not import httptools.
_LAZY = {"Site": "_site", "File": "_static", "WSGIResource": "_wsgi", "Resource": "_site"}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)

description = "An HTTP/1.1 server: static files (--path) or a WSGI application (--wsgi), over HTTP and HTTPS."

#: What an application file from a stranger (XML) may name of this plugin: its saved parts.
#: A WSGI application is saved as its dotted name (text), imported at start, never as a callable.
safeNames = (
    "tapster.plugins.web.WebService",
    "tapster.plugins.web.Options",
    "tapster.plugins.web._site.Site",
    "tapster.plugins.web._static.File",
    "tapster.plugins.web._wsgi.WSGIResource",
)


class WebService(MultiService):
    """The ``web`` service: its children listen (one per --listen/--https); ``factory`` is their shared Site."""

    def __init__(self, factory: Site) -> None:
        super().__init__()
        self.factory = factory

    def __repr__(self) -> str:
        return f"<WebService {self.name!r} {self.factory.resource!r} on {len(self.services)} port(s)>"


def _size(value: str) -> int:
    text = value.strip().lower()
    scale = 1
    for suffix, factor in (("k", 1024), ("m", 1024**2), ("g", 1024**3)):
        if text.endswith(suffix):
            text, scale = text[:-1], factor
            break
    if not text.isdigit():
        raise ValueError(f"{value!r} is not a size (bytes, or with k/m/g)")
    return int(text) * scale


_size.coerceDoc = "Bytes, or with a k/m/g suffix; 0 means no limit."  # type: ignore[attr-defined]


def _seconds(value: str) -> float:
    seconds = float(value)
    if seconds < 0:
        raise ValueError("must not be negative")
    return seconds


_seconds.coerceDoc = "Seconds; 0 means no timeout."  # type: ignore[attr-defined]


class Options(usage.Options):
    synopsis = "[--listen ENDPOINT ...] (--path DIR | --wsgi MODULE.APP) [options]"
    longdesc = (
        "Serves HTTP/1.1: a directory of static files (--path) or a WSGI application (--wsgi, run in a "
        "bounded thread pool). Listens on every --listen endpoint (default tcp:8080) and on --https "
        "with --certificate/--privkey. Keep-alive, pipelining, ranges and conditional requests are "
        "supported; directory listings are off unless --directory-listing is given."
    )
    optFlags = [
        ["display-tracebacks", None, "Show tracebacks of application errors to the client (a security risk)."],
        ["directory-listing", None, "List the files of a directory that has no index file (off by default)."],
    ]
    optParameters = [
        ["path", None, None, "A directory (or one file) to serve."],
        ["wsgi", None, None, "The dotted name of a WSGI application to serve (module.app)."],
        ["mime-type", "m", "application/octet-stream", "The content type of files whose type is unknown."],
        ["logfile", "l", None, "Access log in combined log format ('-': the application log)."],
        ["https", None, None, "A port (or ssl: endpoint) to serve HTTPS on."],
        ["certificate", "c", "server.pem", "The TLS certificate (PEM) for --https."],
        ["privkey", "k", "server.pem", "The TLS private key (PEM) for --https."],
        ["max-request-body", None, 10 * 1024 * 1024, "The largest request body accepted (413 above).", _size],
        ["header-timeout", None, 30.0, "Seconds a client has to send the request headers.", _seconds],
        ["keep-alive-timeout", None, 75.0, "Seconds an idle keep-alive connection stays open.", _seconds],
        ["send-timeout", None, 60.0, "Seconds a client may go without accepting any byte of a response "
                                     "before it is disconnected (nginx's send_timeout).", _seconds],
        ["wsgi-threads", None, 10, "Worker threads for the WSGI application.", int],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["listen"] = []
        self["index"] = []
        self["add-header"] = []

    def opt_listen(self, description: str) -> None:
        """An endpoint to listen on, such as tcp:8080:interface=127.0.0.1 (repeatable; default tcp:8080)."""
        try:
            self["listen"].append(endpoint(description))
        except ValueError as e:
            raise usage.UsageError(f"--listen: {e}") from e

    opt_p = opt_listen

    def opt_index(self, name: str) -> None:
        """A file name served for a directory (repeatable, in order; default index.html)."""
        self["index"].append(name)

    opt_i = opt_index

    def opt_add_header(self, header: str) -> None:
        """A header sent with every response, as 'Name: value' (repeatable)."""
        from tapster.plugins.web._site import check_header

        name, sep, value = header.partition(":")
        if not sep:
            raise usage.UsageError(f"--add-header {header!r}: write it as 'Name: value'")
        try:
            self["add-header"].append(check_header(name.strip(), value.strip()))
        except (ValueError, UnicodeEncodeError) as e:
            raise usage.UsageError(f"--add-header: {e}") from e

    def postOptions(self) -> None:
        if self["path"] and self["wsgi"]:
            raise usage.UsageError("--path and --wsgi are exclusive: serve a directory or an application")
        if not self["path"] and not self["wsgi"]:
            raise usage.UsageError("give --path DIR (static files) or --wsgi MODULE.APP (an application)")
        if self["path"]:
            path = os.path.abspath(self["path"])
            if not os.path.exists(path):
                raise usage.UsageError(f"--path {self['path']}: no such file or directory")
            self["path"] = path
        if self["wsgi"]:
            from tapster.plugins.web._site import WebError
            from tapster.plugins.web._wsgi import load_application

            try:
                load_application(self["wsgi"])
            except WebError as e:
                raise usage.UsageError(str(e)) from e
        if self["wsgi-threads"] < 1:
            raise usage.UsageError("--wsgi-threads must be at least 1")
        if self["https"]:
            import ssl

            cert, key = os.path.abspath(self["certificate"]), os.path.abspath(self["privkey"])
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            try:
                ctx.load_cert_chain(cert, key)
            except (OSError, ssl.SSLError, ValueError) as e:
                reason = getattr(e, "strerror", None) or getattr(e, "reason", None) or str(e)
                raise usage.UsageError(
                    f"--certificate {self['certificate']} / --privkey {self['privkey']}: cannot load: {reason}"
                ) from e
            self["certificate"], self["privkey"] = cert, key
        if not self["listen"] and not self["https"]:
            self["listen"] = ["tcp:8080"]


def _https_description(config: usage.Options) -> str:
    from tapster.core.endpoints import quoteStringArgument

    value = config["https"]
    if value.startswith("ssl:"):
        return str(value)
    return (f"ssl:{value}:privateKey={quoteStringArgument(config['privkey'])}"
            f":certKey={quoteStringArgument(config['certificate'])}")


def makeService(config: usage.Options) -> WebService:
    """The web service: a Site with the configured resource, listening on every endpoint."""
    from tapster.core import endpoints
    from tapster.plugins.web._site import Site
    from tapster.plugins.web._static import File
    from tapster.plugins.web._wsgi import WSGIResource

    if config["wsgi"]:
        resource: File | WSGIResource = WSGIResource(config["wsgi"], maxThreads=config["wsgi-threads"])
    else:
        resource = File(config["path"], indexNames=config["index"] or ["index.html"],
                        defaultType=config["mime-type"], directoryListing=bool(config["directory-listing"]))
    site = Site(
        resource,
        headers=config["add-header"],
        logPath=os.path.abspath(config["logfile"]) if config["logfile"] and config["logfile"] != "-"
        else config["logfile"],
        displayTracebacks=bool(config["display-tracebacks"]),
        maxRequestBody=config["max-request-body"] or None,
        headerTimeout=config["header-timeout"] or None,
        keepAliveTimeout=config["keep-alive-timeout"] or None,
        sendTimeout=config["send-timeout"] or None,
    )
    web = WebService(site)
    for description in config["listen"]:
        endpoints.service(description, site).setServiceParent(web)
    if config["https"]:
        endpoints.service(_https_description(config), site).setServiceParent(web)
    return web
