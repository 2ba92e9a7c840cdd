"""Exceptions raised by tapster's core library.

The hierarchy, drawn once here so that callers know what to catch::

    TapsterError                      base of everything tapster raises on purpose
    ├── UsageError                    a command line is wrong (``usage.UsageError``, Twisted's name)
    ├── EndpointError                 a malformed endpoint description (also a ValueError)
    ├── TLSContextError               a TLS key or certificate cannot be used
    ├── CannotListenError             bind/listen failed; names the address and the OS reason
    ├── InheritedSocketError          a socket passed by systemd (LISTEN_FDS) is missing or of the wrong kind
    ├── ConnectError                  an outgoing connection failed
    │   ├── ConnectionRefusedError
    │   ├── DNSLookupError
    │   └── TimeoutError
    ├── ConnectionClosed              passed to ``connectionLost`` (wrapped in a Failure)
    │   ├── ConnectionDone            closed cleanly
    │   └── ConnectionLost            closed uncleanly (reset, abort, error)
    ├── ReactorError
    │   ├── ReactorNotRunning         ``stop()`` on a reactor that is not running
    │   ├── ReactorAlreadyRunning
    │   └── ReactorAlreadyInstalledError
    ├── NotConnectingError            ``stopConnecting()`` on a connector that is not connecting
    ├── AlreadyCalled / AlreadyCancelled   misuse of a DelayedCall
    ├── StringTooLongError            more bytes than a length prefix holds (also an AssertionError)
    ├── NetstringParseError           the peer sent something that is not a netstring (also a ValueError)
    ├── PersistError                  a saved application cannot be written or read
    │   ├── BadPassphrase             wrong passphrase for an encrypted file
    │   └── ValueTooLarge             a safe file describes more than tapster builds (shared references expanded)
    ├── PassphraseError               no usable passphrase (empty, the two entries differ, unreadable file)
    ├── AlreadyCalledError            a Deferred fired twice (``defer.AlreadyCalledError``)
    ├── CancelledError                a cancelled Deferred's failure (``defer.CancelledError``, not asyncio's)
    ├── DeferredTimeoutError          a Deferred's ``addTimeout`` ran out (``defer.TimeoutError``)
    ├── NotACoroutineError            ``ensureDeferred`` of something else (also a TypeError)
    ├── FirstError                    a DeferredList/gatherResults member failed first
    └── PluginError                   a plugin cannot be loaded or is broken
        └── UnknownPluginError        no installed plugin has that name (a usage error)

Every exception class of the library is defined here; the public modules
re-export theirs under Twisted's names (``usage.UsageError``,
``endpoints.EndpointError``, ``basic.StringTooLongError``...). The command-line
front ends add a few of their own below ``TapsterError`` (twistd's
``AlreadyRunning`` for a held pidfile, its ``PluginUsageError``), and turn every
``TapsterError`` into one line on stderr; anything else is a bug and keeps its
traceback under ``--debug``.
"""

from __future__ import annotations

__all__ = [
    "TapsterError",
    "UsageError",
    "EndpointError",
    "TLSContextError",
    "NotConnectingError",
    "StringTooLongError",
    "NetstringParseError",
    "CannotListenError",
    "InheritedSocketError",
    "ConnectError",
    "ConnectionRefusedError",
    "DNSLookupError",
    "TimeoutError",
    "ConnectionClosed",
    "ConnectionDone",
    "ConnectionLost",
    "ReactorError",
    "ReactorNotRunning",
    "ReactorAlreadyRunning",
    "ReactorAlreadyInstalledError",
    "AlreadyCalled",
    "AlreadyCancelled",
    "PersistError",
    "BadPassphrase",
    "ValueTooLarge",
    "PluginError",
    "UnknownPluginError",
    "PassphraseError",
    "AlreadyCalledError",
    "CancelledError",
    "DeferredTimeoutError",
    "NotACoroutineError",
    "FirstError",
]


class TapsterError(Exception):
    """Base class of the errors tapster raises deliberately, with a message fit for users."""


class UsageError(TapsterError):
    """The command line is wrong; the message, meant for the user, says what and how to fix it."""


class EndpointError(TapsterError, ValueError):
    """A description string is malformed; the message names it and the fix."""

    def __init__(self, description: str, problem: str) -> None:
        shown = description if len(description) <= 100 else description[:97] + "..."
        said = problem if len(problem) <= 200 else problem[:197] + "..."  # it may quote a value from the description
        super().__init__(f"bad endpoint {shown!r}: {said}")  # repr: escapes what a terminal would act on
        self.description = description
        self.problem = problem


class TLSContextError(TapsterError):
    """A TLS context cannot be built: a key or certificate file is missing, unreadable or wrong."""


class NotConnectingError(TapsterError):
    """``stopConnecting()`` on a connector that is not connecting."""


class StringTooLongError(TapsterError, AssertionError):
    """``sendString`` was given more bytes than the length prefix can describe.

    An ``AssertionError`` as in Twisted: it is a programming error of the
    sender, not something the peer can cause.
    """


class NetstringParseError(TapsterError, ValueError):
    """The peer sent something that is not a netstring (kept for Twisted compatibility)."""


class InheritedSocketError(TapsterError):
    """A socket the process was told to adopt (systemd's LISTEN_FDS, ``fd:N``) is not there or not of its kind."""


class CannotListenError(TapsterError):
    """Binding or listening failed.

    The message names the address so that "address in use" is actionable.
    """

    def __init__(self, interface: str, port: object, socketError: BaseException) -> None:
        super().__init__(interface, port, socketError)
        self.interface = interface
        self.port = port
        self.socketError = socketError

    def __str__(self) -> str:
        where = describe_address(self.interface, self.port)
        reason = getattr(self.socketError, "strerror", None) or str(self.socketError)
        hint = ""
        errno = getattr(self.socketError, "errno", None)
        if errno == 98:  # EADDRINUSE
            other = "another port" if self.port not in (None, "") else "another path"
            hint = f" (another process is listening there: stop it or choose {other})"
        elif errno == 13:  # EACCES
            hint = " (ports below 1024 need root: start as root or choose a port above 1023)"
        elif errno == 99:  # EADDRNOTAVAIL
            hint = " (no such local address on this machine)"
        return f"cannot listen on {where}: {reason}{hint}"


def describe_address(interface: str, port: object) -> str:
    """Render an address the way a user would type it (``127.0.0.1:8007``, ``[::1]:80``, a path)."""
    if port is None or port == "":
        return str(interface)
    if interface in ("", None):
        interface = "0.0.0.0"
    if ":" in str(interface):
        return f"[{interface}]:{port}"
    return f"{interface}:{port}"


class ConnectError(TapsterError):
    """An outgoing connection could not be made."""

    def __init__(self, osError: object = None, string: str = "") -> None:
        super().__init__(osError, string)
        self.osError = osError
        self.string = string

    def __str__(self) -> str:
        doc = type(self).__doc__
        text = doc.strip().splitlines()[0].rstrip(".") if doc else "connect error"
        extra = ": ".join(str(x) for x in (self.osError, self.string) if x)
        return f"{text}: {extra}" if extra else text


class ConnectionRefusedError(ConnectError):
    """Connection was refused by the other side."""


class DNSLookupError(ConnectError):
    """The host name could not be resolved."""


class TimeoutError(ConnectError):  # noqa: A001 - Twisted's name
    """The connection attempt timed out."""


class ConnectionClosed(TapsterError):
    """The connection is closed; base of the reasons handed to ``connectionLost``."""


class ConnectionDone(ConnectionClosed):
    """The connection was closed cleanly."""

    def __str__(self) -> str:
        return "Connection was closed cleanly."


class ConnectionLost(ConnectionClosed):
    """The connection was closed in a non-clean fashion."""

    def __str__(self) -> str:
        detail = ": ".join(str(a) for a in self.args if a)
        return f"Connection to the other side was lost in a non-clean fashion{': ' + detail if detail else '.'}"


class ReactorError(TapsterError):
    """Misuse of the reactor."""


class ReactorNotRunning(ReactorError):
    """``stop()`` was called on a reactor that is not running."""


class ReactorAlreadyRunning(ReactorError):
    """``run()`` was called on a reactor that is already running."""


class ReactorAlreadyInstalledError(ReactorError):
    """A different reactor was requested after the shared one was installed."""


class AlreadyCalled(TapsterError):
    """The DelayedCall has already run."""


class AlreadyCancelled(TapsterError):
    """The DelayedCall has already been cancelled."""


class PersistError(TapsterError):
    """A saved application could not be written or read."""


class BadPassphrase(PersistError):
    """The passphrase does not open this encrypted file."""


class ValueTooLarge(PersistError):
    """A value from a safe file would be larger, with its shared references expanded, than the budget allows."""


class PluginError(TapsterError):
    """A plugin could not be found or loaded."""


class UnknownPluginError(PluginError):
    """No installed plugin has the name asked for: the command line is wrong, not the plugin."""


class PassphraseError(TapsterError):
    """No usable passphrase: the two entries differ, it is empty, or its file cannot be read."""


# -- Deferreds (re-exported by tapster.core.defer under Twisted's names) -------------------


class AlreadyCalledError(TapsterError):
    """A Deferred was fired (``callback``/``errback``) a second time."""


class CancelledError(TapsterError):
    """What a cancelled Deferred fails with (Twisted's ``defer.CancelledError``, not asyncio's)."""


class DeferredTimeoutError(TapsterError):
    """A Deferred given ``addTimeout`` did not fire in time (``tapster.core.defer.TimeoutError``)."""


class NotACoroutineError(TapsterError, TypeError):
    """``ensureDeferred`` was given something that is neither a coroutine nor a Deferred."""


class FirstError(TapsterError):
    """A ``DeferredList`` with ``fireOnOneErrback`` (and ``gatherResults``) failed with this.

    ``subFailure`` is the Failure of the Deferred that failed first, ``index``
    its position in the list.
    """

    def __init__(self, failure: object, index: int) -> None:
        super().__init__(failure, index)
        self.subFailure = failure
        self.index = index

    def __str__(self) -> str:
        return f"FirstError[#{self.index}, {self.subFailure!r}]"

    __repr__ = __str__

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FirstError):
            return bool(self.subFailure == other.subFailure and self.index == other.index)
        return NotImplemented

    __hash__ = TapsterError.__hash__
