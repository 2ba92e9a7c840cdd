"""The console login under attack, against the real ``twistd`` (issue 9, items 11-14).

An attacker's connections are raw sockets (that is what an attacker uses); the
administrator logs in with Debian's ``telnet`` in a pseudo-terminal or with
``nc``. Time-based policies run either with the documented defaults (the
parallel-guess test needs only the first few seconds of the schedule) or from a
``.tac`` with short timeouts, so that each test takes a few seconds.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e._e2e import free_port, nc, run, wait_for_port
from tests.e2e._terminal import Terminal, tool

PASSWORD = "Tr0ub4dor&3"
IAC_NOP = bytes([255, 241])


class Raw:
    """A plain TCP connection to the console, read with deadlines (never a fixed sleep)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.received = b""
        self.eof = False

    def read(self, timeout: float = 0.0) -> bytes:
        """What arrives within ``timeout`` (at least what is already there)."""
        got = b""
        end = time.monotonic() + timeout
        while not self.eof:
            ready, _, _ = select.select([self.sock], [], [], max(0.0, end - time.monotonic()))
            if not ready:
                break
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                chunk = b""
            if not chunk:
                self.eof = True
                break
            got += chunk
            if time.monotonic() >= end:
                break
        self.received += got
        return got

    def expect(self, marker: bytes, deadline: float = 10.0) -> None:
        end = time.monotonic() + deadline
        while marker not in self.received:
            if self.eof or time.monotonic() > end:
                pytest.fail(f"no {marker!r} from the console; got {self.received[-300:]!r}")
            self.read(min(0.05, max(0.0, end - time.monotonic())))

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raws() -> Iterator[list[Raw]]:
    opened: list[Raw] = []
    yield opened
    for r in opened:
        r.close()


@pytest.fixture
def terminals() -> Iterator[list[Terminal]]:
    started: list[Terminal] = []
    yield started
    for term in started:
        term.close()


def connect(port: int, raws: list[Raw]) -> Raw:
    r = Raw(port)
    raws.append(r)
    return r


def built_with_mktap(tmp_path: Path, *options: str) -> tuple[int, list[str]]:
    """A telnet console made by mktap with the documented defaults: (port, twistd arguments)."""
    port = free_port()
    (tmp_path / "admin.pw").write_text(PASSWORD + "\n")
    made = run("mktap", "telnet", "--port", str(port), "--password-file", "admin.pw", *options, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    return port, ["-n", "-o", "-f", "telnet.tap"]


def built_from_tac(tmp_path: Path, **settings: Any) -> tuple[int, list[str]]:
    """A telnet console from a .tac whose Console has ``settings`` (short timeouts)."""
    port = free_port()
    lines = [
        "from tapster.core.service import Application",
        "from tapster.plugins import telnet",
        "config = telnet.Options()",
        f"config.parseOptions(['--port', '{port}', '--password', {PASSWORD!r}])",
        "service = telnet.makeService(config)",
        "service.setName('telnet')",
        *(f"service.console.{name} = {value!r}" for name, value in settings.items()),
        "application = Application('console')",
        "service.setServiceParent(application)",
    ]
    (tmp_path / "console.tac").write_text("\n".join(lines) + "\n")
    return port, ["-n", "-y", "console.tac"]


def nc_session(port: int, lines: list[str]) -> str:
    return nc(port, ("\n".join(lines) + "\n").encode()).decode("utf-8", "replace")


def peak_rss_kib(pid: int) -> int:
    """The process's peak resident set size (VmHWM), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc/PID/status")


# -- 11. parallel guesses ----------------------------------------------------------------


def test_parallel_guesses_from_one_address_are_checked_no_faster_than_one_after_another(
    tmp_path: Path, twistd, raws: list[Raw]
) -> None:
    """Ten connections send a wrong password at the same moment. One after another, the
    documented policy (three free, then 1 s, 2 s, 4 s...) checks four guesses in the first
    2.5 s (at 0, 0, 0 and 1 s; the fifth at 3 s): the ten together get no more."""
    port, args = built_with_mktap(tmp_path, "--max-sessions", "10")
    server = twistd(*args)
    wait_for_port(port, server.proc)
    guessers = [connect(port, raws) for _ in range(10)]
    for g in guessers:
        g.expect(b"login: ")
        g.send(b"admin\r\n")
    for g in guessers:
        g.expect(b"Password: ")
    start = time.monotonic()
    for i, g in enumerate(guessers):
        g.send(f"wrong{i}\r\n".encode())
    answered: list[float] = []
    while time.monotonic() - start < 2.5:
        for g in guessers:
            if b"Login incorrect" not in g.received:
                g.read(0.01)
                if b"Login incorrect" in g.received:
                    answered.append(time.monotonic() - start)
    for g in guessers:
        g.close()
    assert server.stop() == 0, server.stderr
    assert 3 <= len(answered) <= 4, answered
    assert server.stdout.count("failed login as 'admin'") <= 5
    assert "waiting 1s" in server.stdout


# -- 12. the right password after the longest wait ---------------------------------------------


def test_the_right_password_after_a_wait_as_long_as_the_login_timeout_logs_in(
    tmp_path: Path, twistd, raws: list[Raw], terminals: list[Terminal]
) -> None:
    """Scaled down: a one-second login timeout and waits 0.25, 0.5, then 1 s (the cap, equal to
    the timeout). After three failures the administrator's right password waits the full cap
    in telnet, and logs in."""
    port, args = built_from_tac(tmp_path, loginTimeout=1.0, throttleFree=1, throttleBase=0.25, throttleMax=1.0)
    server = twistd(*args)
    wait_for_port(port, server.proc)
    guesser = connect(port, raws)
    for attempt in range(3):
        guesser.expect(b"login: ")
        guesser.received = b""
        guesser.send(f"admin\r\nwrong{attempt}\r\n".encode())
        guesser.expect(b"Login incorrect")
    guesser.expect(b"Too many failures")

    term = Terminal([tool("telnet", "telnet"), "127.0.0.1", str(port)])
    terminals.append(term)
    term.expect("login: ")
    term.sendline("admin")
    term.expect("Password: ")
    sent = time.monotonic()
    term.sendline(PASSWORD)
    term.expect(">>> ")
    waited = time.monotonic() - sent
    term.sendline("print(6 * 7)")
    assert "42" in term.expect(">>> ")
    assert "timed out" not in term.transcript
    assert waited >= 0.9, waited  # the wait was enforced, and longer than what was left of the login time
    term.sendline("exit()")
    term.expect("Connection closed by foreign host.")
    assert server.stop() == 0, server.stderr
    assert "waiting 1s" in server.stdout and "admin logged in" in server.stdout


# -- 13. the login deadline; connections that have not logged in ------------------------------------


def test_a_chatty_connection_that_never_logs_in_is_closed_at_the_deadline(
    tmp_path: Path, twistd, raws: list[Raw]
) -> None:
    port, args = built_from_tac(tmp_path, loginTimeout=1.0)
    server = twistd(*args)
    wait_for_port(port, server.proc)
    chatty = connect(port, raws)
    chatty.expect(b"login: ")
    start = time.monotonic()
    while not chatty.eof and time.monotonic() - start < 4:
        try:
            chatty.send(IAC_NOP + b"a")  # a telnet NOP and a key, ten times a second
        except OSError:
            break
        chatty.read(0.1)
    elapsed = time.monotonic() - start
    chatty.read(1.0)
    assert b"login timed out" in chatty.received, chatty.received[-200:]
    assert 0.8 <= elapsed <= 2.5, elapsed
    assert server.stop() == 0, server.stderr


def test_connections_that_never_log_in_cannot_keep_the_administrator_out(
    tmp_path: Path, twistd, raws: list[Raw]
) -> None:
    """Twelve silent connections (more than --max-sessions, more than may wait at the login
    prompt): the administrator still logs in; the oldest waiting ones were closed to make room."""
    port, args = built_with_mktap(tmp_path)  # --max-sessions 5, the default
    server = twistd(*args)
    wait_for_port(port, server.proc)
    squatters = [connect(port, raws) for _ in range(12)]
    for s in squatters:
        s.expect(b"login: ")
    out = nc_session(port, ["admin", PASSWORD, "print('in', 6 * 7)", "exit()"])
    assert "in 42" in out, out
    for s in squatters[:3]:
        end = time.monotonic() + 5
        while not s.eof and time.monotonic() < end:
            s.read(0.05)
        assert s.eof and b"too many connections are waiting to log in" in s.received, s.received[-200:]
    assert server.stop() == 0, server.stderr
    assert "closing the oldest connection that has not logged in" in server.stdout


# -- 14. a flood while the password is checked ------------------------------------------------------------


def test_a_flood_while_the_password_check_waits_is_not_buffered(tmp_path: Path, twistd, raws: list[Raw]) -> None:
    """After three failures the next check waits a second; the client floods newlines meanwhile
    (the issue: 10 MB of them held 847 MiB). The server stops reading instead: its peak RSS
    hardly moves."""
    port, args = built_with_mktap(tmp_path)
    server = twistd(*args)
    wait_for_port(port, server.proc)
    guesser = connect(port, raws)
    for attempt in range(3):
        guesser.expect(b"login: ")
        guesser.received = b""
        guesser.send(f"admin\r\nwrong{attempt}\r\n".encode())
        guesser.expect(b"Login incorrect")
    guesser.close()
    before = peak_rss_kib(server.proc.pid)

    flooder = connect(port, raws)
    flooder.expect(b"login: ")
    flooder.sock.settimeout(0.2)
    flooder.send(b"admin\r\nwrong\r\n")
    stop = threading.Event()
    sent = [0]

    def flood() -> None:
        chunk = b"\n" * 65536
        while not stop.is_set() and sent[0] < 64 * 2**20:
            try:
                sent[0] += flooder.sock.send(chunk)
            except (TimeoutError, BlockingIOError):
                continue
            except OSError:
                return

    writer = threading.Thread(target=flood, daemon=True)
    writer.start()
    try:
        end = time.monotonic() + 4
        while b"Login incorrect" not in flooder.received and not flooder.eof and time.monotonic() < end:
            flooder.read(0.05)
        during = peak_rss_kib(server.proc.pid)
    finally:
        stop.set()
        writer.join(5)
    flooder.close()
    grown = during - before
    assert grown < 24 * 1024, f"peak RSS grew by {grown} KiB while {sent[0]} bytes were offered"
    assert b"Login incorrect" in flooder.received  # the verdict came, a second after the password
    assert server.stop() == 0, server.stderr
    assert "stopped reading" in server.stdout


# -- the SSH front door ---------------------------------------------------------------------------------


def built_manhole(tmp_path: Path, *options: str, **settings: Any) -> tuple[int, list[str]]:
    """A manhole (password login) from a .tac whose Console has ``settings``."""
    port = free_port()
    lines = [
        "from tapster.core.service import Application",
        "from tapster.plugins import manhole",
        "config = manhole.Options()",
        f"config.parseOptions(['--port', '{port}', '--password', {PASSWORD!r}, *{list(options)!r}])",
        "service = manhole.makeService(config)",
        "service.setName('manhole')",
        *(f"service.console.{name} = {value!r}" for name, value in settings.items()),
        "application = Application('console')",
        "service.setServiceParent(application)",
    ]
    (tmp_path / "manhole.tac").write_text("\n".join(lines) + "\n")
    return port, ["-n", "-y", "manhole.tac"]


def ssh_connect(port: int, password: str) -> Any:
    import asyncssh

    return asyncssh.connect("127.0.0.1", port, username="admin", password=password, known_hosts=None,
                            client_keys=None, agent_path=None, preferred_auth="password")


def test_ssh_parallel_guesses_are_throttled_and_the_right_password_after_the_wait_logs_in(
    tmp_path: Path, twistd
) -> None:
    """Scaled down (one free failure, then 0.25 s, 0.5 s, capped at 1 s = the login timeout).
    Six ssh clients guess at once: one after another would get three checks in the first
    second (at 0, 0.25 and 0.75 s), and so do they. Then the administrator's right password
    waits the full cap and logs in."""
    asyncssh = pytest.importorskip("asyncssh")
    import asyncio

    port, args = built_manhole(tmp_path, loginTimeout=1.0, throttleFree=1, throttleBase=0.25, throttleMax=1.0)
    server = twistd(*args)
    wait_for_port(port, server.proc)

    async def guess(i: int, start: float, refused: list[float]) -> None:
        try:
            async with ssh_connect(port, f"wrong{i}"):
                pass
        except (asyncssh.PermissionDenied, asyncssh.DisconnectError):
            refused.append(time.monotonic() - start)

    async def main() -> tuple[list[float], float, str]:
        refused: list[float] = []
        start = time.monotonic()
        tasks = [asyncio.ensure_future(guess(i, start, refused)) for i in range(6)]
        await asyncio.wait(tasks, timeout=1.2)  # the window measured
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        before = time.monotonic()
        async with ssh_connect(port, PASSWORD) as conn:
            waited = time.monotonic() - before
            result = await conn.run("print(6 * 7)")
        return refused, waited, result.stdout

    refused, waited, out = asyncio.run(asyncio.wait_for(main(), 30))
    assert out == "42\n"
    assert waited >= 0.9, waited
    in_first_second = [t for t in refused if t < 1.0]
    assert 2 <= len(in_first_second) <= 3, refused
    assert server.stop() == 0, server.stderr
    assert "admin logged in over ssh (password)" in server.stdout
    assert "waiting 1s" in server.stdout


def test_connections_that_never_log_in_cannot_keep_the_administrator_out_of_ssh(
    tmp_path: Path, twistd, raws: list[Raw]
) -> None:
    pytest.importorskip("asyncssh")
    import asyncio

    port, args = built_manhole(tmp_path, "--max-sessions", "1")
    server = twistd(*args)
    wait_for_port(port, server.proc)
    squatters = [connect(port, raws) for _ in range(12)]
    for s in squatters:
        s.expect(b"SSH-2.0-")  # accepted, and silent from now on

    async def main() -> str:
        async with ssh_connect(port, PASSWORD) as conn:
            return (await conn.run("print('in')")).stdout

    assert asyncio.run(asyncio.wait_for(main(), 20)) == "in\n"
    assert server.stop() == 0, server.stderr
    assert "closing the oldest connection that has not logged in" in server.stdout
    assert "admin logged in over ssh (password)" in server.stdout
