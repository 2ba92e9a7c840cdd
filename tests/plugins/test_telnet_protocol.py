"""The telnet console protocol on a StringTransport with a test clock: login, shell, limits, logs."""

from __future__ import annotations

import base64
import hashlib
import logging

import pytest

from tapster.core.address import IPv4Address
from tapster.core.service import Application
from tapster.core.testing import Clock, StringTransportWithDisconnection
from tapster.plugins._console import negotiation as tn
from tapster.plugins._console.console import Console
from tapster.plugins._console.telnet import TelnetShellFactory


def cheap_hash(password: str) -> str:
    """A valid scrypt hash with tiny parameters, so tests do not spend 50 ms per login."""
    salt = b"0123456789abcdef"
    key = hashlib.scrypt(password.encode(), salt=salt, n=2, r=1, p=1, dklen=32)
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()  # noqa: E731
    return f"scrypt$2$1$1${b64(salt)}${b64(key)}"


class Session:
    """One client connection to the console, typed into as a user would."""

    def __init__(self, factory: TelnetShellFactory, host: str = "127.0.0.1", port: int = 50000) -> None:
        self.transport = StringTransportWithDisconnection(peerAddress=IPv4Address("TCP", host, port))
        self.protocol = factory.buildProtocol(self.transport.getPeer())
        self.transport.protocol = self.protocol
        self.protocol.makeConnection(self.transport)

    def send(self, data: bytes | str) -> Session:
        self.protocol.dataReceived(data.encode() if isinstance(data, str) else data)
        return self

    def take(self) -> bytes:
        value = self.transport.value()
        self.transport.clear()
        return value

    def text(self) -> str:
        return self.take().decode("utf-8", "replace")

    @property
    def closed(self) -> bool:
        return self.transport.disconnecting

    def login(self, user: str = "admin", password: str = "pw") -> Session:
        self.send(f"{user}\r\n{password}\r\n")
        return self


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app() -> Application:
    return Application("demo")


@pytest.fixture
def factory(clock: Clock, app: Application) -> TelnetShellFactory:
    console = Console("admin", cheap_hash("pw"), idleTimeout=900, maxSessions=2)
    console.clock = clock
    console.start(app, "telnet")
    return TelnetShellFactory(console)


def test_connection_offers_echo_and_sga_then_asks_for_login(factory: TelnetShellFactory) -> None:
    s = Session(factory)
    out = s.take()
    assert out.startswith(tn.command(tn.WILL, tn.ECHO) + tn.command(tn.WILL, tn.SGA))
    assert out.endswith(b"login: ")


def test_login_then_prompt_then_statements(factory: TelnetShellFactory) -> None:
    s = Session(factory)
    s.take()
    s.login()
    out = s.text()
    assert "Password: " in out and "console in application 'demo'" in out
    assert out.endswith(">>> ")
    s.send("application.name\r\n")
    assert s.text() == "'demo'\r\n>>> "


def test_character_mode_client_gets_echo_except_for_the_password(factory: TelnetShellFactory) -> None:
    s = Session(factory)
    s.take()
    s.send(tn.command(tn.DO, tn.ECHO) + tn.command(tn.DO, tn.SGA))
    assert s.take() == b""  # answers to our offers are not answered
    for ch in "admin\r\x00":
        s.send(ch)
    assert s.text() == "admin\r\nPassword: "
    for ch in "pw\r\x00":
        s.send(ch)
    out = s.text()
    assert "pw" not in out.split("\r\n")[0]  # the password is never echoed
    assert out.startswith("\r\n")
    s.send("1+1\r\x00")
    assert s.text() == "1+1\r\n2\r\n>>> "


def test_client_that_does_not_negotiate_gets_no_echo(factory: TelnetShellFactory) -> None:
    s = Session(factory)  # nc: never answers WILL ECHO
    s.take()
    s.send("admin\n")
    assert s.text() == "Password: "
    s.send("pw\n")
    s.take()
    s.send("x = 3\nx\n")
    assert s.text() == ">>> 3\r\n>>> "


def test_multi_line_statement_uses_the_continuation_prompt(factory: TelnetShellFactory) -> None:
    s = Session(factory).login()
    s.take()
    s.send("def f():\r\n")
    assert s.text() == "... "
    s.send("    return 5\r\n\r\nf()\r\n")
    assert s.text() == "... >>> 5\r\n>>> "


def test_wrong_password_three_times_closes_the_connection(factory: TelnetShellFactory, caplog) -> None:
    caplog.set_level(logging.INFO, logger="tapster.console")
    s = Session(factory)
    s.take()
    s.login(password="nope")
    assert "Login incorrect.\r\nlogin: " in s.text()
    s.login(password="nope")
    assert not s.closed
    s.login(password="nope")
    assert "Too many failures" in s.text()
    assert s.closed
    assert factory.console.sessions == []
    failures = [r for r in caplog.records if "failed login" in r.getMessage()]
    assert len(failures) == 3
    assert all(r.system == "telnet,127.0.0.1:50000" for r in failures)


def test_wrong_user_name_fails_like_a_wrong_password(factory: TelnetShellFactory) -> None:
    s = Session(factory)
    s.take()
    s.login(user="root", password="pw")
    assert "Login incorrect" in s.text()


def test_repeated_failures_from_an_address_slow_down_later_attempts(factory: TelnetShellFactory,
                                                                    clock: Clock) -> None:
    first = Session(factory, port=1)
    for _ in range(3):
        first.login(password="bad")
    assert first.closed
    second = Session(factory, port=2)
    second.take()
    second.login()  # the right password, but from an address that just failed three times
    assert ">>> " not in second.text()  # not checked yet
    second.send("typed while waiting\r\n")  # dropped, as login(1) does
    clock.advance(0.99)
    assert ">>> " not in second.text()
    clock.advance(0.02)
    assert second.text().endswith(">>> ")
    other = Session(factory, host="127.0.0.2")
    other.take()
    assert other.login().text().endswith(">>> ")  # another address is not slowed


def test_success_resets_the_address(factory: TelnetShellFactory, clock: Clock) -> None:
    s = Session(factory)
    s.login(password="bad").login(password="bad").login()
    assert factory.console.throttle.failures("127.0.0.1") == 0


def test_exception_is_shown_and_the_session_goes_on(factory: TelnetShellFactory) -> None:
    s = Session(factory).login()
    s.take()
    s.send("{}['missing']\r\n")
    out = s.text()
    assert "KeyError: 'missing'" in out and out.endswith(">>> ")
    s.send("1\r\n")
    assert s.text() == "1\r\n>>> "


@pytest.mark.parametrize("ending", ["exit()\r\n", "quit\r\n", "\x04", "raise SystemExit\r\n"])
def test_leaving_closes_the_session_only(factory: TelnetShellFactory, ending: str) -> None:
    s = Session(factory).login()
    s.take()
    s.send(ending)
    assert s.closed
    assert "bye" in s.text()
    assert factory.console.sessions == []
    again = Session(factory).login()
    assert again.text().endswith(">>> ")


def test_telnet_eof_command_ends_the_session(factory: TelnetShellFactory) -> None:
    s = Session(factory).login()
    s.send(bytes([tn.IAC, tn.EOF]))
    assert s.closed


def test_ctrl_c_and_telnet_ip_drop_the_statement(factory: TelnetShellFactory) -> None:
    s = Session(factory).login()
    s.send("def f():\r\n")
    s.take()
    s.send("\x03")
    assert s.text() == "KeyboardInterrupt\r\n>>> "
    s.send("if 1:\r\n")
    s.take()
    s.send(bytes([tn.IAC, tn.IP]))
    assert s.text().endswith(">>> ")
    s.send("f\r\n")
    assert "NameError" in s.text()


def test_ctrl_c_at_the_login_prompt_closes(factory: TelnetShellFactory) -> None:
    s = Session(factory)
    s.send("\x03")
    assert s.closed


def test_are_you_there(factory: TelnetShellFactory) -> None:
    s = Session(factory)
    s.take()
    s.send(bytes([tn.IAC, tn.AYT]))
    assert s.text() == "\r\n[yes]\r\n"


def test_print_output_goes_to_this_session(factory: TelnetShellFactory) -> None:
    s = Session(factory).login()
    s.take()
    s.send("print('a\\nb')\r\n")
    assert s.text() == "a\r\nb\r\n>>> "


def test_output_with_iac_and_unicode_is_encoded(factory: TelnetShellFactory) -> None:
    s = Session(factory).login()
    s.take()
    s.send("print('h\u00e9llo')\r\n".encode())
    assert s.take() == "h\u00e9llo\r\n>>> ".encode()


def test_session_limit_refuses_extra_connections(factory: TelnetShellFactory) -> None:
    """--max-sessions counts logged-in sessions (connections waiting to log in have their own limit)."""
    a, b = Session(factory).login(), Session(factory).login()
    c = Session(factory)
    assert "Too many console sessions (2)" in c.text()
    assert c.closed and not a.closed and not b.closed
    a.send("exit()\r\n")
    assert not Session(factory).login().closed


def test_idle_session_is_closed(factory: TelnetShellFactory, clock: Clock) -> None:
    s = Session(factory).login()
    clock.advance(899)
    s.send("1\r\n")  # input restarts the timer
    clock.advance(899)
    assert not s.closed
    clock.advance(2)
    assert s.closed
    assert "idle for 15 min" in s.text()
    assert factory.console.sessions == []


def test_unfinished_login_times_out(factory: TelnetShellFactory, clock: Clock) -> None:
    s = Session(factory)
    s.send("adm")
    clock.advance(61)
    assert s.closed and "login timed out" in s.text()


def test_disconnect_mid_statement_leaves_nothing_behind(factory: TelnetShellFactory, clock: Clock) -> None:
    s = Session(factory).login()
    s.send("def half():\r\n")
    s.transport.loseConnection()
    assert factory.console.sessions == []
    assert clock.getDelayedCalls() == []  # no timer left
    t = Session(factory).login()
    t.take()
    t.send("half\r\n")
    assert "NameError" in t.text()


def test_disconnect_while_a_login_is_delayed_cancels_the_check(factory: TelnetShellFactory, clock: Clock) -> None:
    for port in (1, 2, 3):
        Session(factory, port=port).login(password="bad").transport.loseConnection()
    s = Session(factory, port=4).login()
    assert clock.getDelayedCalls()
    s.transport.loseConnection()
    assert clock.getDelayedCalls() == []


def test_statements_and_logins_are_logged_with_the_peer(factory: TelnetShellFactory, caplog) -> None:
    caplog.set_level(logging.INFO, logger="tapster.console")
    s = Session(factory, host="127.0.0.9", port=4242).login()
    s.send("x = 1\r\n")
    s.send("exit()\r\n")
    messages = [(r.system, r.getMessage()) for r in caplog.records]
    system = "telnet,127.0.0.9:4242"
    assert (system, "connection from 127.0.0.9:4242") in messages
    assert (system, "admin logged in") in messages
    assert (system, "admin ran: x = 1") in messages
    assert (system, "session closed (admin)") in messages


def test_stopping_the_console_closes_every_session(factory: TelnetShellFactory) -> None:
    a, b = Session(factory).login(), Session(factory)
    factory.console.stop("going down")
    assert a.closed and b.closed
    assert "going down" in a.text()
    assert factory.console.sessions == []


def test_a_statement_that_stops_its_own_console_gets_no_prompt_after(factory: TelnetShellFactory) -> None:
    s = Session(factory).login()
    s.take()
    s.send("application  # warm up\r\n")
    s.take()
    factory.console.namespace()["console"] = factory.console
    s.send("console.stop('bye from inside')\r\n")
    out = s.text()
    assert "bye from inside" in out and not out.endswith(">>> ")
    assert s.closed


def test_password_is_checked_off_the_reactor_thread_and_typeahead_runs_after_login(
    factory: TelnetShellFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a running loop the slow hash goes to a worker thread; lines pasted after the
    password wait for the verdict and then run, in order."""
    import asyncio
    import threading

    from tapster.plugins._console.auth import Credentials

    threads: list[str] = []
    check = Credentials.check

    def recording_check(self: Credentials, username: str, password: str) -> bool:
        threads.append(threading.current_thread().name)
        return check(self, username, password)

    monkeypatch.setattr(Credentials, "check", recording_check)

    async def main() -> str:
        s = Session(factory)
        s.take()
        s.send("admin\r\npw\r\n6*7\r\nprint('after')\r\n")
        deadline = asyncio.get_running_loop().time() + 5
        seen = ""
        while "after" not in seen and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.005)
            seen += s.text()
        return seen

    out = asyncio.run(main())
    assert threads and threads[0] != threading.main_thread().name
    assert "42" in out and out.index("42") < out.index("after")


def test_wrong_password_drops_the_typeahead(factory: TelnetShellFactory) -> None:
    import asyncio

    async def main() -> str:
        s = Session(factory)
        s.take()
        s.send("admin\r\nwrong\r\nimport os\r\n")
        deadline = asyncio.get_running_loop().time() + 5
        seen = ""
        while "login:" not in seen and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.005)
            seen += s.text()
        return seen

    out = asyncio.run(main())
    assert "Login incorrect." in out and out.rstrip().endswith("login:")
    assert ">>>" not in out
