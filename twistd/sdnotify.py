"""systemd's notification protocol (sd_notify), written by hand: one datagram per message.

Under a unit with ``Type=notify`` systemd sets ``$NOTIFY_SOCKET`` (a path, or
``@name`` for an abstract socket) and waits for ``READY=1`` before it calls
the service started; ``systemctl status`` shows the last ``STATUS=``; with
``WatchdogSec=`` it sets ``$WATCHDOG_USEC`` and kills a service that stops
sending ``WATCHDOG=1``. The protocol is newline-separated ``KEY=value`` text
in one datagram on a ``SOCK_DGRAM`` unix socket; the C library adds nothing
twistd needs, and the Python wrappers are unmaintained or need libsystemd.

The environment is read once, before the application is loaded, and the
variables are removed, so neither the application's code nor its child
processes can speak for twistd. The socket is connected at once, so sending
still works after ``--chroot`` hides the path and after privileges are dropped.

Sending never blocks and never fails the server: a lost notification is
logged once at debug level (systemd may have gone away, or the socket be full).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import MutableMapping

__all__ = ["Notifier", "from_environment", "WATCHDOG_VARIABLES"]

_log = logging.getLogger("tapster.twistd")

#: The variables :func:`from_environment` reads and removes.
WATCHDOG_VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


class Notifier:
    """Sends notifications to systemd's socket ``address`` (``@name``: abstract)."""

    def __init__(self, address: str, watchdog_usec: int | None = None) -> None:
        self.address = address
        #: Microseconds systemd waits between watchdog pings before killing the service; None: no watchdog.
        self.watchdog_usec = watchdog_usec
        self._warned = False
        target = "\0" + address[1:] if address.startswith("@") else address
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
        try:
            self._sock.connect(target)
        except OSError as e:
            self._sock.close()
            raise OSError(e.errno, f"cannot reach systemd's notification socket {address}: {e.strerror}") from None

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between pings: half of what systemd allows, as sd_watchdog_enabled(3) advises."""
        return None if self.watchdog_usec is None else self.watchdog_usec / 2e6

    def notify(self, **fields: object) -> bool:
        """Send ``KEY=value`` lines (``notify(READY=1, STATUS="serving")``); False when it could not be sent."""
        lines = []
        for key, value in fields.items():
            text = str(value).replace("\n", " ")  # one field, one line: a newline would start another
            lines.append(f"{key}={text}")
        try:
            self._sock.send("\n".join(lines).encode("utf-8", "replace"))
        except OSError as e:
            if not self._warned:
                self._warned = True
                _log.debug("could not notify systemd at %s: %s", self.address, e.strerror or e)
            return False
        return True

    def ready(self, status: str) -> bool:
        """Everything started and bound: ``READY=1`` with a status and the main pid (a daemon's, after forking)."""
        return self.notify(READY=1, STATUS=status, MAINPID=os.getpid())

    def reloading(self) -> bool:
        """A reload begins (``READY=1`` again when it ends); systemd needs the time to match the two."""
        return self.notify(RELOADING=1, MONOTONIC_USEC=time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000)

    def stopping(self, status: str) -> bool:
        return self.notify(STOPPING=1, STATUS=status)

    def status(self, status: str) -> bool:
        return self.notify(STATUS=status)

    def watchdog(self) -> bool:
        return self.notify(WATCHDOG=1)

    def close(self) -> None:
        self._sock.close()


def from_environment(environ: MutableMapping[str, str] | None = None) -> Notifier | None:
    """The notifier ``$NOTIFY_SOCKET`` asks for (None without one), removing the variables from ``environ``.

    ``$WATCHDOG_USEC`` turns the watchdog on, unless ``$WATCHDOG_PID`` names
    another process (systemd sets it to the pid it started: a daemonizing
    twistd's launcher, which then is not the one that pings). An unusable
    socket is one warning, never a failed start: the server itself is fine.
    """
    env = os.environ if environ is None else environ
    address = env.pop("NOTIFY_SOCKET", "")
    usec_text = env.pop("WATCHDOG_USEC", "")
    pid_text = env.pop("WATCHDOG_PID", "")
    if not address:
        return None
    if not (address.startswith("/") or address.startswith("@")):
        _log.warning("ignoring NOTIFY_SOCKET=%r: systemd gives an absolute path or an @abstract name", address)
        return None
    usec: int | None = None
    if usec_text:
        try:
            usec = int(usec_text)
            if usec <= 0:
                raise ValueError
        except ValueError:
            _log.warning("ignoring WATCHDOG_USEC=%r: not a positive number of microseconds", usec_text)
            usec = None
    if usec is not None and pid_text:
        if not pid_text.isdigit() or int(pid_text) != os.getpid():
            usec = None  # the watchdog is another process's
    try:
        return Notifier(address, usec)
    except OSError as e:
        _log.warning("%s; not notifying systemd", e.strerror)
        return None
