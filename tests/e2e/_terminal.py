"""Driving interactive clients (Debian's ``telnet``, OpenSSH's ``ssh``) in a pseudo-terminal, as a person would.

:class:`Terminal` starts a program on a fresh pty and offers ``expect`` (wait
for text, with a deadline) and ``sendline``. Keys are typed as a terminal
sends them: Enter is CR, ^C and ^D are their control bytes.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import select
import shutil
import signal
import struct
import subprocess
import termios
import time
from re import Pattern

import pytest

DEADLINE = 15.0


def tool(name: str, package: str) -> str:
    """The path of a Debian tool the test drives; fails with how to install it."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (apt-get install {package}; .ci/run does it)")
    return path


class Terminal:
    """A program on a pseudo-terminal (80x24), with everything it printed kept in :attr:`transcript`."""

    def __init__(self, argv: list[str], cwd: str | None = None) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        self.proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, close_fds=True, start_new_session=True,
        )
        os.close(slave)
        self.fd = master
        self.transcript = ""
        self._pending = ""
        self._eof = False

    def _read(self, timeout: float) -> bool:
        """Read what is available within ``timeout``; False at end of output."""
        if self._eof:
            return False
        ready, _, _ = select.select([self.fd], [], [], max(timeout, 0))
        if not ready:
            return True
        try:
            chunk = os.read(self.fd, 65536)
        except OSError as e:
            if e.errno != errno.EIO:  # EIO: the program closed the terminal (it exited)
                raise
            chunk = b""
        if not chunk:
            self._eof = True
            return False
        text = chunk.decode("utf-8", "replace")
        self.transcript += text
        self._pending += text
        return True

    def expect(self, pattern: str | Pattern[str], timeout: float = DEADLINE) -> str:
        """Wait until the output matches ``pattern`` (plain text or a compiled regex); return it up to the match."""
        regex = pattern if isinstance(pattern, re.Pattern) else re.compile(re.escape(pattern))
        end = time.monotonic() + timeout
        while True:
            match = regex.search(self._pending)
            if match:
                seen = self._pending[: match.end()]
                self._pending = self._pending[match.end():]
                return seen
            remaining = end - time.monotonic()
            if remaining <= 0 or self._eof:
                pytest.fail(f"waited for {regex.pattern!r}; the terminal shows:\n{self.transcript}")
            self._read(min(remaining, 0.5))

    def send(self, text: str) -> None:
        os.write(self.fd, text.encode("utf-8"))

    def sendline(self, text: str = "") -> None:
        self.send(text + "\r")

    def wait(self, timeout: float = DEADLINE) -> int:
        """Wait for the program to exit (draining its output); returns its status."""
        end = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < end:
            self._read(0.05)
        if self.proc.poll() is None:
            pytest.fail(f"{self.proc.args[0]} did not exit; the terminal shows:\n{self.transcript}")
        while self._read(0):
            pass
        return self.proc.returncode

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        try:
            os.close(self.fd)
        except OSError:
            pass
