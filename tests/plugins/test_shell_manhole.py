"""The manhole (SSH console): options, the error without asyncssh, and real SSH logins on the shared loop.

The SSH tests run asyncssh's client and the manhole on the same (shared
reactor's) loop in this process, on 127.0.0.1 with an ephemeral port.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tapster.core import usage
from tapster.core.errors import PluginError
from tapster.core.service import Application
from tapster.plugins import manhole
from tapster.plugins._console.service import ManholeService

PASSWORD = "letmein"


def parse(*argv: str) -> manhole.Options:
    config = manhole.Options()
    config.parseOptions(list(argv))
    return config


# -- options, without touching asyncssh ---------------------------------------------------


def test_someone_must_be_able_to_log_in() -> None:
    with pytest.raises(usage.UsageError, match="nobody could log in"):
        parse()


def test_password_alone_is_enough() -> None:
    config = parse("-w", PASSWORD)
    assert config["endpoint"] == "tcp:4041:interface=127.0.0.1"
    assert config["authorized-keys"] is None


def test_authorized_keys_path_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "keys").write_text("")
    monkeypatch.chdir(tmp_path)
    assert parse("--authorized-keys", "keys")["authorized-keys"] == str(tmp_path / "keys")


def test_missing_authorized_keys_is_refused(tmp_path: Path) -> None:
    with pytest.raises(usage.UsageError, match="not a readable file"):
        parse("--authorized-keys", str(tmp_path / "nope"))


def test_ssl_endpoint_is_refused() -> None:
    with pytest.raises(usage.UsageError, match="encrypted already"):
        parse("-w", "x", "-p", "ssl:4041:privateKey=k:certKey=c")


def test_without_asyncssh_make_service_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "asyncssh", None)  # import asyncssh → ImportError
    with pytest.raises(PluginError, match=r"pip install 'tapster\[ssh\]'"):
        manhole.makeService(parse("-w", "x"))


def test_without_asyncssh_start_fails_clearly_and_frees_the_port(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("asyncssh")
    service = manhole.makeService(parse("-w", "x", "-p", "tcp:0:interface=127.0.0.1"))
    app = Application("a")
    service.setServiceParent(app)
    monkeypatch.setitem(sys.modules, "asyncssh", None)
    monkeypatch.delitem(sys.modules, "tapster.plugins._console.ssh", raising=False)
    app.privilegedStartService()
    sock = service._sock
    with pytest.raises(PluginError, match="tapster\\[ssh\\]"):
        app.startService()
    assert sock.fileno() == -1  # closed


# -- real SSH ---------------------------------------------------------------------------------

asyncssh = pytest.importorskip("asyncssh")


@pytest.fixture(scope="module")
def client_key() -> Any:
    return asyncssh.generate_private_key("ssh-ed25519")


@pytest.fixture
def keys_file(tmp_path: Path, client_key: Any) -> str:
    path = tmp_path / "authorized_keys"
    path.write_bytes(client_key.export_public_key())
    return str(path)


class Running:
    def __init__(self, reactor: Any, app: Application, service: ManholeService) -> None:
        self.reactor = reactor
        self.app = app
        self.service = service
        self.port = service._sock.getsockname()[1]

    def run(self, coro: Any, timeout: float = 10) -> Any:
        return self.reactor.loop.run_until_complete(asyncio.wait_for(coro, timeout))

    def connect(self, **kw: Any) -> Any:
        kw.setdefault("username", "admin")
        return asyncssh.connect("127.0.0.1", self.port, known_hosts=None, agent_path=None,
                                client_keys=kw.pop("client_keys", None), **kw)


@pytest.fixture
def running(tmp_path: Path, keys_file: str, shared_reactor: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Running]:
    monkeypatch.chdir(tmp_path)
    config = parse("-w", PASSWORD, "--authorized-keys", keys_file, "-p", "tcp:0:interface=127.0.0.1",
                   "--max-sessions", "2")
    app = Application("site")
    service = manhole.makeService(config)
    service.setName("manhole")
    service.setServiceParent(app)
    app.privilegedStartService()
    app.startService()
    r = Running(shared_reactor, app, service)
    yield r
    result = app.stopService()
    if result is not None:
        shared_reactor.loop.run_until_complete(result)


def test_command_runs_in_the_application(running: Running, client_key: Any) -> None:
    async def go() -> Any:
        async with running.connect(client_keys=[client_key]) as conn:
            return await conn.run("print(application.name)\nx = len(list(application))\nprint(x)")

    result = running.run(go())
    assert result.stdout == "site\n1\n"
    assert result.exit_status == 0


def test_command_that_raises_exits_with_status_1(running: Running, client_key: Any) -> None:
    async def go() -> Any:
        async with running.connect(client_keys=[client_key]) as conn:
            return await conn.run("1/0")

    result = running.run(go())
    assert "ZeroDivisionError" in result.stdout
    assert result.exit_status == 1


def test_interactive_shell_without_terminal(running: Running) -> None:
    async def go() -> str:
        async with running.connect(password=PASSWORD) as conn:
            process = await conn.create_process()
            process.stdin.write("def f():\n    return 7\n\nf()\n")
            process.stdin.write_eof()
            return await process.stdout.read()

    out = running.run(go())
    assert "console in application 'site'" in out
    assert "... ... >>> 7\n>>> " in out


def test_exit_ends_the_session_with_status_0(running: Running) -> None:
    async def go() -> Any:
        async with running.connect(password=PASSWORD) as conn:
            process = await conn.create_process()
            process.stdin.write("exit()\nprint('never')\n")
            return await process.wait()

    result = running.run(go())
    assert result.exit_status == 0 and "never" not in result.stdout


def test_terminal_session_edits_lines(running: Running) -> None:
    async def go() -> str:
        async with running.connect(password=PASSWORD) as conn:
            process = await conn.create_process(term_type="xterm", term_size=(80, 24))
            await process.stdout.readuntil(">>> ")
            process.stdin.write("1+1\r")
            out = await process.stdout.readuntil(">>> ")
            process.stdin.write("abc\x03")
            out += await process.stdout.readuntil(">>> ")
            process.stdin.write("\x04")
            await process.wait()
            return out

    out = running.run(go())
    assert "2\r\n" in out
    assert "KeyboardInterrupt" in out


def test_wrong_key_or_wrong_user_is_refused(running: Running, client_key: Any) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519")

    async def attempt(**kw: Any) -> None:
        async with running.connect(**kw):
            pass

    with pytest.raises(asyncssh.PermissionDenied):
        running.run(attempt(client_keys=[other]))
    with pytest.raises(asyncssh.PermissionDenied):
        running.run(attempt(client_keys=[client_key], username="root"))


def test_three_wrong_passwords_end_the_connection(running: Running, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tapster.console")
    tries: list[str] = []

    class Guesser(asyncssh.SSHClient):
        def password_auth_requested(self) -> str:
            tries.append("x")
            return f"guess{len(tries)}"

        def kbdint_auth_supported(self) -> bool:
            return False

    async def go() -> None:
        conn, _ = await asyncssh.create_connection(Guesser, "127.0.0.1", running.port, username="admin",
                                                   known_hosts=None, client_keys=None, agent_path=None)
        conn.close()

    with pytest.raises((asyncssh.DisconnectError, asyncssh.PermissionDenied, ConnectionError)):
        running.run(go())
    assert len(tries) == 3
    failures = [r for r in caplog.records if "failed ssh password" in r.getMessage()]
    assert len(failures) == 3 and failures[0].system.startswith("manhole,127.0.0.1:")
    assert running.service.console.throttle.failures("127.0.0.1") == 3


def test_session_limit(running: Running) -> None:
    async def go() -> None:
        async with running.connect(password=PASSWORD), running.connect(password=PASSWORD):
            with pytest.raises((asyncssh.DisconnectError, ConnectionError)):
                async with running.connect(password=PASSWORD):
                    pass

    running.run(go())


def test_host_key_is_generated_once_and_kept(running: Running, tmp_path: Path) -> None:
    key_file = tmp_path / "site-ssh-host-key"
    assert key_file.is_file()
    assert key_file.stat().st_mode & 0o777 == 0o600
    first = asyncssh.read_private_key(str(key_file)).get_fingerprint()

    async def fingerprint() -> str:
        async with running.connect(password=PASSWORD) as conn:
            return conn.get_server_host_key().get_fingerprint()

    assert running.run(fingerprint()) == first
    # A restart (stop, start) keeps the key.
    result = running.app.stopService()
    if result is not None:
        running.run(result)
    running.app.privilegedStartService()
    running.app.startService()
    running.port = running.service._sock.getsockname()[1]
    assert running.run(fingerprint()) == first


def test_logins_and_statements_are_logged(running: Running, client_key: Any, caplog) -> None:
    caplog.set_level(logging.INFO, logger="tapster.console")

    async def go() -> None:
        async with running.connect(client_keys=[client_key]) as conn:
            await conn.run("y = 2")

    running.run(go())
    messages = [r.getMessage() for r in caplog.records]
    assert "admin logged in over ssh (public key)" in messages
    assert "admin ran: y = 2" in messages


def test_stopping_frees_the_port(running: Running) -> None:
    port = running.port
    result = running.app.stopService()
    if result is not None:
        running.run(result)
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))


def test_idle_connection_is_closed(running: Running) -> None:
    from tapster.core.testing import Clock

    clock = Clock()
    running.service.console.clock = clock  # timers from now on run on the test clock

    async def go() -> None:
        async with running.connect(password=PASSWORD) as conn:
            process = await conn.create_process()
            await process.stdout.readuntil(">>> ")
            clock.advance(running.service.console.idleTimeout - 1)
            process.stdin.write("1\n")  # input restarts the timer
            await process.stdout.readuntil(">>> ")
            clock.advance(running.service.console.idleTimeout - 1)
            assert running.service.console.sessions
            clock.advance(2)
            await conn.wait_closed()

    running.run(go())
    assert running.service.console.sessions == []


# -- the login under attack (issue 9, items 11-14) ----------------------------------------------


def test_parallel_password_guesses_wait_as_if_made_one_after_another(running: Running,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Six clients try a wrong password at once. With the slow-down scaled to 0.5 s (three
    free, then 0.5 s, 1 s, 2 s), one guess after another gets four checks in the first
    second; six in parallel get no more."""
    import threading
    import time

    from tapster.plugins._console.auth import Credentials

    console = running.service.console
    console.maxSessions = 10
    console.throttle.base = 0.5
    started: list[float] = []
    lock = threading.Lock()
    check = Credentials.check

    def timed(self: Credentials, username: str, password: str) -> bool:
        with lock:
            started.append(time.monotonic())
        return check(self, username, password)

    monkeypatch.setattr(Credentials, "check", timed)

    async def guess(i: int) -> None:
        try:
            async with running.connect(password=f"wrong{i}"):
                pass
        except (asyncssh.PermissionDenied, asyncssh.DisconnectError, ConnectionError):
            pass

    async def go() -> None:
        tasks = [asyncio.ensure_future(guess(i)) for i in range(6)]
        deadline = asyncio.get_running_loop().time() + 10
        while not started and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.005)
        await asyncio.wait(tasks, timeout=1.2)  # the window measured: a little more than a second
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    running.run(go())
    assert started
    first = started[0]
    in_first_second = [t - first for t in started if t - first < 1.0]
    assert len(in_first_second) <= 4, in_first_second
    assert len(in_first_second) >= 3


@pytest.fixture
def slow_login(tmp_path: Path, keys_file: str, shared_reactor: Any,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[Running]:
    """A manhole whose login timeout (0.6 s) equals its longest wait, scaled down from 60 s and 60 s."""
    monkeypatch.chdir(tmp_path)
    config = parse("-w", PASSWORD, "--authorized-keys", keys_file, "-p", "tcp:0:interface=127.0.0.1")
    app = Application("site")
    service = manhole.makeService(config)
    service.setName("manhole")
    service.setServiceParent(app)
    console = service.console
    console.loginTimeout = 0.6
    console.throttle.base = 0.6
    console.throttle.maximum = 0.6
    for _ in range(9):
        console.throttle.failed("127.0.0.1")
    app.privilegedStartService()
    app.startService()
    yield Running(shared_reactor, app, service)
    result = app.stopService()
    if result is not None:
        shared_reactor.loop.run_until_complete(result)


def test_the_right_password_after_the_longest_wait_logs_in_over_ssh(slow_login: Running) -> None:
    async def go() -> Any:
        async with slow_login.connect(password=PASSWORD) as conn:
            return await conn.run("print(6 * 7)")

    result = slow_login.run(go())
    assert result.stdout == "42\n"
    assert slow_login.service.console.throttle.failures("127.0.0.1") == 0


def test_connections_that_never_log_in_cannot_keep_an_ssh_login_out(running: Running,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    """--max-sessions is 2 here; twelve silent TCP connections do not keep the administrator out."""
    caplog.set_level(logging.INFO, logger="tapster.console")
    squatters = [socket.create_connection(("127.0.0.1", running.port), timeout=5) for _ in range(12)]
    try:
        async def go() -> Any:
            async with running.connect(password=PASSWORD) as conn:
                return await conn.run("print('in')")

        assert running.run(go()).stdout == "in\n"
        messages = [r.getMessage() for r in caplog.records]
        assert sum("closing the oldest connection that has not logged in" in m for m in messages) >= 2
    finally:
        for s in squatters:
            s.close()


class _FakeSSHConnection:
    """What ``_Connection`` uses of an asyncssh connection."""

    def __init__(self) -> None:
        self.disconnected: list[str] = []

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else None

    def disconnect(self, code: int, reason: str) -> None:
        self.disconnected.append(reason)

    def set_authorized_keys(self, keys: Any) -> None:
        pass


def test_pipelined_password_requests_run_one_hash_at_a_time(shared_reactor: Any,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """asyncssh cancels a password check when the next request arrives, but the hash already
    running in a worker thread cannot be stopped: a client pipelining requests must not pile up
    hashes (CPU and 16 MiB each) faster than the verdicts come back."""
    import threading
    from types import SimpleNamespace

    from tapster.plugins._console import ssh
    from tapster.plugins._console.auth import Credentials
    from tapster.plugins._console.console import Console

    console = Console("admin", "scrypt$2$1$1$MDEyMzQ1Njc4OWFiY2RlZg$" + "A" * 43)
    console.start(Application("site"), "manhole")
    connection = ssh._Connection(SimpleNamespace(console=console, authorizedKeys=None, name="manhole"))
    fake = _FakeSSHConnection()
    connection.connection_made(fake)
    gate = threading.Event()
    counts = {"running": 0, "peak": 0, "total": 0}
    lock = threading.Lock()

    def slow_wrong(self: Credentials, username: str, password: str) -> bool:
        with lock:
            counts["running"] += 1
            counts["total"] += 1
            counts["peak"] = max(counts["peak"], counts["running"])
        gate.wait(5)
        with lock:
            counts["running"] -= 1
        return False

    monkeypatch.setattr(Credentials, "check", slow_wrong)

    async def go() -> Any:
        tasks: list[asyncio.Task] = []
        for i in range(20):
            if tasks:
                tasks[-1].cancel()  # what asyncssh does with the request before
            tasks.append(asyncio.ensure_future(connection.validate_password("admin", f"guess{i}")))
            await asyncio.sleep(0)
        await asyncio.sleep(0.05)
        gate.set()
        return await asyncio.gather(*tasks, return_exceptions=True)

    results = shared_reactor.loop.run_until_complete(asyncio.wait_for(go(), 10))
    assert results[-1] is False
    assert counts["peak"] == 1 and counts["total"] <= 3, counts
    assert console.throttle.failures("127.0.0.1") == counts["total"]  # every hash computed counts
    assert console.throttle.inFlight("127.0.0.1") == 0
    connection.connection_lost(None)
