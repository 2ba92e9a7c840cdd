"""Becoming a daemon, done properly, with the launcher waiting for the verdict.

``twistd -f app.tap`` must return only once the application has started and
its ports are bound, and fail visibly when start-up fails. So:

1. the launcher makes a pipe and forks; it then reads the pipe until EOF;
2. the child starts a new session (no controlling terminal) and forks again,
   so that the daemon is not a session leader and can never reacquire one;
3. the daemon redirects stdin/stdout/stderr to /dev/null, starts the
   application, and writes ``OK`` or the error message to the pipe;
4. the launcher exits 0 on ``OK``; otherwise it prints the message and exits 1.
   If the daemon dies without a word, EOF with nothing read is a failure too.

Fork happens before any event loop exists: asyncio and uvloop loops do not
survive a fork.
"""

from __future__ import annotations

import os
import sys

__all__ = ["daemonize", "StatusPipe"]

_OK = b"OK"


class StatusPipe:
    """The daemon's end of the pipe: say ``started()`` or ``failed(message)`` once."""

    def __init__(self, fd: int | None) -> None:
        self._fd = fd

    def started(self) -> None:
        self._send(_OK)

    def failed(self, message: str) -> None:
        self._send(("ERR " + message).encode("utf-8", "replace"))

    def forget(self) -> None:
        """Close this copy without a word: a forked worker's (the launcher waits for every copy to close)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def _send(self, data: bytes) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.write(fd, data)
        except OSError:
            pass  # the launcher is gone; nobody to tell
        finally:
            os.close(fd)


def _launcher(read_fd: int, child: int) -> int:
    chunks = []
    while True:
        try:
            data = os.read(read_fd, 65536)
        except InterruptedError:
            continue
        if not data:
            break
        chunks.append(data)
    os.close(read_fd)
    os.waitpid(child, 0)  # the intermediate child exits at once
    message = b"".join(chunks)
    if message == _OK:
        return 0
    from tapster.core.terminal import one_line

    text = message[4:].decode("utf-8", "replace") if message.startswith(b"ERR ") else ""
    print(f"twistd: {one_line(text or 'the daemon exited during start-up without saying why (see its log file)')}",
          file=sys.stderr)
    sys.stderr.flush()
    return 1


def daemonize(umask: int | None = None) -> StatusPipe:
    """Fork into a daemon. In the launcher this never returns: it exits with the verdict.

    Returns, in the daemon, the pipe on which to report the start-up result.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid > 0:
        os.close(write_fd)
        os._exit(_launcher(read_fd, pid))
    os.close(read_fd)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    if umask is not None:
        os.umask(umask)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    if null > 2:
        os.close(null)
    return StatusPipe(write_fd)
