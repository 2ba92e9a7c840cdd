"""The log file: appended to, rotated by size and/or by day, reopened on SIGUSR1.

One handler does all three, because they interact: a rotation and a reopen
both close the stream and open ``path`` again, under the handler's lock so
that a line logged from another thread never goes to a closed file.

Rotation renames ``path`` to ``path.1`` after shifting ``path.1`` →
``path.2`` and so on; at most ``keep`` rotated files exist (the oldest is
overwritten), so a busy server never fills the disk with old logs. Reopening
(``reopen()``, what SIGUSR1 does) is for an external ``logrotate``: it has
moved the file away, and we start a new one at the same path.

Files are created with the process's umask (``--umask`` decides who reads the
log); lines are UTF-8.
"""

from __future__ import annotations

import datetime
import logging
import os
import time
from collections.abc import Callable
from typing import BinaryIO

from tapster.core.errors import TapsterError
from tapster.twistd.safefiles import open_owned  # at import: a --chroot hides the library later

__all__ = ["LogFile"]


class LogFile(logging.Handler):
    """A ``logging.Handler`` writing to ``path`` with optional size/daily rotation and reopening."""

    def __init__(self, path: str, max_size: int | None = None, daily: bool = False, keep: int = 5,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        if keep < 1:
            raise ValueError("keep must be at least 1")
        self.path = os.path.abspath(path)
        self.max_size = max_size
        self.daily = daily
        self.keep = keep
        self._clock = clock
        self._stream: BinaryIO | None = None
        self._size = 0
        self._open()  # raises OSError: the caller reports it
        self._next_day = self._midnight_after(clock()) if daily else None

    # -- files ----------------------------------------------------------------

    def _open_stream(self) -> BinaryIO:
        """The log file, opened for appending, refused if it is a symlink or planted (see safefiles)."""
        fd = open_owned(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640, "log file")
        return os.fdopen(fd, "ab", buffering=0)

    def _open(self) -> None:
        stream = self._open_stream()
        self._stream = stream
        self._size = stream.seek(0, os.SEEK_END)

    def _close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.close()
            except OSError:
                pass

    @staticmethod
    def _midnight_after(now: float) -> float:
        day = datetime.date.fromtimestamp(now) + datetime.timedelta(days=1)
        return datetime.datetime.combine(day, datetime.time()).timestamp()

    def rotated(self) -> list[str]:
        """The rotated files that exist, newest first."""
        return [p for p in (f"{self.path}.{i}" for i in range(1, self.keep + 1)) if os.path.exists(p)]

    def reopen(self) -> None:
        """Close and open ``path`` again (after logrotate moved it); a failure keeps the old file."""
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            old = self._stream
            try:
                stream = self._open_stream()
            except OSError as e:
                self._note(f"could not reopen {self.path}: {e.strerror}; still writing to the old file")
                return
            except TapsterError as e:
                self._note(f"could not reopen {self.path}: {e}; still writing to the old file")
                return
            self._stream = stream
            self._size = stream.seek(0, os.SEEK_END)
            if old is not None:
                old.close()

    def rotate(self) -> None:
        """Shift ``path.N`` → ``path.N+1`` (dropping the oldest), ``path`` → ``path.1``, start a new ``path``."""
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            self._close()
            try:
                for i in range(self.keep - 1, 0, -1):
                    older = f"{self.path}.{i}"
                    if os.path.exists(older):
                        os.replace(older, f"{self.path}.{i + 1}")
                if os.path.exists(self.path):
                    os.replace(self.path, f"{self.path}.1")
                extra = self.keep + 1  # left by an earlier run with a larger --logfile-keep
                while os.path.exists(f"{self.path}.{extra}"):
                    os.unlink(f"{self.path}.{extra}")
                    extra += 1
            except OSError as e:
                self._open()
                self.max_size, self.daily, self._next_day = None, False, None
                self._note(f"could not rotate {self.path}: {e.strerror}; rotation is off until restart")
                return
            self._open()

    def _note(self, text: str) -> None:
        """A line about the log file itself, written into it (there is nowhere else to say it)."""
        if self._stream is not None:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            try:
                self._stream.write(f"{stamp} [twistd] WARNING: {text}\n".encode())
            except OSError:
                pass

    # -- logging.Handler --------------------------------------------------------

    def emit(self, record: logging.LogRecord) -> None:
        try:
            data = (self.format(record) + "\n").encode("utf-8", "backslashreplace")
            if self._next_day is not None and self._clock() >= self._next_day:
                self._next_day = self._midnight_after(self._clock())
                self.rotate()
            elif self.max_size is not None and self._size and self._size + len(data) > self.max_size:
                self.rotate()
            if self._stream is None:
                self._open()
            assert self._stream is not None
            self._stream.write(data)
            self._size += len(data)
        except Exception:  # noqa: BLE001 - logging must never take the server down
            self.handleError(record)

    def flush(self) -> None:
        pass  # unbuffered: every line is written when logged

    def close(self) -> None:
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            self._close()
        super().close()
