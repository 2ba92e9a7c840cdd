"""What both consoles share: who may log in, the limits, and the state of the running server.

A :class:`Console` is saved in the application (user name, password hash,
timeouts, session limit: plain values) and, while the server runs, also
holds what belongs to the process only and is never saved: the sessions
open right now, the per-address login throttle, the root application and the
namespace the sessions share. Sessions are anything with ``close(reason)``.
"""

from __future__ import annotations

import logging
from typing import Any

from tapster.plugins._console.auth import Credentials, Throttle

__all__ = ["Console", "DEFAULT_IDLE_TIMEOUT", "DEFAULT_MAX_SESSIONS", "LOGIN_TIMEOUT", "MAX_FAILURES"]

DEFAULT_IDLE_TIMEOUT = 15 * 60.0
DEFAULT_MAX_SESSIONS = 5
#: Seconds to complete a login (whatever the idle timeout): a half-open login holds a session slot.
LOGIN_TIMEOUT = 60.0
#: Failed logins after which a connection is closed.
MAX_FAILURES = 3

_log = logging.getLogger("tapster.console")


class _Runtime:
    """The process-only half of a console (dropped when the application is saved)."""

    def __init__(self, clock: Any) -> None:
        self.sessions: list[Any] = []
        self.throttle = Throttle(clock.seconds)
        self.application: Any = None
        self.namespace: dict[str, Any] | None = None
        self.label = "console"


class Console:
    """Settings of a console and, while it runs, its sessions and shared namespace."""

    __module__ = "tapster.plugins.console"  # the public path saved files record

    clock: Any = None  # tests set a tapster.core.testing.Clock; None means the shared reactor

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
            runtime = self.__dict__["_runtime"] = _Runtime(self.getClock())
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

    def admit(self, session: Any) -> bool:
        """Count ``session`` in, unless ``maxSessions`` are open already."""
        if self.maxSessions and len(self.sessions) >= self.maxSessions:
            return False
        self.sessions.append(session)
        return True

    def release(self, session: Any) -> None:
        if session in self.sessions:
            self.sessions.remove(session)

    def system(self, peer: str) -> str:
        """The ``system`` of a session's log lines: ``telnet,127.0.0.1:53422``."""
        return f"{self.runtime.label},{peer}"

    def log(self, level: int, peer: str, message: str, *args: Any) -> None:
        _log.log(level, message, *args, extra={"system": self.system(peer)})
