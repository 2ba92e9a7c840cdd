"""The telnet console: option negotiation, a login, then the shell, one protocol per connection.

The conversation:

1. The server offers ``WILL ECHO`` and ``WILL SGA``. A real telnet client
   agrees and switches to character mode: it stops echoing (so the password
   is never shown) and the server echoes and edits lines itself
   (:mod:`.editor`). A client that never answers (``nc``) stays in line
   mode: it echoes what the user types and sends whole lines; the server
   then echoes nothing.
2. ``login:`` and ``Password:``; the check is constant-time and waits
   first if this address failed too often, or has other attempts in flight
   (:class:`.auth.Throttle`). After three failures the connection is
   closed. The login must be completed within a minute of connecting,
   whatever the client sends meanwhile; the server's own wait before a
   check does not count (:class:`.console.LoginDeadline`). While a
   password is checked, what the client types ahead is kept (bounded; then
   the server stops reading) and runs after a successful login.
3. ``>>>``: each line goes to a :class:`.shell.Shell`; its output comes back.
   ``exit()``, ``quit``, ^D on an empty line end the session; ^C (or
   ``IAC IP``) abandons the statement being typed. A session idle for
   ``idleTimeout`` seconds is closed.

Every connection, login, failure and statement is logged with the peer's
address (``system`` = ``<service>,<host>:<port>``).
"""

from __future__ import annotations

import codecs
import functools
import logging
from typing import TYPE_CHECKING, Any

from tapster.core.protocol import Protocol, ServerFactory
from tapster.plugins._console import negotiation as tn
from tapster.plugins._console.auth import Attempt
from tapster.plugins._console.console import Console, LoginDeadline
from tapster.plugins._console.editor import EndOfFile, Interrupt, Line, LineEditor
from tapster.plugins._console.shell import Shell, banner, one_line

if TYPE_CHECKING:
    from tapster.core.interfaces import ITransport

__all__ = ["TelnetShellFactory", "TelnetShellProtocol"]

_INFO, _WARNING = logging.INFO, logging.WARNING

# Where a session is in its conversation.
_USER, _PASSWORD, _CHECKING, _SHELL, _CLOSED = "user", "password", "checking", "shell", "closed"


def _address(addr: Any) -> tuple[str, str]:
    """(host, "host:port") of a transport address (any kind)."""
    host = getattr(addr, "host", None)
    if host is None:
        name = str(getattr(addr, "name", None) or addr)
        return name, name
    port = getattr(addr, "port", "")
    return host, (f"[{host}]:{port}" if ":" in host else f"{host}:{port}")


#: Characters a connection may type ahead while its password is checked before the server stops
#: reading from it (the rest waits in the kernel, and the client is slowed by TCP's flow control).
MAX_TYPEAHEAD = 16 * 1024
#: Past this (a transport that keeps delivering after being asked to stop), the connection is dropped.
MAX_HELD = 1024 * 1024

# Telnet commands typed ahead are kept in the typeahead as the keys that mean the same to the editor.
_COMMAND_KEYS = {tn.IP: "\x03", tn.BRK: "\x03", tn.ABORT: "\x03", tn.EOF: "\x04", tn.EC: "\x7f", tn.EL: "\x15"}


class TelnetShellProtocol(Protocol):
    """One telnet connection to the console."""

    factory: TelnetShellFactory
    transport: ITransport  # set by makeConnection before connectionMade, and kept afterwards
    state = _USER
    shell_started = False

    def connectionMade(self) -> None:
        console = self.factory.console
        self.console = console
        self.host, self.peer = _address(self.transport.getPeer())
        self.username = ""
        self.failures = 0
        self.shell: Any = None
        self._timer: Any = None
        self._deadline: LoginDeadline | None = None
        self._pending: Any = None  # the delayed check, while the password waits for its turn
        self._attempt: Attempt | None = None  # the throttle's count of this connection's attempt in flight
        self._hashing = False  # the hash runs in a worker thread right now
        self._typeahead: list[str] = []  # what was typed while the password is checked, as typed
        self._typeahead_size = 0
        self._eof_pending = False  # the client half-closed while the password was checked
        self._reading_paused = False
        if not console.admit(self):
            console.log(_WARNING, self.peer, "refused: %d sessions already open (--max-sessions)",
                        len(console.runtime.logged_in))
            self.state = _CLOSED
            self._send(f"Too many console sessions ({console.maxSessions}); try again later.\n")
            self.transport.loseConnection()
            return
        console.log(_INFO, self.peer, "connection from %s", self.peer)
        self.parser = tn.TelnetParser()
        self.options = tn.OptionNegotiator()
        self.editor = LineEditor(echo=False)
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.transport.write(self.options.enable_local(tn.ECHO) + self.options.enable_local(tn.SGA))
        self._deadline = LoginDeadline(console.getClock(), console.loginTimeout, self._login_timed_out)
        self._ask_user()

    # -- input ------------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        if self.state == _CLOSED:
            return
        if self.state == _SHELL:
            self._rearm()  # only a logged-in session's idle timer; the login deadline is absolute
        for event in self.parser.feed(data):
            if self.state == _CLOSED:
                return
            if isinstance(event, tn.Data):
                self._typed(self.decoder.decode(event.data))
            elif isinstance(event, tn.Negotiation):
                answer = self.options.receive(event.verb, event.option)
                if answer:
                    self.transport.write(answer)
                self.editor.echo = self.options.local_enabled(tn.ECHO)
            elif isinstance(event, tn.Command):
                self._command(event.command)
            # Subnegotiations: we agree to no option that has any, so there is nothing to do.

    def _command(self, command: int) -> None:
        if command == tn.AYT:
            self._send("\n[yes]\n")  # answered at once, even while the password is checked
        elif self.state == _CHECKING:
            key = _COMMAND_KEYS.get(command)
            if key:
                self._type_ahead(key)
        elif command in (tn.IP, tn.BRK, tn.ABORT):
            self._event(Interrupt())
        elif command == tn.EOF:
            self._event(EndOfFile())
        elif command == tn.EC:
            self._send(self.editor.erase_char())
        elif command == tn.EL:
            self._send(self.editor.erase_line())

    def _typed(self, text: str) -> None:
        # One character at a time: a state change (password mode after the user
        # name) must apply to the very next character, even within one chunk.
        echo: list[str] = []
        for i, ch in enumerate(text):
            if self.state == _CHECKING:  # the rest waits for the verdict, unedited
                self._type_ahead(text[i:])
                break
            out, events = self.editor.feed(ch)
            if out:
                echo.append(out)
            for event in events:
                if echo:
                    self._send("".join(echo))
                    echo.clear()
                self._event(event)
                if self.state == _CLOSED:
                    return
        if echo:
            self._send("".join(echo))

    def _type_ahead(self, text: str) -> None:
        """Keep what arrives while the password is checked, bounded.

        It used to be edited into lines and kept as one object per line:
        10 MB of newlines held 847 MiB. Now it is kept as the text that
        arrived (run after a successful login, dropped after a failed one),
        and past :data:`MAX_TYPEAHEAD` characters the server stops reading
        from the connection until the verdict: what is sent meanwhile waits
        in the kernel's buffers and the client is held back by TCP, so a
        long paste still arrives whole after the login. What a transport
        delivers in spite of the pause (one read's worth at most, normally)
        is kept up to :data:`MAX_HELD` characters; beyond that the
        connection is dropped.
        """
        if not text or self.state == _CLOSED:
            return
        self._typeahead.append(text)
        self._typeahead_size += len(text)
        if len(self._typeahead) > 64:
            self._typeahead[:] = ["".join(self._typeahead)]
        if self._typeahead_size > MAX_HELD:
            self.console.log(_WARNING, self.peer, "%d characters typed ahead before logging in: closing the connection",
                             self._typeahead_size)
            self.close("too much input before logging in.")
        elif self._typeahead_size > MAX_TYPEAHEAD and not self._reading_paused:
            self._reading_paused = True
            self.transport.pauseProducing()
            self.console.log(_INFO, self.peer, "%d characters typed ahead while the password is checked: "
                             "stopped reading until the verdict", self._typeahead_size)

    def _resume_reading(self) -> None:
        if self._reading_paused and self.state != _CLOSED and not self.transport.disconnecting:
            self._reading_paused = False
            self.transport.resumeProducing()

    def readConnectionLost(self) -> None:
        """The client finished sending (``nc -N``, a pipe): like ^D, but after what it typed ahead."""
        if self.state == _CHECKING:
            self._eof_pending = True
        else:
            self._event(EndOfFile())

    def _event(self, event: Any) -> None:
        state = self.state
        if isinstance(event, EndOfFile):
            self.close("bye")
        elif isinstance(event, Interrupt):
            if state == _SHELL:
                self.shell.interrupt()
                self._send(self.shell.prompt)
            elif state in (_USER, _PASSWORD):
                self.close("login interrupted")
        elif isinstance(event, Line):
            if state == _USER:
                self._got_user(event.text)
            elif state == _PASSWORD:
                self._got_password(event.text)
            elif state == _SHELL:
                self._run(event.text)

    # -- login --------------------------------------------------------------------------

    def _ask_user(self) -> None:
        self.state = _USER
        self.editor.secret = False
        self._send("login: ")

    def _got_user(self, name: str) -> None:
        name = name.strip()
        if not name:
            self._send("login: ")
            return
        self.username = name
        self.state = _PASSWORD
        self.editor.secret = True
        self._send("Password: ")

    def _got_password(self, password: str) -> None:
        """Reserve this attempt's turn (:meth:`.auth.Throttle.reserve`) and check it when it comes.

        From here to the verdict the login deadline is paused: the wait is the
        server's, not the client's (see :class:`.console.LoginDeadline`).
        """
        self.editor.secret = False
        self.state = _CHECKING
        if self._deadline is not None:
            self._deadline.pause()
        throttle = self.console.throttle
        in_flight = throttle.inFlight(self.host)
        self._attempt = attempt = throttle.reserve(self.host)
        if attempt.delay:
            self.console.log(_WARNING, self.peer, "login attempt from an address with %d recent failures "
                             "and %d other attempts in flight: waiting %gs",
                             throttle.failures(self.host), in_flight, attempt.delay)
            self._pending = self.console.getClock().callLater(attempt.delay, self._check, password)
        else:
            self._check(password)

    def _check(self, password: str) -> None:
        """Verify the password off the reactor thread: a slow hash must not stall the server.

        Without a running loop (protocol tests on a Clock) it is checked inline.
        """
        self._pending = None
        if self.state != _CHECKING:
            return
        import asyncio

        verify = self.console.credentials.check
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._checked(verify(self.username, password))
            return
        self._hashing = True
        future = loop.run_in_executor(None, verify, self.username, password)
        future.add_done_callback(functools.partial(self._verified, self._attempt, self.username))

    def _verified(self, attempt: Attempt | None, username: str, future: Any) -> None:
        self._hashing = False
        error = None if future.cancelled() else future.exception()
        if error is not None:
            self.console.log(_WARNING, self.peer, "password check failed: %s", error)
        ok = not future.cancelled() and error is None and bool(future.result())
        if self.state != _CHECKING or attempt is not self._attempt:
            # Closed while the hash was computed. The guess was checked all the same:
            # a wrong one counts, so that leaving before the verdict buys no free hashes.
            if attempt is self._attempt:
                self._attempt = None
            if attempt is not None:
                if ok:
                    attempt.abandoned()
                else:
                    total = attempt.failed()
                    self.console.log(_WARNING, self.peer, "failed login as %r (the connection closed before "
                                     "the verdict; %d from %s)", username, total, self.host)
            return
        self._checked(ok)

    def _checked(self, ok: bool) -> None:
        if self.state != _CHECKING:  # closed while the hash was being computed
            return
        console = self.console
        attempt, self._attempt = self._attempt, None
        typeahead = "".join(self._typeahead)
        self._typeahead, self._typeahead_size = [], 0
        eof, self._eof_pending = self._eof_pending, False
        if ok:
            if attempt is not None:
                attempt.succeeded()
            else:
                console.throttle.succeeded(self.host)
            if not console.loggedIn(self):
                console.log(_WARNING, self.peer, "%s logged in, but refused: %d sessions already open "
                            "(--max-sessions)", self.username, len(console.runtime.logged_in))
                self.close(f"Too many console sessions ({console.maxSessions}); try again later.")
                return
            if self._deadline is not None:
                self._deadline.stop()
            console.log(_INFO, self.peer, "%s logged in", self.username)
            self._start_shell()
            if typeahead:
                self._typed(typeahead)
            if eof and self.state != _CLOSED:
                self.close("bye")
            self._resume_reading()
            return
        self.failures += 1
        total = attempt.failed() if attempt is not None else console.throttle.failed(self.host)
        console.log(_WARNING, self.peer, "failed login as %r (%d of %d on this connection, %d from %s)",
                    self.username, self.failures, console.maxFailures, total, self.host)
        if self.failures >= console.maxFailures:
            self.close("Login incorrect. Too many failures: closing the connection.")
            return
        self._send("Login incorrect.\n")
        if eof:  # nothing more will come: what was typed ahead is dropped with the failed login
            self.close("bye")
            return
        self._ask_user()
        if self._deadline is not None:
            self._deadline.resume()
        self._resume_reading()

    # -- the shell ----------------------------------------------------------------------

    def _start_shell(self) -> None:
        self.state = _SHELL
        self.shell_started = True
        self.shell = Shell(self.console.namespace(), self._send, self._audit)
        self._arm(self.console.idleTimeout)
        self._send(banner(self.console) + self.shell.prompt)

    def _audit(self, source: str) -> None:
        self.console.log(_INFO, self.peer, "%s ran: %s", self.username, one_line(source))

    def _run(self, line: str) -> None:
        shell = self.shell
        shell.push(line)
        if shell.finished:
            self.close("bye")
        elif self.state == _SHELL:  # the statement may have closed this very session
            self._send(shell.prompt)

    # -- output, timers, closing -----------------------------------------------------------

    def _send(self, text: str) -> None:
        if text and self.transport is not None and not self.transport.disconnecting:
            self.transport.write(tn.encode(text))

    def _arm(self, timeout: float) -> None:
        """The idle timer of a logged-in session (input restarts it)."""
        self._disarm()
        self._timeout = timeout
        if timeout and timeout > 0:
            self._timer = self.console.getClock().callLater(timeout, self._timed_out)

    def _rearm(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.reset(self._timeout)

    def _disarm(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _timed_out(self) -> None:
        self._timer = None
        self.console.log(_INFO, self.peer, "closing the session after %gs without input", self._timeout)
        self.close(f"idle for {self._timeout / 60:g} min: closing the session.")

    def _login_timed_out(self) -> None:
        self.console.log(_INFO, self.peer, "closing an unfinished login: %gs to log in have passed",
                         self.console.loginTimeout)
        self.close("login timed out.")

    def _stop_waiting(self) -> None:
        """Cancel the timers and a check that has not started (a hash already running is left to finish)."""
        self._disarm()
        if self._deadline is not None:
            self._deadline.stop()
        if self._pending is not None and self._pending.active():
            self._pending.cancel()
        self._pending = None
        if self._attempt is not None and not self._hashing:
            self._attempt.abandoned()  # never checked: its place in the throttle is given back
            self._attempt = None
        self._typeahead, self._typeahead_size = [], 0

    def close(self, reason: str) -> None:
        """End the session: say why, close the connection (connectionLost cleans up)."""
        if self.state == _CLOSED:
            return
        self._send("\n" + reason + "\n" if not reason.startswith("\n") else reason + "\n")
        self.state = _CLOSED
        self._stop_waiting()
        self.transport.loseConnection()

    def connectionLost(self, reason: Any = None) -> None:
        console = getattr(self, "console", None)
        if console is None:
            return
        was_in = self in console.sessions
        self.state = _CLOSED
        self._stop_waiting()
        self.shell = None
        console.release(self)
        if was_in:
            who = self.username if self.shell_started else "not logged in"
            console.log(_INFO, self.peer, "session closed (%s)", who)


class TelnetShellFactory(ServerFactory):
    """Builds console protocols; holds the :class:`Console` (saved with the application)."""

    __module__ = "tapster.plugins.console"  # the public path saved files record

    protocol = TelnetShellProtocol
    #: A live shell into one process: twistd --workers refuses it (each worker would be another world).
    singleProcess = True

    def __init__(self, console: Console) -> None:
        self.console = console

    def __repr__(self) -> str:
        return f"<TelnetShellFactory {self.console!r}>"
