"""Static files, as nginx serves them: :class:`File` is the resource for a directory (or one file).

* The URL path is percent-decoded and split into segments; a segment that is
  ``..``, holds a NUL, a slash or a backslash after decoding is refused (404);
  the resolved path (symlinks followed) must stay inside the resolved root,
  else 403. Nothing outside the root is ever opened.
* The file is opened once and everything (size, dates, the bytes) comes from
  that open file: renamed or deleted while it is served, it is still served
  whole; truncated while it is served, the connection is aborted (the length
  was promised) instead of sending garbage.
* ``ETag`` (mtime-size, as nginx) and ``Last-Modified``; ``If-None-Match``
  / ``If-Modified-Since`` give 304; a single ``Range`` gives 206 (``If-Range``
  honoured), an unsatisfiable one 416; several ranges get the whole file.
* The body is streamed by a pull producer in 64 KiB reads: the transport asks
  for more only when its buffer has room, so a slow reader costs one buffer.
"""

from __future__ import annotations

import html
import mimetypes
import os
import stat
import urllib.parse
from email.utils import formatdate, parsedate_to_datetime
from typing import TYPE_CHECKING

from tapster.plugins.web._site import Resource

if TYPE_CHECKING:
    from tapster.plugins.web._http import Request
    from tapster.plugins.web._site import Site

__all__ = ["File", "FileProducer", "parse_range"]

READ_SIZE = 65536


def parse_range(header: str, size: int) -> tuple[int, int] | bool | None:
    """``bytes=a-b`` → (first, last) inclusive; None: ignore the header (serve all); False: unsatisfiable."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_text, dash, last_text = spec.strip().partition("-")
    if not dash:
        return None
    first_text, last_text = first_text.strip(), last_text.strip()
    if (first_text and not first_text.isdigit()) or (last_text and not last_text.isdigit()):
        return None
    if not first_text:
        if not last_text:
            return None
        suffix = int(last_text)
        if suffix == 0:
            return False
        return (max(0, size - suffix), size - 1) if size else False
    first = int(first_text)
    last = int(last_text) if last_text else max(first, size - 1)
    if last < first:
        return None
    if first >= size:
        return False
    return first, min(last, size - 1)


class FileProducer:
    """Sends ``count`` bytes of an open file from ``offset`` as the transport asks for them (a pull producer)."""

    def __init__(self, request: Request, fd: int, offset: int, count: int) -> None:
        self.request = request
        self.fd = fd
        self.offset = offset
        self.remaining = count

    def start(self) -> None:
        if self.remaining <= 0:
            self._done()
            return
        self.request.registerProducer(self, False)

    def resumeProducing(self) -> None:
        if self.fd < 0:
            return
        want = min(READ_SIZE, self.remaining)
        try:
            data = os.pread(self.fd, want, self.offset)
        except OSError:
            data = b""
        if not data:
            # The file shrank under us: the announced length cannot be kept.
            self._close()
            self.request.unregisterProducer()
            self.request.keepAlive = False
            self.request.channel.abort()
            self.request.finish()
            return
        self.offset += len(data)
        self.remaining -= len(data)
        self.request.write(data)
        if self.remaining <= 0:
            self._done()

    def pauseProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        self._close()

    def _done(self) -> None:
        self._close()
        if self.request._producer is self:
            self.request.unregisterProducer()
        self.request.finish()

    def _close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class File(Resource):
    """Serves the file or directory tree at ``path`` (change ``path`` live: the next request uses it)."""

    def __init__(self, path: str, *, indexNames: list[str] | None = None, defaultType: str = "application/octet-stream",
                 directoryListing: bool = False, mimeTypes: dict[str, str] | None = None) -> None:
        self.path = path
        self.indexNames = list(indexNames) if indexNames is not None else ["index.html"]
        self.defaultType = defaultType
        self.directoryListing = directoryListing
        self.mimeTypes: dict[str, str] = dict(mimeTypes or {})

    def __repr__(self) -> str:
        return f"<File {self.path!r}>"

    # -- finding the file ------------------------------------------------------

    def _segments(self, raw: bytes) -> list[str] | None:
        text = urllib.parse.unquote_to_bytes(raw)
        try:
            decoded = text.decode("utf-8")
        except UnicodeDecodeError:
            return None
        parts = decoded.split("/")
        segments = []
        for part in parts[1:]:
            if part in ("", "."):
                continue
            if part == ".." or "\x00" in part or "\\" in part:
                return None
            segments.append(part)
        return segments

    def render(self, request: Request) -> None:
        if request.method not in ("GET", "HEAD"):
            request.respond(405, b"", headers=[("Allow", "GET, HEAD")])
            return
        raw = request.path
        if b"%00" in raw or b"\x00" in raw:
            request.error(404)
            return
        segments = self._segments(raw)
        if segments is None:
            request.error(404)
            return
        root = os.path.realpath(self.path)
        candidate = os.path.join(root, *segments) if segments else root
        real = os.path.realpath(candidate)
        if real != root and not real.startswith(root.rstrip(os.sep) + os.sep):
            request.error(403)
            return
        try:
            st = os.stat(real)
        except (FileNotFoundError, NotADirectoryError):
            request.error(404)
            return
        except OSError:
            request.error(403)
            return
        if stat.S_ISDIR(st.st_mode):
            if not raw.endswith(b"/"):
                location = raw.decode("latin-1") + "/"
                if request.query:
                    location += "?" + request.query.decode("latin-1")
                request.respond(301, b"", headers=[("Location", location)])
                return
            for name in self.indexNames:
                index = os.path.join(real, name)
                if os.path.isfile(index) and os.path.realpath(index).startswith(root.rstrip(os.sep) + os.sep):
                    self._serve(request, os.path.realpath(index))
                    return
            if self.directoryListing:
                self._listing(request, real, raw)
            else:
                request.error(403)
            return
        if not stat.S_ISREG(st.st_mode):
            request.error(403)
            return
        self._serve(request, real)

    def contentType(self, path: str) -> str:
        ext = os.path.splitext(path)[1].lower()
        if ext in self.mimeTypes:
            return self.mimeTypes[ext]
        guessed, encoding = mimetypes.guess_type(path, strict=False)
        if guessed is None or encoding is not None:
            return self.defaultType
        if guessed.startswith("text/") or guessed in ("application/javascript", "application/json"):
            return guessed + "; charset=utf-8"
        return guessed

    # -- answering -------------------------------------------------------------

    def _serve(self, request: Request, path: str) -> None:
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0))
        except FileNotFoundError:
            request.error(404)
            return
        except OSError:
            request.error(403)
            return
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                os.close(fd)
                request.error(403)
                return
            self._answer(request, path, fd, st)
        except BaseException:
            try:
                os.close(fd)
            except OSError:
                pass
            raise

    def _answer(self, request: Request, path: str, fd: int, st: os.stat_result) -> None:
        size = st.st_size
        etag = f'"{int(st.st_mtime):x}-{size:x}"'
        mtime = int(st.st_mtime)
        last_modified = formatdate(mtime, usegmt=True)
        headers = [("Last-Modified", last_modified), ("ETag", etag), ("Accept-Ranges", "bytes")]
        if _not_modified(request, etag, mtime):
            os.close(fd)
            request.startResponse(304, headers)
            request.finish()
            return
        ctype = self.contentType(path)
        first, last = 0, size - 1
        code = 200
        range_header = request.getHeader("range")
        if range_header is not None and _if_range_holds(request.getHeader("if-range"), etag, mtime):
            chosen = parse_range(range_header, size)
            if chosen is False:
                os.close(fd)
                request.startResponse(416, [("Content-Range", f"bytes */{size}"), ("Content-Type", "text/plain")], 0)
                request.finish()
                return
            if chosen:
                first, last = chosen  # type: ignore[misc]
                code = 206
                headers.append(("Content-Range", f"bytes {first}-{last}/{size}"))
        count = last - first + 1 if size else 0
        headers.insert(0, ("Content-Type", ctype))
        request.startResponse(code, headers, count)
        if request.method == "HEAD" or count == 0:
            os.close(fd)
            request.finish()
            return
        FileProducer(request, fd, first, count).start()

    def _listing(self, request: Request, directory: str, raw: bytes) -> None:
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            request.error(403)
            return
        shown = html.escape(urllib.parse.unquote(raw.decode("latin-1")))
        rows = []
        for name in names:
            full = os.path.join(directory, name)
            suffix = "/" if os.path.isdir(full) else ""
            href = urllib.parse.quote(name) + suffix
            rows.append(f'<li><a href="{html.escape(href, quote=True)}">{html.escape(name + suffix)}</a></li>')
        body = (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of {shown}</title></head>"
                f"<body><h1>Index of {shown}</h1><ul>\n" + "\n".join(rows) + "\n</ul></body></html>\n")
        request.respond(200, body.encode("utf-8"), contentType="text/html; charset=utf-8")

    def startService(self, site: Site) -> None:
        pass


def _not_modified(request: Request, etag: str, mtime: int) -> bool:
    inm = request.getHeader("if-none-match")
    if inm is not None:
        tags = [t.strip() for t in inm.split(",")]
        return "*" in tags or any(t.removeprefix("W/") == etag for t in tags)
    ims = request.getHeader("if-modified-since")
    if ims is not None:
        since = _parse_date(ims)
        return since is not None and mtime <= since
    return False


def _if_range_holds(value: str | None, etag: str, mtime: int) -> bool:
    if value is None:
        return True
    value = value.strip()
    if value.startswith('"'):
        return value == etag
    when = _parse_date(value)
    return when is not None and when == mtime


def _parse_date(value: str) -> int | None:
    try:
        return int(parsedate_to_datetime(value).timestamp())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


