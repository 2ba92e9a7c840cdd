"""Log files that rotate and reopen: Twisted's ``twisted.python.logfile`` API, opened safely.

``LogFile(name, directory, rotateLength=1000000, defaultMode=None,
maxRotatedFiles=None)`` rotates by size: ``app.log`` becomes ``app.log.1``
(the newest), ``app.log.1`` becomes ``app.log.2`` and so on, and with
``maxRotatedFiles=N`` the files beyond N are deleted, so a busy server never
fills the disk. ``DailyLogFile(name, directory)`` rotates at the first write
after local midnight, to ``app.log.2026_12_1`` (Twisted's suffix). Both are
file-like objects (``write``, ``flush``, ``close``, ``fileno``) that a .tac
hands to an observer::

    application.setComponent(ILogObserver, textFileLogObserver(DailyLogFile("my.log", "/var/log/my")))

twistd's own ``--logfile`` is a :class:`LogFile` too (see
``tapster.twistd.logfile``), so what an administrator learns about one holds
for the other.

What differs from Twisted, on purpose:

* files are opened by :func:`open_owned`: never through a symbolic link, only
  a regular file, and not a file another user planted in a directory others
  can write (twistd often starts as root in ``/var/log`` or a shared ``/tmp``);
* a rotation or a reopen that fails keeps writing to the file that is open,
  and says so once *in* that file (Twisted's rotation silently does nothing,
  and its reopen raises); a failed rotation turns rotation off until restart
  rather than failing again on every line;
* writes and rotations hold a lock, so a line logged from a thread never goes
  to a closed file (Twisted synchronizes the same two methods).
"""

from __future__ import annotations

import errno
import glob
import os
import stat
import threading
import time
import weakref
from typing import BinaryIO, Self

from tapster.core.errors import TapsterError

__all__ = ["BaseLogFile", "LogFile", "DailyLogFile", "LogReader", "open_owned", "reopenAll"]

#: Every log file open in this process, so that one signal (twistd's SIGUSR1, SIGHUP) reopens them all:
#: twistd's own, a .tac's observer's, a plugin's access log. Weak: a file nobody uses is not kept alive.
_open_files: weakref.WeakSet[BaseLogFile] = weakref.WeakSet()


def reopenAll() -> int:
    """Reopen every open :class:`BaseLogFile` of the process (after logrotate moved them); how many."""
    count = 0
    for logfile in list(_open_files):
        if not logfile.closed:
            logfile.reopen()
            count += 1
    return count


def open_owned(path: str, flags: int, mode: int, what: str) -> int:
    """``os.open(path, flags, mode)`` for a file a (possibly privileged) server writes; ``what`` names it.

    Refused, each with one :class:`~tapster.core.errors.TapsterError` naming
    the path and what to do, as OpenSSH's StrictModes would:

    * a symbolic link (``O_NOFOLLOW``): root writing "to the pidfile" would
      otherwise overwrite whatever file the link names;
    * anything but a regular file (a FIFO would block the server);
    * a file owned by another user in a directory others can write to:
      whoever planted it there keeps the power to change or replace it.
    """
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, mode)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise TapsterError(
                f"the {what} {path} is a symbolic link; twistd does not follow links for files it writes "
                f"(remove the link, or give the real path)"
            ) from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise TapsterError(f"the {what} {path} is not a regular file; remove it or choose another path")
        if st.st_uid != os.geteuid():
            directory = os.path.dirname(os.path.abspath(path))
            dir_mode = os.stat(directory).st_mode
            if dir_mode & (stat.S_IWGRP | stat.S_IWOTH):
                raise TapsterError(
                    f"the {what} {path} belongs to another user (uid {st.st_uid}) in {directory}, which others can "
                    f"write to; remove it, or keep the {what} in a directory only its owner can write"
                )
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


class BaseLogFile:
    """A log file ``directory/name``, opened for appending; subclasses decide when it rotates.

    ``defaultMode`` is the permission of a file this creates (default: an
    existing file's own; for a new file, 0o640 under the process's umask).
    """

    def __init__(self, name: str, directory: str, defaultMode: int | None = None) -> None:
        self.directory = directory
        self.name = name
        self.path = os.path.join(directory, name)
        if defaultMode is None and os.path.exists(self.path):
            defaultMode = stat.S_IMODE(os.stat(self.path).st_mode)
        self.defaultMode = defaultMode
        self.closed = True
        #: None until a rotation fails; then why (the file says so too, and rotation is off).
        self.rotationError: str | None = None
        self._lock = threading.RLock()
        self._file: BinaryIO | None = None
        self._openFile()

    @classmethod
    def fromFullPath(cls, filename: str, *args: object, **kwargs: object) -> Self:
        """The log file at ``filename`` (any path): ``LogFile.fromFullPath("/var/log/app.log", rotateLength=...)``."""
        full = os.path.abspath(filename)
        return cls(os.path.basename(full), os.path.dirname(full), *args, **kwargs)  # type: ignore[arg-type]  # the subclass's own signature

    # -- opening ------------------------------------------------------------------

    def _openStream(self) -> BinaryIO:
        mode = 0o640 if self.defaultMode is None else self.defaultMode
        fd = open_owned(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, mode, "log file")
        if self.defaultMode is not None:
            try:
                os.fchmod(fd, self.defaultMode)
            except OSError:
                pass
        return os.fdopen(fd, "ab", buffering=0)

    def _openFile(self) -> None:
        """Open ``path`` (OSError and TapsterError go to the caller: there is no file to note them in yet)."""
        self._file = self._openStream()
        self._file.seek(0, os.SEEK_END)
        self.closed = False
        _open_files.add(self)

    def _note(self, text: str) -> None:
        """A line about the log file itself, written into it: there is nowhere else to say it."""
        if self._file is not None:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            try:
                self._file.write(f"{stamp} [logfile] WARNING: {text}\n".encode())
            except OSError:
                pass

    # -- the file interface ---------------------------------------------------------

    def shouldRotate(self) -> bool:
        """Whether the next write should rotate first."""
        raise NotImplementedError

    def rotate(self) -> None:
        raise NotImplementedError

    def write(self, data: bytes | str) -> None:
        """Append ``data`` (text is written as UTF-8), rotating first if :meth:`shouldRotate` says so."""
        if isinstance(data, str):
            data = data.encode("utf-8", "backslashreplace")
        with self._lock:
            if self.shouldRotate():
                self.rotate()
            if self._file is None:
                raise ValueError(f"write to the closed log file {self.path}")
            self._file.write(data)
            self._written(len(data))

    def _written(self, count: int) -> None:
        """Bookkeeping after a write (the size, the date)."""

    def flush(self) -> None:
        """Nothing to do: the file is unbuffered, every write reaches the kernel at once."""

    def fileno(self) -> int:
        if self._file is None:
            raise ValueError(f"the log file {self.path} is closed")
        return self._file.fileno()

    def close(self) -> None:
        """Close the file; it cannot be written afterwards (:meth:`reopen` opens it again)."""
        with self._lock:
            stream, self._file = self._file, None
            self.closed = True
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass

    def reopen(self) -> None:
        """Open ``path`` again (after an external logrotate moved it); a failure keeps the old file."""
        with self._lock:
            old = self._file
            try:
                self._openFile()
            except (OSError, TapsterError) as e:
                self._file = old
                self.closed = old is None
                reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
                self._note(f"could not reopen {self.path}: {reason}; still writing to the old file")
                return
            if old is not None:
                old.close()

    def getCurrentLog(self) -> LogReader:
        """A reader of the current file."""
        return LogReader(self.path)

    # -- saving ----------------------------------------------------------------------

    def __getstate__(self) -> dict[str, object]:
        state = self.__dict__.copy()
        for transient in ("_file", "_lock", "closed"):
            state.pop(transient, None)
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()
        self._file = None
        self.closed = True
        self._openFile()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path!r}{' closed' if self.closed else ''}>"


class LogFile(BaseLogFile):
    """A log file rotated when it reaches ``rotateLength`` bytes (None: never), keeping ``maxRotatedFiles``."""

    def __init__(self, name: str, directory: str, rotateLength: int | None = 1000000,
                 defaultMode: int | None = None, maxRotatedFiles: int | None = None) -> None:
        if maxRotatedFiles is not None and maxRotatedFiles < 1:
            raise ValueError("maxRotatedFiles must be at least 1 (or None: keep every rotated file)")
        self.rotateLength = rotateLength
        self.maxRotatedFiles = maxRotatedFiles
        self.size = 0
        super().__init__(name, directory, defaultMode)

    def _openFile(self) -> None:
        super()._openFile()
        assert self._file is not None
        self.size = self._file.tell()

    def _written(self, count: int) -> None:
        self.size += count

    def shouldRotate(self) -> bool:
        return bool(self.rotateLength and self.size >= self.rotateLength)

    def listLogs(self) -> list[int]:
        """The numbers of the rotated files that exist, in ascending order (1 is the newest)."""
        found = []
        for name in glob.glob(glob.escape(self.path) + ".*"):
            suffix = name[len(self.path) + 1:]
            if suffix.isdigit() and int(suffix) > 0:
                found.append(int(suffix))
        return sorted(found)

    def getLog(self, identifier: int) -> LogReader:
        """A reader of the rotated file ``path.identifier``; ValueError if there is none."""
        filename = f"{self.path}.{int(identifier)}"
        if not os.path.exists(filename):
            raise ValueError(f"no rotated log file {filename}")
        return LogReader(filename)

    def rotate(self) -> None:
        """``path.N`` → ``path.N+1`` (deleting those beyond maxRotatedFiles), ``path`` → ``path.1``, a new ``path``."""
        with self._lock:
            self.close()
            try:
                for number in reversed(self.listLogs()):
                    older = f"{self.path}.{number}"
                    if self.maxRotatedFiles is not None and number >= self.maxRotatedFiles:
                        os.unlink(older)
                    else:
                        os.replace(older, f"{self.path}.{number + 1}")
                if os.path.exists(self.path):
                    os.replace(self.path, f"{self.path}.1")
            except OSError as e:
                self._openFile()
                self.rotateLength = None
                self.rotationError = e.strerror or str(e)
                self._note(f"could not rotate {self.path}: {e.strerror}; rotation is off until restart")
                return
            self._openFile()

    def __getstate__(self) -> dict[str, object]:
        state = super().__getstate__()
        state.pop("size", None)
        return state


class DailyLogFile(BaseLogFile):
    """A log file rotated at the first write after local midnight, to ``path.YEAR_MONTH_DAY``."""

    def _openFile(self) -> None:
        super()._openFile()
        self.lastDate = self.toDate(os.stat(self.path).st_mtime)

    def toDate(self, *args: float) -> tuple[int, int, int]:
        """(year, month, day) in local time of a Unix time, or of now; override for another calendar or a test."""
        year, month, day = time.localtime(*args)[:3]
        return (year, month, day)

    def suffix(self, tupledate: tuple[int, int, int] | float) -> str:
        """``2026_12_1`` for (2026, 12, 1), or for a Unix time on that day."""
        if isinstance(tupledate, (int, float)):
            tupledate = self.toDate(tupledate)
        return "_".join(str(part) for part in tupledate)

    def shouldRotate(self) -> bool:
        return self.toDate() > self.lastDate

    def _written(self, count: int) -> None:
        self.lastDate = max(self.lastDate, self.toDate())  # a clock stepped back never un-rotates

    def getLog(self, identifier: float) -> LogReader:
        """A reader of the file of the day of the Unix time ``identifier`` (today: the current one)."""
        if self.toDate(identifier) == self.lastDate:
            return self.getCurrentLog()
        filename = f"{self.path}.{self.suffix(identifier)}"
        if not os.path.exists(filename):
            raise ValueError(f"no rotated log file {filename}")
        return LogReader(filename)

    def rotate(self) -> None:
        """``path`` → ``path.<lastDate>``, a new ``path``; a file of that day already there is never overwritten."""
        with self._lock:
            target = f"{self.path}.{self.suffix(self.lastDate)}"
            if os.path.exists(target):
                self.lastDate = self.toDate()
                return
            self.close()
            try:
                os.replace(self.path, target)
            except OSError as e:
                self._openFile()
                self.rotationError = e.strerror or str(e)
                self._note(f"could not rotate {self.path}: {e.strerror}; still writing to it")
                self.lastDate = self.toDate()
                return
            self._openFile()

    def __getstate__(self) -> dict[str, object]:
        state = super().__getstate__()
        state.pop("lastDate", None)
        return state


class LogReader:
    """Lines of a log file, a few at a time: ``LogFile(...).getLog(1).readLines(10)``."""

    def __init__(self, name: str) -> None:
        self._file = open(name, encoding="utf-8", errors="replace")  # closed by close()

    def readLines(self, lines: int = 10) -> list[str]:
        """The next ``lines`` lines (fewer at the end of the file)."""
        result = []
        for _ in range(lines):
            line = self._file.readline()
            if not line:
                break
            result.append(line)
        return result

    def close(self) -> None:
        self._file.close()
