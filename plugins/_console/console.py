"""What both consoles share: who may log in, the limits, and the state of the running server.

A :class:`Console` is saved in the application (user name, password hash,
timeouts, session limit: plain values) and, while the server runs, also
holds what belongs to the process only and is never saved: the sessions
open right now (and which of them have logged in), the per-address login
throttle with its attempts in flight, the root application and the
namespace the sessions share. Sessions are anything with ``close(reason)``
(and a ``peer`` for the log).

:class:`LoginDeadline` is the login timer both front doors use.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from tapster.plugins._console.auth import Credentials, Throttle

__all__ = [
    "Console",
    "LoginDeadline",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_SESSIONS",
    "DEFAULT_MAX_PENDING_LOGINS",
    "LOGIN_TIMEOUT",
    "MAX_FAILURES",
]

DEFAULT_IDLE_TIMEOUT = 15 * 60.0
DEFAULT_MAX_SESSIONS = 5
#: Connections that may wait at the login prompt at once (OpenSSH's MaxStartups starts at 10 too).
DEFAULT_MAX_PENDING_LOGINS = 10
#: Seconds a connection has to log in (input does not extend it; the server's own waits do not count).
LOGIN_TIMEOUT = 60.0
#: Failed logins after which a connection is closed.
MAX_FAILURES = 3

_log = logging.getLogger("tapster.console")
_WARNING = logging.WARNING


class _Runtime:
    """The process-only half of a console (dropped when the application is saved)."""

    def __init__(self, console: Console, clock: Any) -> None:
        self.sessions: list[Any] = []  # every connection let in, oldest first
        self.logged_in: list[Any] = []  # those of them that have logged in
        self.throttle = Throttle(clock.seconds, free=console.throttleFree, base=console.throttleBase,
                                 maximum=console.throttleMax)
        self.application: Any = None
        self.namespace: dict[str, Any] | None = None
        self.label = "console"


class LoginDeadline:
    """The time a connection has left to log in: ``timeout`` seconds from when it connected.

    The deadline is absolute: nothing the client sends extends it, so a
    connection that never logs in is closed on time however chatty it is
    (a telnet NOP every ten seconds used to keep one open for ever).

    The time the *server* makes the client wait does not count: the
    deadline is paused (:meth:`pause`) while a password waits for its turn
    (:class:`.auth.Throttle`) and while its hash is computed, and goes on
    where it stopped (:meth:`resume`) if the password was wrong. That is
    what keeps the promise "the right password, given after the wait, logs
    in" when the wait is as long as the login timeout (a minute each, by
    default). Capping the wait below the login timeout instead could not
    keep it: attempts from parallel connections queue behind each other,
    so a wait can be longer than any cap; and it would change the
    documented schedule (1 s, 2 s, 4 s... up to a minute). What the pause
    cannot do is keep a connection open for ever: the waits are finite,
    a connection gets three attempts, and connections that have not logged
    in are limited in number (:meth:`Console.admit`).

    A ``timeout`` of 0 (or less) means no deadline. Pauses nest.
    """

    def __init__(self, clock: Any, timeout: float, expired: Callable[[], None]) -> None:
        self.clock = clock
        self.expired = expired
        self.remaining: float | None = timeout if timeout and timeout > 0 else None
        self._call: Any = None
        self._paused = 0
        self._stopped = False
        self._arm()

    def _arm(self) -> None:
        if self.remaining is not None and not self._stopped:
            self._call = self.clock.callLater(self.remaining, self._fire)

    def _fire(self) -> None:
        self._call = None
        self.remaining = 0.0
        self._stopped = True
        self.expired()

    @property
    def paused(self) -> bool:
        return self._paused > 0

    def pause(self) -> None:
        """The server makes the client wait: stop the clock."""
        self._paused += 1
        call, self._call = self._call, None
        if call is not None and call.active():
            self.remaining = max(0.0, call.getTime() - self.clock.seconds())
            call.cancel()

    def resume(self) -> None:
        """The wait is over (the password was wrong): the clock goes on where it stopped."""
        if self._paused == 0:
            return
        self._paused -= 1
        if self._paused == 0 and self._call is None:
            self._arm()

    def stop(self) -> None:
        """Logged in, or gone: no deadline any more."""
        self._stopped = True
        call, self._call = self._call, None
        if call is not None and call.active():
            call.cancel()


class Console:
    """Settings of a console and, while it runs, its sessions and shared namespace."""

    __module__ = "tapster.plugins.console"  # the public path saved files record

    clock: Any = None  # tests set a tapster.core.testing.Clock; None means the shared reactor

    # The login slow-down (:class:`.auth.Throttle`): failures that cost nothing, the first wait, the
    # longest. With the limit on connections waiting to log in (see :meth:`admit`), class-level
    # defaults: saved applications do not carry them, and a .tac may set them on one console.
    throttleFree = 3
    throttleBase = 1.0
    throttleMax = 60.0
    #: Connections that may wait at the login prompt at once, besides the logged-in sessions.
    maxPendingLogins = DEFAULT_MAX_PENDING_LOGINS

    def __init__(
        self,
        username: str,
        passwordHash: str | None,
        idleTimeout: float = DEFAULT_IDLE_TIMEOUT,
        maxSessions: int = DEFAULT_MAX_SESSIONS,
    ) -> None:
        self.username = username
        self.passwordHash = passwordHash
        self.idleTimeout = idleTimeout
        self.maxSessions = maxSessions
        self.loginTimeout = LOGIN_TIMEOUT
        self.maxFailures = MAX_FAILURES

    def __repr__(self) -> str:
        return (f"<Console user={self.username!r} password={'set' if self.passwordHash else 'none'} "
                f"idleTimeout={self.idleTimeout:g}s maxSessions={self.maxSessions}>")

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_runtime", None)
        state.pop("clock", None)
        return state

    # -- the running side ---------------------------------------------------------

    @property
    def runtime(self) -> _Runtime:
        runtime = self.__dict__.get("_runtime")
        if runtime is None:
            runtime = self.__dict__["_runtime"] = _Runtime(self, self.getClock())
        return runtime

    def getClock(self) -> Any:
        """What schedules timeouts: ``clock`` if set, else the shared reactor."""
        if self.clock is not None:
            return self.clock
        from tapster.core import reactor

        return reactor.getReactor()

    @property
    def credentials(self) -> Credentials:
        return Credentials(self.username, self.passwordHash)

    @property
    def sessions(self) -> list[Any]:
        """The sessions open right now (logged in or not)."""
        return self.runtime.sessions

    @property
    def throttle(self) -> Throttle:
        return self.runtime.throttle

    def start(self, application: Any, label: str) -> None:
        """The service started: remember the root application; ``label`` names log lines."""
        runtime = self.runtime
        runtime.application = application
        runtime.label = label
        if runtime.namespace is not None:
            runtime.namespace["application"] = application

    def stop(self, reason: str = "the console is stopping") -> None:
        """Close every session (the listening side is closed by the service)."""
        for session in list(self.sessions):
            session.close(reason)

    def namespace(self) -> dict[str, Any]:
        """The namespace sessions share (made on first use, so variables survive between sessions)."""
        runtime = self.runtime
        if runtime.namespace is None:
            from tapster.plugins._console.shell import namespace

            runtime.namespace = namespace(runtime.application)
        return runtime.namespace

    def pendingLogins(self) -> list[Any]:
        """The sessions open right now that have not logged in (yet), oldest first."""
        runtime = self.runtime
        return [s for s in runtime.sessions if s not in runtime.logged_in]

    def admit(self, session: Any) -> bool:
        """Let a new connection in to log in, unless ``maxSessions`` sessions are logged in already.

        Connections that have not logged in do not count against
        ``maxSessions``: five of them used to keep the console refused to
        everyone. They have their own limit, ``maxPendingLogins``; when it
        is reached the *oldest* of them is closed to make room, rather than
        the new one refused. So connections that never log in cannot keep
        an administrator out: to do it, an attacker must open more than
        ``maxPendingLogins`` connections during the few seconds the
        administrator takes to log in, and every one of them is logged.
        The limit also bounds what they can make the server hold (each
        one's input is bounded, see the telnet protocol's typeahead).
        """
        runtime = self.runtime
        if self.maxSessions and len(runtime.logged_in) >= self.maxSessions:
            return False
        waiting = self.pendingLogins()
        runtime.sessions.append(session)
        limit = self.maxPendingLogins
        if limit and limit > 0 and len(waiting) >= limit:
            for oldest in waiting[: len(waiting) - limit + 1]:
                self.log(_WARNING, getattr(oldest, "peer", "?"),
                         "closing the oldest connection that has not logged in: %d are waiting to log in "
                         "(the most allowed) and %s is new", len(waiting), getattr(session, "peer", "another"))
                self.release(oldest)
                oldest.close("too many connections are waiting to log in; closing the oldest.")
        return True

    def loggedIn(self, session: Any) -> bool:
        """``session`` has logged in: count it, unless ``maxSessions`` are already (then False: close it)."""
        runtime = self.runtime
        if session not in runtime.sessions:  # closed (made room for another) meanwhile
            return False
        if self.maxSessions and len(runtime.logged_in) >= self.maxSessions:
            return False
        if session not in runtime.logged_in:
            runtime.logged_in.append(session)
        return True

    def release(self, session: Any) -> None:
        runtime = self.runtime
        if session in runtime.sessions:
            runtime.sessions.remove(session)
        if session in runtime.logged_in:
            runtime.logged_in.remove(session)

    def system(self, peer: str) -> str:
        """The ``system`` of a session's log lines: ``telnet,127.0.0.1:53422``."""
        return f"{self.runtime.label},{peer}"

    def log(self, level: int, peer: str, message: str, *args: Any) -> None:
        _log.log(level, message, *args, extra={"system": self.system(peer)})
