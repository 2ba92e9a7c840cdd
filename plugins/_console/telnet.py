"""The telnet console: option negotiation, a login, then the shell, one protocol per connection.

The conversation:

1. The server offers ``WILL ECHO`` and ``WILL SGA``. A real telnet client
   agrees and switches to character mode: it stops echoing (so the password
   is never shown) and the server echoes and edits lines itself
   (:mod:`.editor`). A client that never answers (``nc``) stays in line
   mode: it echoes what the user types and sends whole lines; the server
   then echoes nothing.
2. ``login:`` and ``Password:``; the check is constant-time and waits
   first if this address failed too often (:class:`.auth.Throttle`). After
   three failures the connection is closed. The login must be completed
   within a minute.
3. ``>>>``: each line goes to a :class:`.shell.Shell`; its output comes back.
   ``exit()``, ``quit``, ^D on an empty line end the session; ^C (or
   ``IAC IP``) abandons the statement being typed. A session idle for
   ``idleTimeout`` seconds is closed.

Every connection, login, failure and statement is logged with the peer's
address (``system`` = ``<service>,<host>:<port>``).
"""

from __future__ import annotations

import codecs
import logging
from typing import Any

from tapster.core.protocol import Protocol, ServerFactory
from tapster.plugins._console import negotiation as tn
from tapster.plugins._console.console import Console
from tapster.plugins._console.editor import EndOfFile, Interrupt, Line, LineEditor
from tapster.plugins._console.shell import Shell, banner, one_line

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


class TelnetShellProtocol(Protocol):
    """One telnet connection to the console."""

    factory: "TelnetShellFactory"
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
        self._pending: Any = None
        self._typeahead: list[Any] = []  # lines typed while the password is being checked
        if not console.admit(self):
            console.log(_WARNING, self.peer, "refused: %d sessions already open (--max-sessions)", len(console.sessions))
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
        self._arm(console.loginTimeout)
        self._ask_user()

    # -- input ------------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        if self.state == _CLOSED:
            return
        self._rearm()
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
        if command in (tn.IP, tn.BRK, tn.ABORT):
            self._event(Interrupt())
        elif command == tn.EOF:
            self._event(EndOfFile())
        elif command == tn.AYT:
            self._send("\n[yes]\n")
        elif command == tn.EC:
            self._send(self.editor.erase_char())
        elif command == tn.EL:
            self._send(self.editor.erase_line())

    def _typed(self, text: str) -> None:
        # One character at a time: a state change (password mode after the user
        # name) must apply to the very next character, even within one chunk.
        echo: list[str] = []
        for ch in text:
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

    def readConnectionLost(self) -> None:
        """The client finished sending (``nc -N``, a pipe): like ^D, but after what it typed ahead."""
        self._event(EndOfFile())

    def _event(self, event: Any) -> None:
        state = self.state
        if isinstance(event, EndOfFile):
            if state == _CHECKING:
                self._typeahead.append(event)
            else:
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
            elif state == _CHECKING:
                # Typed (or pasted) ahead while the password is checked: run after a
                # successful login, dropped after a failed one.
                self._typeahead.append(event)

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
        self.editor.secret = False
        self.state = _CHECKING
        delay = self.console.throttle.delay(self.host)
        if delay:
            self.console.log(_WARNING, self.peer, "login attempt from an address with %d recent failures: waiting %gs",
                             self.console.throttle.failures(self.host), delay)
            self._pending = self.console.getClock().callLater(delay, self._check, password)
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
        future = loop.run_in_executor(None, verify, self.username, password)
        future.add_done_callback(self._verified)

    def _verified(self, future: Any) -> None:
        error = future.exception()
        if error is not None:
            self.console.log(_WARNING, self.peer, "password check failed: %s", error)
        self._checked(error is None and bool(future.result()))

    def _checked(self, ok: bool) -> None:
        if self.state != _CHECKING:  # closed while the hash was being computed
            return
        console = self.console
        typeahead, self._typeahead = self._typeahead, []
        if ok:
            console.throttle.succeeded(self.host)
            console.log(_INFO, self.peer, "%s logged in", self.username)
            self._start_shell()
            for event in typeahead:
                if self.state == _CLOSED:
                    break
                self._event(event)
            return
        self.failures += 1
        total = console.throttle.failed(self.host)
        console.log(_WARNING, self.peer, "failed login as %r (%d of %d on this connection, %d from %s)",
                    self.username, self.failures, console.maxFailures, total, self.host)
        if self.failures >= console.maxFailures:
            self.close("Login incorrect. Too many failures: closing the connection.")
            return
        self._send("Login incorrect.\n")
        self._ask_user()

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
        minutes = self._timeout / 60
        self.console.log(_INFO, self.peer, "closing %s after %gs without input",
                         "the session" if self.state == _SHELL else "an unfinished login", self._timeout)
        self.close(f"idle for {minutes:g} min: closing the session." if self.state == _SHELL
                   else "login timed out.")

    def close(self, reason: str) -> None:
        """End the session: say why, close the connection (connectionLost cleans up)."""
        if self.state == _CLOSED:
            return
        self._send("\n" + reason + "\n" if not reason.startswith("\n") else reason + "\n")
        self.state = _CLOSED
        self._disarm()
        if self._pending is not None and self._pending.active():
            self._pending.cancel()
        self._pending = None
        self.transport.loseConnection()

    def connectionLost(self, reason: Any = None) -> None:
        console = getattr(self, "console", None)
        if console is None:
            return
        was_in = self in console.sessions
        self.state = _CLOSED
        self._disarm()
        if self._pending is not None and self._pending.active():
            self._pending.cancel()
        self._pending = None
        self.shell = None
        console.release(self)
        if was_in:
            who = self.username if self.shell_started else "not logged in"
            console.log(_INFO, self.peer, "session closed (%s)", who)


class TelnetShellFactory(ServerFactory):
    """Builds console protocols; holds the :class:`Console` (saved with the application)."""

    __module__ = "tapster.plugins.console"  # the public path saved files record

    protocol = TelnetShellProtocol

    def __init__(self, console: Console) -> None:
        self.console = console

    def __repr__(self) -> str:
        return f"<TelnetShellFactory {self.console!r}>"
