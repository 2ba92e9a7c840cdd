"""The pidfile: a file holding our pid, *locked* for as long as we run.

An advisory ``flock`` decides whether an instance runs, not the pid written
in the file: a pidfile left behind by a crash, or one whose pid now belongs
to an unrelated process (after a reboot, in a container), is simply taken
over. Only a live process holding the lock refuses a second start.
"""

from __future__ import annotations

import errno
import fcntl
import os
from types import TracebackType

from tapster.core.errors import TapsterError
from tapster.core.logfile import open_owned  # at import: a --chroot hides the library later

__all__ = ["PidFile", "NullPidFile", "AlreadyRunning", "read_pid"]


class AlreadyRunning(TapsterError):
    """Another live process holds the pidfile."""


def read_pid(path: str) -> int | None:
    """The pid written in ``path``, or None if there is no readable number."""
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


class PidFile:
    """Context manager: lock ``path``, write our pid, remove the file at exit."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self._fd: int | None = None

    def __enter__(self) -> PidFile:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def acquire(self) -> None:
        try:
            fd = open_owned(self.path, os.O_RDWR | os.O_CREAT, 0o644, "pidfile")
        except OSError as e:
            raise TapsterError(
                f"cannot open pidfile {self.path}: {e.strerror} (use --pidfile to choose another path)"
            ) from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                pid = read_pid(self.path)
                who = f"pid {pid}" if pid else "another process"
                raise AlreadyRunning(
                    f"already running as {who} ({self.path}); stop it first or use another --pidfile"
                ) from None
            raise TapsterError(f"cannot lock pidfile {self.path}: {e.strerror}") from e
        self._fd = fd
        self.write()

    def write(self) -> None:
        """(Re)write our pid, e.g. after daemonizing changed it."""
        assert self._fd is not None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)
        os.fsync(self._fd)

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            if read_pid(self.path) == os.getpid():
                try:
                    os.unlink(self.path)
                except OSError:
                    # After switching users the directory may not let us remove it:
                    # empty it at least, so that no one reads a stale pid from it.
                    os.ftruncate(self._fd, 0)
        except OSError:
            pass
        finally:
            os.close(self._fd)
            self._fd = None


class NullPidFile:
    """No pidfile (``--pidfile ''`` or the foreground default): same interface, does nothing."""

    path = None

    def __enter__(self) -> NullPidFile:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def acquire(self) -> None:
        pass

    def write(self) -> None:
        pass

    def release(self) -> None:
        pass
