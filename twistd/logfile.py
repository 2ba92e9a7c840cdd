"""twistd's ``--logfile``: a :class:`tapster.core.logfile.LogFile` behind a ``logging.Handler``.

The file is the same class a .tac uses (``LogFile(name, directory,
rotateLength, maxRotatedFiles=...)``), so size rotation, the ``.1`` (newest)
to ``.N`` numbering, the bound on kept files, safe opening and reopening are
the same for both. The handler adds what twistd's options ask beyond that:

* size rotation *before* a line would take the file past ``--logfile-max-size``
  (Twisted's rotates after the limit is passed; an administrator who sets a
  limit expects no file above it), though a single longer line is still written;
* ``--logfile-rotate daily``: at local midnight, with the same numbering and
  bound as size rotation (Twisted's DailyLogFile names files by date and keeps
  them all; that class is there for code that wants it);
* files beyond ``--logfile-keep`` left by an earlier run with a larger value
  are removed at the first rotation (LogFile's own rule: every rotated file
  numbered at or above the bound goes);
* ``reopen()`` is what SIGUSR1 does, for an external logrotate.
"""

from __future__ import annotations

import datetime
import logging
import os
import time
from collections.abc import Callable

from tapster.core.logfile import LogFile  # at import: a --chroot hides the library later

__all__ = ["LogFileHandler"]


class LogFileHandler(logging.Handler):
    """Format each record as one line and append it to a :class:`~tapster.core.logfile.LogFile`."""

    def __init__(self, path: str, max_size: int | None = None, daily: bool = False, keep: int = 5,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        if keep < 1:
            raise ValueError("keep must be at least 1")
        self.path = os.path.abspath(path)
        self.daily = daily
        self.keep = keep
        self._clock = clock
        # Rotation is decided here (before a line, or at midnight), so the file itself never rotates on its own.
        self.logfile = LogFile.fromFullPath(self.path, rotateLength=None, maxRotatedFiles=keep)  # raises OSError
        self.max_size = max_size
        self._next_day = self._midnight_after(clock()) if daily else None

    @staticmethod
    def _midnight_after(now: float) -> float:
        day = datetime.date.fromtimestamp(now) + datetime.timedelta(days=1)
        return datetime.datetime.combine(day, datetime.time()).timestamp()

    def rotated(self) -> list[str]:
        """The rotated files that exist, newest first."""
        return [f"{self.path}.{n}" for n in self.logfile.listLogs() if n <= self.keep]

    def reopen(self) -> None:
        """Open the path again (after logrotate moved the file); a failure keeps the old file."""
        self.logfile.reopen()

    def rotate(self) -> None:
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            self.logfile.rotate()
            if self.logfile.rotationError is not None:  # noted in the file; trying again on every line helps no one
                self.max_size, self.daily, self._next_day = None, False, None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            data = (self.format(record) + "\n").encode("utf-8", "backslashreplace")
            logfile = self.logfile
            if self._next_day is not None and self._clock() >= self._next_day:
                self._next_day = self._midnight_after(self._clock())
                self.rotate()
            elif self.max_size is not None and logfile.size and logfile.size + len(data) > self.max_size:
                self.rotate()
            if logfile.closed:
                logfile.reopen()
            logfile.write(data)
        except Exception:  # noqa: BLE001 - logging must never take the server down
            self.handleError(record)

    def flush(self) -> None:
        pass  # unbuffered: every line is written when logged

    def close(self) -> None:
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            self.logfile.close()
        super().close()
