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
* A body larger than 64 KiB (``CACHE_FILE_MAX``; ranges too) goes with
  ``transport.sendfile`` (``os.sendfile``, zero copy: the bytes never enter
  the process) on plain TCP and UNIX connections; the kernel takes what the
  socket has room for, so a slow reader costs no memory here. Over TLS, or
  where sendfile is unavailable, a pull producer streams it in 64 KiB reads:
  the transport asks for more only when its buffer has room, so a slow reader
  costs one buffer. Either way a file that ends early aborts the connection.
  A body of at most 64 KiB is read at once and sent in the same write as the head.

Small files are kept in memory (:class:`_Entry`: the resolved path, the
validators, the encoded head, the bytes), per ``File`` and per request path,
up to ``CACHE_FILE_MAX`` bytes a file, ``CACHE_ENTRIES`` files and
``CACHE_BYTES`` in all. How it stays correct when files change:

* every hit stats the resolved path and is served only if device, inode,
  size, mtime and ctime (nanoseconds) are those of the file the bytes were read
  from; any write, truncation, rename over, ``touch`` or ``chmod`` changes one
  of them (ctime cannot be set back), and the request takes the general path;
* a file changed less than ``CACHE_RACY`` seconds before it is read is not kept
  (a change within the clock tick of the read could leave mtime and ctime as
  they were: git's "racily clean" rule);
* the path's resolution (symlinks, index files) is trusted for ``CACHE_TTL``
  seconds, then done again: a symlink re-pointed, an index file added, are seen
  within a second. A hit always names the very inode that was inside the root
  when resolved, so the cache never serves a file from outside it;
* changing ``path``, ``indexNames``, ``defaultType`` or ``mimeTypes`` (live,
  from the console) empties the cache before the next request is answered;
* conditional and range requests, HEAD included, use the cached resolution
  but are answered by the general code.
"""

from __future__ import annotations

import html
import logging
import mimetypes
import os
import stat
import time
import urllib.parse
from email.utils import formatdate, parsedate_to_datetime
from typing import TYPE_CHECKING

from tapster.plugins.web._http import encode_headers
from tapster.plugins.web._site import Resource

if TYPE_CHECKING:
    from tapster.plugins.web._http import Request
    from tapster.plugins.web._site import Site

__all__ = ["File", "FileProducer", "SendfileBody", "parse_range", "stats"]

_log = logging.getLogger("tapster.web")

#: Counters of the large bodies sent in this process, by way (read them from the console).
stats = {"sendfile": 0, "sendfile_bytes": 0, "producer": 0}

READ_SIZE = 65536
CACHE_FILE_MAX = 65536  # bytes: larger files are read from disk for each request
CACHE_ENTRIES = 1024
CACHE_BYTES = 16 << 20
CACHE_TTL = 1.0  # seconds a cached resolution (symlinks, index file) is trusted
CACHE_RACY = 2.0  # seconds: a file changed more recently than this is not kept
_CONDITIONAL = frozenset({b"if-none-match", b"if-modified-since", b"range", b"if-range"})


class _Entry:
    """A small file kept in memory: what a 200 answer needs, and how to tell it is still the file."""

    __slots__ = ("real", "checked", "ident", "head", "content")

    def __init__(self, real: str, checked: float, ident: tuple[int, ...], head: bytes, content: bytes) -> None:
        self.real = real
        self.checked = checked
        self.ident = ident
        self.head = head
        self.content = content


_now = time.time  # the wall clock the racy rule compares file times with (tests move it)


def _ident(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


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



def _open_beneath(root: str, path: str) -> int:
    """Open ``path`` (resolved, inside ``root``) one component at a time from ``root``, following no symlink.

    ``path`` was resolved with ``realpath`` and checked to be inside the root,
    so none of its components is a symlink *then*. Opening it by name would
    leave a window in which someone who can write to the served tree swaps a
    directory for a symlink to ``/``; walking with directory descriptors and
    ``O_NOFOLLOW`` closes it: a component that has become a symlink fails
    (ELOOP), and nothing outside the root can be reached. PermissionError for
    a path outside the root.
    """
    relative = os.path.relpath(path, root)
    if relative == os.pardir or relative.startswith(os.pardir + os.sep) or os.path.isabs(relative):
        raise PermissionError(f"{path} is outside {root}")
    parts = [] if relative == os.curdir else relative.split(os.sep)
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    directory = os.open(root, flags | getattr(os, "O_DIRECTORY", 0))
    try:
        for part in parts[:-1]:
            inner = os.open(part, flags | nofollow | getattr(os, "O_DIRECTORY", 0), dir_fd=directory)
            os.close(directory)
            directory = inner
        if not parts:
            return os.dup(directory)
        return os.open(parts[-1], flags | nofollow | getattr(os, "O_NONBLOCK", 0), dir_fd=directory)
    finally:
        os.close(directory)

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


class SendfileBody:
    """Sends ``count`` bytes of an open file from ``offset`` with ``transport.sendfile`` (zero copy).

    :meth:`start` returns False, having done nothing, when the transport cannot
    (TLS, a test double): the caller streams with :class:`FileProducer`. The
    file descriptor is closed when the body is done or the connection goes
    away (``stopProducing``, called by the channel), whichever comes first.
    """

    active = False

    def __init__(self, request: Request, fd: int, offset: int, count: int) -> None:
        self.request = request
        self.fd = fd
        self.offset = offset
        self.count = count

    def start(self) -> bool:
        request = self.request
        transport = request.channel.transport
        sendfile = getattr(transport, "sendfile", None)
        if sendfile is None or request.channel.lost:
            return False
        future = sendfile(self.fd, self.offset, self.count, self._progress)
        if future is None:
            return False
        stats["sendfile"] += 1
        if _log.isEnabledFor(logging.DEBUG):
            _log.debug("web: sendfile %d bytes from %d for %s", self.count, self.offset, request.path.decode("latin-1"))
        if not future.done():
            self.active = True
            request._producer = self  # so that a lost connection stops it (and closes the file) at once
        future.add_done_callback(self._done)
        return True

    def _progress(self, n: int) -> None:
        request = self.request
        request.sentLength += n
        if request._remaining is not None:
            request._remaining -= n
        stats["sendfile_bytes"] += n

    def _done(self, future: object) -> None:
        self.active = False
        self._close()
        request = self.request
        if request._producer is self:
            request._producer = None
        if request.channel.lost or request.finished:
            return
        if request._remaining:
            # The file shrank under us: the announced length cannot be kept (finish aborts).
            request.keepAlive = False
        request.finish()

    def stopProducing(self) -> None:
        self.active = False
        self._close()

    def _close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class File(Resource):
    """Serves the file or directory tree at ``path`` (change ``path`` live: the next request uses it)."""

    # The cache of small files: process-specific, created on first use, never saved.
    _cache: dict[bytes, _Entry] | None = None
    _cache_bytes = 0
    _cache_config: tuple[str, list[str], str, dict[str, str]] | None = None

    def __init__(self, path: str, *, indexNames: list[str] | None = None, defaultType: str = "application/octet-stream",
                 directoryListing: bool = False, mimeTypes: dict[str, str] | None = None) -> None:
        self.path = path
        self.indexNames = list(indexNames) if indexNames is not None else ["index.html"]
        self.defaultType = defaultType
        self.directoryListing = directoryListing
        self.mimeTypes: dict[str, str] = dict(mimeTypes or {})

    def __repr__(self) -> str:
        return f"<File {self.path!r}>"

    def __getstate__(self) -> dict[str, object]:
        state = self.__dict__.copy()
        for key in ("_cache", "_cache_bytes", "_cache_config"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)

    # -- the cache of small files ----------------------------------------------

    def _config_unchanged(self) -> bool:
        """The configuration is the one the cached entries were resolved under."""
        config = self._cache_config
        return config is not None and (config[0] == self.path and config[1] == self.indexNames
                                       and config[2] == self.defaultType and config[3] == self.mimeTypes)

    def _cached(self, request: Request, entry: _Entry, raw: bytes) -> bool:
        """Answer from ``entry`` if it still describes the file; False: take the general path."""
        if not self._config_unchanged():
            self._cache_clear()
            return False
        if time.monotonic() - entry.checked > CACHE_TTL:
            self._cache_drop(raw)
            return False
        try:
            st = os.stat(entry.real)
        except OSError:
            self._cache_drop(raw)
            return False
        if _ident(st) != entry.ident:
            self._cache_drop(raw)
            return False
        for name, _ in request.headers:
            if name in _CONDITIONAL:
                self._serve(request, entry.real)
                return True
        content = entry.content
        request.sendHead(200, entry.head, len(content), body=content)
        request.finish()
        return True

    def _cache_put(self, raw: bytes, entry: _Entry) -> None:
        cache = self._cache
        if cache is None or not self._config_unchanged():
            cache = self._cache = {}
            self._cache_bytes = 0
            self._cache_config = (self.path, list(self.indexNames), self.defaultType, dict(self.mimeTypes))
        self._cache_drop(raw)
        size = len(entry.content)
        while cache and (len(cache) >= CACHE_ENTRIES or self._cache_bytes + size > CACHE_BYTES):
            self._cache_drop(next(iter(cache)))  # the oldest first
        cache[raw] = entry
        self._cache_bytes += size

    def _cache_drop(self, raw: bytes) -> None:
        cache = self._cache
        entry = cache.pop(raw, None) if cache is not None else None
        if entry is not None:
            self._cache_bytes -= len(entry.content)

    def _cache_clear(self) -> None:
        self._cache = None
        self._cache_bytes = 0
        self._cache_config = None

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
        cache = self._cache
        if cache:
            entry = cache.get(raw)
            if entry is not None and self._cached(request, entry, raw):
                return
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
                    self._serve(request, os.path.realpath(index), raw)
                    return
            if self.directoryListing:
                self._listing(request, real, raw)
            else:
                request.error(403)
            return
        if not stat.S_ISREG(st.st_mode):
            request.error(403)
            return
        self._serve(request, real, raw)

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

    def _serve(self, request: Request, path: str, raw: bytes | None = None) -> None:
        """Answer with the file at ``path`` (resolved and checked); ``raw``: the request path, to cache it."""
        try:
            fd = _open_beneath(os.path.realpath(self.path), path)
        except FileNotFoundError:
            request.error(404)
            return
        except OSError:  # ELOOP: a component became a symlink since the check; EACCES; outside the root
            request.error(403)
            return
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                os.close(fd)
                request.error(403)
                return
            self._answer(request, path, fd, st, raw)
        except BaseException:
            try:
                os.close(fd)
            except OSError:
                pass
            raise

    def _answer(self, request: Request, path: str, fd: int, st: os.stat_result, raw: bytes | None) -> None:
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
        encoded = encode_headers(headers)
        if request.method == "HEAD" or count == 0:
            os.close(fd)
            request.sendHead(code, encoded, count)
            request.finish()
            return
        if count > READ_SIZE:
            request.sendHead(code, encoded, count)
            if not SendfileBody(request, fd, first, count).start():
                stats["producer"] += 1
                FileProducer(request, fd, first, count).start()
            return
        # Small: read at once, sent with the head (fewer bytes than announced: finish aborts).
        try:
            data = os.pread(fd, count, first)
        except OSError:
            data = b""
        finally:
            os.close(fd)
        if (raw is not None and code == 200 and len(data) == size and size <= CACHE_FILE_MAX
                and _now() - max(st.st_mtime, st.st_ctime) > CACHE_RACY):
            self._cache_put(raw, _Entry(path, time.monotonic(), _ident(st), encoded, data))
        request.sendHead(code, encoded, count, body=data)
        request.finish()

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


