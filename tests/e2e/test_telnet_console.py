"""The administrator's workflow with the real tools: mktap, a daemonized twistd, Debian's telnet and nc.

qotd plus a telnet console, run as a daemon; log in with ``telnet`` in a
pseudo-terminal, change the quote and add a service through ``application``,
save a known-good copy, stop with SIGTERM, and run both saved files again.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e._e2e import free_port, nc, run, wait_for, wait_for_port
from tests.e2e._terminal import Terminal, tool

PASSWORD = "Tr0ub4dor&3"
PIDFILE = "qotd.pid"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


class Daemons:
    """twistd daemons started in one directory; any still alive at the end are killed."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.pids: list[int] = []

    def start(self, filename: str) -> int:
        launched = run("twistd", "-f", filename, "--pidfile", PIDFILE, "--logfile", "qotd.log", cwd=self.cwd)
        assert launched.returncode == 0, launched.stderr
        pid = int((self.cwd / PIDFILE).read_text())
        self.pids.append(pid)
        return pid

    def stop(self, pid: int) -> None:
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not _alive(pid) and not (self.cwd / PIDFILE).exists(), f"daemon {pid} to exit")


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Daemons]:
    d = Daemons(tmp_path)
    yield d
    for pid in d.pids:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def terminals() -> Iterator[list[Terminal]]:
    started: list[Terminal] = []
    yield started
    for term in started:
        term.close()


def telnet(port: int, terminals: list[Terminal]) -> Terminal:
    term = Terminal([tool("telnet", "telnet"), "127.0.0.1", str(port)])
    terminals.append(term)
    return term


def login(term: Terminal, password: str = PASSWORD) -> None:
    term.expect("login: ")
    term.sendline("admin")
    term.expect("Password: ")
    term.sendline(password)
    term.expect(">>> ")


def type_statement(term: Terminal, statement: str) -> str:
    """Type one line at the prompt; returns what came back before the next prompt."""
    term.sendline(statement)
    return term.expect(">>> ")


def build(tmp_path: Path, qotd_port: int, telnet_port: int) -> None:
    (tmp_path / "admin.pw").write_text(PASSWORD + "\n")
    made = run("mktap", "qotd", "--port", f"tcp:{qotd_port}:interface=127.0.0.1", "--static", "Original quote",
               cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    added = run("mktap", "--append", "qotd.tap", "telnet", "--port", str(telnet_port), "--username", "admin",
                "--password-file", "admin.pw", cwd=tmp_path)
    assert added.returncode == 0, added.stderr
    assert "services: qotd, telnet" in added.stderr
    assert PASSWORD.encode() not in (tmp_path / "qotd.tap").read_bytes()


def nc_session(port: int, lines: list[str]) -> str:
    """A whole console session through nc (no negotiation, whole lines)."""
    return nc(port, ("\n".join(lines) + "\n").encode()).decode("utf-8", "replace")


def test_administrator_changes_the_running_server_and_the_changes_survive(
    tmp_path: Path, daemons: Daemons, terminals: list[Terminal]
) -> None:
    qotd_port, telnet_port, second_port = free_port(), free_port(), free_port()
    build(tmp_path, qotd_port, telnet_port)
    pid = daemons.start("qotd.tap")
    assert nc(qotd_port) == b"Original quote\r\n"

    term = telnet(telnet_port, terminals)
    login(term)
    assert "console in application 'qotd'" in term.transcript
    assert PASSWORD not in term.transcript  # never echoed

    type_statement(term, "application.getServiceNamed('qotd').args[1].quoter.quote = 'Changed live'")
    assert nc(qotd_port) == b"Changed live\r\n"

    assert "'qotd-known-good.tap'" in type_statement(term, "application.save('known-good')")
    assert (tmp_path / "qotd-known-good.tap").is_file()

    type_statement(
        term, "from tapster.plugins.qotd import QOTDFactory; from tapster.plugins.quoters import StaticQuoter"
    )
    out = type_statement(term, f"internet.TCPServer({second_port}, QOTDFactory(StaticQuoter('Second service')), "
                               "interface='127.0.0.1').setServiceParent(application)")
    assert "Traceback" not in out, out
    assert nc(second_port) == b"Second service\r\n"
    assert "True" in type_statement(term, "import __main__; __main__.application is application")

    # Seed 004's 2002 API: listenTCP on the running application adds a started service; ports lists them.
    third_port = free_port()
    out = type_statement(term, f"__main__.application.listenTCP({third_port}, QOTDFactory(StaticQuoter('Third')), "
                               "interface='127.0.0.1')")
    assert "Traceback" not in out and "QOTDFactory running>" in out, out
    assert nc(third_port) == b"Third\r\n"
    assert "'Third'" in type_statement(term, "application.ports[-1].factory.quoter.quote")
    listing = type_statement(term, "application.ports[0]")
    assert f"<TCPServer 'qotd' tcp:{qotd_port}:interface=127.0.0.1 QOTDFactory running>" in listing, listing

    term.sendline("exit()")
    term.expect("Connection closed by foreign host.")
    assert term.wait() in (0, 1)  # telnet's status after a remote close varies between builds

    daemons.stop(pid)
    assert (tmp_path / "qotd-shutdown.tap").is_file()
    log = (tmp_path / "qotd.log").read_text()
    assert "admin logged in" in log and "admin ran: application.save('known-good')" in log

    # The shutdown file has everything: the quote, the second and third services, and the console itself.
    pid = daemons.start("qotd-shutdown.tap")
    assert nc(qotd_port) == b"Changed live\r\n"
    assert nc(second_port) == b"Second service\r\n"
    out = nc_session(telnet_port, ["admin", PASSWORD, "print([type(s).__name__ for s in application])", "exit()"])
    assert "['TCPServer', 'TelnetService', 'TCPServer', 'TCPServer']" in out, out
    daemons.stop(pid)

    # The known-good file was saved before the second service existed.
    pid = daemons.start("qotd-known-good.tap")
    assert nc(qotd_port) == b"Changed live\r\n"
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", second_port), timeout=2).close()
    daemons.stop(pid)


@pytest.fixture
def served(tmp_path: Path, twistd) -> tuple[int, int, object]:
    """qotd + telnet running in the foreground: (qotd port, telnet port, server)."""
    qotd_port, telnet_port = free_port(), free_port()
    build(tmp_path, qotd_port, telnet_port)
    server = twistd("-n", "-o", "-f", "qotd.tap")
    wait_for_port(telnet_port, server.proc)
    return qotd_port, telnet_port, server


def test_three_wrong_passwords_close_the_connection(served, terminals: list[Terminal]) -> None:
    _, telnet_port, server = served
    term = telnet(telnet_port, terminals)
    for attempt in range(3):
        term.expect("login: ")
        term.sendline("admin")
        term.expect("Password: ")
        term.sendline(f"wrong{attempt}")
        term.expect("Login incorrect")
    term.expect("Too many failures")
    term.expect("Connection closed by foreign host.")
    term.wait()
    assert "wrong0" not in term.transcript  # the password prompt does not echo
    server.stop()
    assert server.stdout.count("failed login as 'admin'") == 3


def test_an_exception_is_shown_and_the_server_keeps_serving(served, terminals: list[Terminal]) -> None:
    qotd_port, telnet_port, _ = served
    term = telnet(telnet_port, terminals)
    login(term)
    out = type_statement(term, "application.getServiceNamed('no such service')")
    assert "Traceback (most recent call last)" in out and "KeyError: 'no such service'" in out
    assert "ZeroDivisionError" in type_statement(term, "1/0")
    assert nc(qotd_port) == b"Original quote\r\n"
    assert "2" in type_statement(term, "1 + 1")
    term.send("\x04")  # ^D on an empty line
    term.expect("Connection closed by foreign host.")


def test_a_client_gone_mid_statement_leaves_no_trace(served, terminals: list[Terminal]) -> None:
    qotd_port, telnet_port, server = served
    with socket.create_connection(("127.0.0.1", telnet_port), timeout=5) as raw:
        raw.sendall(f"admin\r\n{PASSWORD}\r\n".encode())
        seen = b""
        end = time.monotonic() + 10
        while b">>> " not in seen and time.monotonic() < end:
            seen += raw.recv(4096)
        raw.sendall(b"def half_typed():\r\n    application.stopService()\r\n")
    term = telnet(telnet_port, terminals)
    login(term)
    assert "NameError" in type_statement(term, "half_typed")
    # Only this session is left (polling: the server notices the close on its next loop turn).
    count = "len(application.getServiceNamed('telnet').console.sessions)"
    end = time.monotonic() + 10
    while "\r\n1\r\n" not in type_statement(term, count):
        assert time.monotonic() < end, term.transcript
    assert nc(qotd_port) == b"Original quote\r\n"
    server.stop()
    assert "session closed (admin)" in server.stdout


def test_nc_works_as_a_plain_line_client(served) -> None:
    _, telnet_port, _ = served
    out = nc_session(telnet_port, ["admin", PASSWORD, "for i in range(3):", "    print(i * 10)", "", "exit()"])
    assert "0\r\n10\r\n20\r\n" in out
    assert out.rstrip().endswith("bye")


def test_mktap_refuses_a_console_without_password(tmp_path: Path) -> None:
    made = run("mktap", "telnet", "--port", str(free_port()), cwd=tmp_path)
    assert made.returncode == 2
    assert "no default password" in made.stderr and "Traceback" not in made.stderr
    assert not (tmp_path / "telnet.tap").exists()
