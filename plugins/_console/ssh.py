"""The manhole's SSH side, on asyncssh: imported only when a manhole starts (it needs ``tapster[ssh]``).

asyncssh runs on the shared reactor's loop, so every session's code runs on
the reactor thread like any callback. With a terminal (``ssh -p PORT
admin@host``) asyncssh's own line editor echoes and edits lines (history,
^C, ^D); without one (``ssh -T``, input piped) lines arrive as sent. A
command (``ssh ... 'print(application)'``) runs as input to a fresh shell
and the channel's exit status is 1 if anything raised.

Authentication: the ``authorized_keys`` file (read again at every login, so
adding a key needs no restart) for the configured user name only, and/or the
password (checked against the stored hash, slowed down per address after
failures like the telnet console's, attempts in flight included). Three
failed passwords end the connection. The login deadline is the console's
(:class:`.console.LoginDeadline`: absolute, but not counting the server's
own waits), and connections that have not logged in are limited apart from
the logged-in sessions (:meth:`.console.Console.admit`). Every login,
refusal and statement is logged with the peer's address.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
from typing import Any

import asyncssh

from tapster.core.errors import TapsterError
from tapster.plugins._console.console import LoginDeadline
from tapster.plugins._console.shell import Shell, banner, one_line

__all__ = ["load_or_create_host_key", "serve", "Listener"]

_INFO, _WARNING = logging.INFO, logging.WARNING
_log = logging.getLogger("tapster.console")

# asyncssh narrates every connection at INFO; the console logs what matters (logins,
# refusals, statements) itself, so keep asyncssh to warnings unless someone chose a level.
if logging.getLogger("asyncssh").level == logging.NOTSET:
    logging.getLogger("asyncssh").setLevel(logging.WARNING)


def load_or_create_host_key(path: str) -> Any:
    """The host key in ``path``, generated (Ed25519, mode 0600) if the file does not exist yet."""
    from tapster.core import persist

    if os.path.exists(path):
        try:
            return asyncssh.read_private_key(path)
        except (OSError, asyncssh.KeyImportError) as e:
            raise TapsterError(f"cannot read the SSH host key {path}: {e} (move it away to generate a new one)") from e
    key = asyncssh.generate_private_key("ssh-ed25519", comment="tapster manhole host key")
    persist.atomic_write(path, key.export_private_key())  # a new file is created readable by its owner only
    _log.info("generated SSH host key %s (%s)", path, key.get_fingerprint(), extra={"system": "manhole"})
    return key


def _peer(conn: Any) -> tuple[str, str]:
    peer = conn.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        host, port = str(peer[0]), peer[1]
        return host, (f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    name = str(peer or "unix")
    return name, name


class _Connection(asyncssh.SSHServer):
    """One SSH connection: authentication, the idle timer, and the sessions it opens."""

    def __init__(self, service: Any) -> None:
        self.service = service
        self.console = service.console
        self.conn: Any = None
        self.host = self.peer = "?"
        self.username = ""
        self.method = "public key"
        self.failures = 0
        self.authenticated = False
        self.admitted = False
        self.closed = False
        self._timer: Any = None
        self._deadline: LoginDeadline | None = None
        self._hashing: Any = None  # the password hash running in a worker thread, if any

    # -- connection ---------------------------------------------------------------

    def connection_made(self, conn: Any) -> None:
        self.conn = conn
        self.host, self.peer = _peer(conn)
        if not self.console.admit(self):
            self.console.log(_WARNING, self.peer, "refused: %d sessions already open (--max-sessions)",
                             len(self.console.runtime.logged_in))
            asyncio.get_running_loop().call_soon(
                conn.disconnect, asyncssh.DISC_TOO_MANY_CONNECTIONS,
                f"too many console sessions ({self.console.maxSessions}); try again later")
            return
        self.admitted = True
        # Our own login timer, not asyncssh's: it must stop while the server makes the client
        # wait (see LoginDeadline), and asyncssh's counts that wait.
        self._deadline = LoginDeadline(self.console.getClock(), self.console.loginTimeout, self._login_timed_out)
        self.console.log(_INFO, self.peer, "ssh connection from %s", self.peer)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._disarm()
        if self._deadline is not None:
            self._deadline.stop()
        if not self.admitted:
            return
        self.console.release(self)
        if self.authenticated:
            self.console.log(_INFO, self.peer, "session closed (%s)", self.username)
        else:
            self.console.log(_WARNING, self.peer, "disconnected without logging in%s",
                             f" as {self.username!r}" if self.username else "")

    def close(self, reason: str) -> None:
        if not self.closed and self.conn is not None:
            self.closed = True
            if self._deadline is not None:
                self._deadline.stop()
            self.conn.disconnect(asyncssh.DISC_BY_APPLICATION, reason)

    def _login_timed_out(self) -> None:
        self.console.log(_INFO, self.peer, "closing an unfinished ssh login: %gs to log in have passed",
                         self.console.loginTimeout)
        self.close("login timed out")

    # -- authentication -------------------------------------------------------------

    def begin_auth(self, username: str) -> bool:
        self.username = username
        keys = self.service.authorizedKeys
        if keys and username == self.console.username:
            try:
                self.conn.set_authorized_keys(keys)  # read at every login: a new key needs no restart
            except (OSError, ValueError) as e:
                self.console.log(_WARNING, self.peer, "cannot read the authorized keys %s: %s", keys, e)
        return True

    def public_key_auth_supported(self) -> bool:
        return bool(self.service.authorizedKeys)

    def password_auth_supported(self) -> bool:
        return self.console.passwordHash is not None

    async def validate_password(self, username: str, password: str) -> bool:
        """Check a password: wait for this attempt's turn, then hash it in a worker thread.

        The attempt is counted from the start (:meth:`.auth.Throttle.reserve`), so parallel
        connections get no more guesses than one; the login deadline is paused meanwhile
        (:class:`.console.LoginDeadline`). asyncssh cancels this coroutine when the client
        sends its next request, but a hash already running in its thread cannot be stopped:
        a connection therefore runs one hash at a time (a pipelined request waits for the one
        before), and that hash's verdict is recorded whether or not anyone still waits for it,
        so pipelining buys neither free guesses nor a pile of hashes (50 ms and 16 MiB each).
        """
        deadline = self._deadline
        if deadline is not None:
            deadline.pause()
        try:
            while self._hashing is not None and not self._hashing.done():
                await asyncio.wait([self._hashing])
            if self.closed:
                return False
            throttle = self.console.throttle
            in_flight = throttle.inFlight(self.host)
            attempt = throttle.reserve(self.host)
            try:
                if attempt.delay:
                    self.console.log(_WARNING, self.peer, "login attempt from an address with %d recent failures "
                                     "and %d other attempts in flight: waiting %gs",
                                     throttle.failures(self.host), in_flight, attempt.delay)
                    await self._sleep(attempt.delay)
            except BaseException:
                attempt.abandoned()  # never checked: its place in the throttle is given back
                raise
            if self.closed:
                attempt.abandoned()
                return False
            check = self.console.credentials.check

            def verify() -> bool | Exception:
                try:
                    return check(username, password)
                except Exception as e:  # a malformed stored hash: logged, and a failure
                    return e

            future = asyncio.get_running_loop().run_in_executor(None, verify)
            self._hashing = future
            future.add_done_callback(functools.partial(self._verdict, attempt, username))
            result = await asyncio.shield(future)
            if result is True:
                self.method = "password"
                return True
            return False
        finally:
            if deadline is not None:
                deadline.resume()

    async def _sleep(self, delay: float) -> None:
        """Wait ``delay`` seconds on the console's clock (a test's Clock, or the reactor)."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not waiter.done():
                waiter.set_result(None)

        call = self.console.getClock().callLater(delay, wake)
        try:
            await waiter
        finally:
            if call.active():
                call.cancel()

    def _verdict(self, attempt: Any, username: str, future: Any) -> None:
        """A hash is done (whether or not its request was cancelled meanwhile): record it."""
        if self._hashing is future:
            self._hashing = None
        result = None if future.cancelled() else future.result()
        if isinstance(result, Exception):
            self.console.log(_WARNING, self.peer, "password check failed: %s", result)
        if result is True:
            attempt.succeeded()
            return
        self.failures += 1
        total = attempt.failed()
        self.console.log(_WARNING, self.peer, "failed ssh password for %r (%d of %d on this connection, %d from %s)",
                         username, self.failures, self.console.maxFailures, total, self.host)
        if self.failures >= self.console.maxFailures and not self.closed:
            asyncio.get_running_loop().call_soon(self.close, "too many failed logins")

    def auth_completed(self) -> None:
        if self._deadline is not None:
            self._deadline.stop()
        if not self.console.loggedIn(self):
            self.console.log(_WARNING, self.peer, "%s logged in over ssh, but refused: %d sessions already open "
                             "(--max-sessions)", self.username, len(self.console.runtime.logged_in))
            asyncio.get_running_loop().call_soon(
                self.close, f"too many console sessions ({self.console.maxSessions}); try again later")
            return
        self.authenticated = True
        self.console.log(_INFO, self.peer, "%s logged in over ssh (%s)", self.username, self.method)
        self.touch()

    def session_requested(self) -> Any:
        return _Session(self)

    # -- idle timer ----------------------------------------------------------------------

    def touch(self) -> None:
        """Input arrived: restart the idle timer."""
        timeout = self.console.idleTimeout
        if not timeout or timeout <= 0 or self.closed:
            return
        if self._timer is not None and self._timer.active():
            self._timer.reset(timeout)
        else:
            self._timer = self.console.getClock().callLater(timeout, self._timed_out)

    def _disarm(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _timed_out(self) -> None:
        self._timer = None
        self.console.log(_INFO, self.peer, "closing the session after %gs without input", self.console.idleTimeout)
        self.close(f"idle for {self.console.idleTimeout / 60:g} min: closing the session")


class _Session(asyncssh.SSHServerSession):
    """One channel: a shell (interactive, or running the command given to ssh)."""

    def __init__(self, connection: _Connection) -> None:
        self.connection = connection
        self.console = connection.console
        self.chan: Any = None
        self.command: str | None = None
        self.shell: Shell | None = None
        self.errors = 0
        self._buffer = ""

    def connection_made(self, chan: Any) -> None:
        self.chan = chan

    def pty_requested(self, term_type: str, term_size: Any, term_modes: Any) -> bool:
        return True

    def shell_requested(self) -> bool:
        return True

    def exec_requested(self, command: str) -> bool:
        self.command = command
        return True

    def subsystem_requested(self, subsystem: str) -> bool:
        return False

    def session_started(self) -> None:
        self.shell = _CountingShell(self, self.console.namespace(), self._write, self._audit)
        if self.command is not None:
            for line in self.command.splitlines():
                self.shell.push(line)
                if self.shell.finished:
                    break
            if not self.shell.finished:
                self.shell.push("")  # end a trailing block
            self._exit(1 if self.errors else 0)
            return
        try:  # with a terminal, asyncssh edits lines: make ^C also drop the half-typed line
            self.chan.register_key("\x03", self._ctrl_c)
        except (AttributeError, AssertionError):  # no terminal, no line editor
            pass
        self._write(banner(self.console) + self.shell.prompt)

    def _ctrl_c(self, line: str, pos: int) -> tuple[str, int]:
        asyncio.get_running_loop().call_soon(self._interrupt, line)
        return "", 0

    def _audit(self, source: str) -> None:
        self.console.log(_INFO, self.connection.peer, "%s ran: %s", self.connection.username, one_line(source))

    def _write(self, text: str) -> None:
        if self.chan is not None and not self.connection.closed:
            try:
                self.chan.write(text)
            except (asyncssh.Error, BrokenPipeError, OSError):  # the channel is closing
                pass

    def _exit(self, status: int) -> None:
        if self.chan is not None and not self.connection.closed:
            self.chan.exit(status)

    def data_received(self, data: str, datatype: Any) -> None:
        self.connection.touch()
        if self.shell is None:
            return
        self._buffer += data
        while "\n" in self._buffer and self.shell is not None:
            line, self._buffer = self._buffer.split("\n", 1)
            self._line(line.rstrip("\r"))

    def _line(self, line: str) -> None:
        shell = self.shell
        assert shell is not None
        shell.push(line)
        if shell.finished:
            self.shell = None
            self._exit(0)
        elif not self.connection.closed:
            self._write(shell.prompt)

    def soft_eof_received(self) -> None:  # ^D on an empty line in the line editor
        self._end()

    def eof_received(self) -> bool:
        if self._buffer and self.shell is not None:
            self._line(self._buffer)
            self._buffer = ""
        self._end()
        return False

    def _end(self) -> None:
        if self.shell is not None:
            self.shell = None
            self._write("\nbye\n")
            self._exit(0)

    def break_received(self, msec: int) -> bool:  # ^C in the line editor
        self._interrupt()
        return True

    def signal_received(self, signal: str) -> None:
        if signal == "INT":
            self._interrupt()

    def _interrupt(self, typed: str = "") -> None:
        if self.shell is not None:
            self._write(typed + "^C\n")
            self.shell.interrupt()
            self._write(self.shell.prompt)

    def connection_lost(self, exc: Exception | None) -> None:
        self.shell = None


class _CountingShell(Shell):
    """A shell that tells its session how many statements failed (the exit status of a command)."""

    def __init__(self, session: _Session, *args: Any) -> None:
        super().__init__(*args)
        self._session = session

    def showtraceback(self) -> None:
        self._session.errors += 1
        super().showtraceback()

    def showsyntaxerror(self, filename: str | None = None, **kwargs: Any) -> None:
        self._session.errors += 1
        super().showsyntaxerror(filename, **kwargs)


class Listener:
    """The running SSH server of one manhole; :meth:`close` stops it (returns an awaitable)."""

    def __init__(self, service: Any, sock: socket.socket, host_key: Any) -> None:
        from tapster.core import reactor

        self.service = service
        self.sock = sock
        self.acceptor: Any = None
        loop = reactor.getReactor().loop
        self.task = loop.create_task(self._listen(host_key))
        self.task.add_done_callback(self._started)

    async def _listen(self, host_key: Any) -> Any:
        return await asyncssh.listen(
            sock=self.sock,
            server_factory=lambda: _Connection(self.service),
            server_host_keys=[host_key],
            encoding="utf-8",
            line_editor=True,
            login_timeout=0,  # the console's own LoginDeadline (asyncssh's would count the server's waits)
            allow_scp=False,
            agent_forwarding=False,
            x11_forwarding=False,
            sftp_factory=None,
            keepalive_interval=0,
        )

    def _started(self, task: asyncio.Task) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            _log.error("the manhole could not start: %s", error, exc_info=error, extra={"system": self.service.name})
            return
        self.acceptor = task.result()
        _log.info("manhole (ssh) listening on %s", self.service.endpoint, extra={"system": self.service.name})

    def close(self) -> Any:
        """Stop accepting and end every connection; an awaitable completing when done."""
        if not self.task.done():
            self.task.cancel()
        if self.acceptor is not None:
            self.acceptor.close()
        try:
            self.sock.close()
        except OSError:
            pass
        from tapster.plugins._console.listen import check_endpoint

        kind, args, _ = check_endpoint(self.service.endpoint)
        if kind == "unix":
            try:
                os.unlink(args[0])
            except OSError:
                pass
        acceptor = self.acceptor

        async def wait() -> None:
            if acceptor is not None:
                await acceptor.wait_closed()

        loop = self.task.get_loop()
        return loop.create_task(wait()) if loop.is_running() else wait()


def serve(service: Any, sock: socket.socket, host_key: Any) -> Listener:
    """Start serving ``sock`` for ``service`` on the shared loop (the loop may not be running yet)."""
    return Listener(service, sock, host_key)
